"""Only Telegram's harmless answers are ignored (bot/errors.py); our own bad HTML is reported."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest

from bot.handlers import relative
from bot.i18n import LANGUAGE_NAMES
from bot.sandbox.emulator import Emulator
from tests.e2e.conftest import BotRunner


async def test_a_double_press_is_harmless_and_malformed_html_is_reported(
        emulator: Emulator, bot: BotRunner, caplog: pytest.LogCaptureFixture,
        monkeypatch: pytest.MonkeyPatch) -> None:
    user = emulator.user(3100, language_code="en")
    await user.send_text("/start")
    choice = user.last.message_id
    await user.press_data("L:en", choice)
    assert user.chat.by_id[choice].plain == f"🌐 {LANGUAGE_NAMES['en']}"
    # The same press again: the edit changes nothing, Telegram answers "message is not
    # modified", and that alone is ignored.
    calls = len(emulator.calls)
    await user.press_data("L:en", choice)
    assert any(c[0] == "editMessageText" for c in emulator.calls[calls:])
    assert bot.app.bot_data.errors.total == 0

    # A bug of ours: an entity left open in the HTML of the same edit. Telegram refuses it
    # ("can't parse entities"); it reaches the error report instead of vanishing.
    monkeypatch.setattr(relative.commands, "LANGUAGE_NAMES", {**LANGUAGE_NAMES, "ru": "<b>Русский"})
    other = emulator.user(3101, language_code="ru")
    await other.send_text("/start")
    with caplog.at_level(logging.ERROR, logger="bot.errors"):
        await other.press_data("L:ru", other.last.message_id, wait=False)
        deadline = time.monotonic() + 20
        while bot.app.bot_data.errors.total == 0:
            assert time.monotonic() < deadline, "the malformed HTML was not reported"
            await asyncio.sleep(0.02)
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1, errors
    assert "BadRequest" in errors[0] and "can't parse entities" in errors[0].lower()
    assert "handler on_language" in errors[0]
