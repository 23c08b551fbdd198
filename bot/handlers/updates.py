"""Relatives choose whether they receive the organisation's news: /stop_updates, /start_updates.

Turning news off changes nothing else: volunteers can still write about the relative's cases.
"""

from __future__ import annotations

from telegram import InlineKeyboardMarkup, Update
from telegram.ext import ContextTypes

from bot.handlers.common import UPDATES_PREFIX, button, deps, keyboard
from bot.handlers.relative import with_language
from bot.i18n import N_, Translator, translator

STOPPED = N_(
    "You will no longer receive news from us. Volunteers can still write to you about your "
    "cases. To receive news again, press the button below."
)
STARTED = N_(
    "You will receive our news again, such as meetings and answers from international "
    "organisations. To stop them, press the button below."
)
# Listed in the relatives' command menu by relative.COMMANDS; broadcasts carry the "u:off"
# button (bot/services/broadcast.py), so nobody has to type a command.


def toggle_keyboard(t: Translator, enabled: bool) -> InlineKeyboardMarkup | None:
    """The button that undoes what was just chosen."""
    if enabled:
        return keyboard([[button("🔕 " + t._("Stop receiving news"), f"{UPDATES_PREFIX}off")]])
    return keyboard([[button("🔔 " + t._("Receive news again"), f"{UPDATES_PREFIX}on")]])


async def _set_updates(update: Update, context: ContextTypes.DEFAULT_TYPE, enabled: bool) -> None:
    d = deps(context)
    lang = await with_language(update, d)  # also records the relative as seen
    user, chat = update.effective_user, update.effective_chat
    if lang is None or user is None or chat is None:
        return
    await d.users.set_updates(user.id, enabled)
    t = translator(lang)
    await chat.send_message(t._(STARTED if enabled else STOPPED),
                            reply_markup=toggle_keyboard(t, enabled))


async def on_updates_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """🔕 under a broadcast or 🔔 under the answer: the same as the commands."""
    query = update.callback_query
    if query is None:
        return
    await query.answer()
    choice = (query.data or "").removeprefix(UPDATES_PREFIX)
    if choice in ("on", "off"):
        await _set_updates(update, context, choice == "on")


async def stop_updates_cmd(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    await _set_updates(update, context, False)


async def start_updates_cmd(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    await _set_updates(update, context, True)
