"""A flaky Telegram: relatives still get every next question and exactly one confirmation.

The emulator fails 10 % of all calls (429 with retry_after, 500, 502, dropped connections,
answers slower than the client waits). The bot runs with the production rate limiter
(AIORateLimiter for 429s plus retries of transient failures) and the outbox for confirmations.
Also here: the outbox's own rules (403, 400, 429, outages across restarts) and the error
report's counting.
"""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path
from typing import Any

import pytest

from bot.app import ErrorReport
from bot.sandbox.emulator import Emulator
from bot.services.outbox import outbox_repository, wake_outbox
from bot.storage.outbox import BLOCKED, FAILED, SENT
from tests.chaos.conftest import (
    ErrorSpy,
    FaultyBotRunner,
    Relative,
    Tally,
    missing_acknowledged,
    report,
    scale,
    stored_answers,
)
from tests.e2e.conftest import BotRunner

pytestmark = pytest.mark.chaos

RELATIVES = scale(6, 50)
FAULT_RATE = 0.10
# Past the client's patience: PTB waits 5 s for an answer (getUpdates: 5 s plus the 1 s long
# poll), so these calls time out on the bot's side and are then carried out anyway.
SLOW_SECONDS = 6.5
# The longest a relative may wait for the bot's answer: the retries of one call take at most
# about 5 attempts x 5 s plus 7.5 s of back-off, and a 429 pauses every call for a second.
PATIENCE = 60.0


@pytest.mark.timeout(1800 if RELATIVES > 10 else 300)
async def test_relatives_get_through_a_flaky_telegram(emulator: Emulator, tmp_path: Path,
                                                      error_spy: ErrorSpy) -> None:
    bot = FaultyBotRunner(emulator, tmp_path / "data")
    await bot.start()
    started = time.monotonic()
    try:
        emulator.set_faults(FAULT_RATE, seed=20261126, slow_seconds=SLOW_SECONDS)
        people = [Relative(emulator, 30_000 + i, seed=i, think=(0.1, 0.3), patience=PATIENCE)
                  for i in range(RELATIVES)]
        await asyncio.gather(*(r.run() for r in people))
        # Still polling, with faults still on: a newcomer gets an answer.
        newcomer = emulator.user(39_999, language_code="en")
        await newcomer.send_text("/start", timeout=PATIENCE)
        assert "Choose your language" in newcomer.last.plain
        assert bot.app.updater.running
        emulator.set_faults(0)
        await emulator.wait_idle(quiet=0.5, timeout=60)

        d = bot.d
        tally = Tally.of(people)
        cases = await d.db.fetchall("SELECT case_id, number, user_id FROM cases")
        by_user: dict[int, list[str]] = {}
        for row in cases:
            by_user.setdefault(int(row["user_id"]), []).append(str(row["number"]))
        lost, wrong = [], []
        for r in people:
            numbers = by_user.get(r.user.id, [])
            shown = r.confirmations()
            lost += [n for n in numbers if n not in shown]
            case = await d.cases.data(numbers[0]) if numbers else None
            wrong += missing_acknowledged(r.user.id, r.acknowledged, stored_answers(case, None))
        outbox = await outbox_repository(d).counts()
        figures: dict[str, Any] = {
            "relatives": RELATIVES, "finished": tally.finished, "seconds": round(
                time.monotonic() - started), "calls": len(emulator.calls),
            "faults_injected": dict(emulator.faults_injected),
            "faults_total": sum(emulator.faults_injected.values()),
            "cases": len(cases), "confirmations": tally.confirmations,
            "confirmations_lost": len(lost), "duplicate_confirmations":
                tally.duplicate_confirmations, "outbox": outbox,
            "left_waiting": tally.stats["stuck"], "slowest_answer_s": round(
                tally.slowest_answer, 1), "acknowledged_not_stored": len(wrong),
            "retries": dict(bot.app.bot.rate_limiter.retried),
            "bot_errors": [ln for ln in error_spy.lines() if ln.startswith("bot")],
            "library_errors": len([ln for ln in error_spy.lines() if not ln.startswith("bot")]),
            "relative_stats": dict(tally.stats),
        }
        report("faults", figures)
        assert sum(emulator.faults_injected.values()) > 0
        assert tally.problems == []
        assert tally.finished == RELATIVES
        assert len(cases) == RELATIVES  # one each, none twice
        assert lost == []
        assert tally.duplicate_confirmations == 0
        assert outbox == {"pending": 0, "sent": RELATIVES, "blocked": 0, "failed": 0}
        assert wrong == []
        assert figures["bot_errors"] == []
    finally:
        emulator.set_faults(0)
        await bot.stop()


# ----------------------------------------------------------------------------- the outbox


async def wait_state(bot: BotRunner, key: str, state: str, timeout: float = 20.0) -> None:
    repo = outbox_repository(bot.d)
    deadline = time.monotonic() + timeout
    while (found := await repo.state_of(key)) != state:
        assert time.monotonic() < deadline, f"{key} is {found}, not {state}"
        await asyncio.sleep(0.05)


