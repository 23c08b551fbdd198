"""ResilientRateLimiter: which failed calls are tried again, and which are not."""

from __future__ import annotations

from typing import Any

import pytest
from telegram.error import BadRequest, NetworkError, TimedOut

from bot.telegram.retries import ResilientRateLimiter, is_send, maybe_delivered


class Flaky:
    """A Bot API call that fails with the given errors first, then succeeds."""

    def __init__(self, *errors: Exception) -> None:
        self.errors = list(errors)
        self.calls = 0

    async def __call__(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return {"ok": True}


async def run(endpoint: str, call: Flaky) -> Any:
    limiter = ResilientRateLimiter(overall_max_rate=0, first_delay=0.001, max_delay=0.002)
    await limiter.initialize()
    return await limiter.process_request(call, (), {}, endpoint, {"chat_id": 42}, None)


@pytest.mark.parametrize("error", [TimedOut(), NetworkError("aiohttp.ServerDisconnectedError: x")])
async def test_a_send_that_may_have_arrived_is_not_repeated(error: Exception) -> None:
    call = Flaky(error)
    with pytest.raises(type(error)):
        await run("sendMessage", call)
    assert call.calls == 1


@pytest.mark.parametrize("error", [NetworkError("Bad Gateway"),
                                   NetworkError("aiohttp.ClientConnectorError: refused")])
async def test_a_send_that_surely_failed_is_repeated(error: Exception) -> None:
    call = Flaky(error, error)
    assert await run("sendMessage", call) == {"ok": True}
    assert call.calls == 3


async def test_edits_and_answers_are_repeated_after_a_timeout() -> None:
    for endpoint in ("editMessageText", "editMessageReplyMarkup", "answerCallbackQuery"):
        call = Flaky(TimedOut(), NetworkError("aiohttp.ServerDisconnectedError: x"))
        assert await run(endpoint, call) == {"ok": True}
        assert call.calls == 3


async def test_a_press_answered_too_late_still_counts() -> None:
    # As python-telegram-bot words Telegram's "Bad Request: query is too old ...".
    call = Flaky(BadRequest("Query is too old and response timeout expired or query id is "
                            "invalid"))
    assert await run("answerCallbackQuery", call) is True
    with pytest.raises(BadRequest):
        await run("sendMessage", Flaky(BadRequest("Query is too old")))


def test_what_counts_as_a_send_and_as_maybe_delivered() -> None:
    assert is_send("sendMessage") and is_send("sendPhoto") and is_send("copyMessage")
    assert not is_send("sendChatAction") and not is_send("editMessageText")
    assert maybe_delivered(TimedOut())
    assert maybe_delivered(NetworkError("aiohttp.ClientOSError: reset"))
    assert not maybe_delivered(NetworkError("Internal Server Error (500)"))
    assert not maybe_delivered(NetworkError("aiohttp.ClientConnectorError: refused"))
