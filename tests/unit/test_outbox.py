"""The outbox sender's rules that the end-to-end tests do not pin down: kind hooks run before
the outcome is recorded (so a crash repeats them, never skips them), reply markups of every
kind come back as they were queued, and a failing hook does not lose the message."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from telegram import ForceReply, InlineKeyboardButton, InlineKeyboardMarkup
from telegram.error import BadRequest, Forbidden, NetworkError

from bot.services.outbox import OutboxSender, _markup
from bot.storage.db import Database
from bot.storage.outbox import OutboxRepository, OutboxRow


class FakeBot:
    """send_message that fails with the queued errors, then answers with message ids."""

    def __init__(self, *errors: Exception) -> None:
        self.errors = list(errors)
        self.sent: list[dict[str, Any]] = []

    async def send_message(self, chat_id: int, text: str, **kwargs: Any) -> Any:
        if self.errors:
            raise self.errors.pop(0)
        self.sent.append({"chat_id": chat_id, "text": text, **kwargs})

        class Sent:
            message_id = 100 + len(self.sent)

        return Sent()


async def state_of(db: Database, outbox_id: int) -> tuple[str, int]:
    row = await db.fetchone("SELECT state, attempts FROM outbox WHERE outbox_id = ?",
                            (outbox_id,))
    assert row is not None
    return str(row[0]), int(row[1])


async def test_hooks_see_the_outcome_before_it_is_recorded(tmp_path: Path) -> None:
    db = await Database.open(tmp_path / "o.sqlite3")
    try:
        repo = OutboxRepository(db)
        seen: list[tuple[str, int | None, str, str | None]] = []

        async def hook(row: OutboxRow, outcome: str, message_id: int | None) -> None:
            state, _ = await state_of(db, row.outbox_id)
            seen.append((outcome, message_id, state, row.meta))

        meta = json.dumps({"question": 7})
        ok = await repo.enqueue(db, 1, "q", "HTML", ForceReply(selective=True).to_json(),
                                "staff_question", "question:7", meta)
        gone = await repo.enqueue(db, 2, "q", "HTML", None, "staff_question", "question:8")
        bad = await repo.enqueue(db, 3, "q", "HTML", None, "staff_question", "question:9")
        assert ok is not None and gone is not None and bad is not None
        bot = FakeBot(NetworkError("down"))
        sender = OutboxSender(bot, repo, on_outcome=hook)
        await sender.send_now(ok, timeout=5)  # the network fails: retried, no hook yet
        assert seen == [] and await state_of(db, ok) == ("pending", 1)
        await db.execute("UPDATE outbox SET next_attempt_at = 0")
        sender = OutboxSender(bot, repo, on_outcome=hook)  # as after a restart
        await sender.send_now(ok, timeout=5)
        bot.errors = [Forbidden("blocked"), BadRequest("Chat not found")]
        await sender.send_now(gone, timeout=5)
        await sender.send_now(bad, timeout=5)
        assert seen == [("sent", 101, "pending", meta), ("blocked", None, "pending", None),
                        ("failed", None, "pending", None)]
        assert [await state_of(db, i) for i in (ok, gone, bad)] == [
            ("sent", 2), ("blocked", 1), ("failed", 1)]
        assert isinstance(bot.sent[0]["reply_markup"], ForceReply)
        assert bot.sent[0]["reply_markup"].selective is True
    finally:
        await db.close()


async def test_a_failing_hook_does_not_lose_the_message(tmp_path: Path) -> None:
    db = await Database.open(tmp_path / "o.sqlite3")
    try:
        repo = OutboxRepository(db)

        async def hook(row: OutboxRow, outcome: str, message_id: int | None) -> None:
            raise RuntimeError("the hook's own bug")

        outbox_id = await repo.enqueue(db, 1, "notice", None, None, "status_notice", "n:1")
        assert outbox_id is not None
        bot = FakeBot()
        sender = OutboxSender(bot, repo, on_outcome=hook)
        await sender.send_now(outbox_id, timeout=5)
        assert await state_of(db, outbox_id) == ("sent", 1)
        assert len(bot.sent) == 1
        # Follow-ups run after; a stop waits for them.
        done = asyncio.Event()

        async def later() -> None:
            await asyncio.sleep(0.05)
            done.set()

        sender.follow_up(later())
        await sender.stop(grace=2)
        assert done.is_set()
    finally:
        await db.close()


def test_markups_come_back_as_queued() -> None:
    inline = InlineKeyboardMarkup([[InlineKeyboardButton("🧹", callback_data="cc:1:2")]])
    back = _markup(inline.to_json(), None)
    assert isinstance(back, InlineKeyboardMarkup) and back == inline
    assert _markup(None, None) is None
    assert isinstance(_markup(ForceReply().to_json(), None), ForceReply)
