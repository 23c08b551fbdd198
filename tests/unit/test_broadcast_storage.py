"""The broadcast queue against a real SQLite file, and the sender against a scripted bot."""

from __future__ import annotations

import asyncio
import itertools
import struct
import time
import warnings
import zlib
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter

from bot.i18n import translator
from bot.services import broadcast
from bot.services.broadcast import BroadcastSender, message_html, visible_length
from bot.services.chart import bar_chart_png
from bot.storage.broadcasts import Audience, BroadcastRepository, NewBroadcast, Outcome
from bot.storage.db import Database
from bot.storage.privacy import PrivacyRepository

NOW = "2026-11-26T12:00:00+00:00"


async def open_db(tmp_path: Path) -> Database:
    return await Database.open(tmp_path / "b.sqlite3")


async def add_user(db: Database, uid: int, lang: str | None, *, updates: bool = True,
                   active: bool = True, case_status: str | None = None) -> None:
    await db.execute(
        "INSERT INTO users (user_id, language, updates_enabled, active, created_at, last_seen_at)"
        " VALUES (?, ?, ?, ?, ?, ?)", (uid, lang, int(updates), int(active), NOW, NOW))
    if case_status is not None:
        await db.execute(
            "INSERT INTO cases (number, user_id, language, status, persons_count, notice_version,"
            " form_version, data, submitted_at, updated_at) VALUES (?, ?, ?, ?, 1, 1, 1, X'',"
            " ?, ?)", (f"9{uid:03d}-0000", uid, lang or "ru", case_status, NOW, NOW))


def news(audience: str = "all", **kw: Any) -> NewBroadcast:
    return NewBroadcast(audience=Audience.parse(audience), texts={"ru": "Привет", "en": "Hi"},
                        fallback="ru", **kw)


async def test_audiences_leave_out_those_who_turned_updates_off_or_blocked(
        tmp_path: Path) -> None:
    db = await open_db(tmp_path)
    await add_user(db, 1, "kk", case_status="new")
    await add_user(db, 2, "ru", case_status="closed")
    await add_user(db, 3, "en", case_status="in_review")
    await add_user(db, 4, None)  # never chose: counted with Russian readers
    await add_user(db, 5, "kk", updates=False, case_status="new")
    await add_user(db, 6, "en", active=False, case_status="new")
    repo = BroadcastRepository(db)
    assert await repo.audience_sizes(Audience.parse("all")) == {"kk": 1, "ru": 2, "en": 1}
    assert await repo.audience_sizes(Audience.parse("lang:ru")) == {"ru": 1}
    assert await repo.audience_sizes(Audience.parse("open-cases")) == {"kk": 1, "en": 1}
    assert await repo.audience_sizes(Audience.parse("status:closed")) == {"ru": 1}
    for wrong in ("everyone", "lang:de", "status:", "status:a'b", "lang"):
        with pytest.raises(ValueError):
            Audience.parse(wrong)
    await db.close()


async def test_queue_stores_every_recipient_in_one_transaction(tmp_path: Path) -> None:
    db = await open_db(tmp_path)
    for uid in range(1, 51):
        await add_user(db, uid, ("kk", "ru", "en")[uid % 3])
    repo = BroadcastRepository(db)
    await repo.save_draft(7, {"nonce": "abc", "step": "preview"}, NOW)
    assert await repo.queue(news(), NOW, draft=(7, "other")) is None  # not this draft
    queued = await repo.queue(news(), NOW, draft=(7, "abc"))
    assert queued == (1, 50)
    assert await repo.get_draft(7) is None
    assert await repo.queue(news(), NOW, draft=(7, "abc")) is None  # Send pressed twice
    b = await repo.get(1)
    assert b is not None and b.state == "queued" and b.total == 50
    assert b.text_for("kk") == "Привет" and b.text_for("en") == "Hi"
    assert await repo.counts(1) == {"pending": 50}
    languages = await db.fetchall(
        "SELECT language, count(*) FROM broadcast_recipients GROUP BY language")
    assert {r[0]: r[1] for r in languages} == {"kk": 16, "ru": 17, "en": 17}
    await db.close()


