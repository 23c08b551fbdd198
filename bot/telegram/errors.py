"""What is kept about a failed Bot API call, and how long Telegram asks us to wait.

One definition for the outbox and the broadcast sender, so the two cannot drift apart: the
text stored with an undelivered message is the error's class and Telegram's own description,
never the message or anything about the person.
"""

from __future__ import annotations

import warnings
from datetime import timedelta

from telegram.error import RetryAfter, TelegramError

#: Stored failure reasons are cut to this many characters (bot/storage/outbox.py keeps 300).
REASON_LIMIT = 300


def error_reason(exc: BaseException) -> str:
    """What is kept about a failure: the error class and Telegram's own description."""
    name = type(exc).__name__
    detail = exc.message if isinstance(exc, TelegramError) else ""
    if not detail or detail.lower().startswith(name.lower()):
        # Telegram's text often starts with the class already: "Forbidden: bot was blocked".
        return (detail or name)[:REASON_LIMIT]
    return f"{name}: {detail}"[:REASON_LIMIT]


def retry_seconds(exc: RetryAfter) -> float:
    """Seconds Telegram asks us to wait after a 429 (python-telegram-bot's public attribute)."""
    with warnings.catch_warnings():  # PTB 22 warns that an int will become a timedelta
        warnings.simplefilter("ignore")
        value: object = exc.retry_after
    if isinstance(value, timedelta):
        return value.total_seconds()
    return float(value) if isinstance(value, int | float) else 1.0
