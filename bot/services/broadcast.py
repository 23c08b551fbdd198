"""The durable broadcast sender: sends queued broadcasts at a steady rate, surviving restarts.

One task per bot process. It takes the oldest queued broadcast and, in small batches, marks
recipients 'sending', hands their messages to Telegram at most `rate` per second (several
calls in flight, so Telegram's latency does not slow it down), and records each outcome:
sent; blocked (403: the relative is marked inactive, never retried); failed after retries with
back-off (the error class and Telegram's description are kept, nothing personal). A 429 pauses
every send for Telegram's retry_after and the message is tried again.

Relatives keep priority: the default rate (25/s) stays under Telegram's ~30/s, and the sender
slows down further when many updates come in, so that replies to relatives have room; it never
holds the database lock across a network call.

Life cycle (see `start_background` / `stop_background`): start after `app.start()`, stop
before `app.stop()`. A graceful stop finishes the messages in flight and puts the rest back;
a crash leaves at most one batch 'sending', and those are sent again at the next start.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import logging
import re
import time
import traceback
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from babel.dates import format_timedelta
from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Message
from telegram.error import BadRequest, Forbidden, RetryAfter, TelegramError

from bot.context import AnyApp, bot_data
from bot.errors import telegram_noise
from bot.i18n import N_, Translator, translator
from bot.storage.broadcasts import (
    Broadcast,
    BroadcastRepository,
    Outcome,
    Recipient,
    RecipientState,
)
from bot.storage.db import Database
from bot.telegram.errors import error_reason as error_reason
from bot.telegram.errors import retry_seconds as retry_seconds

log = logging.getLogger(__name__)

TELEGRAM_CAP = 30.0  # messages per second Telegram allows a bot overall
DEFAULT_RATE = 25.0  # leaves 5/s for replies to relatives
MIN_RATE = 2.0  # the least the broadcast keeps while relatives are very busy
RESERVE_PER_UPDATE = 2.0  # sends kept free per incoming update per second (reply + edit)
MAX_IN_FLIGHT = 16  # concurrent calls: well under the bot's 64 HTTP connections
BATCH_SECONDS = 0.25  # a batch is this much sending: at most this many are 'sending' at once
FLUSH_EVERY = 0.5  # outcomes are written at least this often
PROGRESS_EVERY = 3.0  # the admin's progress message is edited this often
POLL_SECONDS = 2.0  # an idle sender looks for broadcasts queued from the command line
MAX_ATTEMPTS = 5
BACKOFF = (2.0, 8.0, 30.0, 120.0)  # seconds before the 2nd, 3rd, 4th and 5th attempt
STOP_TIMEOUT = 5.0


FOOTER = N_("To stop receiving news from us, press the button below.")
STOP_NEWS_BUTTON = N_("Stop receiving news")
CANCEL_BUTTON = N_("Stop sending")


# ----------------------------------------------------------------------------- messages


def message_html(texts: Mapping[str, str], fallback: str, language: str) -> str:
    """The message a language group receives: its text (or the fallback's) and how to opt out."""
    body = texts.get(language) or texts[fallback]
    return f"{body}\n\n<i>{translator(language)._(FOOTER)}</i>"


_TAG = re.compile(r"<[^>]+>")


def visible_text(text_html: str) -> str:
    """An HTML message as Telegram shows it, without its formatting."""
    return html.unescape(_TAG.sub("", text_html))


def visible_length(text_html: str) -> int:
    """Length of an HTML message as Telegram counts it (UTF-16 units, tags removed)."""
    return len(visible_text(text_html).encode("utf-16-le")) // 2


def configured_rate(settings: Any) -> float:
    """BOT_BROADCAST_RATE when the settings have it, else 25/s; never above Telegram's 30/s."""
    rate = float(getattr(settings, "broadcast_rate", DEFAULT_RATE) or DEFAULT_RATE)
    return max(0.1, min(rate, TELEGRAM_CAP))


def _where(exc: BaseException) -> str:
    frames = traceback.extract_tb(exc.__traceback__)
    return f"{frames[-1].filename}:{frames[-1].lineno}" if frames else "?"


# ----------------------------------------------------------------------------- progress


@dataclass(frozen=True, slots=True)
class Tally:
    """Recipients of one broadcast by what became of them."""

    sent: int = 0
    blocked: int = 0
    failed: int = 0
    skipped: int = 0
    cancelled: int = 0
    remaining: int = 0

    @classmethod
    def of(cls, counts: Mapping[str, int]) -> Tally:
        return cls(sent=counts.get("sent", 0), blocked=counts.get("blocked", 0),
                   failed=counts.get("failed", 0), skipped=counts.get("skipped", 0),
                   cancelled=counts.get("cancelled", 0),
                   remaining=counts.get("pending", 0) + counts.get("sending", 0))

    @property
    def done(self) -> int:
        return self.sent + self.blocked + self.failed + self.skipped


def _duration(t: Translator, seconds: float) -> str:
    return format_timedelta(timedelta(seconds=max(1, round(seconds))), locale=t.locale,
                            threshold=1.1)


def progress_text(t: Translator, broadcast_id: int, tally: Tally, eta: float | None) -> str:
    n = t.format_number
    lines = [
        t._("📣 <b>Broadcast #%(id)s</b>: sending") % {"id": broadcast_id},
        t._("Sent: %(n)s") % {"n": n(tally.sent)},
        t._("Blocked the bot: %(n)s") % {"n": n(tally.blocked)},
        t._("Failed: %(n)s") % {"n": n(tally.failed)},
        t._("Remaining: %(n)s") % {"n": n(tally.remaining)},
    ]
    if eta is not None and tally.remaining:
        lines.append(t._("Time left: about %(time)s") % {"time": _duration(t, eta)})
    return "\n".join(lines)


def report_text(t: Translator, broadcast_id: int, tally: Tally, seconds: float,
                cancelled: bool, reasons: list[tuple[str, int]]) -> str:
    n = t.format_number
    head = (t._("📣 <b>Broadcast #%(id)s was stopped</b> after %(time)s.") if cancelled
            else t._("📣 <b>Broadcast #%(id)s is finished</b> after %(time)s."))
    lines = [
        head % {"id": broadcast_id, "time": _duration(t, seconds)},
        t._("Sent: %(n)s") % {"n": n(tally.sent)},
        t._("Blocked the bot: %(n)s (marked inactive, they will not be sent news again)")
        % {"n": n(tally.blocked)},
        t._("Failed: %(n)s") % {"n": n(tally.failed)},
    ]
    if tally.skipped:
        lines.append(t._("Turned updates off meanwhile: %(n)s") % {"n": n(tally.skipped)})
    if cancelled:
        lines.append(t._("Not sent because of the stop: %(n)s")
                     % {"n": n(tally.cancelled + tally.remaining)})
    if reasons:
        lines.append(t._("Why sending failed:"))
        lines.extend(f"• <code>{html.escape(reason, quote=False)}</code>: {n(count)}"
                     for reason, count in reasons)
    return "\n".join(lines)


def stop_keyboard(t: Translator, broadcast_id: int) -> InlineKeyboardMarkup:
    label = "⏹ " + t._(CANCEL_BUTTON)
    return InlineKeyboardMarkup(
        [[InlineKeyboardButton(label, callback_data=f"bc:-:stop:{broadcast_id}")]])


# ----------------------------------------------------------------------------- activity


class ActivityMeter:
    """Incoming updates per second over the last few seconds: how busy relatives keep the bot."""

    def __init__(self, window: float = 2.0) -> None:
        self.window = window
        self._stamps: deque[float] = deque()

    def note(self, now: float) -> None:
        self._stamps.append(now)
        self._trim(now)

    def per_second(self, now: float) -> float:
        self._trim(now)
        return len(self._stamps) / self.window

    def _trim(self, now: float) -> None:
        while self._stamps and self._stamps[0] <= now - self.window:
            self._stamps.popleft()

    async def __call__(self, update: object, context: Any) -> None:
        self.note(time.monotonic())


# ----------------------------------------------------------------------------- the sender


class BroadcastSender:
    """Sends queued broadcasts one after another; one instance per bot process."""

    def __init__(self, bot: Any, db: Database, *, rate: float = DEFAULT_RATE,
                 meter: ActivityMeter | None = None, max_in_flight: int = MAX_IN_FLIGHT,
                 progress_every: float = PROGRESS_EVERY, allow_over_cap: bool = False) -> None:
        if rate <= 0 or (rate > TELEGRAM_CAP and not allow_over_cap):
            raise ValueError(f"the broadcast rate must be above 0 and at most {TELEGRAM_CAP:g}")
        self.bot = bot
        self.repo = BroadcastRepository(db)
        self.rate = rate
        self.meter = meter
        self.progress_every = progress_every
        self.current: int | None = None
        self.resent_at_start = 0
        self._slots = asyncio.Semaphore(max_in_flight)
        self._wake = asyncio.Event()
        self._stopping = False
        self._cancelled: set[int] = set()
        self._outcomes: list[Outcome] = []
        self._next_start = 0.0
        self._pause_until = 0.0
        self._task: asyncio.Task[None] | None = None

    # -- life cycle --------------------------------------------------------------------

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="broadcast-sender")

    def wake(self) -> None:
        """A broadcast was queued or cancelled: look now instead of at the next poll."""
        self._wake.set()

    async def stop(self, *, graceful: bool = True, timeout: float = STOP_TIMEOUT) -> None:
        """Graceful: let the calls in flight finish and put the rest back; else as a crash."""
        task, self._task = self._task, None
        if task is None or task.done():
            return
        if graceful:
            self._stopping = True
            self._wake.set()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(task), timeout)
        if not task.done():
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    async def cancel(self, broadcast_id: int) -> bool:
        """Stop a broadcast: nobody still pending gets it; the calls in flight finish."""
        done = await self.repo.cancel(broadcast_id, _now())
        if done:
            self._cancelled.add(broadcast_id)
            self._wake.set()
        return done

    # -- the loop ----------------------------------------------------------------------

    async def _run(self) -> None:
        self.resent_at_start = await self.repo.requeue_in_flight()
        if self.resent_at_start:
            log.info("broadcast: %d messages in flight at the last stop are sent again",
                     self.resent_at_start)
        while not self._stopping:
            try:
                self._wake.clear()  # before looking: a wake-up during the query is kept
                active = await self.repo.active()
                if not active:
                    await self._idle(POLL_SECONDS)
                    continue
                await self._send_broadcast(active[0])
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a bug or a database error: log, wait, go on
                log.error("broadcast sender failed: %s at %s", type(exc).__name__, _where(exc))
                self._outcomes = []
                await asyncio.sleep(5.0)
                await self.repo.requeue_in_flight()

    async def _idle(self, seconds: float) -> None:
        """Sleep until woken (queued, cancelled, stopping) or for `seconds`."""
        if self._stopping:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), seconds)

    def effective_rate(self) -> float:
        """The configured rate, lowered while relatives keep the bot busy."""
        if self.meter is None:
            return self.rate
        busy = self.meter.per_second(time.monotonic())
        room = TELEGRAM_CAP - RESERVE_PER_UPDATE * busy
        return max(min(MIN_RATE, self.rate), min(self.rate, room))

    async def _pace(self) -> None:
        """Wait for this send's turn: evenly spaced starts, never a burst to catch up.

        Starts keep to a grid of 1/rate steps (so timer overshoot does not slow the rate); a
        start later than one step behind the grid (a stall) restarts the grid from now, so at
        most rate + 2 calls start in any second.
        """
        while True:
            now = time.monotonic()
            due = max(self._next_start, self._pause_until)
            if due <= now:
                interval = 1.0 / self.effective_rate()
                self._next_start = (due if now - due < interval else now) + interval
                return
            await asyncio.sleep(min(due - now, 0.5))
            if self._stopping or self.current in self._cancelled:
                return

    def _pause(self, seconds: float) -> None:
        self._pause_until = max(self._pause_until, time.monotonic() + seconds)

    async def _send_broadcast(self, b: Broadcast) -> None:
        bid = b.broadcast_id
        self.current = bid
        await self.repo.start(bid, _now())
        started = time.monotonic()
        done_before = Tally.of(await self.repo.counts(bid)).done
        photo: str | bytes | None = b.photo_file_id
        if photo is None and b.has_photo_bytes:
            photo = await self.repo.photo_bytes(bid)
        queue: deque[Recipient] = deque()
        inflight: set[asyncio.Task[str | None]] = set()
        progress = asyncio.create_task(self._progress_loop(b, started, done_before))
        last_flush = time.monotonic()
        cancelled = False
        try:
            while not self._stopping:
                if bid in self._cancelled:
                    cancelled = True
                    break
                if not queue:
                    batch, self._outcomes = self._outcomes, []
                    claim = await self.repo.claim(bid, batch, self._batch_size(), time.time())
                    last_flush = time.monotonic()
                    if claim.cancelled:
                        cancelled = True
                        break
                    queue.extend(claim.recipients)
                    if not queue:
                        if inflight:
                            await asyncio.wait(inflight, timeout=FLUSH_EVERY,
                                               return_when=asyncio.FIRST_COMPLETED)
                            continue
                        if self._outcomes:
                            continue  # a retry may be among them: record before deciding
                        self._wake.clear()
                        due = await self.repo.next_due(bid)
                        if due is None:
                            break  # everyone is done
                        await self._idle(min(max(due - time.time(), 0.05), POLL_SECONDS))
                        continue
                await self._pace()
                if self._stopping or bid in self._cancelled or not queue:
                    continue
                await self._slots.acquire()
                recipient = queue.popleft()
                if isinstance(photo, bytes):
                    # The first send uploads the photo; every later one reuses Telegram's id.
                    file_id = await self._deliver_then_note(b, recipient, photo, queue)
                    if file_id is not None:
                        photo = file_id
                        await self.repo.set_photo_file_id(bid, file_id)
                else:
                    task = asyncio.create_task(
                        self._deliver_then_note(b, recipient, photo, queue))
                    inflight.add(task)
                    task.add_done_callback(inflight.discard)
                if time.monotonic() - last_flush >= FLUSH_EVERY and self._outcomes:
                    batch, self._outcomes = self._outcomes, []
                    await self.repo.record(bid, batch)
                    last_flush = time.monotonic()
            # Leaving: calls in flight finish (a graceful stop is bounded by stop()'s timeout),
            # and whoever was claimed but not yet sent goes back, or is closed if cancelled.
            if inflight:
                await asyncio.wait(inflight)
            leftover: RecipientState = ("cancelled" if cancelled or bid in self._cancelled
                                        else "pending")
            batch, self._outcomes = self._outcomes, []
            batch += [Outcome(r.user_id, leftover, r.attempts) for r in queue]
            queue.clear()
            await self.repo.record(bid, batch)
        except BaseException:
            for task in inflight:  # a crash: nothing more is recorded, as if killed
                task.cancel()
            raise
        finally:
            progress.cancel()
            self.current = None
        if self._stopping and not cancelled:
            return
        if not cancelled:
            await self.repo.finish(bid, _now())
        self._cancelled.discard(bid)
        await self._report(b, time.monotonic() - started, cancelled)

    def _batch_size(self) -> int:
        return max(1, round(self.rate * BATCH_SECONDS))

    async def _deliver_then_note(self, b: Broadcast, r: Recipient, photo: str | bytes | None,
                                 queue: deque[Recipient]) -> str | None:
        """Send to one recipient and note the outcome; returns the photo's file_id if sent."""
        try:
            outcome, message = await self._deliver(b, r, photo)
        finally:
            self._slots.release()
        if outcome is None:
            queue.appendleft(r)  # 429: the same recipient goes first after the pause
            return None
        self._outcomes.append(outcome)
        if message is not None and message.photo:
            return message.photo[-1].file_id
        return None

    async def _deliver(self, b: Broadcast, r: Recipient, photo: str | bytes | None
                       ) -> tuple[Outcome | None, Message | None]:
        text = message_html(b.texts, b.fallback, r.language)
        attempts = r.attempts + 1
        # The same button as after /start_updates (bot/handlers/updates.py handles "u:off").
        stop = InlineKeyboardMarkup([[InlineKeyboardButton(
            "🔕 " + translator(r.language)._(STOP_NEWS_BUTTON), callback_data="u:off")]])
        try:
            if photo is None:
                message = await self.bot.send_message(r.user_id, text, reply_markup=stop)
            else:
                message = await self.bot.send_photo(r.user_id, photo, caption=text,
                                                    reply_markup=stop)
        except RetryAfter as exc:
            self._pause(retry_seconds(exc))
            return None, None
        except Forbidden as exc:  # blocked the bot or deleted the account: never retried
            return Outcome(r.user_id, "blocked", attempts, error=error_reason(exc)), None
        except BadRequest as exc:  # the same request would fail again
            return Outcome(r.user_id, "failed", attempts, error=error_reason(exc)), None
        except Exception as exc:  # network trouble, Telegram's 5xx, timeouts: try again later
            if not isinstance(exc, TelegramError):
                log.warning("broadcast send raised %s at %s", type(exc).__name__, _where(exc))
            if attempts >= MAX_ATTEMPTS:
                return Outcome(r.user_id, "failed", attempts, error=error_reason(exc)), None
            delay = BACKOFF[min(attempts, len(BACKOFF)) - 1]
            return Outcome(r.user_id, "pending", attempts, not_before=time.time() + delay,
                           error=error_reason(exc)), None
        return Outcome(r.user_id, "sent", attempts, message_id=message.message_id), message

    # -- what the admin sees -----------------------------------------------------------

    async def _progress_loop(self, b: Broadcast, started: float, done_before: int) -> None:
        if b.notify_chat_id is None or b.progress_message_id is None:
            return
        t = translator(b.notify_language)
        while True:
            await asyncio.sleep(self.progress_every)
            tally = Tally.of(await self.repo.counts(b.broadcast_id))
            elapsed = time.monotonic() - started
            done_now = tally.done - done_before
            speed = done_now / elapsed if elapsed >= 5 and done_now > 0 else self.rate
            eta = tally.remaining / speed if speed > 0 else None
            try:
                with telegram_noise():  # unchanged, or the admin deleted it
                    await self.bot.edit_message_text(
                        progress_text(t, b.broadcast_id, tally, eta), chat_id=b.notify_chat_id,
                        message_id=b.progress_message_id,
                        reply_markup=stop_keyboard(t, b.broadcast_id))
            except BadRequest as exc:  # our HTML, say: seen, and the broadcast goes on
                log.error("broadcast %d: Telegram refused the progress message (%s)",
                          b.broadcast_id, exc.message[:200])
            except TelegramError:
                pass  # the network: the next edit, a few seconds later, says the same

    async def _report(self, b: Broadcast, seconds: float, cancelled: bool) -> None:
        counts = await self.repo.counts(b.broadcast_id)
        tally = Tally.of(counts)
        log.info("broadcast %d %s: sent=%d blocked=%d failed=%d skipped=%d",
                 b.broadcast_id, "stopped" if cancelled else "finished", tally.sent,
                 tally.blocked, tally.failed, tally.skipped)
        if b.notify_chat_id is None:
            return
        t = translator(b.notify_language)
        text = report_text(t, b.broadcast_id, tally, seconds, cancelled,
                           await self.repo.failure_reasons(b.broadcast_id))
        try:
            if b.progress_message_id is not None:
                with telegram_noise():  # the admin may have deleted it: the report still goes
                    await self.bot.edit_message_text(text, chat_id=b.notify_chat_id,
                                                     message_id=b.progress_message_id)
            await self.bot.send_message(b.notify_chat_id, text)
        except BadRequest as exc:  # our HTML, say
            log.error("broadcast %d: Telegram refused the report (%s)", b.broadcast_id,
                      exc.message[:200])
        except TelegramError:
            log.info("broadcast %d: the report could not be sent", b.broadcast_id)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


# ----------------------------------------------------------------------------- wiring


def sender_of(app: AnyApp) -> BroadcastSender | None:
    return bot_data(app).broadcasts


async def start_background(app: AnyApp, *, rate: float | None = None) -> BroadcastSender:
    """Start the broadcast sender (call after `await app.start()`).

    It resumes any broadcast a previous run left unfinished. The rate is `rate`, else the
    settings' `broadcast_rate` if there is one, else 25 per second; never above 30.
    """
    data = bot_data(app)
    d = data.deps
    assert d is not None, "build_application sets deps"
    # data.meter counts incoming updates (bot/app.py's METER_GROUP).
    sender = BroadcastSender(app.bot, d.db, rate=rate or configured_rate(d.settings),
                             meter=data.meter)
    data.broadcasts = sender
    sender.start()
    return sender


async def stop_background(app: AnyApp, *, graceful: bool = True) -> None:
    """Stop the sender (call before `app.stop()`, while the bot can still make calls).

    `graceful=False` stops it as a crash would (tests of crash safety).
    """
    data = bot_data(app)
    sender, data.broadcasts = data.broadcasts, None
    if sender is not None:
        await sender.stop(graceful=graceful)
