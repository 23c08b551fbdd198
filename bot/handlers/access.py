"""The one gate in front of every staff and admin command and button.

It runs before any feature handler (a TypeHandler in bot/app.py's GATE_GROUP, built there once)
and knows every staff and admin command by name and every staff and admin button by its
prefix. For anyone without the role, or anywhere other than a private chat or the staff chat,
it answers exactly what an unknown command gets (the relative's "I do not know this command",
or in a group the "write to me privately" reply), answers a button press with nothing, and
stops the update there: staff and admin handlers never run for them, so they need no checks
of their own.

Staff buttons carry a short signature over their action, case and argument, so a button's data
cannot be edited to act on another case, and made-up data is refused even from staff.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from telegram import Chat, Message, Update
from telegram.constants import MessageEntityType
from telegram.ext import (
    ApplicationHandlerStop,
    ContextTypes,
    TypeHandler,
)

from bot.context import AnyApp
from bot.handlers import relative
from bot.handlers.common import CALLBACK_LIMIT, STAFF_PREFIX, Deps, deps
from bot.storage.staff import StaffRepository

log = logging.getLogger(__name__)

Role = Literal["staff", "admin"]
Callback = Callable[[Update, ContextTypes.DEFAULT_TYPE], Coroutine[Any, Any, None]]

#: Every staff button's callback data starts with this; the gate holds all of them.
BUTTON_PREFIX = STAFF_PREFIX
_TAG_BYTES = 6  # 8 characters of base64: forging one takes 2**48 tries against a live bot


@dataclass(frozen=True, slots=True)
class StaffCommand:
    role: Role
    callback: Callback
    usage: str  # msgid: "/case NUMBER: ..." shown by /staffhelp


# ----------------------------------------------------------------------------- roles


async def role_of(d: Deps, user_id: int) -> Role | None:
    """admin (BOT_ADMIN_IDS), staff (BOT_STAFF_IDS or added by an admin), or None."""
    if user_id in d.settings.admin_ids:
        return "admin"
    if user_id in d.settings.staff_ids or await StaffRepository(d.db).contains(user_id):
        return "staff"
    return None


def has_role(role: Role | None, needed: Role) -> bool:
    return role == "admin" or (role == "staff" and needed == "staff")


def staff_place(d: Deps, chat: Chat | None, user_id: int) -> bool:
    """Staff work in their own private chat with the bot and in the staff chat, nowhere else."""
    if chat is None:
        return False
    if chat.type == Chat.PRIVATE:
        return chat.id == user_id
    return d.settings.staff_chat_id is not None and chat.id == d.settings.staff_chat_id


async def staff_ids(d: Deps) -> list[int]:
    """Everyone with a staff role (admins included), for private announcements."""
    added = [m.user_id for m in await StaffRepository(d.db).all()]
    return sorted(set(d.settings.admin_ids) | set(d.settings.staff_ids) | set(added))


# ----------------------------------------------------------------------------- button data


def _button_key(d: Deps) -> bytes:
    # Derived from the server's signing key (or the draft key before there is one): stable
    # across restarts and reboots (old buttons keep working; the draft key may live on tmpfs),
    # never leaves the server, and is not the key that opens or signs anything.
    return hashlib.blake2b(b"staff-buttons", key=d.keys.button_secret,
                           digest_size=32).digest()


def _tag(d: Deps, body: str) -> str:
    mac = hmac.new(_button_key(d), body.encode(), hashlib.sha256).digest()[:_TAG_BYTES]
    return base64.urlsafe_b64encode(mac).decode("ascii")


def button_data(d: Deps, action: str, case_id: int, arg: str = "") -> str:
    """`s:<action>:<case_id>:<arg>:<tag>`, at most 64 bytes, signed over all of it."""
    body = f"{BUTTON_PREFIX}{action}:{case_id}:{arg}"
    data = f"{body}:{_tag(d, body)}"
    if len(data.encode()) > CALLBACK_LIMIT or ":" in action or ":" in arg:
        raise ValueError("staff button data must be at most 64 bytes, fields without ':'")
    return data


def parse_button(d: Deps, data: str) -> tuple[str, int, str] | None:
    """(action, case_id, arg) of a button we made; None for anything edited or made up."""
    body, _, tag = data.rpartition(":")
    parts = body.split(":")
    if len(parts) != 4 or f"{parts[0]}:" != BUTTON_PREFIX or not parts[2].lstrip("-").isdigit():
        return None
    if not hmac.compare_digest(tag, _tag(d, body)):
        return None
    return parts[1], int(parts[2]), parts[3]


# ----------------------------------------------------------------------------- the gate


def command_name(message: Message | None, bot_username: str | None) -> str | None:
    """The command a message starts with, as CommandHandler reads it (None if not ours)."""
    if message is None or not message.text or not message.entities:
        return None
    first = message.entities[0]
    if first.type != MessageEntityType.BOT_COMMAND or first.offset != 0:
        return None
    name, _, target = message.text[1:first.length].partition("@")
    if target and (bot_username is None or target.lower() != bot_username.lower()):
        return None  # addressed to another bot in the group
    return name.lower()


class Gate:
    """Lets staff and admin updates through only for people with the role, in staff places."""

    def __init__(self, commands: Mapping[str, Role], buttons: Mapping[str, Role]) -> None:
        self.commands = dict(commands)
        self.buttons = dict(buttons)

    def needed(self, update: Update, bot_username: str | None) -> tuple[str, Role] | None:
        """("command"|"button", role) when the update is a staff or admin one."""
        query = update.callback_query
        if query is not None:
            prefix = next((p for p in self.buttons if (query.data or "").startswith(p)), None)
            return ("button", self.buttons[prefix]) if prefix is not None else None
        # Any message that carries a command: edited ones and channel posts too, which
        # CommandHandler would also take (a channel post has no user, so it is refused).
        name = command_name(update.effective_message, bot_username)
        if name is None or name not in self.commands:
            return None
        return "command", self.commands[name]

    async def __call__(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        need = self.needed(update, context.bot.username)
        if need is None:
            return
        kind, role = need
        d = deps(context)
        user = update.effective_user
        chat = update.effective_chat
        if user is not None and staff_place(d, chat, user.id) \
                and has_role(await role_of(d, user.id), role):
            return
        log.info("refused a %s %s from a user without the role", role, kind)
        await refuse(update, context, kind)
        raise ApplicationHandlerStop


async def refuse(update: Update, context: ContextTypes.DEFAULT_TYPE, kind: str) -> None:
    """Exactly what an unknown command or a stale button gets: no hint that anything exists."""
    if kind == "button":
        if update.callback_query is not None:
            await update.callback_query.answer()
        return
    chat = update.effective_chat
    if chat is None:
        return
    if chat.type == Chat.PRIVATE:
        await relative.unknown_cmd(update, context)
    elif chat.type in (Chat.GROUP, Chat.SUPERGROUP):
        await relative.group_message(update, context)


def gate_of(app: AnyApp) -> Gate | None:
    """The gate installed in `app` (bot/app.py builds it), for tests."""
    for handlers in app.handlers.values():
        for handler in handlers:
            if isinstance(handler, TypeHandler) and isinstance(handler.callback, Gate):
                return handler.callback
    return None
