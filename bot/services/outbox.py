"""Delivering what must arrive: the outbox sender, and retries for every other Bot API call.

The outbox (bot/storage/outbox.py) holds messages that matter: case confirmations, status
notices and staff questions. They are written in the same transaction as what they announce
(or right after it, under a dedup key, where the storage API has no transaction to join), then
`OutboxSender` sends them:

- promptly: `wake_outbox(app)` after the commit starts an attempt at once; a poll every
  `POLL_SECONDS` and the start after a restart pick up anything else;
- in order per chat (one message in flight per chat), several chats at a time;
- until Telegram accepts: network errors, 5xx and timeouts are retried with exponential
  back-off (1 s doubling up to 5 min, with jitter), 429 after Telegram's retry_after;
- 403 (the relative blocked the bot): given up, the row marked 'blocked' and the relative
  inactive; 400 (Telegram refuses the message): given up, 'failed' with Telegram's description;
- a kind can have a hook (`register_outbox_hook`), run once the outcome is known and before it
  is recorded: a staff question records the message id that the relative's reply will quote.
  A crash between the hook and the record repeats the hook after the restart, never skips it;
  hooks must not mind running twice, and should hand slow work (telling staff) to
  `OutboxSender.follow_up`;
- a row is marked 'sent' only after Telegram answered with the message. It is never sent again
  once marked. A crash (or a stop that has to cut a send short) between Telegram's answer and
  the mark leaves the row pending, and that one message is sent a second time after the
  restart. A send that times out may also have arrived (Telegram may still deliver it): sends
  wait `SEND_READ_TIMEOUT` seconds, far longer than ordinary calls, to keep that rare.

Life cycle (bot/lifecycle.py): `start_outbox(app)` after `app.start()`, `stop_outbox(app)` after
`app.stop()` (the handlers have then enqueued all they will) and before the database closes.

Retries of every other Bot API call (`ResilientRateLimiter`) and the error texts kept about
failures live in bot/telegram/ (retries.py, errors.py); their names are re-exported here.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import time
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Coroutine
from typing import TYPE_CHECKING, Any

from telegram import (
    ForceReply,
    InlineKeyboardMarkup,
    Message,
    ReplyKeyboardMarkup,
    ReplyKeyboardRemove,
)
from telegram.error import (
    BadRequest,
    ChatMigrated,
    Forbidden,
    RetryAfter,
    TelegramError,
)

from bot.context import AnyApp, bot_data
from bot.storage.outbox import BLOCKED, FAILED, SENT, OutboxRepository, OutboxRow
from bot.telegram.errors import error_reason as error_reason
from bot.telegram.errors import retry_seconds as retry_seconds
from bot.telegram.retries import ResilientRateLimiter as ResilientRateLimiter
from bot.telegram.retries import is_send as is_send
from bot.telegram.retries import maybe_delivered as maybe_delivered

if TYPE_CHECKING:
    from bot.handlers.common import Deps

log = logging.getLogger(__name__)


#: What a kind's hook is told: the row, its outcome (sent, blocked, failed), the message id.
OutcomeHook = Callable[[OutboxRow, str, int | None], Awaitable[None]]
#: A hook as registered with the application: it is also given the application.
AppHook = Callable[[AnyApp, OutboxRow, str, int | None], Awaitable[None]]
FIRST_BACKOFF = 1.0  # seconds before the second attempt; doubles up to MAX_BACKOFF
MAX_BACKOFF = 300.0
POLL_SECONDS = 15.0  # an idle sender looks at the queue this often, in case it was not woken
SEND_READ_TIMEOUT = 40.0
CONCURRENCY = 8  # chats served at once
STOP_GRACE = 5.0  # a stop waits this long for sends in flight


def backoff(attempts: int) -> float:
    """Seconds to wait after the `attempts`-th failed attempt (0-based), with ±20 % jitter."""
    base: float = min(FIRST_BACKOFF * 2.0 ** min(attempts, 20), MAX_BACKOFF)
    return base * random.uniform(0.8, 1.2)


async def _wait(event: asyncio.Event, timeout: float) -> None:
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(max(timeout, 0.0)):
            await event.wait()


class OutboxSender:
    """One per bot process: sends due outbox rows, records each outcome."""

    def __init__(
        self,
        bot: Any,
        repo: OutboxRepository,
        *,
        on_blocked: Callable[[int], Awaitable[None]] | None = None,
        on_outcome: OutcomeHook | None = None,
        is_running: Callable[[], bool] = lambda: True,
        concurrency: int = CONCURRENCY,
        poll_seconds: float = POLL_SECONDS,
        read_timeout: float = SEND_READ_TIMEOUT,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.bot = bot
        self.repo = repo
        self.on_blocked = on_blocked
        self.on_outcome = on_outcome
        self.is_running = is_running
        self.concurrency = concurrency
        self.poll_seconds = poll_seconds
        self.read_timeout = read_timeout
        self.clock = clock
        self.stats: Counter[str] = Counter()  # sent, retried, blocked, failed, migrated
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._inflight: dict[int, asyncio.Task[None]] = {}  # chat id -> its delivery
        self._recent: deque[int] = deque(maxlen=1024)  # rows attempted lately
        self._sent: deque[int] = deque(maxlen=4096)  # rows sent lately: never sent again
        self._follow_ups: set[asyncio.Task[None]] = set()
        self._stopping = False

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def wake(self) -> None:
        """Look at the queue now (after a commit that enqueued something)."""
        self._wake.set()

    async def send_now(self, outbox_id: int, timeout: float) -> None:
        """Attempt this row at once and wait (at most `timeout` s) for that attempt.

        A handler that waits keeps the relative's messages in order: the confirmation comes
        before the answer to whatever they send next. If the attempt fails, the row stays
        queued and the sender keeps trying; the handler does not wait for that. A row that is
        not its chat's oldest pending one waits for those before it.
        """
        if outbox_id in self._recent:
            return
        row = await self.repo.head_row(outbox_id)
        if row is None:  # already sent or given up, or an older message of the chat goes first
            self._wake.set()
            return
        delivery = self._inflight.get(row.chat_id)
        if delivery is None:
            delivery = self._launch(row)
        await asyncio.wait({delivery}, timeout=timeout)

    def follow_up(self, work: Coroutine[Any, Any, None]) -> None:
        """Run `work` (telling staff how a delivery went) without holding up the queue.

        A stop waits for it like for a send in flight.
        """
        task: asyncio.Task[None] = asyncio.create_task(_logged(work), name="outbox-follow-up")
        self._follow_ups.add(task)
        task.add_done_callback(self._follow_ups.discard)

    def start(self) -> None:
        if self.running:
            return
        self._stopping = False
        self._task = asyncio.create_task(self._run(), name="outbox-sender")

    async def stop(self, grace: float = STOP_GRACE) -> None:
        """Stop taking rows; let sends in flight finish for up to `grace` seconds."""
        self._stopping = True
        self._wake.set()
        task, self._task = self._task, None
        if task is not None:
            await asyncio.gather(task, return_exceptions=True)
        inflight = [*self._inflight.values(), *self._follow_ups]
        if inflight:
            _, late = await asyncio.wait(inflight, timeout=grace)
            for t in late:
                t.cancel()
            await asyncio.gather(*late, return_exceptions=True)

    # -- the loop ------------------------------------------------------------------------

    async def _run(self) -> None:
        errors = 0
        while not self._stopping:
            self._wake.clear()
            try:
                await self._dispatch()
                delay = await self._until_next()
                errors = 0
            except Exception as exc:
                if not self.is_running():  # the application stopped and closed the database
                    return
                errors += 1
                log.warning("outbox: cannot read the queue (%s); trying again",
                            type(exc).__name__)
                delay = min(2.0 ** errors, 30.0)
            await _wait(self._wake, delay)

    async def _dispatch(self) -> None:
        free = self.concurrency - len(self._inflight)
        if free <= 0:
            return
        for row in await self.repo.due(self.clock(), limit=free + len(self._inflight)):
            if free <= 0:
                break
            if row.chat_id in self._inflight or row.outbox_id in self._sent:
                continue
            self._launch(row)
            free -= 1

    def _launch(self, row: OutboxRow) -> asyncio.Task[None]:
        task = asyncio.create_task(self._deliver(row), name=f"outbox-{row.outbox_id}")
        self._inflight[row.chat_id] = task
        task.add_done_callback(self._finished)
        return task

    def _finished(self, task: asyncio.Task[None]) -> None:
        for chat_id, t in list(self._inflight.items()):
            if t is task:
                del self._inflight[chat_id]
        self._wake.set()  # the chat's next message, or a free slot for another chat

    async def _until_next(self) -> float:
        at = await self.repo.next_due_at()
        if at is None:
            return self.poll_seconds
        wait = at - self.clock()
        # Due but not taken (its chat is busy, or every slot is): a finishing send wakes us.
        return self.poll_seconds if wait <= 0 else min(wait, self.poll_seconds)

    # -- one message ---------------------------------------------------------------------

    async def _deliver(self, row: OutboxRow) -> None:
        if row.outbox_id in self._sent:  # read as pending just before it was marked sent
            return
        try:
            message = await self._send(row)
        except Exception as exc:
            try:
                await self._failed(row, exc)
            except Exception as db_exc:  # the row stays pending and is tried again
                log.warning("outbox: could not record a failed attempt (%s)",
                            type(db_exc).__name__)
        else:
            self.stats["sent"] += 1
            self._sent.append(row.outbox_id)
            try:
                await self._outcome(row, SENT, message.message_id)
            finally:
                await self._mark_sent(row, message)
        finally:
            self._recent.append(row.outbox_id)

    async def _outcome(self, row: OutboxRow, outcome: str, message_id: int | None) -> None:
        """The kind's hook, before the outcome is recorded; its failure is logged, not raised."""
        if self.on_outcome is None:
            return
        try:
            # Shielded: a stop that cancels this delivery still lets the hook finish.
            await asyncio.shield(self.on_outcome(row, outcome, message_id))
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.error("outbox: the %s hook failed for #%d (%s)", row.kind, row.outbox_id,
                      type(exc).__name__)

    async def _send(self, row: OutboxRow) -> Message:
        markup = _markup(row.reply_markup, self.bot)
        message: Message = await self.bot.send_message(
            row.chat_id, row.text, parse_mode=row.parse_mode, reply_markup=markup,
            read_timeout=self.read_timeout, write_timeout=self.read_timeout,
        )
        return message

    async def _failed(self, row: OutboxRow, exc: Exception) -> None:
        reason = error_reason(exc)
        if isinstance(exc, Forbidden):
            self.stats["blocked"] += 1
            await self._outcome(row, BLOCKED, None)
            await self.repo.give_up(row.outbox_id, BLOCKED, reason)
            log.warning("outbox: %s #%d not delivered: the relative blocked the bot",
                        row.kind, row.outbox_id)
            if self.on_blocked is not None:
                await self.on_blocked(row.chat_id)
        elif isinstance(exc, ChatMigrated):
            self.stats["migrated"] += 1
            await self.repo.move_chat(row.outbox_id, exc.new_chat_id)
        elif isinstance(exc, RetryAfter):
            self.stats["retried"] += 1
            await self.repo.retry_later(row.outbox_id, self.clock() + retry_seconds(exc) + 0.5,
                                        reason)
        elif isinstance(exc, BadRequest):
            self.stats["failed"] += 1
            await self._outcome(row, FAILED, None)
            await self.repo.give_up(row.outbox_id, FAILED, reason)
            log.error("outbox: %s #%d refused by Telegram, not retried: %s",
                      row.kind, row.outbox_id, reason)
        else:
            # Network, 5xx, timeouts; also our own bugs (a bad markup), which keep being tried
            # slowly and say so, rather than losing the message.
            self.stats["retried"] += 1
            delay = backoff(row.attempts)
            if not isinstance(exc, TelegramError):
                log.error("outbox: %s #%d: %s while sending; trying again in %.0fs",
                          row.kind, row.outbox_id, type(exc).__name__, delay)
            await self.repo.retry_later(row.outbox_id, self.clock() + delay, reason)

    async def _mark_sent(self, row: OutboxRow, message: Message) -> None:
        for attempt in range(5):
            try:
                # Shielded: a stop that cancels this delivery still lets the mark be written.
                await asyncio.shield(self.repo.mark_sent(row.outbox_id, message.message_id))
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("outbox: could not mark #%d sent (%s)", row.outbox_id,
                            type(exc).__name__)
                await asyncio.sleep(0.2 * 2 ** attempt)
        log.error("outbox: #%d was sent but is not marked; it may be sent again after a restart",
                  row.outbox_id)


