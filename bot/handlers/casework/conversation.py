"""The conversation with the relative: the needs_info question, /ask and the Reply button, and
relatives' messages shown to staff like answers."""

from __future__ import annotations

import json
import logging
from typing import Any

from telegram import ForceReply, Update
from telegram.error import TelegramError
from telegram.ext import ApplicationHandlerStop, ContextTypes

from bot.handlers.access import button_data, has_role, role_of
from bot.handlers.casework.base import QUESTION_KIND, _now, _repo, _wf
from bot.handlers.casework.statuses import apply_status, persons_label, relative_language
from bot.handlers.common import Deps, button, deps, esc, keyboard, split_html
from bot.handlers.staff_view import status_label, text_blocks
from bot.i18n import Translator, translator
from bot.services.outbox import outbox_repository, send_outbox_now
from bot.storage.staff import CaseInfo

log = logging.getLogger(__name__)

# ----------------------------------------------------------------------------- needs_info


async def ask_for_question(context: ContextTypes.DEFAULT_TYPE, d: Deps, chat_id: int,
                           actor: int, t: Translator, case: CaseInfo,
                           persons: list[int] | None) -> bool:
    """needs_info: ask the staff member, in their private chat, what to ask; their reply sets
    the status and sends both together (on_prompt_reply). False when that chat is closed."""
    chosen = persons or [p for p, _ in await _repo(d).person_statuses(case.case_id)]
    text = t._("What should the relative of case %(number)s be asked (%(persons)s)? Reply to "
               "this message with the question; the status changes to «%(status)s» when you "
               "send it.") % {"number": case.number,
                              "persons": persons_label(t, persons, case.persons_count),
                              "status": status_label(t, "needs_info")}
    try:  # privately: the question is case content
        sent = await context.bot.send_message(actor, esc(text),
                                              reply_markup=ForceReply(selective=True))
    except TelegramError as exc:
        log.warning("could not ask staff for a question: %s", type(exc).__name__)
        return False
    await _repo(d).put_prompt(actor, sent.message_id, actor, "needs_info", case.case_id,
                              chosen, _now(d))
    return True


