"""What bot/telegram/ relies on in python-telegram-bot: fails on a release that changes it.

bot/telegram/http.py uses only the library's public extension point (BaseRequest);
bot/telegram/polling.py is the one module that relies on internals (Bot._post, and a copy of
Bot.get_updates' read-timeout arithmetic). A new python-telegram-bot release that changes any of
them fails here: re-read polling.py against the new release, then update the recorded values
and the pin in pyproject.toml. The last tests run the adapter against the emulator over HTTP.
"""

from __future__ import annotations

import hashlib
import inspect
import time
from collections.abc import AsyncIterator

import pytest
import telegram
from telegram import Bot, Update
from telegram.constants import ParseMode
from telegram.ext import Defaults, ExtBot
from telegram.request import BaseRequest

from bot.sandbox.emulator import Emulator
from bot.telegram.http import AiohttpRequest
from bot.telegram.polling import NO_PARSE_MODE, ReadingBot

#: The release these were checked against (pyproject.toml pins its minor release).
TESTED = (22, 8)
#: sha256 of inspect.getsource(telegram.Bot.get_updates) in that release.
GET_UPDATES_SOURCE = "c4d6efd0a294781013b1d04149a08ba4b690b7dbd5d03bac30f6ad2ada3ce478"


def test_the_tested_minor_release_is_installed() -> None:
    assert tuple(telegram.__version_info__[:2]) == TESTED, (
        f"python-telegram-bot {telegram.__version__}: re-check bot/telegram/polling.py")


def test_get_updates_is_still_the_one_reading_bot_copies() -> None:
    source = inspect.getsource(Bot.get_updates)
    assert hashlib.sha256(source.encode()).hexdigest() == GET_UPDATES_SOURCE, (
        "Bot.get_updates changed: compare ReadingBot.get_updates with it")
    assert "self._request[0].read_timeout" in source  # what _updates_read_timeout stands for
    ours = inspect.signature(ReadingBot.get_updates).parameters
    theirs = inspect.signature(ExtBot.get_updates).parameters
    assert [(p.name, p.kind) for p in ours.values()] == [
        (p.name, p.kind) for p in theirs.values()]


def test_post_is_the_one_call_every_method_makes() -> None:
    params = inspect.signature(Bot._post).parameters
    assert list(params) == ["self", "endpoint", "data", "read_timeout", "write_timeout",
                            "connect_timeout", "pool_timeout", "api_kwargs"]
    assert inspect.iscoroutinefunction(Bot._post)
    # Where Defaults' parse_mode comes from on methods that have none.
    assert '"parse_mode": parse_mode' in inspect.getsource(Bot._send_message)


def test_the_transport_implements_the_public_extension_point() -> None:
    assert BaseRequest.__abstractmethods__ == {"initialize", "shutdown", "do_request",
                                               "read_timeout"}
    request = AiohttpRequest(1, read_timeout=7.0)
    assert request.read_timeout == 7.0
    assert isinstance(BaseRequest.DEFAULT_NONE, type(BaseRequest.DEFAULT_NONE))


@pytest.fixture
async def emulator() -> AsyncIterator[Emulator]:
    emu = Emulator()
    await emu.start()
    try:
        yield emu
    finally:
        await emu.stop()


@pytest.fixture
async def bot(emulator: Emulator) -> AsyncIterator[ReadingBot]:
    bot = ReadingBot(emulator.token, base_url=f"{emulator.base_url}/bot",
                     defaults=Defaults(parse_mode=ParseMode.HTML),
                     request=AiohttpRequest(4), get_updates_request=AiohttpRequest(1))
    await bot.initialize()
    try:
        yield bot
    finally:
        await bot.shutdown()


async def test_an_unreadable_update_is_skipped_and_the_rest_read(
        emulator: Emulator, bot: ReadingBot) -> None:
    user = emulator.user(70_001)
    emulator.world.push_update({"my_chat_member": {
        "chat": user.chat.to_json(), "from": user.to_json(), "date": 1,
        "old_chat_member": {"user": emulator.world.bot_user, "status": "member"},
        # An administrator without the rights fields the library requires.
        "new_chat_member": {"user": emulator.world.bot_user, "status": "administrator"}}})
    await user.send_text("hello", wait=False)
    started = time.monotonic()
    updates = await bot.get_updates(timeout=1)
    assert time.monotonic() - started < 5
    assert len(updates) == 2
    assert isinstance(updates[0], Update) and updates[0].my_chat_member is None
    assert updates[1].message is not None and updates[1].message.text == "hello"
    # The long poll's timeout is added to the request's own read timeout, as the library does.
    assert await bot.get_updates(offset=updates[1].update_id + 1, timeout=1) == ()


async def test_no_call_sends_a_parameter_its_method_does_not_have(
        emulator: Emulator, bot: ReadingBot) -> None:
    """The emulator refuses unknown parameters; with Defaults(parse_mode=HTML) the library
    would send one to editMessageReplyMarkup."""
    user = emulator.user(70_002)
    await user.send_text("/start", wait=False)
    sent = await bot.send_message(user.id, "<b>hi</b>",
                                  reply_markup=telegram.InlineKeyboardMarkup.from_button(
                                      telegram.InlineKeyboardButton("x", callback_data="x")))
    await bot.edit_message_reply_markup(user.id, sent.message_id, reply_markup=None)
    assert "editMessageReplyMarkup" in NO_PARSE_MODE
    calls = [(m, p, s) for m, p, s in emulator.calls if m == "editMessageReplyMarkup"]
    assert calls and all(s == 200 and "parse_mode" not in p for _m, p, s in calls)

    # The emulator's own check: a parse_mode on that method is refused.
    plain = ExtBot(emulator.token, base_url=f"{emulator.base_url}/bot",
                   defaults=Defaults(parse_mode=ParseMode.HTML), request=AiohttpRequest(1))
    await plain.initialize()
    try:
        with pytest.raises(telegram.error.BadRequest, match="has no parameter parse_mode"):
            await plain.edit_message_reply_markup(user.id, sent.message_id,
                                                  reply_markup=None)
    finally:
        await plain.shutdown()
