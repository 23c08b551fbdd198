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
                            chinese_name: str = "叶尔兰", pause: float = 0.0) -> str:
    """Consent, reporter, one person whose story is a voice message and `files` attached.

    `pause`: seconds between steps (a bot with the real flood limit takes 3 updates a second).
    """
    def opt(code: str) -> Send:
        return lambda u: click(u, "opt", code)

    def press(action: str, arg: str | None = None) -> Send:
        return lambda u: click(u, action, arg)

    def text(value: str) -> Send:
        return lambda u: u.send_text(value)

    steps: list[Send] = [
        opt("agree"), opt(share), opt("anonymous"), text("Gulzhan T"), opt("kz"),
        text("Almaty"), press("skip"), text("8 701 123 45 67"), opt("brother"), text(name),
        text(chinese_name), press("skip"), opt("male"), text("05.1980"),
        press("skip"), press("skip"), press("skip"),  # ethnicity, citizenship, occupation
        opt("ili"), text("Ghulja"), press("skip"),  # place, chinese id
        press("tog", "detained"), press("done"), text("04.2018"), text("Camp No. 3"),
        press("tog", "police"), press("done"), press("skip"),  # responsible, reasons
        text("12.03.2018"), press("tog", "un"), press("done"),  # last contact, steps
        (lambda u: u.send_voice(duration=75)) if story_voice
        else text("He was taken at night by the police."),
        *files, press("done"), press("finish"), press("submit"),
    ]
    await choose_language(user, "en")
    for action in steps:
        if pause:
            await asyncio.sleep(pause)
        await action(user)
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