async def prompt_reply(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """app.py's PROMPT_GROUP: a staff member's reply to a prompt of ours stops here."""
    user = update.effective_user
    if user is None:
        return
    if has_role(await role_of(deps(context), user.id), "staff") \
            and await on_prompt_reply(update, context):
        raise ApplicationHandlerStop


async def on_prompt_reply(update: Update, context: ContextTypes.DEFAULT_TYPE) -> bool:
    """A staff member's reply to a prompt of ours (the needs_info question, a reply to a
    relative's message); True when it was one."""
    from bot.handlers.staff.base import _reply, staff_language

    message, user = update.effective_message, update.effective_user
    if message is None or user is None or message.reply_to_message is None:
        return False
    d = deps(context)
    prompt = await _repo(d).take_prompt(message.chat_id, message.reply_to_message.message_id)
    if prompt is None:
        return False
    t = translator(await staff_language(d, user.id))
    case = await _wf(d).case_by_id(prompt.case_id)
    text = (message.text or "").strip()
    if case is None or not text:
        await _reply(context, message.chat_id, esc(t._(
            "Please reply with the question as text.")))
        if case is not None and not text:  # keep waiting for a proper reply
            await _repo(d).put_prompt(message.chat_id, message.reply_to_message.message_id,
                                      prompt.staff_id, prompt.kind, prompt.case_id,
                                      prompt.persons, prompt.created_at)
        return True
    if prompt.kind == "needs_info":
        await apply_status(context, d, message.chat_id, user.id, t, case,
                           list(prompt.persons), "needs_info", question=text)
    else:
        await send_question(context, d, message.chat_id, user.id, t, case, text)
    return True


async def send_question(context: ContextTypes.DEFAULT_TYPE, d: Deps, chat_id: int, actor: int,
                        t: Translator, case: CaseInfo, text: str) -> None:
    """A question to the relative (/ask, or the Reply button): recorded sealed, then sent
    through the outbox; its hook records the message and tells the staff member."""
    from bot.handlers.staff.base import _reply

    number = f"<code>{esc(case.number)}</code>"
    if case.user_id is None or case.status == "withdrawn":
        await _reply(context, chat_id, t._("The relative of case %(number)s can no longer be "
                                           "reached.") % {"number": number})
        return
    question_id = await _wf(d).ask(case, text, actor, _now(d))
    await _queue_question(context, d, chat_id, t, case, question_id, text)


async def _queue_question(context: ContextTypes.DEFAULT_TYPE, d: Deps, chat_id: int,
                          t: Translator, case: CaseInfo, question_id: int, text: str) -> None:
    """Send a recorded question through the outbox, at once."""
    assert case.user_id is not None
    number = f"<code>{esc(case.number)}</code>"
    rt = translator(await relative_language(d, case))
    message = (rt._("<b>A question from the volunteers about your case %(number)s</b>")
               % {"number": number} + "\n\n" + esc(text) + "\n\n"
               + rt._("Please answer by replying to this message: with text, a voice message, "
                      "a photo or a document."))
    meta = {"question": question_id, "case": case.number, "chat": chat_id, "lang": t.lang}
    outbox_id = await outbox_repository(d).enqueue(
        d.db, case.user_id, message, "HTML", ForceReply(selective=True).to_json(),
        kind=QUESTION_KIND, dedup_key=f"question:{question_id}", meta=json.dumps(meta))
    if outbox_id is not None:
        await send_outbox_now(context.application, outbox_id)


async def ask_reply(context: ContextTypes.DEFAULT_TYPE, d: Deps, chat_id: int, actor: int,
                    t: Translator, case: CaseInfo) -> bool:
    """The Reply button under a relative's message: prompt for the answer."""
    text = t._("Your answer to the relative of case %(number)s: reply to this message.") % {
        "number": case.number}
    try:  # privately: the answer is case content
        sent = await context.bot.send_message(actor, esc(text),
                                              reply_markup=ForceReply(selective=True))
    except TelegramError as exc:
        log.warning("could not prompt staff for a reply: %s", type(exc).__name__)
        return False
    await _repo(d).put_prompt(actor, sent.message_id, actor, "ask", case.case_id, [],
                              _now(d))
    return True


# ----------------------------------------------------------------------------- relatives' messages


async def post_relative_message(context: ContextTypes.DEFAULT_TYPE, d: Deps, case_id: int,
                                from_chat: int, message_id: int,
                                content: dict[str, Any]) -> None:
    """Show a relative's message to staff like an answer to /ask: the content to the
    assignee's private chat (or every staff member's), with Open and Reply; the staff chat
    only hears that there is a new message."""
    from bot.handlers.staff.base import _reply, _staff_chat, content_targets, record_sent
    from bot.storage.staff_messages import ANSWER

    case = await _wf(d).case_by_id(case_id)
    if case is None:
        return
    number = f"<code>{esc(case.number)}</code>"
    for chat_id, lang in await content_targets(d, case.assignee_id):
        t = translator(lang)
        head = "✉️ " + t._("<b>Message from the relative, case %(number)s</b>") % {
            "number": number}
        kb = keyboard([[button("📂 " + t._("Open"), button_data(d, "open", case_id)),
                        button("↩️ " + t._("Reply"), button_data(d, "rp", case_id))]])
        sent: list[Any] = []
        if content.get("kind") == "text":
            messages = split_html(text_blocks(head, str(content.get("text", ""))))
            for text in messages[:-1]:
                sent.append(await _reply(context, chat_id, text))
            sent.append(await _reply(context, chat_id, messages[-1], kb))
        else:
            sent.append(await _reply(context, chat_id, head, kb))
            if sent[-1] is not None:
                try:
                    sent.append(await context.bot.copy_message(chat_id, from_chat, message_id))
                except TelegramError as exc:
                    log.warning("could not copy a relative's message to staff: %s",
                                type(exc).__name__)
        await record_sent(d, chat_id, sent, case_id, ANSWER)
    staff_chat = _staff_chat(d)
    if staff_chat is not None:
        t = translator(d.settings.staff_language)
        kb = keyboard([[button("📂 " + t._("Open"), button_data(d, "open", case_id))]])
        await _reply(context, staff_chat, "✉️ " + t._("New message from the relative on case "
                                                     "%(number)s.") % {"number": number}, kb)