Markup = InlineKeyboardMarkup | ForceReply | ReplyKeyboardMarkup | ReplyKeyboardRemove


def _markup(stored: str | None, bot: Any) -> Markup | None:
    """The reply markup stored as JSON (`markup.to_json()`), back as the object it was."""
    if not stored:
        return None
    data = json.loads(stored)
    if "inline_keyboard" in data:
        return InlineKeyboardMarkup.de_json(data, bot)
    if "force_reply" in data:
        return ForceReply.de_json(data, bot)
    if "remove_keyboard" in data:
        return ReplyKeyboardRemove.de_json(data, bot)
    if "keyboard" in data:
        return ReplyKeyboardMarkup.de_json(data, bot)
    raise ValueError("unknown reply markup")


async def _logged(work: Coroutine[Any, Any, None]) -> None:
    try:
        await work
    except Exception as exc:
        log.warning("outbox: a follow-up failed (%s)", type(exc).__name__)


# ----------------------------------------------------------------------------- life cycle


def outbox_repository(d: Deps) -> OutboxRepository:
    """The outbox of this bot's database, texts sealed with the server key like drafts."""
    return OutboxRepository(d.db, d.keys.seal_draft, d.keys.unseal_draft)


def outbox_sender(app: AnyApp) -> OutboxSender | None:
    return bot_data(app).outbox


