"""Running the bot on Telegram: long polling (the default) or a webhook, until SIGTERM.

Either way, a stop (SIGTERM, SIGINT, or the `stop` event) first stops taking new updates,
then `Application.stop()` lets every update already taken finish: an answer being processed is
saved whole (one transaction) or, if not yet taken, stays with Telegram and is delivered again
after the restart (the whole sequence is bot/lifecycle.py). One data folder serves one bot
process at a time (a lock file says so).
"""

from __future__ import annotations

import asyncio
import fcntl
import logging
import os
import signal
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from types import TracebackType
from typing import IO

from bot.config import Settings
from bot.telegram.webhook import WebhookServer

log = logging.getLogger(__name__)

UPDATE_TYPES: list[str] = ["message", "edited_message", "callback_query", "my_chat_member"]
LOCK_NAME = "bot.lock"


class _StartFailed(Exception):
    """The updates could not start; `message` says which setting to fix."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


class DataDirBusy(Exception):
    """Another process holds the data folder's lock (the bot is running, or a restore is)."""


class DataDirLock:
    """An exclusive lock on BOT_DATA_DIR/bot.lock, released when the process ends."""

    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / LOCK_NAME
        self._fh: IO[str] | None = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fh = self.path.open("a+")
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.close()
            raise DataDirBusy(str(self.path.parent)) from None
        fh.seek(0)
        fh.truncate()
        fh.write(f"{os.getpid()}\n")
        fh.flush()
        self._fh = fh

    def release(self) -> None:
        if self._fh is not None:
            fcntl.flock(self._fh.fileno(), fcntl.LOCK_UN)
            self._fh.close()
            self._fh = None

    def __enter__(self) -> DataDirLock:
        self.acquire()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.release()


_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def _catch_signals(stop: asyncio.Event) -> None:
    """From now on, SIGTERM and SIGINT set `stop` instead of killing the process."""
    loop = asyncio.get_running_loop()
    for sig in _SIGNALS:
        loop.add_signal_handler(sig, stop.set)


def _release_signals() -> None:
    loop = asyncio.get_running_loop()
    for sig in _SIGNALS:
        loop.remove_signal_handler(sig)


def _fail(message: str, code: int = 2) -> int:
    """Print one line saying what to fix; 2 = fix a setting, 1 = may pass on a retry."""
    print(message, file=sys.stderr)
    return code


def webhook_problem(settings: Settings) -> str | None:
    """The one line saying why webhook mode cannot start with these settings, if it cannot."""
    if not settings.webhook_url:
        return ("BOT_WEBHOOK_URL is not set: webhook mode needs the public https address "
                "Telegram posts updates to (see deploy/README.md), or run without --webhook "
                "for long polling.")
    if not settings.webhook_secret:
        return ("BOT_WEBHOOK_SECRET is not set: webhook mode needs a secret token so that "
                "only Telegram can post updates; generate one with `openssl rand -hex 32`.")
    return None


async def run_bot(settings: Settings, *, webhook: bool | None = None,
                  stop: asyncio.Event | None = None) -> int:
    """Run until SIGTERM/SIGINT (or `stop`), finishing the updates in hand first.

    `webhook` None means: webhook mode when BOT_WEBHOOK_URL is set, long polling otherwise.
    """
    from telegram.error import InvalidToken, NetworkError, TelegramError
    from telegram.ext import Updater

    from bot.app import build_application, open_deps
    from bot.lifecycle import running

    use_webhook = bool(settings.webhook_url) if webhook is None else webhook
    if not settings.token:
        return _fail("BOT_TOKEN is not set: put the token from @BotFather in BOT_TOKEN "
                     "(or run `python -m bot sandbox` to try the bot offline).")
    if use_webhook and (problem := webhook_problem(settings)):
        return _fail(problem)
    own_signals = stop is None
    stop = stop if stop is not None else asyncio.Event()
    lock = DataDirLock(settings.data_dir)
    try:
        lock.acquire()
    except DataDirBusy:
        return _fail(f"BOT_DATA_DIR: another bot process is already using "
                     f"{settings.data_dir} ({lock.path} is locked); stop it first.")
    except OSError as exc:
        return _fail(f"BOT_DATA_DIR: {settings.data_dir} is not writable ({exc.strerror}).")
    try:
        d = await open_deps(settings)
    except Exception:
        lock.release()
        raise
    app = build_application(d)

    async def take_updates(updater: Updater) -> Callable[[], Awaitable[None]] | None:
        if not use_webhook:
            await updater.start_polling(allowed_updates=UPDATE_TYPES, drop_pending_updates=False)
            log.info("bot running (long polling)")
            return None
        # Our own aiohttp server (bot/telegram/webhook.py), not the Updater's tornado one: it
        # checks the secret in constant time and refuses big bodies before reading them.
        server = WebhookServer(app, listen=settings.webhook_listen, port=settings.webhook_port,
                               path=settings.webhook_path, secret=settings.webhook_secret)
        try:
            await server.start()
            await app.bot.set_webhook(
                settings.webhook_url, secret_token=settings.webhook_secret,
                allowed_updates=UPDATE_TYPES, drop_pending_updates=False, max_connections=40)
        except OSError as exc:
            raise _StartFailed(
                f"BOT_WEBHOOK_PORT: cannot listen on {settings.webhook_listen}:"
                f"{settings.webhook_port} ({exc.strerror or type(exc).__name__}).", 1) from exc
        except TelegramError as exc:
            await server.stop()
            raise _StartFailed(
                f"BOT_WEBHOOK_URL: Telegram refused the webhook ({exc.message}).", 2) from exc
        log.info("bot running (webhook on %s:%d)", settings.webhook_listen, settings.webhook_port)
        return server.stop

    if own_signals:  # a SIGTERM during start-up also ends in an orderly stop
        _catch_signals(stop)
    try:
        async with running(app, settings, take_updates):
            await stop.wait()
            log.info("stopping: finishing the updates in hand")
    except InvalidToken:
        return _fail("BOT_TOKEN was rejected by Telegram: check the token from @BotFather.")
    except NetworkError as exc:
        return _fail(f"Cannot reach the Bot API at {settings.api_base_url}: "
                     f"{type(exc).__name__}. Check BOT_API_BASE_URL and the network.", code=1)
    except _StartFailed as exc:
        return _fail(exc.message, exc.code)
    finally:
        await d.db.close()
        lock.release()
        if own_signals:
            _release_signals()
    log.info("stopped")
    return 0
