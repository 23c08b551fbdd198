"""Helpers for the command-line tests (test_cli, test_restore_cli): settings for a subprocess,
an empty working folder, and a database seeded with sealed cases."""

from __future__ import annotations

import asyncio
import functools
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bot.services.crypto import load_keyring
from bot.storage.cases import CaseRepository, NewCase
from bot.storage.db import Database
from bot.storage.privacy import PrivacyRepository

ROOT = Path(__file__).resolve().parents[2]
STORY = ('Ағам "Ерлан", 2018 жылы жоғалды;\nқайда екенін білмейміз, «лагерь»? =1+1\n' * 80)
NAMES = ("Әлия Нұрланқызы", "王小明", "ئابدۇللا")


def cli_env(**settings: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BOT_")}
    env["PYTHONPATH"] = str(ROOT)
    env.update({f"BOT_{k.upper()}": v for k, v in settings.items()})
    return env


async def run_cli(*args: str, env: dict[str, str], cwd: Path,
                  timeout: float = 60) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", *args, cwd=cwd, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), timeout)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


@pytest.fixture
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Run main() in-process in an empty folder (no .env), with no BOT_ settings."""
    for key in list(os.environ):
        if key.startswith("BOT_"):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)
    yield tmp_path


def lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


async def seed_cases(data_dir: Path, attachments: list[dict[str, Any]]) -> None:
    """Three sealed cases (names in three scripts, a long story, files) and a withdrawn one."""
    keys = load_keyring(data_dir, None, None)
    db = await Database.open(data_dir / "bot.sqlite3")
    cases = CaseRepository(db, keys.seal, keys.unseal)
    try:
        for i, name in enumerate(NAMES, 1):
            await db.execute("INSERT INTO users (user_id, language, created_at, last_seen_at) "
                             "VALUES (?, 'kk', '2024-01-01', '2024-01-01')", (i,))
            data = {"language": "kk", "form_version": 1, "notice_version": 1,
                    "consent": {"consent_store": "agree", "consent_share": "yes",
                                "consent_publish": "anonymous"},
                    "reporter": {"reporter_name": f"Reporter {i}", "reporter_country": "kz"},
                    "persons": [{"relation": "sister", "full_name": name, "story": STORY,
                                 "attachments": attachments if i == 1 else []},
                                {"relation": "brother", "full_name": f"{name} 2"}]}
            await cases.submit(
                NewCase(user_id=i, language="kk", persons_count=2, prefecture="ili",
                        attachments_count=len(attachments), consent_share="yes",
                        consent_publish="anonymous", notice_version=1, form_version=1,
                        data=json.dumps(data, ensure_ascii=False).encode()),
                f"2024-03-0{i}T10:00:00+00:00", functools.partial(str, f"4821-000{i}"))
        await db.execute("INSERT INTO users (user_id, language, created_at, last_seen_at) "
                         "VALUES (9, 'ru', '2024-01-01', '2024-01-01')")
        await cases.submit(
            NewCase(user_id=9, language="ru", persons_count=1, prefecture=None,
                    attachments_count=0, consent_share="no", consent_publish="no",
                    notice_version=1, form_version=1, data=b'{"persons":[]}'),
            "2024-03-05T10:00:00+00:00", lambda: "4821-0009")
        await PrivacyRepository(db).erase_user(9, "2024-03-06T10:00:00+00:00")
    finally:
        await db.close()
