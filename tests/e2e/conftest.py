"""End-to-end harness: the real Application, talking HTTP to the Bot API emulator."""

from __future__ import annotations

import html
import re
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import pytest
from telegram.ext import Updater

from bot.app import build_application, open_deps
from bot.config import Settings
from bot.handlers.common import Deps
from bot.handlers.privacy import FloodGuard
from bot.i18n import translator
from bot.lifecycle import running
from bot.sandbox.emulator import Emulator
from bot.sandbox.simusers import SimUser
from bot.sandbox.world import SentMessage


class BotRunner:
    """Starts, stops and restarts the bot against the emulator, keeping the data folder."""

    rate_limit = False  # AIORateLimiter slows tests down; fault tests turn it on

    def __init__(self, emulator: Emulator, data_dir: Path, *, real_flood_limit: bool = False,
                 **settings: Any) -> None:
        self.emulator = emulator
        # Simulated relatives answer far faster than people; only flood tests use the real limit.
        self.flood = None if real_flood_limit else FloodGuard(limit=10_000)
        self.data_dir = data_dir
        # Tests read the staff group in English and expect status notices at once, unless
        # they say otherwise (BOT_STAFF_LANGUAGE defaults to ru, the undo window to 60 s).
        self.overrides = {"staff_language": "en", "status_undo_seconds": 0, **settings}
        self.app: Any = None
        self.deps: Deps | None = None
        self._running = AsyncExitStack()

    def settings(self) -> Settings:
        return Settings(token=self.emulator.token, api_base_url=self.emulator.base_url,
                        data_dir=self.data_dir, **self.overrides)

    async def start(self) -> None:
        settings = self.settings()
        self.deps = await open_deps(settings)
        self.app = build_application(self.deps, rate_limit=self.rate_limit)
        if self.flood is not None:
            self.app.bot_data.flood_guard = self.flood

        async def poll(updater: Updater) -> None:
            await updater.start_polling(poll_interval=0.0, timeout=1)

        # The bot's own start/stop sequence (bot/lifecycle.py), held open until stop().
        self._running = AsyncExitStack()
        try:
            await self._running.enter_async_context(running(self.app, settings, poll))
        except BaseException:
            self.app = None
            await self.deps.db.close()
            raise
        app = self.app
        # Simulated users wait until the bot has finished with their update, not just for a
        # quiet moment, so the tests hold on a busy machine.
        self.emulator.world.busy_probe = lambda: (
            app.update_queue.qsize() > 0 or app.update_processor.current_concurrent_updates > 0)

    async def stop(self) -> None:
        if self.app is None:
            return
        self.emulator.world.busy_probe = None
        self.app = None
        try:
            await self._running.aclose()
        finally:
            # Always close the database: its worker thread would keep the test process alive.
            assert self.deps is not None
            await self.deps.db.close()

    async def restart(self) -> None:
        await self.stop()
        await self.start()

    @property
    def d(self) -> Deps:
        assert self.deps is not None
        return self.deps


@pytest.fixture
async def emulator() -> AsyncIterator[Emulator]:
    emu = Emulator()
    await emu.start()
    try:
        yield emu
    finally:
        await emu.stop()


@pytest.fixture
async def bot(emulator: Emulator, tmp_path: Path) -> AsyncIterator[BotRunner]:
    runner = BotRunner(emulator, tmp_path / "data")
    await runner.start()
    try:
        yield runner
    finally:
        await runner.stop()


# ----------------------------------------------------------------------------- helpers

_TAG = re.compile(r"<[^>]+>")


def plain(text: str) -> str:
    """What Telegram shows for an HTML string of ours: tags removed, entities decoded."""
    return html.unescape(_TAG.sub("", text))


def tr(lang: str, msgid: str, **args: Any) -> str:
    text = translator(lang)._(msgid)
    return plain(text % args if args else text)


def form_button(message: SentMessage, action: str, arg: str | None = None) -> str:
    """The callback data of the form button for `action` (and option code `arg`)."""
    for row in message.buttons:
        for _label, data in row:
            if data is None:
                continue
            parts = data.split(":", 3)
            if parts[0] == "f" and parts[2] == action and (arg is None or parts[3:] == [arg]):
                return data
    raise AssertionError(f"no {action}:{arg} button in {message.buttons}")


async def click(user: SimUser, action: str, arg: str | None = None) -> None:
    """Press a form button on the latest message that has buttons."""
    message = next(m for m in reversed(user.messages) if m.buttons and not m.deleted)
    await user.press(form_button(message, action, arg), message)
