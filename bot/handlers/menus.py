"""Personal command menus: staff and admins see their commands in Telegram's "/" menu.

Relatives get one menu per language (all private chats) and, once they choose a language, the
same menu for their own chat. A staff member's own chat gets the relative's commands followed
by the staff commands their role allows (admins: also theirs), in their language. The menu is
set at start-up for everyone with a role, when someone chooses a language, and when an admin
adds or removes a staff member. Only the person's own chat has the menu: nobody else can see
who is staff from it.
"""

from __future__ import annotations

import logging

from telegram import Bot, BotCommand, BotCommandScopeChat
from telegram.error import TelegramError

from bot.handlers import relative, staff
from bot.handlers.access import Role, role_of, staff_ids
from bot.handlers.common import Deps
from bot.i18n import Translator, translator

log = logging.getLogger(__name__)

DESCRIPTION_LIMIT = 256  # Telegram's limit for a command's description


def _describe(usage: str) -> str:
    """The description from a usage line: "/case NUMBER: the case ..." -> "the case ..."."""
    _, sep, text = usage.partition(": ")
    text = (text if sep else usage).strip()
    if len(text) > DESCRIPTION_LIMIT:
        text = text[:DESCRIPTION_LIMIT - 1] + "…"
    return text or usage[:DESCRIPTION_LIMIT]


def role_commands(t: Translator, role: Role) -> list[BotCommand]:
    """The staff (and admin) commands `role` may use, described in t's language."""
    return [BotCommand(name, _describe(t._(usage))) for name, usage in staff.role_usages(role)]


def personal_commands(t: Translator, role: Role | None) -> list[BotCommand]:
    commands = relative.bot_commands(t)
    return commands + role_commands(t, role) if role is not None else commands


async def set_personal_menu(bot: Bot, d: Deps, user_id: int, lang: str | None = None) -> None:
    """The menu of `user_id`'s own chat, for their role, in their language (else English).

    Without a role and without a chosen language the chat-specific menu is removed, and the
    person sees the menu for their app's language.
    """
    role = await role_of(d, user_id)
    if lang is None:
        lang = await d.users.language_of(user_id)
    scope = BotCommandScopeChat(user_id)
    try:
        if role is None and lang is None:
            await bot.delete_my_commands(scope=scope)
        else:
            await bot.set_my_commands(personal_commands(translator(lang or "en"), role),
                                      scope=scope)
    except TelegramError as exc:  # e.g. a staff member who never opened the bot's chat
        log.info("could not set a personal command menu: %s", type(exc).__name__)


async def set_staff_menus(bot: Bot, d: Deps) -> int:
    """At start-up: the personal menu of everyone with a staff or admin role; how many."""
    ids = await staff_ids(d)
    for user_id in ids:
        await set_personal_menu(bot, d, user_id)
    return len(ids)
