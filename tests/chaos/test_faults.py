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

from bot.errors import ErrorReport
from bot.form.engine import DraftState
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


# ----------------------------------------------------------------------------- cosmetic edits


@pytest.mark.parametrize("kind", ["500", "slow"])
async def test_a_failed_edit_of_old_buttons_does_not_refuse_the_next_answer(
        emulator: Emulator, tmp_path: Path, kind: str) -> None:
    """Taking the buttons off the previous question is cosmetic: when Telegram fails that edit
    (an error, or an answer later than the bot waits), the new question still counts as shown
    and the relative's next press on it is taken as its answer, not refused as stale."""
    bot = BotRunner(emulator, tmp_path / "data")
    await bot.start()
    try:
        relative = Relative(emulator, 31_010, seed=11, think=(0.0, 0.05))
        await relative.run(until="question")
        typed = 0
        while relative.screen().kind in ("question", "confirm_id") and typed < 3:
            screen = relative.screen()
            if screen.kind != "question" or relative.plan[screen.qid].action != "text":
                await relative._act(screen)
                continue
            # Typed: the old question keeps its Skip button, which an edit takes off, and
            # Telegram fails that edit. Then a press on the new question must be applied.
            emulator.set_faults(1.0, kinds=(kind,), methods={"editMessageReplyMarkup"},
                                slow_seconds=6.0)
            await relative._act(screen)
            typed += 1
            after = relative.screen()
            assert after.seq > screen.seq, "the typed answer was not taken"
            draft = await bot.d.drafts.get(relative.user.id)
            assert draft is not None and draft.shown_seq == after.seq
            if after.kind == "question" and relative.plan[after.qid].action in (
                    "opt", "skip", "unknown"):
                await relative._act(after)
                pressed = await bot.d.drafts.get(relative.user.id)
                assert pressed is not None and pressed.seq > draft.seq  # the press was applied
            emulator.set_faults(0)
        assert typed == 3
        assert emulator.faults_injected[kind] >= 3
        assert relative.stats["stale_buttons"] == 0
        if kind == "500":  # old questions kept their buttons: the edits did fail
            assert sum(1 for m in relative.user.messages if m.buttons and not m.deleted) >= 3
        await relative.run()
        assert relative.number is not None and relative.problems == []
        assert relative.stats["stale_buttons"] == 0
        assert len(relative.confirmations()) == 1
    finally:
        emulator.set_faults(0)
        await bot.stop()


async def test_a_failed_toggle_edit_still_leaves_a_live_question(emulator: Emulator,
                                                                 tmp_path: Path) -> None:
    bot = BotRunner(emulator, tmp_path / "data")
    await bot.start()
    try:
        relative = Relative(emulator, 31_011, seed=11, think=(0.0, 0.05), patience=15)
        await relative.run(until="question")
        while relative.plan[relative.screen().qid].action != "multi":
            assert relative.screen().kind in ("question", "confirm_id")
            await relative._act(relative.screen())
        screen = relative.screen()
        emulator.set_faults(1.0, kinds=("500",), methods={"editMessageReplyMarkup"})
        await relative._act(screen)  # one toggle
        emulator.set_faults(0)
        draft = await bot.d.drafts.get(relative.user.id)
        assert draft is not None and draft.seq > screen.seq  # the toggle was saved...
        assert draft.shown_seq == draft.seq  # ...and a question with it is on screen
        assert relative.screen().seq == draft.seq
    finally:
        emulator.set_faults(0)
        await bot.stop()


# ----------------------------------------------------------------------------- error report