async def start_outbox(app: AnyApp) -> OutboxSender:
    """Start the sender (after `app.start()`); it sends what a previous run left pending.

    Calling it again is harmless: one sender per application.
    """
    sender = outbox_sender(app)
    if sender is None:
        data = bot_data(app)
        d = data.deps
        assert d is not None, "build_application sets deps"

        async def on_outcome(row: OutboxRow, outcome: str, message_id: int | None) -> None:
            hook = data.outbox_hooks.get(row.kind)
            if hook is not None:
                await hook(app, row, outcome, message_id)

        sender = OutboxSender(app.bot, outbox_repository(d), on_blocked=d.users.mark_inactive,
                              on_outcome=on_outcome, is_running=lambda: app.running)
        data.outbox = sender
    sender.start()
    return sender


async def stop_outbox(app: AnyApp, grace: float = STOP_GRACE) -> None:
    """Stop the sender (after `app.stop()`, before the database closes)."""
    sender = outbox_sender(app)
    if sender is not None:
        await sender.stop(grace)


def register_outbox_hook(app: AnyApp, kind: str, hook: AppHook) -> None:
    """Run `hook(app, row, outcome, message_id)` when a row of `kind` is sent or given up."""
    bot_data(app).outbox_hooks[kind] = hook


def wake_outbox(app: AnyApp) -> None:
    """Send what was just enqueued now, not at the next poll."""
    sender = outbox_sender(app)
    if sender is not None:
        sender.wake()


async def send_outbox_now(app: AnyApp, outbox_id: int, timeout: float = 10.0) -> None:
    """Attempt `outbox_id` at once, waiting at most `timeout` s for that attempt (send_now).

    Without a running sender (outside bot/lifecycle.py) the row stays queued for the next start.
    """
    sender = outbox_sender(app)
    if sender is not None and sender.running:
        await sender.send_now(outbox_id, timeout)
