"""Wires settings, storage and handlers into a python-telegram-bot Application (only here)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from typing import Any

from telegram import BotCommandScopeAllPrivateChats, LinkPreviewOptions, Update
from telegram.constants import ParseMode
from telegram.ext import (
    ApplicationBuilder,
    ApplicationHandlerStop,
    BaseHandler,
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
from bot.context import AnyApp, BotData, Context, bot_data, data_of
from bot.form.model import load_form
from bot.handlers import (
    access,
    admin,
    casework,
    conversation,
    menus,
    people,
    privacy,
    relative,
    staff,
    staff_view,
    updates,
)
from bot.handlers.common import (
    BROADCAST_PREFIX,
    CANCEL_PREFIX,
    CLEAN_CHAT_PREFIX,
    DELETE_PREFIX,
    FORM_PREFIX,
    LANGUAGE_PREFIX,
    MENU_PREFIX,
    MYDATA_PREFIX,
    STAFF_PREFIX,
    UPDATES_PREFIX,
    Deps,
    deps,
    deps_of,
)
from bot.i18n import LANGUAGES, translator
from bot.services import erasures
from bot.services.broadcast import ActivityMeter
from bot.services.crypto import load_keyring
from bot.services.outbox import ResilientRateLimiter, register_outbox_hook
from bot.storage.cases import CaseRepository
from bot.storage.db import Database
from bot.storage.drafts import DraftRepository
from bot.storage.users import UserRepository
from bot.telegram.http import AiohttpRequest
from bot.telegram.polling import ReadingBot

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
    keys = load_keyring(settings.data_dir, settings.public_key_file, settings.private_key_file,
                        settings.draft_key_file)
    db = await Database.open(settings.db_path)
    # Cases a relative erased stay erased, even in a database restored from an older backup.
    await asyncio.to_thread(erasures.reapply, settings.db_path, settings.data_dir)
    return Deps(
        settings=settings,
        db=db,
        keys=keys,
        users=UserRepository(db),
        drafts=DraftRepository(db, keys.seal_draft, keys.unseal_draft),
        cases=CaseRepository(db, keys.seal, keys.unseal),
        form=load_form(),
    )


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
    # of asking for it again forever (bot/telegram/polling.py).
    bot = ReadingBot(
        s.token,
        base_url=f"{s.api_base_url}/bot",
        base_file_url=f"{s.api_base_url}/file/bot",
        defaults=Defaults(parse_mode=ParseMode.HTML,
                          link_preview_options=LinkPreviewOptions(is_disabled=True)),
        # aiohttp instead of the default httpx: a fraction of the CPU per call (see
        # bot/telegram/http.py); same pool size and timeouts as before.
        request=AiohttpRequest(64, pool_timeout=10.0),
        get_updates_request=AiohttpRequest(1),
        rate_limiter=limiter,
    )
    app = (ApplicationBuilder().bot(bot).concurrent_updates(PerUserOrder(256))
           .context_types(ContextTypes(context=Context, bot_data=BotData)).build())
    data = bot_data(app)
    data.deps = d
    staff_view.set_timezone(s.timezone)  # staff read times in BOT_TIMEZONE
    data.flood_guard = privacy.FloodGuard()
    register_handlers(app, d)
    return app


# ----------------------------------------------------------------------------- handlers
# Order matters. For each update python-telegram-bot runs, group by group in increasing
# order, the first handler of the group whose filter matches; a handler that raises
# ApplicationHandlerStop ends the update there. Within MAIN_GROUP the first match wins, so the
# specific handlers come before the catch-alls at its end.

METER_GROUP = -6  # counts every update so broadcasts slow down for relatives; never stops one
FLOOD_GROUP = -5  # stops a user's updates while they send too fast (privacy.flood_gate)
GATE_GROUP = -4  # stops staff and admin commands and buttons from people without the role
PROMPT_GROUP = -3  # a staff member's reply to the bot's prompt, an admin's pick for /staff add
COMPOSE_GROUP = -2  # an admin's message that is part of the broadcast being composed (stops)
ANSWER_GROUP = -1  # a relative's answer to a staff question (stops), not a questionnaire answer
MAIN_GROUP = 0  # commands, buttons, then the questionnaire's catch-all
AFTER_GROUP = 1  # after the rest (their users row exists): the @username's tag (people.py)


def build_gate() -> access.Gate:
    """The one access gate: every staff and admin command and button prefix, with its role."""
    commands = {name: c.role for name, c in staff.COMMANDS.items()} | admin.COMMAND_ROLES
    return access.Gate(commands, {STAFF_PREFIX: "staff", BROADCAST_PREFIX: "admin"})


def handler_table(d: Deps, gate: access.Gate, meter: ActivityMeter
                  ) -> list[tuple[int, BaseHandler[Any, Any, Any]]]:
    """Every handler of the bot with its group, in the order they are tried."""
    private = filters.ChatType.PRIVATE
    groups = filters.ChatType.GROUPS
    staff_places = private
    if d.settings.staff_chat_id is not None:
        staff_places = private | filters.Chat(d.settings.staff_chat_id)  # type: ignore[assignment]
    message = private & filters.UpdateType.MESSAGE
    table: list[tuple[int, BaseHandler[Any, Any, Any]]] = [
        (METER_GROUP, TypeHandler(Update, meter, block=False)),
        (FLOOD_GROUP, TypeHandler(Update, privacy.flood_gate)),
        (GATE_GROUP, TypeHandler(Update, gate)),
    ]
    # Case work (bot/handlers/casework/): the question for needs_info or a Reply to a
    # relative, typed as a reply to the bot's prompt; the person an admin picks or forwards
    # after /staff add. Each stops the update when it is one; else it goes on.
    if d.settings.admin_ids:
        table.append((PROMPT_GROUP, MessageHandler(
            private & filters.User(user_id=d.settings.admin_ids)
            & (filters.StatusUpdate.USERS_SHARED | filters.FORWARDED), staff.on_pick)))
    table.append((PROMPT_GROUP, MessageHandler(message & filters.REPLY & ~filters.COMMAND,
                                               casework.prompt_reply)))
    if d.settings.admin_ids:
        admins = filters.User(user_id=d.settings.admin_ids)
        table.append((COMPOSE_GROUP, MessageHandler(
            message & admins & ~filters.COMMAND & (filters.TEXT | filters.PHOTO),
            admin.on_admin_message)))
    table.append((ANSWER_GROUP, MessageHandler(message & ~filters.COMMAND,
                                               staff.on_relative_message)))
    # Staff and admin commands and buttons: behind the gate, so none of them checks roles.
    table += [(MAIN_GROUP, CommandHandler(name, c.callback, filters=staff_places))
              for name, c in staff.COMMANDS.items()]
    table += [
        (MAIN_GROUP, CallbackQueryHandler(staff.on_button, pattern=f"^{STAFF_PREFIX}")),
        (MAIN_GROUP, CommandHandler("broadcast", admin.broadcast_cmd, filters=private)),
        (MAIN_GROUP, CommandHandler("broadcast_cancel", admin.broadcast_cancel_cmd,
                                    filters=private)),
        (MAIN_GROUP, CommandHandler("stats", admin.stats_cmd, filters=staff_places)),
        (MAIN_GROUP, CallbackQueryHandler(admin.on_button, pattern=f"^{BROADCAST_PREFIX}")),
    ]
    # The relative's commands and buttons.
    commands = {
        "stop_updates": updates.stop_updates_cmd,
        "start_updates": updates.start_updates_cmd,
        "start": relative.start_cmd,
        "language": relative.language_cmd,
        "new": relative.new_cmd,
        "status": relative.status_cmd,
        "help": relative.help_cmd,
        "cancel": relative.cancel_cmd,
        "delete": privacy.delete_cmd,
        "mydata": privacy.mydata_cmd,
    }
    table.append((MAIN_GROUP, MessageHandler(groups & filters.COMMAND, relative.group_message)))
    table += [(MAIN_GROUP, CommandHandler(name, callback, filters=private))
              for name, callback in commands.items()]
    buttons = {
        LANGUAGE_PREFIX: relative.on_language,
        FORM_PREFIX: relative.on_form_press,
        CANCEL_PREFIX: relative.on_cancel_choice,
        MENU_PREFIX: relative.on_menu,
        DELETE_PREFIX: privacy.on_delete_choice,
        CLEAN_CHAT_PREFIX: privacy.on_clean_chat,
        MYDATA_PREFIX: privacy.on_mydata_file,
        UPDATES_PREFIX: updates.on_updates_button,
        conversation.PREFIX + ":": conversation.on_press,
    }
    table += [(MAIN_GROUP, CallbackQueryHandler(callback, pattern=f"^{prefix}"))
              for prefix, callback in buttons.items()]
    # The catch-alls, last.
    table += [
        (MAIN_GROUP, CallbackQueryHandler(_answer_unknown_press)),
        (MAIN_GROUP, MessageHandler(private & filters.COMMAND, relative.unknown_cmd)),
        (MAIN_GROUP, MessageHandler(private & filters.UpdateType.EDITED_MESSAGE, _edited)),
        (MAIN_GROUP, MessageHandler(message, relative.on_message)),
        (AFTER_GROUP, TypeHandler(Update, people.record_username)),
    ]
    return table


def register_handlers(app: AnyApp, d: Deps) -> None:
    data = bot_data(app)
    data.meter = ActivityMeter()
    for group, handler in handler_table(d, build_gate(), data.meter):
        app.add_handler(handler, group=group)
    # What the relative's journey calls in staff code, which it cannot import.
    data.announce_case = staff.announce_case
    if app.job_queue is not None:  # the person index is built in memory at start-up
        app.job_queue.run_once(casework.build_index, 0, name="person-index")
    data.personal_menu = menus.set_personal_menu
    register_outbox_hook(app, staff.QUESTION_KIND, staff.question_outcome)
    register_outbox_hook(app, staff.alerts.ALERT_KIND, staff.alerts.alert_refused)
    app.add_error_handler(_on_error)


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
    """Report an unhandled error once, without personal data; count identical repeats.

    The update goes no further: no later handler group acts on an update that an earlier group
    failed on (the staff answers failing must not make the message a questionnaire answer; the
    gate failing must not let a staff command through).
    """
    data_of(context).errors.record(update, context.error)
    if update is not None:
        raise ApplicationHandlerStop


async def set_command_menus(app: AnyApp) -> None:
    """One command menu per language, shown by Telegram from the user's app language."""
    for lang in LANGUAGES:
        cmds = relative.bot_commands(translator(lang))
        await app.bot.set_my_commands(cmds, scope=BotCommandScopeAllPrivateChats(),
                                      language_code=lang)
    await app.bot.set_my_commands(relative.bot_commands(translator("en")),
                                  scope=BotCommandScopeAllPrivateChats())
    await menus.set_staff_menus(app.bot, deps_of(app))