async def test_the_error_handler_reports_a_failing_handler_once(
        emulator: Emulator, tmp_path: Path, caplog: pytest.LogCaptureFixture,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A real update, a real handler failing (the database refusing, say) with personal data in
    the exception: reported once with the update type, the handler and the exception, without
    the data; identical failures are counted, and logged again only at 10, 100..."""
    bot = BotRunner(emulator, tmp_path / "data")
    await bot.start()
    try:
        relative = Relative(emulator, 31_020, seed=12, think=(0.0, 0.05))
        await relative.run(until="question")
        secret = "Гүлжан Тохтасынқызы +77011234567"

        async def broken(user_id: int) -> Any:
            raise ValueError(f"cannot read the draft of {user_id}: {secret}")

        monkeypatch.setattr(bot.d.drafts, "get", broken)
        with caplog.at_level(logging.INFO):
            for i in range(12):  # the bot cannot answer: nothing to wait for but the report
                await relative.user.send_text(f"{secret} {i}", wait=False)
                deadline = time.monotonic() + 20
                while bot.app.bot_data.errors.total <= i:
                    assert time.monotonic() < deadline, "the failure was not reported"
                    await asyncio.sleep(0.02)
            await emulator.wait_idle(quiet=0.3)
        report_ = bot.app.bot_data.errors
        assert report_.total == 12 and len(report_.counts) == 1
        (kind, handler, error, where), = report_.counts
        # The first handler to read the draft: the staff answers' (app.py's ANSWER_GROUP).
        assert (kind, handler, error) == ("message:text private", "on_relative_message",
                                          "builtins.ValueError")
        assert where.startswith("bot/")
        errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
        assert len(errors) == 2, errors  # the first, and the 10th with the count
        assert "message:text private" in errors[0] and "handler on_relative_message" in errors[0]
        assert "builtins.ValueError" in errors[0] and "10 times so far" in errors[1]
        everything = "\n".join(r.getMessage() for r in caplog.records)
        for personal in ("Гүлжан", "+7701", str(relative.user.id)):
            assert personal not in everything
    finally:
        await bot.stop()


# ----------------------------------------------------------------------------- error report (unit)


def test_error_report_counts_repeats_and_keeps_personal_data_out(
        caplog: pytest.LogCaptureFixture) -> None:
    report_ = ErrorReport()

    def fail(secret: str) -> BaseException:
        try:
            raise ValueError(f"could not parse {secret}")
        except ValueError as exc:
            return exc

    with caplog.at_level(logging.ERROR, logger="bot.errors"):
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


# ----------------------------------------------------------------------------- no double questions


async def _at_text_question(emulator: Emulator, bot: BotRunner, user_id: int, seed: int
                            ) -> Relative:
    relative = Relative(emulator, user_id, seed=seed, think=(0.0, 0.05), patience=20)
    await relative.run(until="question")
    while not (relative.screen().kind == "question"
               and relative.plan[relative.screen().qid].action == "text"
               and relative.screen().qid != "chinese_id"):
        await relative._act(relative.screen())
    return relative


def _question_copies(relative: Relative, seq: int) -> list[int]:
    return [m.message_id for m in relative.user.messages
            if not m.deleted and any(d and d.startswith(f"f:{seq}:") for row in m.buttons
                                     for _, d in row)]


async def test_a_question_lost_on_the_way_comes_once_a_little_later(
        emulator: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A dropped connection may or may not have delivered the next question: it is not sent
    again at once (a late second copy makes people answer twice), but a little later, once."""
    monkeypatch.setattr("bot.handlers.relative.journey.RESEND_AFTER", (3.0, 2.0))
    bot = FaultyBotRunner(emulator, tmp_path / "data")
    await bot.start()
    try:
        relative = await _at_text_question(emulator, bot, 31_030, seed=13)
        before = relative.screen()
        emulator.set_faults(1.0, kinds=("drop",), methods={"sendMessage"})
        await relative.user.send_text(relative.plan[before.qid].arg, wait=False)
        for _ in range(200):
            if emulator.faults_injected["drop"]:
                break
            await asyncio.sleep(0.01)
        emulator.set_faults(0)
        draft = await bot.d.drafts.get(relative.user.id)
        assert draft is not None and draft.seq > before.seq  # the answer is kept
        assert draft.shown_seq < draft.seq  # ...but the next question is not on screen
        await asyncio.sleep(2.0)  # an immediate retry would have come after at most 0.63 s
        assert _question_copies(relative, draft.seq) == []  # not repeated at once
        deadline = time.monotonic() + 10
        while not _question_copies(relative, draft.seq):
            assert time.monotonic() < deadline, "the question never came"
            await asyncio.sleep(0.05)
        await asyncio.sleep(2.5)  # past the second try: it must not come again
        assert len(_question_copies(relative, draft.seq)) == 1
        after = await bot.d.drafts.get(relative.user.id)
        assert after is not None and after.shown_seq == after.seq
    finally:
        emulator.set_faults(0)
        await bot.stop()


async def test_an_answer_to_a_question_not_known_to_be_shown_is_not_taken_for_the_next(
        emulator: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The next question timed out on the way but arrived (late). What the relative types
    then cannot be known to answer it: it brings the question back instead of being stored
    under it, and the answer typed to that goes where it belongs."""
    monkeypatch.setattr("bot.handlers.relative.journey.RESEND_AFTER", (30.0,))
    bot = FaultyBotRunner(emulator, tmp_path / "data")
    await bot.start()
    try:
        relative = await _at_text_question(emulator, bot, 31_031, seed=14)
        first = relative.screen()
        # The answer's next question: Telegram takes it only after the bot stopped waiting.
        emulator.set_faults(1.0, kinds=("slow",), methods={"sendMessage"}, slow_seconds=6.0)
        await relative.user.send_text(relative.plan[first.qid].arg, wait=False)
        deadline = time.monotonic() + 15
        while relative.screen().seq <= first.seq:
            assert time.monotonic() < deadline, "the late question never arrived"
            await asyncio.sleep(0.05)
        emulator.set_faults(0)
        second = relative.screen()
        assert second.kind == "question" and second.qid != first.qid
        draft = await bot.d.drafts.get(relative.user.id)
        assert draft is not None and draft.shown_seq < draft.seq  # not known to be shown
        messages = len(relative.user.messages)
        await relative.user.send_text("typed at the late question")
        assert len(_question_copies(relative, second.seq)) == 2  # shown again, now recorded
        assert len(relative.user.messages) > messages
        draft = await bot.d.drafts.get(relative.user.id)
        assert draft is not None and draft.shown_seq == draft.seq == second.seq
        stored = DraftState.from_json(draft.state).answers.get(second.block, {})
        assert second.qid not in stored  # the text was not taken as the answer
    finally:
        emulator.set_faults(0)
        await bot.stop()
