"""Who is staff (/staff) and the commands each role may use (/staffhelp, the menus)."""

from __future__ import annotations

import logging
import re

from telegram import (
    KeyboardButton,
    KeyboardButtonRequestUsers,
    MessageOriginUser,
    ReplyKeyboardMarkup,
    ReplyKeyboardRemove,
    Update,
)
from telegram.ext import ApplicationHandlerStop, ContextTypes

from bot.context import data_of
from bot.handlers import access, admin
from bot.handlers.access import has_role, role_of
from bot.handlers.common import Deps, button, deps, esc, keyboard
from bot.handlers.people import find_by_username, remember, staff_name
from bot.handlers.staff.base import (
    _reply,
    _usage,
    _wf,
    _who,
    staff_language,
)
from bot.i18n import Translator, translator
from bot.storage.casework import CaseworkRepository
from bot.storage.staff import (
    StaffRepository,
)

log = logging.getLogger(__name__)

# ----------------------------------------------------------------------------- staff list


async def staff_cmd(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Admins only: /staff list, /staff add ID, /staff remove ID."""
    d, actor, chat_id, t = await _who(update, context)
    args = context.args or []
    settings = d.settings
    repo = StaffRepository(d.db)
    if args[:1] == ["list"] or not args:
        members = await repo.all()
        admins = [await staff_name(d, i) for i in sorted(settings.admin_ids)]
        configured = [await staff_name(d, i) for i in sorted(settings.staff_ids)]
        in_bot = [await staff_name(d, m.user_id) + " · " + t._("added by %(admin)s") % {
            "admin": await staff_name(d, m.added_by)} for m in members]
        sections = [(t._("Admins (BOT_ADMIN_IDS)"), admins),
                    (t._("Staff (BOT_STAFF_IDS)"), configured),
                    (t._("Staff added in the bot"), in_bot)]
        lines = []
        for title, ids in sections:
            lines += [f"<b>{esc(title)}</b>", *(ids or ["—"])]
        await _reply(context, chat_id, "\n".join(lines))
        return
    if args == ["add"]:
        await ask_to_pick(context, d, actor, chat_id, t)
        return
    if len(args) != 2 or args[0] not in ("add", "remove") \
            or not (args[1].isdigit() or USERNAME.fullmatch(args[1])):
        await _usage(context, chat_id, t, "staff")
        return
    named = None
    if not args[1].isdigit():  # @username: someone who started the bot, or known staff
        named = await find_by_username(context, d, args[1])
        if named is None:
            await _reply(context, chat_id, esc(unknown_username(t, args[0], args[1])))
            return
    target = named.user_id if named is not None else int(args[1])
    if args[0] == "add":
        await add_member(context, d, actor, chat_id, t, target,
                         *((named.first_name, named.username) if named else ()))
        return
    who = {"staff": await staff_name(d, target)}
    if target in settings.admin_ids or target in settings.staff_ids:
        text = t._("%(staff)s is staff by a setting (BOT_STAFF_IDS or BOT_ADMIN_IDS); change "
                   "the setting instead.") % who
    else:
        removed = await repo.remove(target, actor, d.now_iso())
        text = (t._("%(staff)s is no longer staff.") if removed
                else t._("%(staff)s was not staff.")) % who
        if removed:
            numbers = await _wf(d).unassign_all(target, actor, d.now_iso())
            if numbers:
                text += "\n" + t.ngettext(
                    "Their %(count)s open case is now assigned to nobody: %(numbers)s.",
                    "Their %(count)s open cases are now assigned to nobody: %(numbers)s.",
                    len(numbers)) % {"count": len(numbers), "numbers": ", ".join(
                        f"<code>{esc(n)}</code>" for n in numbers)}
            if settings.staff_chat_id is not None:
                text += "\n⚠️ " + esc(t._(
                    "Remove them from the staff group too: everyone in it sees new-case "
                    "alerts and status changes."))
    await _reply(context, chat_id, text)
    personal_menu = data_of(context).personal_menu  # their "/" menu (menus.py)
    if personal_menu is not None:
        await personal_menu(context.bot, d, target)


#: A Telegram @username (5-32 letters, digits and underscores).
USERNAME = re.compile(r"@[A-Za-z][A-Za-z0-9_]{3,31}")


def unknown_username(t: Translator, verb: str, username: str) -> str:
    if verb == "remove":
        return t._("I do not know %(username)s. Send /staff list and remove them by their "
                   "number.") % {"username": username}
    return t._("I do not know %(username)s. The bot finds a person by @username only once "
               "they have started it, and never among relatives who reported. Send /staff add "
               "and choose the person with the button, or forward me a message they "
               "wrote.") % {"username": username}


#: The request_id of the user-picker button of /staff add.
PICK_STAFF = 1


async def ask_to_pick(context: ContextTypes.DEFAULT_TYPE, d: Deps, actor: int, chat_id: int,
                      t: Translator) -> None:
    """/staff add without an id: Telegram's user picker, or a forwarded message."""
    if chat_id != actor:
        await _reply(context, chat_id, esc(t._("Send /staff add in a private chat with me.")))
        return
    markup = ReplyKeyboardMarkup(
        [[KeyboardButton("👤 " + t._("Choose the person"), request_users=KeyboardButtonRequestUsers(
            PICK_STAFF, user_is_bot=False, max_quantity=1, request_name=True,
            request_username=True))]], resize_keyboard=True, one_time_keyboard=True)
    sent = await context.bot.send_message(chat_id, esc(t._(
        "Who should become staff? Choose the person with the button below, or forward me a "
        "message they wrote.")), reply_markup=markup)
    await CaseworkRepository(d.db).put_prompt(chat_id, sent.message_id, actor, "staff_add",
                                              None, [], d.now_iso())


async def add_member(context: ContextTypes.DEFAULT_TYPE, d: Deps, actor: int, chat_id: int,
                     t: Translator, target: int, first_name: str | None = None,
                     username: str | None = None) -> None:
    """Add a staff member (by id, picker or forward), warning about who they are."""
    if first_name or username:
        await remember(d, target, first_name, username)
    who = {"staff": await staff_name(d, target)}
    settings = d.settings
    if target in settings.admin_ids or target in settings.staff_ids:
        text = t._("%(staff)s is staff by a setting (BOT_STAFF_IDS or BOT_ADMIN_IDS); change "
                   "the setting instead.") % who
    else:
        added = await StaffRepository(d.db).add(target, actor, d.now_iso())
        text = (t._("%(staff)s is now staff.") if added
                else t._("%(staff)s is already staff.")) % who
        if added and await d.users.get(target) is None:
            text += "\n⚠️ " + esc(t._("They have never started the bot: ask them to open a "
                                      "private chat with it and press Start, or it cannot "
                                      "send them cases."))
        if added and await d.cases.for_user(target):
            text += "\n⚠️ " + esc(t._("They have reported as a relative: their own cases stay "
                                      "with them; make sure they should see other families' "
                                      "cases."))
    await context.bot.send_message(chat_id, text, reply_markup=ReplyKeyboardRemove())
    personal_menu = data_of(context).personal_menu  # their "/" menu (menus.py)
    if personal_menu is not None:
        await personal_menu(context.bot, d, target)


async def on_pick(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """An admin's picked user or forwarded message after /staff add (stops here); anything
    else goes on to the relative's journey (an admin may also report)."""
    message, user = update.effective_message, update.effective_user
    if message is None or user is None:
        return
    d = deps(context)
    target: tuple[int, str | None, str | None] | None = None
    shared = message.users_shared
    if shared is not None and shared.request_id == PICK_STAFF and shared.users:
        picked = shared.users[0]
        target = (picked.user_id, picked.first_name, picked.username)
    origin = message.forward_origin
    if isinstance(origin, MessageOriginUser):
        sender = origin.sender_user
        target = (sender.id, sender.first_name, sender.username)
    prompt = (await CaseworkRepository(d.db).take_latest_prompt(user.id, "staff_add")
              if target is not None else None)
    if prompt is None or target is None:
        return
    t = translator(await staff_language(d, user.id))
    await remember(d, user.id, user.first_name, user.username)
    await add_member(context, d, user.id, message.chat_id, t, *target)
    raise ApplicationHandlerStop


async def staff_welcome(update: Update, context: ContextTypes.DEFAULT_TYPE) -> bool:
    """/start from a staff member or admin: their commands, and a way to report as a relative
    too. False for everyone else (the relative's /start)."""
    user, chat = update.effective_user, update.effective_chat
    if user is None or chat is None:
        return False
    d = deps(context)
    role = await role_of(d, user.id)
    if not has_role(role, "staff"):
        return False
    await remember(d, user.id, user.first_name, user.username)
    t = translator(await staff_language(d, user.id))
    lines = ["<b>" + esc(t._("Welcome, %(name)s. You are an admin of this bot.") if role ==
                         "admin" else t._("Welcome, %(name)s. You are staff in this bot.")) % {
        "name": esc(user.first_name)} + "</b>", esc(t._(
            "New cases are announced in the staff group; cards, answers and files come to "
            "this private chat. Your commands:"))]
    lines += [esc(t._(usage)) for _, usage in role_usages(role)]
    kb = keyboard([[button("📝 " + t._("Report a missing person as a relative"), "m:new")],
                   [button("🌐 " + t._("Language"), "m:lang")]])
    await chat.send_message("\n".join(lines), reply_markup=kb)
    return True


async def staffhelp_cmd(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    d, actor, chat_id, t = await _who(update, context)
    if chat_id != actor and chat_id == d.settings.staff_chat_id:
        t = translator(d.settings.staff_language)  # the group reads one language
    role = await role_of(d, actor)
    lines = ["<b>" + esc(t._("Staff commands")) + "</b>"]
    lines += [esc(t._(usage)) for _, usage in role_usages(role)]
    await _reply(context, chat_id, "\n".join(lines))


def role_usages(role: access.Role | None) -> list[tuple[str, str]]:
    """(command, usage msgid) of every staff and admin command `role` may use."""
    from bot.handlers.staff import COMMANDS  # the table needs every handler: imported late
    usages = [(name, c.role, c.usage) for name, c in COMMANDS.items()]
    usages += [(name, needed, admin.USAGES[name])
               for name, needed in admin.COMMAND_ROLES.items()]
    return [(name, usage) for name, needed, usage in usages if has_role(role, needed)]
