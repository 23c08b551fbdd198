"""A short report with files, for the evidence tests, driven by the journey driver
(tests/journeys.py) by question id, so that a reshaped questionnaire breaks only the tests
that are about the changed questions."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from bot.sandbox.simusers import SimUser
from bot.storage.db import Database
from tests.journeys import SKIP, UNKNOWN, Answer, do, fill, multi, opt, start, submit

Send = Callable[[SimUser], Awaitable[object]]


def _plan(story: Answer, files: list[Send], *, share: str = "yes",
          name: str = "Ерлан Тохтасын", chinese_name: str = "叶尔兰") -> dict[str, Answer]:
    return {
        "consent_store": opt("agree"), "consent_share": opt(share), "consent_reveal": opt("no"),
        "consent_publish": opt("anonymous"),
        "reporter_name": "Gulzhan T", "reporter_country": opt("kz"), "reporter_more": opt("yes"),
        "reporter_city": "Almaty", "reporter_phone": "8 701 123 45 67",
        "relation": opt("brother"), "full_name": name, "gender": opt("male"),
        "prefecture": opt("ili"), "what_happened": multi("detained"),
        "happened_date": "04.2018", "taken_from": opt("home"), "in_danger": opt("no"),
        "more_details": opt("yes"), "chinese_name": chinese_name, "birth_date": "05.1980",
        "place": "Ghulja", "place_held": "Camp No. 3", "responsible": multi("police"),
        "last_contact": "12.03.2018", "steps_taken": multi("un"), "story": story,
        "attachments": [*(do(f) for f in files), SKIP],
    }


async def report_with_files(user: SimUser, files: list[Send], *, story_voice: bool = True,
                            share: str = "yes", name: str = "Ерлан Тохтасын",
                            chinese_name: str = "叶尔兰", pause: float = 0.0) -> str:
    """Consent, reporter, one person whose story is a voice message and `files` attached.

    `pause`: seconds between answers (a bot with the real flood limit takes 3 updates a second).
    """
    story: Answer = (do(lambda u: u.send_voice(duration=75)) if story_voice
                     else "He was taken at night by the police.")
    await start(user, "en")
    await fill(user, _plan(story, files, share=share, name=name, chinese_name=chinese_name),
               pause=pause)
    return await submit(user)


async def report_until_files(user: SimUser) -> None:
    """A report (the language is known) up to the files question, its story a voice message;
    a sister in Altay, no contact, the optional details skipped."""
    await fill(user, {
        "consent_store": opt("agree"), "consent_share": opt("yes"), "consent_reveal": opt("no"),
        "consent_publish": opt("anonymous"), "reporter_name": "Gulzhan T",
        "reporter_country": opt("kz"), "reporter_more": opt("no"),
        "relation": opt("sister"), "full_name": "Aliya", "gender": opt("female"),
        "prefecture": opt("altay"), "what_happened": multi("no_contact"),
        "happened_date": UNKNOWN, "more_details": opt("yes"),
        "story": do(lambda u: u.send_voice(duration=5, data=b"OggS second voice")),
    }, until="attachments")


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