async def test_claim_record_retry_and_restart(tmp_path: Path) -> None:
    db = await open_db(tmp_path)
    for uid in range(1, 7):
        await add_user(db, uid, "en")
    repo = BroadcastRepository(db)
    await repo.queue(news(), NOW)
    await db.execute("UPDATE users SET updates_enabled = 0 WHERE user_id = 1")  # meanwhile
    claim = await repo.claim(1, [], 3, time.time())
    assert [r.user_id for r in claim.recipients] == [2, 3] and claim.skipped == 1
    future = time.time() + 60
    outcomes = [Outcome(2, "sent", 1, message_id=11),
                Outcome(3, "pending", 1, not_before=future, error="TimedOut: Timed out")]
    claim = await repo.claim(1, outcomes, 10, time.time())
    assert [r.user_id for r in claim.recipients] == [4, 5, 6]  # 3 waits for its back-off
    await repo.record(1, [Outcome(4, "blocked", 1, error="Forbidden: bot was blocked")])
    user4 = await db.fetchone("SELECT active FROM users WHERE user_id = 4")
    assert user4 is not None and user4[0] == 0
    # The process dies with 5 and 6 in flight: at the next start they go out again.
    assert await repo.requeue_in_flight() == 2
    assert (await repo.states_of(1)) == {1: "skipped", 2: "sent", 3: "pending", 4: "blocked",
                                         5: "pending", 6: "pending"}
    assert await repo.next_due(1) == pytest.approx(0.0)
    claim = await repo.claim(1, [], 10, future + 1)
    assert sorted(r.user_id for r in claim.recipients) == [3, 5, 6]
    assert next(r for r in claim.recipients if r.user_id == 3).attempts == 1
    await db.close()


async def test_cancel_closes_the_pending_rows(tmp_path: Path) -> None:
    db = await open_db(tmp_path)
    for uid in range(1, 5):
        await add_user(db, uid, "ru")
    repo = BroadcastRepository(db)
    await repo.queue(news(), NOW)
    await repo.claim(1, [], 1, time.time())
    assert await repo.cancel(1, NOW)
    assert not await repo.cancel(1, NOW)
    assert (await repo.claim(1, [], 10, time.time())).cancelled
    assert await repo.counts(1) == {"sending": 1, "cancelled": 3}
    assert await repo.requeue_in_flight() == 0  # not resent for a cancelled broadcast
    assert await repo.counts(1) == {"cancelled": 4}
    await db.close()


async def test_erasure_removes_the_relative_from_broadcasts(tmp_path: Path) -> None:
    db = await open_db(tmp_path)
    await add_user(db, 1, "kk")
    await add_user(db, 2, "kk")
    repo = BroadcastRepository(db)
    await repo.queue(news(), NOW)
    await PrivacyRepository(db).erase_user(1, NOW)
    assert await repo.states_of(1) == {2: "pending"}
    await db.close()


class ScriptedBot:
    """Answers send_message like Telegram would, following a script of failures per user."""

    def __init__(self, script: dict[int, list[Exception]]) -> None:
        self.script = script
        self.sent: list[tuple[int, float]] = []
        self.calls = 0

    async def send_message(self, chat_id: int, text: str, **kw: Any) -> Any:
        self.calls += 1
        await asyncio.sleep(0.005)
        failures = self.script.get(chat_id)
        if failures:
            raise failures.pop(0)
        self.sent.append((chat_id, time.monotonic()))
        return SimpleNamespace(message_id=len(self.sent), photo=())

    async def edit_message_text(self, *a: Any, **kw: Any) -> None:
        return None


