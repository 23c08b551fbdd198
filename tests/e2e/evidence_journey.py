"""A short report with files, for the evidence tests (the full journey is in
test_relative_journey.py)."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from bot.sandbox.simusers import SimUser
from bot.services.case_numbers import parse_case_number
from bot.storage.db import Database
from tests.e2e.conftest import click
from tests.e2e.test_relative_journey import choose_language

Send = Callable[[SimUser], Awaitable[object]]


async def report_with_files(user: SimUser, files: list[Send], *, story_voice: bool = True,
                            share: str = "yes", name: str = "Ерлан Тохтасын",
                            chinese_name: str = "叶尔兰") -> str:
    """Consent, reporter, one person whose story is a voice message and `files` attached."""
    await choose_language(user, "en")
    await click(user, "opt", "agree")
    await click(user, "opt", share)
    await click(user, "opt", "anonymous")
    await user.send_text("Gulzhan T")
    await click(user, "opt", "kz")
    await user.send_text("Almaty")
    await click(user, "skip")
    await user.send_text("8 701 123 45 67")
    await click(user, "opt", "brother")
    await user.send_text(name)
    await user.send_text(chinese_name)
    await click(user, "skip")  # other names
    await click(user, "opt", "male")
    await user.send_text("05.1980")
    for _ in range(3):  # ethnicity, citizenship, occupation
        await click(user, "skip")
    await click(user, "opt", "ili")
    await user.send_text("Ghulja")
    await click(user, "skip")  # chinese id
    await click(user, "tog", "detained")
    await click(user, "done")
    await user.send_text("04.2018")
    await user.send_text("Camp No. 3")  # place held
    await click(user, "tog", "police")
    await click(user, "done")
    await click(user, "skip")  # reasons
    await user.send_text("12.03.2018")  # last contact
    await click(user, "tog", "un")
    await click(user, "done")
    if story_voice:
        await user.send_voice(duration=75)
    else:
        await user.send_text("He was taken at night by the police.")
    for send in files:
        await send(user)
    await click(user, "done")
    await click(user, "finish")
    await click(user, "submit")
    found = [w for w in user.last.plain.replace("\n", " ").split() if parse_case_number(w)]
    assert found, user.last.plain
    return found[0]


async def wait_vault(db: Database, *, settled: bool = True, timeout: float = 20.0) -> list[
        tuple[str, str | None]]:
    """Wait until no file is pending (or, with settled=False, return at once): (state, reason)."""
    deadline = time.monotonic() + timeout
    while True:
        rows = await db.fetchall("SELECT state, reason FROM evidence_files ORDER BY file_row")
        got = [(str(r[0]), r[1]) for r in rows]
        if not settled or all(s not in ("pending", "erase") for s, _ in got):
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"vault not settled: {got}")
        await asyncio.sleep(0.05)


async def wait_count(db: Database, n: int, timeout: float = 20.0) -> None:
    """Wait until the vault has exactly `n` rows (files being erased are gone)."""
    deadline = time.monotonic() + timeout
    while True:
        row = await db.fetchone("SELECT count(*) FROM evidence_files")
        if row is not None and row[0] == n:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"vault has {row[0] if row else '?'} rows, not {n}")
        await asyncio.sleep(0.05)


def disk_files(folder: Path) -> dict[str, bytes]:
    """Every file under `folder` (recursively), by relative path."""
    out = {}
    for root, _dirs, names in os.walk(folder):
        for name in names:
            p = Path(root) / name
            out[p.relative_to(folder).as_posix()] = p.read_bytes()
    return out