async def test_confirmation_waits_out_an_outage_and_a_restart(emulator: Emulator,
                                                              tmp_path: Path) -> None:
    bot = BotRunner(emulator, tmp_path / "data")
    await bot.start()
    try:
        relative = Relative(emulator, 31_001, seed=7, think=(0.0, 0.05))
        await relative.run(until="review")
        emulator.set_faults(1.0, kinds=("500",), methods={"sendMessage"})  # Telegram is down
        review = relative.screen().message
        assert review is not None
        await relative.user.press_data(relative._data(review, "submit"), review.message_id)
        await emulator.wait_idle(quiet=0.3)
        rows = await bot.d.db.fetchall("SELECT case_id FROM cases WHERE user_id = ?",
                                       (relative.user.id,))
        assert len(rows) == 1  # the case is stored...
        key = f"case:{rows[0][0]}:confirmation"
        assert await outbox_repository(bot.d).state_of(key) == "pending"  # ...its confirmation too
        assert relative.confirmations() == []
        await bot.restart()  # still down after the restart
        await asyncio.sleep(1.5)
        assert relative.confirmations() == []
        emulator.set_faults(0)  # back up: the confirmation arrives, once
        await wait_state(bot, key, SENT, timeout=30)
        await emulator.wait_idle(quiet=0.3)
        assert len(relative.confirmations()) == 1
        attempts = await bot.d.db.fetchone("SELECT attempts, text FROM outbox WHERE dedup_key = ?",
                                           (key,))
        assert attempts is not None and attempts[0] >= 2
        assert bytes(attempts[1]) == b""  # the text is not kept once sent
        await bot.restart()  # and never again after that
        await asyncio.sleep(0.5)
        assert len(relative.confirmations()) == 1
    finally:
        emulator.set_faults(0)
        await bot.stop()


async def test_outbox_gives_up_on_403_and_400_and_waits_out_429(emulator: Emulator,
                                                                tmp_path: Path) -> None:
    bot = BotRunner(emulator, tmp_path / "data")
    await bot.start()
    try:
        repo = outbox_repository(bot.d)
        blocked, fine = emulator.user(31_002), emulator.user(31_003)
        for user in (blocked, fine):
            await user.send_text("/start")
            await user.press("English")
        blocked.block()
        await repo.enqueue(bot.d.db, blocked.id, "<b>Status</b>", "HTML", None, "status_notice",
                           "t:blocked")
        await repo.enqueue(bot.d.db, fine.id, "x" * 5000, None, None, "status_notice", "t:long")
        await repo.enqueue(bot.d.db, fine.id, "<b>unclosed", "HTML", None, "status_notice",
                           "t:html")
        wake_outbox(bot.app)
        await wait_state(bot, "t:blocked", BLOCKED)
        user_row = await bot.d.users.get(blocked.id)
        assert user_row is not None and not user_row.active  # not asked again
        await wait_state(bot, "t:long", FAILED)
        await wait_state(bot, "t:html", FAILED)
        errors = await bot.d.db.fetchall(
            "SELECT last_error FROM outbox WHERE state = 'failed' ORDER BY outbox_id")
        assert [str(e[0]) for e in errors] == [
            "BadRequest: Message is too long",
            "BadRequest: Can't parse entities: can't find end tag corresponding to start tag \"b\"",
        ]

        emulator.set_faults(1.0, kinds=("429",), methods={"sendMessage"})
        await repo.enqueue(bot.d.db, fine.id, "After the flood", None, None, "status_notice",
                           "t:429")
        # A second row for the same chat waits behind the first: order is kept.
        await repo.enqueue(bot.d.db, fine.id, "Second", None, None, "status_notice", "t:2nd")
        wake_outbox(bot.app)
        await asyncio.sleep(1.0)
        assert await repo.state_of("t:429") == "pending"
        emulator.set_faults(0)
        await wait_state(bot, "t:2nd", SENT)
        texts = [m.plain for m in fine.messages]
        assert texts[-2:] == ["After the flood", "Second"]
        # Enqueued twice under one key: one row, one message.
        assert await repo.enqueue(bot.d.db, fine.id, "Again", None, None, "status_notice",
                                  "t:2nd") is None
    finally:
        emulator.set_faults(0)
        await bot.stop()


async def test_enqueue_rolls_back_with_the_transaction(emulator: Emulator,
                                                        tmp_path: Path) -> None:
    bot = BotRunner(emulator, tmp_path / "data")
    await bot.start()
    try:
        repo = outbox_repository(bot.d)
        with pytest.raises(RuntimeError):
            async with bot.d.db.transaction() as conn:
                await repo.enqueue(conn, 1, "never", None, None, "case_confirmation", "t:rb")
                raise RuntimeError("the case could not be stored")
        assert await repo.state_of("t:rb") is None
    finally:
        await bot.stop()


# ----------------------------------------------------------------------------- error report


def test_error_report_counts_repeats_and_keeps_personal_data_out(
        caplog: pytest.LogCaptureFixture) -> None:
    report_ = ErrorReport()

    def fail(secret: str) -> BaseException:
        try:
            raise ValueError(f"could not parse {secret}")
        except ValueError as exc:
            return exc

    with caplog.at_level(logging.ERROR, logger="bot.app"):
        for i in range(25):
            report_.record(None, fail(f"Гүлжан +7701{i:07d}"))
        report_.record(None, KeyError("other"))
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 3, lines  # the first, the 10th, and the first of another kind
    assert "builtins.ValueError" in lines[0] and "test_faults.py" in lines[0]
    assert "10 times so far" in lines[1]
    assert "builtins.KeyError" in lines[2]
    assert not any("Гүлжан" in ln or "+7701" in ln for ln in lines)
    assert report_.total == 26
