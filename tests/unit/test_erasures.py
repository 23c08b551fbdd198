"""Erased cases stay erased: the list outside the database, applied again after a restore."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from pathlib import Path

from bot.config import Settings
from bot.crypto.keyring import load_keyring
from bot.crypto.sealing import sealer_for
from bot.crypto.signing import load_verify_key
from bot.services import erasures
from bot.services.backup import backup_to, restore_from
from bot.storage.cases import CaseRepository, NewCase
from bot.storage.db import Database
from bot.storage.privacy import PrivacyRepository

MARKER = "PLAINMARKER-Гүлжан-e1"


def new_case(i: int) -> NewCase:
    data = json.dumps({"persons": [{"full_name": f"{MARKER} {i}"}]}, ensure_ascii=False)
    return NewCase(user_id=i, language="kk", persons_count=1, prefecture="ili",
                   attachments_count=0, consent_share="yes", consent_publish="no",
                   notice_version=1, form_version=1, data=data.encode())


async def _two_cases(path: Path) -> None:
    db = await Database.open(path)
    repo = CaseRepository(db)
    for i in (1, 2):
        await db.execute("INSERT INTO users (user_id, language, created_at, last_seen_at)"
                         " VALUES (?, 'kk', '2026-01-01', '2026-01-01')", (i,))
        await repo.submit(new_case(i), "2026-01-01T00:00:00+00:00", lambda i=i: f"N{i:06d}")
    await db.execute("INSERT INTO drafts (user_id, form_version, state, seq, created_at,"
                     " updated_at) VALUES (1, 1, X'00', 0, '2026-01-02', '2026-01-02')")
    await db.close()


async def _erase_user_one(settings: Settings) -> None:
    db = await Database.open(settings.db_path)
    erasures.remember(settings.data_dir, ["N000001"])
    await PrivacyRepository(db).erase_user(1, "2026-02-01T00:00:00+00:00")
    await db.close()


def _rows(path: Path, sql: str) -> list[tuple[object, ...]]:
    conn = sqlite3.connect(path)
    try:
        return [tuple(r) for r in conn.execute(sql)]
    finally:
        conn.close()


def test_a_restore_never_brings_an_erased_case_back(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data")  # type: ignore[call-arg]
    keys = load_keyring(settings.data_dir, None, None)
    assert keys.private is not None
    asyncio.run(_two_cases(settings.db_path))
    backup = tmp_path / "before.sealed"
    backup_to(settings, sealer_for(keys.public, keys.signing, keys.draft_key), backup)
    asyncio.run(_erase_user_one(settings))
    assert erasures.erased_numbers(settings.data_dir) == ["N000001"]

    restore_from(settings, backup, keys.private,
                 verify_key=load_verify_key(settings.data_dir / "keys" / "verify.key"))

    db = settings.db_path
    assert _rows(db, "SELECT number, status, user_id, length(data) > 0 FROM cases"
                     " ORDER BY case_id") == [("N000001", "withdrawn", None, 0),
                                              ("N000002", "new", 2, 1)]
    assert _rows(db, "SELECT user_id FROM users ORDER BY user_id") == [(2,)]
    assert _rows(db, "SELECT count(*) FROM drafts") == [(0,)]
    assert _rows(db, "SELECT count(*) FROM case_events e JOIN cases c USING (case_id)"
                     " WHERE c.number = 'N000001' AND e.detail IS NOT NULL") == [(0,)]
    data = db.read_bytes()  # secure_delete: the erased case's bytes are gone too
    assert f"{MARKER} 1".encode() not in data and f"{MARKER} 2".encode() in data
    # Applying it again changes nothing.
    assert erasures.reapply(db, settings.data_dir) == []


def test_the_list_holds_numbers_only(tmp_path: Path) -> None:
    erasures.remember(tmp_path, ["1234-5678", "", "8765-4321"])
    erasures.remember(tmp_path, ["1234-5678"])
    path = tmp_path / erasures.ERASED_FILE
    assert path.read_text() == "1234-5678\n8765-4321\n1234-5678\n"
    assert path.stat().st_mode & 0o777 == 0o600
    assert erasures.erased_numbers(tmp_path) == ["1234-5678", "8765-4321"]
    assert erasures.erased_numbers(tmp_path / "missing") == []