async def test_sender_paces_retries_and_records(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(broadcast, "BACKOFF", (0.05, 0.05, 0.05, 0.05))
    db = await open_db(tmp_path)
    for uid in range(1, 41):
        await add_user(db, uid, "en")
    repo = BroadcastRepository(db)
    await repo.queue(news(), NOW)
    with warnings.catch_warnings():  # PTB 22 warns about int becoming timedelta
        warnings.simplefilter("ignore")
        retry_after_1 = RetryAfter(1)
    bot = ScriptedBot({
        3: [Forbidden("Forbidden: bot was blocked by the user")],
        4: [BadRequest("Bad Request: chat not found")],
        5: [NetworkError("Bad Gateway"), NetworkError("Bad Gateway")],  # then fine
        6: [NetworkError("Bad Gateway")] * broadcast.MAX_ATTEMPTS,  # never
        7: [retry_after_1],  # everybody waits a second, then 7 goes first
    })
    sender = BroadcastSender(bot, db, rate=100.0, allow_over_cap=True)
    started = time.monotonic()
    sender.start()
    deadline = time.monotonic() + 10
    while (b := await repo.get(1)) is not None and b.state != "done":
        assert time.monotonic() < deadline
        await asyncio.sleep(0.05)
    await sender.stop()
    elapsed = time.monotonic() - started
    states = await repo.states_of(1)
    assert states[3] == "blocked" and states[4] == "failed" and states[6] == "failed"
    assert states[5] == "sent" and states[7] == "sent"
    assert sum(s == "sent" for s in states.values()) == 37
    assert sorted(uid for uid, _ in bot.sent) == sorted(
        uid for uid, s in states.items() if s == "sent")  # each exactly once
    assert elapsed >= 1.0  # the 429's retry_after held everyone back
    stamps = sorted(at for _, at in bot.sent)
    gaps = [b - a for a, b in itertools.pairwise(stamps)]
    assert sorted(gaps)[len(gaps) // 2] >= 0.008  # about 1/100 s apart, no bursts
    reasons = dict(await repo.failure_reasons(1))
    assert reasons == {"BadRequest: Chat not found": 1, "NetworkError: Bad Gateway": 1}
    row = await db.fetchone("SELECT attempts FROM broadcast_recipients WHERE user_id = 6")
    assert row is not None and row[0] == broadcast.MAX_ATTEMPTS
    await db.close()


async def test_rate_is_capped_and_messages_carry_the_opt_out() -> None:
    with pytest.raises(ValueError):
        BroadcastSender(object(), object(), rate=31)  # type: ignore[arg-type]
    assert broadcast.configured_rate(SimpleNamespace(broadcast_rate=50)) == 30
    assert broadcast.configured_rate(SimpleNamespace()) == 25
    html = message_html({"ru": "<b>Встреча</b> &amp; чай"}, "ru", "kk")
    # The opt-out is a button under the message now; the footer points to it, in Kazakh here.
    footer = translator("kk")._(broadcast.FOOTER)
    assert footer != broadcast.FOOTER  # translated
    assert html == f"<b>Встреча</b> &amp; чай\n\n<i>{footer}</i>"
    assert visible_length("<b>ab</b> &amp; 😀") == len("ab & ") + 2


def test_bar_chart_is_a_valid_png() -> None:
    png = bar_chart_png([0, 3, 12, 5], ["01.01", "08.01", "15.01", "22.01"],
                        width=200, height=100)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert struct.unpack(">II", png[16:24]) == (200, 100)
    raw = zlib.decompress(png[png.index(b"IDAT") + 4: png.index(b"IEND") - 8])
    assert len(raw) == 100 * (1 + 200 * 3)
    rows = [raw[y * 601 + 1:(y + 1) * 601] for y in range(100)]
    bar = (46, 104, 168)
    assert any(bytes(bar) in row for row in rows)
    with pytest.raises(ValueError):
        bar_chart_png([1], [])
