"""A relative writes to the volunteers at any time after submitting.

"✉️ Write to the volunteers" (main menu and /status) asks which case, when there are several,
then takes the next message. A free message sent with no report in progress and no staff
question waiting is offered to be added to a case. Either way the message (text, voice,
photo, document) is stored sealed in the case's history and reaches staff like an answer to
/ask. While a draft is open, messages go to the questionnaire as always.

The message waiting for its case is kept sealed with the server key (relative_threads); the
case chosen before writing is kept the same way, for THREAD_WAITS.
"""

from __future__ import annotations

import contextlib
import logging
from datetime import datetime, timedelta

from telegram import InlineKeyboardButton, Update
from telegram.error import BadRequest
from telegram.ext import ContextTypes

from bot.handlers.common import Deps, button, deps, esc, keyboard
from bot.i18n import Translator, translator
from bot.storage.cases import CaseSummary
from bot.storage.casework import CaseworkRepository
from bot.storage.staff import record_message

log = logging.getLogger(__name__)

#: A case chosen with "Write to the volunteers" waits this long for the message.
THREAD_WAITS = timedelta(hours=24)
PREFIX = "w"


def _repo(d: Deps) -> CaseworkRepository:
    return CaseworkRepository(d.db, d.keys.seal_draft, d.keys.unseal_draft)


def _now(d: Deps) -> str:
    return d.now().isoformat(timespec="seconds")


def write_button(t: Translator) -> InlineKeyboardButton:
    return button("✉️ " + t._("Write to the volunteers"), f"{PREFIX}:pick")


async def open_cases(d: Deps, user_id: int) -> list[CaseSummary]:
    return [c for c in await d.cases.for_user(user_id) if c.status != "withdrawn"]


def _case_buttons(t: Translator, cases: list[CaseSummary], action: str
                  ) -> list[list[InlineKeyboardButton]]:
    return [[button(t._("Case %(number)s") % {"number": c.number},
                    f"{PREFIX}:{action}:{c.case_id}")] for c in cases]


async def _ask_for_message(update: Update, d: Deps, t: Translator, case: CaseSummary) -> None:
    user = update.effective_user
    assert user is not None
    await _repo(d).set_thread(user.id, _now(d), case_id=case.case_id)
    chat = update.effective_chat
    assert chat is not None
    await chat.send_message(t._(
        "Write your message to the volunteers about case %(number)s: text, a voice message, "
        "a photo or a document.") % {"number": f"<code>{esc(case.number)}</code>"})


async def on_press(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """w:pick, w:c:CASE (write to this case), w:a:CASE (add the waiting message), w:n."""
    query, user, chat = update.callback_query, update.effective_user, update.effective_chat
    assert query is not None and user is not None and chat is not None
    d = deps(context)
    row = await d.users.get(user.id)
    t = translator(row.language if row is not None and row.language else "en")
    await query.answer()
    parts = (query.data or "").split(":")
    cases = await open_cases(d, user.id)
    by_id = {str(c.case_id): c for c in cases}
    if parts[1:2] == ["pick"]:
        if not cases:
            await chat.send_message(t._("You have no open case to write about."))
        elif len(cases) == 1:
            await _ask_for_message(update, d, t, cases[0])
        else:
            await chat.send_message(t._("Which case is your message about?"),
                                    reply_markup=keyboard(_case_buttons(t, cases, "c")))
        return
    with contextlib.suppress(BadRequest):
        await query.edit_message_reply_markup(None)
    if parts[1:2] == ["c"] and len(parts) == 3 and parts[2] in by_id:
        await _ask_for_message(update, d, t, by_id[parts[2]])
        return
    if parts[1:2] == ["a"] and len(parts) == 3 and parts[2] in by_id:
        thread = await _repo(d).thread(user.id)
        if thread is None or thread.content is None or thread.message_id is None:
            await chat.send_message(t._("This message is no longer waiting. Please send it "
                                        "again."))
            return
        await _repo(d).clear_thread(user.id)
        await deliver(context, d, t, by_id[parts[2]], chat.id, thread.message_id,
                      thread.content)
        return
    await _repo(d).clear_thread(user.id)
    await chat.send_message(t._("All right, the message was not passed on."))


async def take_message(update: Update, context: ContextTypes.DEFAULT_TYPE, lang: str) -> bool:
    """A message with no report in progress: to its chosen case, or offered for one.

    Returns False when the relative has no open case (the caller shows the main menu).
    """
    from bot.handlers.staff import answer_content  # the same content as answers to /ask

    message, user = update.effective_message, update.effective_user
    if message is None or user is None:
        return False
    content = answer_content(message)
    if content is None:
        return False
    d = deps(context)
    cases = await open_cases(d, user.id)
    if not cases:
        return False
    t = translator(lang)
    repo = _repo(d)
    thread = await repo.thread(user.id)
    if thread is not None and thread.case_id is not None and thread.content is None:
        chosen = next((c for c in cases if c.case_id == thread.case_id), None)
        fresh = d.now() - datetime.fromisoformat(thread.updated_at) < THREAD_WAITS
        if chosen is not None and fresh:
            await repo.clear_thread(user.id)
            await deliver(context, d, t, chosen, message.chat_id, message.message_id, content)
            return True
    await repo.set_thread(user.id, _now(d), message_id=message.message_id, content=content)
    if len(cases) == 1:
        text = t._("Shall I pass this message on to the volunteers working on your case "
                   "%(number)s?") % {"number": f"<code>{esc(cases[0].number)}</code>"}
        rows = [[button("✉️ " + t._("Yes, pass it on"), f"{PREFIX}:a:{cases[0].case_id}")]]
    else:
        text = t._("Shall I pass this message on to the volunteers? Choose the case it is "
                   "about.")
        rows = _case_buttons(t, cases, "a")
    rows.append([button("✖ " + t._("No"), f"{PREFIX}:n")])
    await message.reply_text(text, reply_markup=keyboard(rows))
    return True


async def deliver(context: ContextTypes.DEFAULT_TYPE, d: Deps, t: Translator,
                  case: CaseSummary, chat_id: int, message_id: int,
                  content: dict[str, object]) -> None:
    """Store the message sealed on the case, thank the relative, and show it to staff."""
    from bot.handlers.casework import post_relative_message

    await record_message(d.db, d.keys.seal, case.case_id, dict(content), _now(d))
    log.info("a relative wrote to the volunteers (%s)", content.get("kind"))
    await context.bot.send_message(chat_id, t._(
        "Thank you. Your message was passed on to the volunteers working on case "
        "%(number)s.") % {"number": f"<code>{esc(case.number)}</code>"})
    await post_relative_message(context, d, case.case_id, chat_id, message_id, dict(content))
