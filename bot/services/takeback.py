"""Taking back what the bot sent staff: cards, answers, files and exports hold case content.

Each such message is recorded when sent (bot/storage/staff_messages.py). A job deletes those
older than BOT_CARD_TTL_HOURS, and a relative's /delete deletes those about their cases at once
(with every export sent since their first case was submitted). Telegram lets a bot delete its
messages only while they are under 48 hours old: a message that can no longer be deleted is
forgotten (logged as a count), never retried. What staff saved or forwarded, and what their
devices keep, is out of the bot's reach (docs/THREAT_MODEL.md).
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections import defaultdict
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from telegram.error import TelegramError
from telegram.ext import ContextTypes

from bot.storage.staff_messages import Sent, StaffMessages

if TYPE_CHECKING:
    from bot.handlers.common import Deps

log = logging.getLogger(__name__)

#: Telegram refuses to delete a bot's message older than this.
DELETE_WINDOW = 48 * 3600
SWEEP_NAME = "staff-messages-ttl"


async def delete_sent(bot: Any, repo: StaffMessages, sent: Sequence[Sent]) -> int:
    """Delete these messages (as far as Telegram lets us) and forget them; returns how many
    Telegram deleted."""
    by_chat: dict[int, list[int]] = defaultdict(list)
    for chat_id, message_id in sent:
        by_chat[chat_id].append(message_id)
    deleted = 0
    for chat_id, ids in by_chat.items():
        for start in range(0, len(ids), 100):
            batch = ids[start:start + 100]
            try:
                await bot.delete_messages(chat_id, batch)
                deleted += len(batch)
                continue
            except TelegramError:
                pass  # one of them is too old or gone: try them one by one
            for message_id in batch:
                with contextlib.suppress(TelegramError):
                    if await bot.delete_message(chat_id, message_id):
                        deleted += 1
    await repo.forget(sent)
    if len(sent) > deleted:
        log.info("could not delete %d staff message(s): older than 48 h or already gone",
                 len(sent) - deleted)
    return deleted


async def take_back_cases(bot: Any, d: Deps, numbers: Sequence[str]) -> int:
    """Delete at once what staff were sent about these cases (and exports that may hold them)."""
    repo = StaffMessages(d.db)
    return await delete_sent(bot, repo, await repo.of_cases(numbers))


async def sweep(bot: Any, d: Deps, now: float | None = None) -> int:
    """Delete every recorded message older than BOT_CARD_TTL_HOURS."""
    repo = StaffMessages(d.db)
    cutoff = (time.time() if now is None else now) - d.settings.card_ttl_hours * 3600
    total = 0
    while True:
        sent = await repo.sent_before(cutoff)
        if not sent:
            return total
        total += await delete_sent(bot, repo, sent)


async def sweep_job(context: ContextTypes.DEFAULT_TYPE) -> None:
    from bot.handlers.common import deps_of

    n = await sweep(context.bot, deps_of(context.application))
    if n:
        log.info("deleted %d staff message(s) past BOT_CARD_TTL_HOURS", n)


def sweep_interval(ttl_hours: float) -> float:
    """How often the job looks: a quarter of the lifetime, between 1 s and 10 minutes."""
    return min(max(ttl_hours * 3600 / 4, 1.0), 600.0)


def schedule(app: Any, ttl_hours: float) -> None:
    """Look for messages past their lifetime every `sweep_interval`."""
    if app.job_queue is not None:
        interval = sweep_interval(ttl_hours)
        app.job_queue.run_repeating(sweep_job, interval=interval, first=interval,
                                    name=SWEEP_NAME)
