"""Wires settings, storage and handlers into a python-telegram-bot Application (only here)."""

from __future__ import annotations

import asyncio
import logging
import traceback
from collections import Counter
from collections.abc import Awaitable
from datetime import time as dtime
from pathlib import Path
from typing import Any

from telegram import BotCommandScopeAllPrivateChats, LinkPreviewOptions, Update
from telegram.constants import ParseMode
from telegram.error import NetworkError, TelegramError
from telegram.ext import (
    Application,
    ApplicationBuilder,
    BaseUpdateProcessor,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    Defaults,
    MessageHandler,
    TypeHandler,
    filters,
)

from bot.config import Settings
from bot.form.model import load_form
from bot.handlers import admin, menus, privacy, relative, staff, updates
from bot.handlers.common import Deps, deps
from bot.i18n import LANGUAGES, translator
from bot.services.crypto import load_keyring
from bot.services.outbox import ResilientRateLimiter, install_outbox
from bot.services.polling import ReadingBot
from bot.services.telegram_http import AiohttpRequest
from bot.storage.cases import CaseRepository
from bot.storage.db import Database
from bot.storage.drafts import DraftRepository
from bot.storage.users import UserRepository

log = logging.getLogger(__name__)


class PerUserOrder(BaseUpdateProcessor):
    """Updates of different users run concurrently; one user's updates run one at a time.

    Concurrency keeps a slow call for one relative from delaying everyone else; per-user order
    keeps two quick answers from the same relative from racing over the same draft.
    """

    def __init__(self, max_concurrent_updates: int = 256) -> None:
        super().__init__(max_concurrent_updates)
        self._locks: dict[int, asyncio.Lock] = {}
        self._users: dict[int, int] = {}

    async def do_process_update(self, update: object, coroutine: Awaitable[Any]) -> None:
        key = _update_key(update)
        if key is None:
            await coroutine
            return
        lock = self._locks.setdefault(key, asyncio.Lock())
        self._users[key] = self._users.get(key, 0) + 1
        try:
            async with lock:
                await coroutine
        finally:
            self._users[key] -= 1
            if not self._users[key]:
                del self._users[key]
                del self._locks[key]

    async def initialize(self) -> None:
        return None

    async def shutdown(self) -> None:
        return None


def _update_key(update: object) -> int | None:
    if isinstance(update, Update):
        if update.effective_user is not None:
            return update.effective_user.id
        if update.effective_chat is not None:
            return update.effective_chat.id
    return None


async def open_deps(settings: Settings) -> Deps:
    keys = load_keyring(settings.data_dir, settings.public_key_file, settings.private_key_file)
    db = await Database.open(settings.db_path)
    return Deps(
        settings=settings,
        db=db,
        keys=keys,
        users=UserRepository(db),
        drafts=DraftRepository(db, keys.seal_draft, keys.unseal_draft),
        cases=CaseRepository(db, keys.seal, keys.unseal),
        form=load_form(),
    )


AnyApp = Application[Any, Any, Any, Any, Any, Any]


def build_application(d: Deps, *, rate_limit: bool = True) -> AnyApp:
    s = d.settings
    limiter: Any = None
    if rate_limit:
        # 429s (AIORateLimiter) and a few retries of transient network failures on every call.
        # No overall limit: Telegram's ~30 messages a second is a limit for bulk messages, which
        # the broadcast sender keeps to itself (BOT_BROADCAST_RATE, with headroom). Applied to
        # every call it would hold each relative's next question behind everyone else's, at
        # about 14 questionnaire steps a second for the whole bot. A 429 is still honoured.
        limiter = ResilientRateLimiter(max_retries=5, overall_max_rate=0)
    # ReadingBot: an ExtBot whose getUpdates skips an update the library cannot read instead
    # of asking for it again forever (bot/services/polling.py).
    bot = ReadingBot(
        s.token,
        base_url=f"{s.api_base_url}/bot",
        base_file_url=f"{s.api_base_url}/file/bot",
        defaults=Defaults(parse_mode=ParseMode.HTML,
                          link_preview_options=LinkPreviewOptions(is_disabled=True)),
        # aiohttp instead of the default httpx: a fraction of the CPU per call (see
        # bot/services/telegram_http.py); same pool size and timeouts as before.
        request=AiohttpRequest(64, pool_timeout=10.0),
        get_updates_request=AiohttpRequest(1),
        rate_limiter=limiter,
    )
    app = ApplicationBuilder().bot(bot).concurrent_updates(PerUserOrder(256)).build()
    app.bot_data["deps"] = d
    register_handlers(app)
    install_outbox(app)  # the sender also starts with the job queue; see start_outbox
    return app


