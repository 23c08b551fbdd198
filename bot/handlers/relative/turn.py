"""What every relative handler shares: the user's language (asked for when not chosen), the
draft loaded from storage, the main menu, and sending to the chat."""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from telegram import (
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Message,
    Update,
)
from telegram.error import NetworkError, TelegramError
from telegram.ext import ContextTypes

from bot.errors import telegram_noise
from bot.form import engine
from bot.form.engine import DraftState
from bot.handlers import conversation
from bot.handlers.common import (
    LANGUAGE_PREFIX,
    MENU_PREFIX,
    Deps,
    button,
    deps,
    keyboard,
)
from bot.i18n import LANGUAGE_NAMES, LANGUAGES, Translator, translator

log = logging.getLogger(__name__)


async def user_language(update: Update, d: Deps) -> str | None:
    user = update.effective_user
    assert user is not None
    row = await d.users.seen(user.id, d.now_iso())
    return row.language


async def send_to_chat(update: Update, text: str, markup: InlineKeyboardMarkup | None = None
                       ) -> Message:
    chat = update.effective_chat
    assert chat is not None
    return await chat.send_message(text, reply_markup=markup)


async def strip_keyboard(context: ContextTypes.DEFAULT_TYPE, chat_id: int,
                         message_id: int | None) -> None:
    """Take the buttons off an old question so they cannot be pressed by mistake."""
    if message_id is None:
        return
    try:
        with telegram_noise():  # already without buttons, or deleted
            await context.bot.edit_message_reply_markup(chat_id, message_id, reply_markup=None)
    except TelegramError as exc:
        # Cosmetic: an old question keeping its buttons is harmless (its presses are stale and
        # answered so), while failing here would leave the relative without the next step.
        log.info("could not take the buttons off an old question: %s", type(exc).__name__)


def language_keyboard() -> InlineKeyboardMarkup | None:
    """Kazakh first, whatever the phone's language: many Kazakh-speakers run Telegram in
    Russian, and they are most of the people this bot serves."""
    return keyboard([[button(LANGUAGE_NAMES[lang], f"{LANGUAGE_PREFIX}{lang}")]
                     for lang in LANGUAGES])


LANGUAGE_PROMPT = "Тілді таңдаңыз · Выберите язык · Choose your language"


async def ask_language(update: Update) -> None:
    for attempt in range(3):
        try:
            await send_to_chat(update, LANGUAGE_PROMPT, language_keyboard())
            return
        except NetworkError:
            # Unlike a question, a second copy of this prompt can do no harm (either copy's
            # buttons work), so it is sent again even when the first may have arrived.
            if attempt == 2:
                raise
            await asyncio.sleep(2.0 * (attempt + 1))


async def load_state(d: Deps, user_id: int) -> tuple[DraftState, Any] | None:
    row = await d.drafts.get(user_id)
    if row is None:
        return None
    return engine.upgrade(d.form, DraftState.from_json(row.state)), row


async def main_menu(update: Update, lang: str, d: Deps) -> None:
    t = translator(lang)
    user = update.effective_user
    assert user is not None
    has_cases = bool(await d.cases.for_user(user.id))
    text = t._("What would you like to do?") if has_cases else t._(
        "This bot takes reports about family members who disappeared in Xinjiang: detained, "
        "sent to a camp or prison, or out of contact. Volunteers read every report."
    )
    can_write = bool(await conversation.open_cases(d, user.id))
    await send_to_chat(update, text, menu_keyboard(t, has_cases=has_cases, can_write=can_write))


def menu_keyboard(t: Translator, *, has_cases: bool, can_write: bool
                  ) -> InlineKeyboardMarkup | None:
    return keyboard([
        [button("📝 " + t._("Report a missing person"), f"{MENU_PREFIX}new")],
        [button("📋 " + t._("My cases"), f"{MENU_PREFIX}status")] if has_cases else [],
        [conversation.write_button(t)] if can_write else [],
        [button("🌐 " + t._("Language"), f"{MENU_PREFIX}lang"),
         button("❓ " + t._("Help"), f"{MENU_PREFIX}help")],
    ])


def action_button(t: Translator, action: str) -> InlineKeyboardButton:
    """A button under one of our texts, in place of a typed command (kept on the message)."""
    label = {"new": "📝 " + t._("Report a missing person"), "status": "📋 " + t._("My cases"),
             "help": "❓ " + t._("Help"), "again": "📝 " + t._("Start again")}[action]
    return button(label, f"{MENU_PREFIX}{'new' if action == 'again' else action}:k")


async def with_language(update: Update, d: Deps) -> str | None:
    """The user's language; asks for it (and returns None) when not chosen yet."""
    lang = await user_language(update, d)
    if lang is None:
        await ask_language(update)
    return lang


@dataclass(frozen=True, slots=True)
class RelativeTurn:
    """One update from a relative who has chosen a language: what every handler needs to
    answer it, built once (``relative_turn``) instead of at the top of each handler."""

    update: Update
    context: ContextTypes.DEFAULT_TYPE
    d: Deps
    user_id: int
    chat_id: int
    lang: str
    t: Translator


async def relative_turn(update: Update, context: ContextTypes.DEFAULT_TYPE
                        ) -> RelativeTurn | None:
    """The turn of this update (the user is recorded as seen), or None after asking for the
    language when the relative has not chosen one yet."""
    d = deps(context)
    lang = await with_language(update, d)
    if lang is None:
        return None
    user = update.effective_user
    assert user is not None
    chat = update.effective_chat
    return RelativeTurn(update=update, context=context, d=d, user_id=user.id,
                        chat_id=chat.id if chat is not None else user.id, lang=lang,
                        t=translator(lang))


Handler = Callable[[Update, ContextTypes.DEFAULT_TYPE], Coroutine[Any, Any, None]]


def relative_handler(handler: Callable[[RelativeTurn], Awaitable[None]]) -> Handler:
    """A handler of the relative's that needs their language: it gets a RelativeTurn, and is
    not called (the language is asked for instead) while none is chosen."""

    @functools.wraps(handler)
    async def run(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        turn = await relative_turn(update, context)
        if turn is not None:
            await handler(turn)

    return run
