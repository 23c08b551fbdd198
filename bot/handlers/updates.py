"""Relatives choose whether they receive the organisation's news: /stop_updates, /start_updates.

Turning news off changes nothing else: volunteers can still write about the relative's cases.
"""

from __future__ import annotations

from telegram import Update
from telegram.ext import ContextTypes

from bot.handlers.common import deps
from bot.handlers.relative import with_language
from bot.i18n import N_, translator

STOPPED = N_(
    "You will no longer receive news from us. Volunteers can still write to you about your "
    "cases. To receive news again, send /start_updates."
)
STARTED = N_(
    "You will receive our news again, such as meetings and answers from international "
    "organisations. To stop them, send /stop_updates."
)
# Listed in the relatives' command menu by relative.COMMANDS.


async def _set_updates(update: Update, context: ContextTypes.DEFAULT_TYPE, enabled: bool) -> None:
    d = deps(context)
    lang = await with_language(update, d)  # also records the relative as seen
    user, chat = update.effective_user, update.effective_chat
    if lang is None or user is None or chat is None:
        return
    await d.users.set_updates(user.id, enabled)
    await chat.send_message(translator(lang)._(STARTED if enabled else STOPPED))


async def stop_updates_cmd(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    await _set_updates(update, context, False)


async def start_updates_cmd(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    await _set_updates(update, context, True)
