"""Telegram errors: the harmless ones ignored in one place, the rest logged once per kind.

`telegram_noise()` is the only way a handler ignores a Telegram error: it swallows exactly the
answers that mean an edit had nothing left to do, and lets every other BadRequest through, so
that a bug of ours (a malformed HTML entity: "can't parse entities") reaches `ErrorReport`
instead of vanishing. `ErrorReport` logs an unhandled error once per kind, without personal data.
"""

from __future__ import annotations

import logging
import traceback
from collections import Counter
from pathlib import Path
from types import TracebackType

from telegram import Update
from telegram.error import BadRequest, NetworkError, TelegramError

log = logging.getLogger(__name__)

#: Telegram's answers when an edit has nothing left to do: the message already shows it (a
#: double press) or is gone (the person deleted it). Harmless, and the only ones ignored.
NOT_MODIFIED = "message is not modified"
EDIT_TARGET_GONE = "message to edit not found"
HARMLESS = (NOT_MODIFIED, EDIT_TARGET_GONE)
#: Telegram's answer to HTML it cannot read: always a bug of ours, never to be swallowed.
MALFORMED_HTML = "can't parse entities"


def is_harmless(exc: BadRequest, harmless: tuple[str, ...] = HARMLESS) -> bool:
    description = exc.message.lower()
    return any(answer in description for answer in harmless)


class telegram_noise:
    """`with telegram_noise():` around an edit ignores Telegram's harmless answers.

    Only HARMLESS (or the descriptions given) are ignored; any other error propagates.
    `ignored` is the error swallowed, if any: `noise.ignored is None` after the block means the
    edit went through.
    """

    def __init__(self, *harmless: str) -> None:
        self.harmless = harmless or HARMLESS
        self.ignored: BadRequest | None = None

    def __enter__(self) -> telegram_noise:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> bool:
        if isinstance(exc, BadRequest) and is_harmless(exc, self.harmless):
            self.ignored = exc
            return True
        return False

_BOT_DIR = str(Path(__file__).resolve().parent)
_MESSAGE_KINDS = ("text", "photo", "document", "voice", "audio", "video", "video_note",
                  "animation", "sticker", "location", "venue", "contact", "poll", "dice", "game",
                  "story", "invoice")


class ErrorReport:
    """Unhandled errors, each kind logged once with enough context to fix it.

    A kind is (update type, handler, exception class, where it was raised). The first of a
    kind is logged at ERROR with the bot's own frames of the traceback; identical failures
    after it are counted, and only the 10th, 100th, 1000th... is logged again, with the count.
    Nothing personal is logged: no message text, no exception text (a Telegram error keeps
    Telegram's description, which names no one), no user or chat ids.
    """

    def __init__(self) -> None:
        self.counts: Counter[tuple[str, str, str, str]] = Counter()

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def record(self, update: object, exc: BaseException | None) -> None:
        kind = update_kind(update)
        frames = traceback.extract_tb(exc.__traceback__) if exc is not None else []
        own = [f for f in frames if f.filename.startswith(_BOT_DIR)]
        handler = own[0].name if own else "?"
        last = own[-1] if own else (frames[-1] if frames else None)
        where = f"{_short(last.filename)}:{last.lineno}" if last is not None else "?"
        error = f"{type(exc).__module__}.{type(exc).__qualname__}" if exc is not None else "?"
        key = (kind, handler, error, where)
        self.counts[key] += 1
        n = self.counts[key]
        # Telegram out of reach after the retries (or a send that may have arrived and is not
        # repeated, see ResilientRateLimiter) is the network's doing, not a bug: a warning.
        # BadRequest subclasses NetworkError in python-telegram-bot, but it is Telegram refusing
        # what we sent (our HTML, say): an error.
        network = isinstance(exc, NetworkError) and not isinstance(exc, BadRequest)
        level = logging.WARNING if network else logging.ERROR
        if n == 1:
            detail = f" ({exc.message[:120]})" if isinstance(exc, TelegramError) else ""
            stack = " > ".join(f"{_short(f.filename)}:{f.lineno} {f.name}" for f in own)
            log.log(level, "unhandled %s%s in handler %s for a %s update, at %s; stack: %s",
                    error, detail, handler, kind, where, stack or "(no frames of ours)")
        elif _is_power_of_ten(n):
            log.log(level, "unhandled %s in handler %s for a %s update, at %s: %d times so far",
                    error, handler, kind, where, n)


def update_kind(update: object) -> str:
    """'message:text private', 'callback_query:f private', 'channel_post:photo channel'..."""
    if not isinstance(update, Update):
        return "none" if update is None else type(update).__name__
    field = next((k for k in Update.ALL_TYPES if getattr(update, k, None) is not None), "other")
    detail = ""
    message = update.effective_message
    if update.callback_query is not None:
        prefix = (update.callback_query.data or "").split(":", 1)[0]
        detail = prefix if prefix.isascii() and prefix.isalpha() and len(prefix) <= 8 else "?"
    elif message is not None:
        detail = next((k for k in _MESSAGE_KINDS if getattr(message, k, None)), "other")
    chat = update.effective_chat.type if update.effective_chat is not None else "nochat"
    return f"{field}:{detail} {chat}" if detail else f"{field} {chat}"


def _short(filename: str) -> str:
    if filename.startswith(_BOT_DIR):
        return "bot" + filename[len(_BOT_DIR):]
    return filename.rsplit("/site-packages/", 1)[-1]


def _is_power_of_ten(n: int) -> bool:
    while n % 10 == 0 and n > 1:
        n //= 10
    return n == 1