def register_handlers(app: AnyApp) -> None:
    private = filters.ChatType.PRIVATE
    groups = filters.ChatType.GROUPS
    staff.register(app)  # the access gate, then staff handlers ahead of the relative's
    admin.register(app)  # broadcasts and /stats (registers with the gate above)
    updates.register(app)  # /stop_updates, /start_updates
    menus.install(app)  # staff and admins get their commands in their own chat's menu
    app.add_handler(TypeHandler(Update, privacy.flood_gate), group=-2)
    app.add_handler(MessageHandler(groups & filters.COMMAND, relative.group_message))
    commands = {
        "start": relative.start_cmd,
        "language": relative.language_cmd,
        "new": relative.new_cmd,
        "status": relative.status_cmd,
        "help": relative.help_cmd,
        "cancel": relative.cancel_cmd,
        "delete": privacy.delete_cmd,
        "mydata": privacy.mydata_cmd,
    }
    for name, callback in commands.items():
        app.add_handler(CommandHandler(name, callback, filters=private))
    app.add_handler(CallbackQueryHandler(relative.on_language, pattern=r"^L:"))
    app.add_handler(CallbackQueryHandler(relative.on_form_press, pattern=r"^f:"))
    app.add_handler(CallbackQueryHandler(relative.on_cancel_choice, pattern=r"^x:"))
    app.add_handler(CallbackQueryHandler(relative.on_menu, pattern=r"^m:"))
    app.add_handler(CallbackQueryHandler(privacy.on_delete_choice, pattern=r"^del:"))
    app.add_handler(CallbackQueryHandler(privacy.on_clean_chat, pattern=r"^cc:"))
    app.add_handler(CallbackQueryHandler(privacy.on_mydata_file, pattern=r"^md:"))
    app.add_handler(CallbackQueryHandler(_answer_unknown_press))
    app.add_handler(MessageHandler(private & filters.COMMAND, relative.unknown_cmd))
    app.add_handler(MessageHandler(private & filters.UpdateType.EDITED_MESSAGE, _edited))
    app.add_handler(MessageHandler(private & filters.UpdateType.MESSAGE, relative.on_message))
    app.add_error_handler(_on_error)
    if app.job_queue is not None:
        app.job_queue.run_daily(privacy.purge_job, time=dtime(3, 30), name="purge-drafts")


async def _answer_unknown_press(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Forged or outdated callback data: stop the spinner and change nothing."""
    if update.callback_query is not None:
        await update.callback_query.answer()


async def _edited(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    d = deps(context)
    lang = await relative.with_language(update, d)
    if lang is None or update.effective_chat is None:
        return
    t = translator(lang)
    await update.effective_chat.send_message(t._(
        "Editing a message that was already sent does not change the answer. Use Back, or Edit "
        "in the review at the end."
    ))


async def _on_error(update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Report an unhandled error once, without personal data; count identical repeats."""
    report = context.application.bot_data.setdefault("error_report", ErrorReport())
    report.record(update, context.error)


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
        level = logging.WARNING if isinstance(exc, NetworkError) else logging.ERROR
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


async def set_command_menus(app: AnyApp) -> None:
    """One command menu per language, shown by Telegram from the user's app language."""
    for lang in LANGUAGES:
        cmds = relative.bot_commands(translator(lang))
        await app.bot.set_my_commands(cmds, scope=BotCommandScopeAllPrivateChats(),
                                      language_code=lang)
    await app.bot.set_my_commands(relative.bot_commands(translator("en")),
                                  scope=BotCommandScopeAllPrivateChats())
    await menus.set_staff_menus(app.bot, app.bot_data["deps"])
