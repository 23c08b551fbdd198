"""SIGKILL at random moments: nothing a relative was told is kept is ever lost.

The bot runs as it does in production (`python -m bot run`, long polling, the rate limiter),
as a subprocess talking to the emulator, while simulated relatives go through the
questionnaire concurrently. It is killed with SIGKILL at random moments (during start-up
too) and started again each time. After every kill, with the bot dead, the database is opened
and checked: every answer a relative had seen acknowledged (the bot showed the next step) is
stored, no case is duplicated or half-written, and PRAGMA integrity_check says ok. At the
end every journey is complete, with one case and one confirmation each.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from pathlib import Path
from typing import Any

import pytest

from bot.form.engine import DraftState
from bot.sandbox.emulator import Emulator
from bot.services.crypto import load_keyring
from bot.storage.cases import CaseRepository
from bot.storage.db import Database
from bot.storage.drafts import DraftRepository
from tests.chaos.conftest import (
    BotProcess,
    Relative,
    Tally,
    missing_acknowledged,
    report,
    scale,
    stored_answers,
)

pytestmark = pytest.mark.chaos

RELATIVES = scale(8, 50)
KILLS = scale(4, 50)
EARLY_KILLS = 0.15  # share of kills that may land during start-up (before polling)
PATIENCE = 45.0


async def check_database(data_dir: Path, people: list[Relative], *, final: bool = False
                         ) -> tuple[list[str], int]:
    """Problems found in the stored data (the bot must be dead), and acknowledged answers."""
    path = data_dir / "bot.sqlite3"
    if not path.exists():
        return [], 0
    keys = load_keyring(data_dir, None, None)
    db = await Database.open(path, migrate=False)
    problems: list[str] = []
    checked = 0
    try:
        integrity = await db.integrity_check()
        if integrity != "ok":
            problems.append(f"integrity_check: {integrity}")
        if await db.schema_version() < 5:  # killed before the migrations were done
            return problems, 0
        drafts = DraftRepository(db, keys.seal_draft, keys.unseal_draft)
        cases = CaseRepository(db, keys.seal, keys.unseal)
        for r in people:
            acknowledged = dict(r.acknowledged)
            checked += len(acknowledged)
            mine = await cases.for_user(r.user.id)
            if len(mine) > 1:
                problems.append(f"user {r.user.id}: {len(mine)} cases")
            case_data = await cases.data(mine[0].number) if mine else None
            draft = await drafts.get(r.user.id)
            if mine and draft is not None:
                problems.append(f"user {r.user.id}: a case and still a draft")
            answers = DraftState.from_json(draft.state).answers if draft else None
            problems += missing_acknowledged(r.user.id, acknowledged,
                                             stored_answers(case_data, answers))
            if final and case_data is not None and not (case_data.get("persons")
                                                        and case_data.get("consent")):
                problems.append(f"user {r.user.id}: case without persons or consent")
        for row in await db.fetchall(
                "SELECT c.number, (SELECT count(*) FROM case_events e WHERE e.case_id = c.case_id"
                " AND e.kind = 'submitted'), (SELECT count(*) FROM outbox o WHERE o.dedup_key ="
                " 'case:' || c.case_id || ':confirmation') FROM cases c"):
            if (row[1], row[2]) != (1, 1):
                problems.append(f"case {row[0]}: {row[1]} submitted events, {row[2]} "
                                "confirmations queued (half-written)")
    finally:
        await db.close()
    return problems, checked


@pytest.mark.timeout(3600 if KILLS > 10 else 300)
async def test_relatives_survive_sigkill(emulator: Emulator, tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    bot = BotProcess(emulator, data_dir, tmp_path / "bot.log")
    rng = random.Random(20261126)
    started = time.monotonic()
    await bot.start()
    await bot.wait_polling()
    # Slow enough readers that all the kills land while the journeys are still going.
    think = (0.3, 0.6) if KILLS <= 10 else (1.5, 3.0)
    people = [Relative(emulator, 40_000 + i, seed=1000 + i, kills=lambda: bot.kills,
                       think=think, patience=PATIENCE) for i in range(RELATIVES)]
    runs = [asyncio.create_task(r.run()) for r in people]
    problems: list[str] = []
    checked = 0
    early = 0
    try:
        for _ in range(KILLS):
            if all(t.done() for t in runs):
                break
            if rng.random() < EARLY_KILLS:
                early += not bot.polling()
                await asyncio.sleep(rng.uniform(0.0, 1.5))
            else:
                await bot.wait_polling()
                await asyncio.sleep(rng.uniform(0.2, 2.0))
            await bot.kill()
            await asyncio.sleep(0.3)  # relatives read whatever arrived before the kill
            found, n = await check_database(data_dir, people)
            problems += [f"after kill {bot.kills}: {p}" for p in found]
            checked += n
            await bot.start()
        await asyncio.wait_for(asyncio.gather(*runs), timeout=PATIENCE * 6)
        await emulator.wait_idle(quiet=0.5, timeout=60)
    finally:
        for t in runs:
            t.cancel()
        await asyncio.gather(*runs, return_exceptions=True)
        # The graceful stop is of a running bot: one started just now may still be importing
        # (SIGTERM before its handlers are installed ends it like a kill).
        with contextlib.suppress(AssertionError, TimeoutError):
            await bot.wait_polling()
        rc = await bot.stop()
    found, n = await check_database(data_dir, people, final=True)
    problems += [f"at the end: {p}" for p in found]
    tally = Tally.of(people)
    figures: dict[str, Any] = {
        "relatives": RELATIVES, "kills": bot.kills, "kills_during_startup": early,
        "starts": bot.starts, "seconds": round(time.monotonic() - started),
        "finished": tally.finished, "acknowledged_answers_checked": checked + n,
        "acknowledged_answers_lost": len([p for p in problems if "acknowledged" in p]),
        "confirmations": tally.confirmations,
        "duplicate_confirmations": tally.duplicate_confirmations,
        "problems": problems[:20] + tally.problems[:20], "relative_stats": dict(tally.stats),
        "bot_log_errors": bot.log_problems()[:20], "graceful_stop_rc": rc,
    }
    report("crash", figures)
    assert bot.kills >= min(KILLS, 1)
    assert problems == []
    assert tally.problems == []
    assert tally.finished == RELATIVES
    assert tally.confirmations - tally.duplicate_confirmations == RELATIVES
    # A kill between Telegram's answer and the outbox's mark may send one confirmation twice
    # (documented); it cannot happen more often than there are kills.
    assert tally.duplicate_confirmations <= bot.kills
    assert rc == 0
