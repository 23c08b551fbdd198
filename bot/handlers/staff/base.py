"""Helpers every part of the staff side shares: who acts, where to answer, where news goes."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterable
from typing import Any

from telegram import InlineKeyboardMarkup, Message, Update
from telegram.error import BadRequest, Forbidden
from telegram.ext import ContextTypes

from bot.errors import MALFORMED_HTML
from bot.handlers import access
from bot.handlers.common import Deps, deps, esc
from bot.handlers.people import remember
from bot.i18n import LANGUAGES, N_, Translator, translator
from bot.services.case_numbers import has_check_digit_mistake, parse_case_number
from bot.storage.staff import CaseInfo, Workflow
from bot.storage.staff_messages import StaffMessages

log = logging.getLogger(__name__)

#: The staff chat's language when no settings are at hand (BOT_STAFF_LANGUAGE's default);
#: the bot uses d.settings.staff_language.
STAFF_CHAT_LANGUAGE = "ru"


# ----------------------------------------------------------------------------- helpers


def _wf(d: Deps) -> Workflow:
    return Workflow(d.db, d.keys.seal, d.keys.unseal)


async def staff_language(d: Deps, user_id: int) -> str:
    lang = await d.users.language_of(user_id, "en")
    return lang if lang in LANGUAGES else "en"


async def _who(update: Update, context: ContextTypes.DEFAULT_TYPE
               ) -> tuple[Deps, int, int, Translator]:
    """(deps, the staff member's id, the chat to answer in, their translator)."""
    d = deps(context)
    user, chat = update.effective_user, update.effective_chat
    assert user is not None and chat is not None  # the gate let a staff member through
    await remember(d, user.id, user.first_name, user.username)  # shown by name, not number
    return d, user.id, chat.id, translator(await staff_language(d, user.id))


def _rest(update: Update, skip: int) -> str:
    """The command's text after its first `skip` words, line breaks kept (notes, questions)."""
    message = update.effective_message
    text = message.text if message is not None and message.text else ""
    parts = re.split(r"(\s+)", text.strip(), maxsplit=skip)
    return parts[-1].strip() if len(parts) > 2 * skip else ""


async def _reply(context: ContextTypes.DEFAULT_TYPE, chat_id: int, text: str,
                 markup: InlineKeyboardMarkup | None = None) -> Message | None:
    """Send, logging (without content) instead of failing when the chat cannot be reached."""
    try:
        return await context.bot.send_message(chat_id, text, reply_markup=markup)
    except (Forbidden, BadRequest) as exc:
        if isinstance(exc, BadRequest) and MALFORMED_HTML in exc.message.lower():
            raise  # our own HTML: reported by the error handler, not taken for a lost chat
        log.warning("could not send to a staff or relative chat: %s", type(exc).__name__)
        return None


async def _usage(context: ContextTypes.DEFAULT_TYPE, chat_id: int, t: Translator,
                 name: str) -> None:
    from bot.handlers.staff import COMMANDS  # the table needs every handler: imported late
    await _reply(context, chat_id, esc(t._(COMMANDS[name].usage)))


async def _case_arg(context: ContextTypes.DEFAULT_TYPE, d: Deps, chat_id: int, t: Translator,
                    name: str, text: str) -> CaseInfo | None:
    """The case a command names, or None after telling the staff member what is wrong."""
    number = parse_case_number(text)
    if number is None:
        if has_check_digit_mistake(text):
            await _reply(context, chat_id, esc(t._(
                "This case number has a mistake: a digit is wrong or two are swapped. Please "
                "check it against what the relative wrote down.")))
            return None
        await _usage(context, chat_id, t, name)
        return None
    case = await _wf(d).case(number)
    if case is None:
        await _reply(context, chat_id, t._("There is no case %(number)s.")
                     % {"number": f"<code>{esc(number)}</code>"})
    return case


def in_chat_language(d: Deps, chat_id: int, t: Translator) -> Translator:
    """What is posted in the staff group reads BOT_STAFF_LANGUAGE; elsewhere, the member's."""
    return translator(d.settings.staff_language) if chat_id == d.settings.staff_chat_id else t


def _staff_chat(d: Deps) -> int | None:
    return d.settings.staff_chat_id


async def notice_targets(d: Deps) -> list[tuple[int, str]]:
    """Where non-identifying notices go (new case, status, who took it, "new answer"): the
    staff chat; without one, every staff member privately."""
    chat = _staff_chat(d)
    if chat is not None:
        return [(chat, d.settings.staff_language)]
    return [(uid, await staff_language(d, uid)) for uid in await access.staff_ids(d)]


async def content_targets(d: Deps, assignee: int | None) -> list[tuple[int, str]]:
    """Who is sent case content (a relative's answer): the assignee, while they are still
    staff; else every staff member. Private chats only, never the staff chat; the roles are
    read again for every delivery, so someone removed from staff gets nothing more."""
    if assignee is not None and access.has_role(await access.role_of(d, assignee), "staff"):
        ids = [assignee]
    else:
        ids = await access.staff_ids(d)
    return [(uid, await staff_language(d, uid)) for uid in ids]


async def record_sent(d: Deps, chat_id: int, messages: Iterable[Any], case_id: int | None,
                      kind: str) -> None:
    """Remember messages with case content, to delete them later (bot/services/takeback.py)."""
    ids = [int(m.message_id) for m in messages if m is not None]
    await StaffMessages(d.db).record(chat_id, ids, case_id, kind, time.time())


#: Told in the staff chat (or as a button's toast) instead of showing case content there.
SENT_PRIVATELY = N_("I sent it to you in a private chat.")
PRIVATE_FIRST = N_("I cannot write to you privately. Open a private chat with me, press Start, "
                   "then try again.")
