"""Retries for the Bot API calls outside the outbox: which calls may be repeated, and how.

`ResilientRateLimiter` gives every call that the outbox does not carry (the next question,
button answers, edits) a few quick retries on transient network failures, on top of
AIORateLimiter's handling of 429. `is_send` and `maybe_delivered` are the rule for when a
failed call must not be repeated because Telegram may already have done it.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections import Counter
from collections.abc import Callable, Coroutine
from typing import Any

from telegram.error import BadRequest, NetworkError, TimedOut
from telegram.ext import AIORateLimiter

log = logging.getLogger(__name__)

JSONDict = dict[str, Any]

def is_send(endpoint: str) -> bool:
    """Calls that make a new message: repeating one that went through makes a duplicate."""
    return (endpoint.startswith("send") and endpoint != "sendChatAction") or \
        endpoint in ("copyMessage", "copyMessages", "forwardMessage", "forwardMessages")


def maybe_delivered(exc: NetworkError) -> bool:
    """Whether Telegram may have done the call: a timeout or a connection lost on the way.

    Not after a 5xx (Telegram answered that it failed) or a connection that never opened
    (bot/telegram/http.py names aiohttp's errors in the message).
    """
    if isinstance(exc, TimedOut):
        return True
    return exc.message.startswith("aiohttp.") and \
        not exc.message.startswith("aiohttp.ClientConnector")


class ResilientRateLimiter(AIORateLimiter):
    """AIORateLimiter (Telegram's rates and 429s) plus a few retries of transient failures.

    A network error, 5xx or timeout on a call is retried `network_retries` times with back-off
    (0.5 s doubling), so one bad moment on Telegram's side does not fail a button's answer or
    an edit. 400s are never retried. A call that timed out or lost its connection on the way
    may have gone through all the same, so a *send* (a new message) is not repeated after such
    a failure, only after a 5xx or a connection that never opened: a repeated question that
    arrives after the relative answered it makes people answer it again, and that answer would
    land on the next question. Whoever sends decides what to do instead: the questionnaire
    shows the question again later if the relative has not answered (relative.py), the
    outbox and the broadcast sender keep their own retries. An answer to a button press that
    Telegram no longer
    takes ("query is too old": already answered by a call that timed out, or the press waited
    too long in the queue) is counted as done: nothing can show it any more, and failing the
    call would drop the press itself, which the handler still has to apply.
    """

    def __init__(self, *, network_retries: int = 4, first_delay: float = 0.5,
                 max_delay: float = 8.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.network_retries = network_retries
        self.first_delay = first_delay
        self.max_delay = max_delay
        self.retried: Counter[str] = Counter()  # endpoint -> retries made

    async def process_request(
        self,
        callback: Callable[..., Coroutine[Any, Any, bool | JSONDict | list[JSONDict]]],
        args: Any,
        kwargs: dict[str, Any],
        endpoint: str,
        data: dict[str, Any],
        rate_limit_args: int | None,
    ) -> bool | JSONDict | list[JSONDict]:
        delay = self.first_delay
        attempt = 0
        while True:
            try:
                return await super().process_request(callback, args, kwargs, endpoint, data,
                                                      rate_limit_args)
            except BadRequest as exc:
                if endpoint == "answerCallbackQuery" and "query is too old" in exc.message.lower():
                    self.retried["answerCallbackQuery too old"] += 1
                    log.info("a button press was answered too late; applying it anyway")
                    return True
                raise
            except NetworkError as exc:
                if attempt >= self.network_retries or (is_send(endpoint)
                                                        and maybe_delivered(exc)):
                    raise
                attempt += 1
                self.retried[endpoint] += 1
                log.info("%s failed (%s); retry %d of %d", endpoint, type(exc).__name__,
                         attempt, self.network_retries)
                await asyncio.sleep(delay * random.uniform(0.75, 1.25))
                delay = min(delay * 2, self.max_delay)
