"""The command line: `python -m bot run | sandbox | migrate | check`."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from typing import Any

from bot.config import Settings, SettingsError, load_settings

log = logging.getLogger("bot")


def _setup_logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # httpx logs every request URL, and URLs carry the bot token.
    logging.getLogger("httpx").setLevel(logging.WARNING)


async def _wait_for_stop() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()


async def run_bot(settings: Settings, *, stop: asyncio.Event | None = None) -> int:
    """Long polling until SIGTERM/SIGINT (or `stop`), finishing the update in hand first."""
    from telegram.error import InvalidToken, NetworkError

    from bot.app import build_application, open_deps, set_command_menus

    if not settings.token:
        print("BOT_TOKEN is not set: put the token from @BotFather in BOT_TOKEN "
              "(or run `python -m bot sandbox` to try the bot offline).", file=sys.stderr)
        return 2
    d = await open_deps(settings)
    app = build_application(d)
    try:
        try:
            await app.initialize()
        except InvalidToken:
            print("BOT_TOKEN was rejected by Telegram: check the token from @BotFather.",
                  file=sys.stderr)
            return 2
        except NetworkError as exc:
            print(f"Cannot reach the Bot API at {settings.api_base_url}: {type(exc).__name__}. "
                  "Check BOT_API_BASE_URL and the network.", file=sys.stderr)
            return 2
        await set_command_menus(app)
        await app.start()
        assert app.updater is not None
        await app.updater.start_polling(allowed_updates=Update_ALL, drop_pending_updates=False)
        log.info("bot running (long polling)")
        if stop is None:
            await _wait_for_stop()
        else:
            await stop.wait()
        log.info("stopping")
        await app.updater.stop()
        await app.stop()  # waits for the updates being processed
        await app.shutdown()
    finally:
        await d.db.close()
    return 0


Update_ALL: list[str] = ["message", "edited_message", "callback_query", "my_chat_member"]


async def sandbox(settings: Settings) -> int:
    """Start the offline emulator, run the bot against it, and chat in this terminal."""
    from bot.sandbox.emulator import Emulator
    from bot.sandbox.terminal import chat_in_terminal

    emulator = Emulator()
    await emulator.start()
    local = settings.model_copy(update={"token": emulator.token,
                                        "api_base_url": emulator.base_url})
    stop = asyncio.Event()
    bot_task = asyncio.create_task(run_bot(local, stop=stop))
    print(f"Sandbox: a local Bot API emulator at {emulator.base_url}; data in "
          f"{settings.data_dir}. Type /start. Numbers press buttons; /quit ends.")
    try:
        await chat_in_terminal(emulator)
    finally:
        stop.set()
        await bot_task
        await emulator.stop()
    return 0


async def migrate(settings: Settings) -> int:
    from bot.storage.db import Database

    db = await Database.open(settings.db_path, migrate=False)
    try:
        applied = await db.migrate()
        print(f"schema version {await db.schema_version()}; applied now: {applied or 'none'}")
    finally:
        await db.close()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bot")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("run", help="run the bot with long polling (needs BOT_TOKEN)")
    sub.add_parser("sandbox", help="try the bot offline in this terminal")
    sub.add_parser("migrate", help="apply database migrations and exit")
    args = parser.parse_args(argv)
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(f"Bad setting: {exc}", file=sys.stderr)
        return 2
    _setup_logging(settings.log_level)
    commands: dict[str, Any] = {"run": run_bot, "sandbox": sandbox, "migrate": migrate}
    try:
        return int(asyncio.run(commands[args.command](settings)))
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
