"""Questions to relatives (/ask), routing their answers back, and posting them to staff."""

from __future__ import annotations

import json
import logging
from datetime import timedelta
from typing import Any

from telegram import Message, Update
from telegram.error import TelegramError
from telegram.ext import ApplicationHandlerStop, ContextTypes

from bot.context import AnyApp
from bot.evidence.intake import note_answer_file
from bot.form.validators import strip_bidi
from bot.handlers.access import button_data
from bot.handlers.common import (
    Deps,
    button,
    deps,
    deps_of,
    esc,
    keyboard,
    media_of,
    split_html,
)
from bot.handlers.staff.base import (
    _case_arg,
    _reply,
    _rest,
    _staff_chat,
    _usage,
    _wf,
    _who,
    content_targets,
    record_sent,
)
from bot.handlers.staff_view import quote, text_blocks
from bot.i18n import translator
from bot.services.outbox import (
    outbox_sender,
)
from bot.storage.outbox import SENT, OutboxRow
from bot.storage.staff import CaseInfo, OpenQuestion
from bot.storage.staff_messages import ANSWER

log = logging.getLogger(__name__)

#: A question waits this long for its first answer; after an answer, more messages (a photo
#: after a text) are taken as part of it for FOLLOW_UP.
QUESTION_WAITS = timedelta(days=30)
FOLLOW_UP = timedelta(minutes=30)
MAX_QUESTION = 3000
MAX_UPLOAD = 50 * 1024 * 1024
QUESTION_KIND = "staff_question"  # the outbox kind of questions to relatives


# ----------------------------------------------------------------------------- questions


async def ask_cmd(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    d, actor, chat_id, t = await _who(update, context)
    args = context.args or []
    text = _rest(update, 2)
    if not args or not text:
        await _usage(context, chat_id, t, "ask")
        return
    if len(text) > MAX_QUESTION:
        await _reply(context, chat_id, t._("The question is too long: at most %(limit)s "
                                           "characters.") % {"limit": MAX_QUESTION})
        return
    case = await _case_arg(context, d, chat_id, t, "ask", args[0])
    if case is None:
        return
    from bot.handlers.casework import send_question  # also the Reply button's

    await send_question(context, d, chat_id, actor, t, case, text)


async def question_outcome(app: AnyApp, row: OutboxRow, outcome: str,
                           message_id: int | None) -> None:
    """Outbox hook of a staff question: record where it went, then tell the staff member.

    Runs before the outbox records the outcome; after a crash in between it runs again, which
    writes the same message id (or closes the question again) and tells staff once more.
    """
    meta = json.loads(row.meta or "{}")
    d = deps_of(app)
    wf = _wf(d)
    t = translator(str(meta.get("lang") or "en"))
    if outcome == SENT and message_id is not None:
        await wf.question_sent(int(meta["question"]), message_id)
        text = t._("The question was sent to the relative of case %(number)s.") % {
            "number": f"<code>{esc(str(meta.get('case', '')))}</code>"}
    else:
        log.info("a question could not be delivered: %s", outcome)
        await wf.question_failed(int(meta["question"]), d.now_iso())
        text = t._("The question could not be delivered: the relative has blocked the bot or "
                   "left.")
    sender = outbox_sender(app)
    if sender is not None and meta.get("chat") is not None:
        sender.follow_up(_tell(app, int(meta["chat"]), text))


async def _tell(app: AnyApp, chat_id: int, text: str) -> None:
    """A note to staff after the fact; one that cannot be sent is only logged."""
    try:
        await app.bot.send_message(chat_id, text)
    except TelegramError as exc:
        log.warning("could not tell staff how a question went: %s", type(exc).__name__)


def answer_content(message: Message) -> dict[str, Any] | None:
    """What a relative's reply holds, to store sealed: text, or a file by reference (bidi
    controls removed from every text in it)."""
    if message.text is not None:
        return {"kind": "text", "text": strip_bidi(message.text)}
    media = media_of(message)
    if media is None:
        return None
    content: dict[str, Any] = {"kind": media.kind, "file_id": media.file_id,
                               "file_unique_id": media.file_unique_id}
    if media.name:
        content["file_name"] = strip_bidi(media.name)
    if message.caption:
        content["caption"] = strip_bidi(message.caption)
    return content


async def _question_for(d: Deps, message: Message, user_id: int) -> OpenQuestion | None:
    """The question this message answers: the one it replies to, else (with no report in
    progress) the one the relative was asked last and is still answering."""
    wf = _wf(d)
    reply = message.reply_to_message
    if reply is not None:
        found = await wf.question_for_reply(user_id, reply.message_id)
        if found is not None:
            return found
    if await d.drafts.get(user_id) is not None:
        return None
    now = d.now()
    return await wf.waiting_question(
        user_id, (now - QUESTION_WAITS).isoformat(timespec="seconds"),
        (now - FOLLOW_UP).isoformat(timespec="seconds"))


async def on_relative_message(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A relative's answer to a staff question: taken here (ApplicationHandlerStop), before
    the questionnaire (app.py, ANSWER_GROUP) would read it as an answer to its question."""
    message, user = update.effective_message, update.effective_user
    if message is None or user is None:
        return
    content = answer_content(message)
    if content is None:
        return
    d = deps(context)
    question = await _question_for(d, message, user.id)
    if question is None:
        return
    lang = (await d.users.seen(user.id, d.now_iso())).language
    if lang is None:  # the questionnaire asks for the language first
        return
    await _wf(d).record_answer(question, content, d.now_iso())
    await note_answer_file(context.application, d, user.id, question.case_id, content,
                           message.date)  # a file: fetched into the evidence vault
    log.info("a relative answered a staff question (%s)", content["kind"])
    t = translator(lang)
    await _reply(context, user.id, t._("Thank you. Your answer was passed on to the volunteers "
                                       "working on case %(number)s.")
                 % {"number": f"<code>{esc(question.number)}</code>"})
    case = await _wf(d).case_by_id(question.case_id)
    await post_answer(context, d, question, case, message, content)
    raise ApplicationHandlerStop


async def post_answer(context: ContextTypes.DEFAULT_TYPE, d: Deps, question: OpenQuestion,
                      case: CaseInfo | None, message: Message, content: dict[str, Any]) -> None:
    """Send the answer to the assignee's private chat (or, with none, every staff member's);
    the staff chat only hears that there is a new answer, with a button that opens the case
    in the presser's private chat."""
    number = f"<code>{esc(question.number)}</code>"
    for chat_id, lang in await content_targets(d, case.assignee_id if case else None):
        t = translator(lang)
        head = "💬 " + t._("<b>Answer from the relative, case %(number)s</b>") % {
            "number": number}
        kb = keyboard([[button("📂 " + t._("Open"), button_data(d, "open", question.case_id)),
                        button("↩️ " + t._("Reply"), button_data(d, "rp", question.case_id))]])
        if d.keys.offline:
            note = t._("The answer is stored sealed; open it with the offline key.")
            await _reply(context, chat_id, f"{head}\n{esc(note)}", kb)
            continue
        sent: list[Any] = []
        if content["kind"] == "text":
            messages = split_html(text_blocks(head, str(content["text"])))
            for text in messages[:-1]:
                sent.append(await _reply(context, chat_id, text))
            sent.append(await _reply(context, chat_id, messages[-1], kb))
        else:
            sent.append(await _reply(context, chat_id, head, kb))
            if sent[-1] is not None:
                try:
                    # The relative's caption, cleaned, as a quote (never as our own lines).
                    caption = content.get("caption")
                    sent.append(await context.bot.copy_message(
                        chat_id, message.chat_id, message.message_id,
                        caption=quote(str(caption)) if caption else None))
                except TelegramError as exc:
                    log.warning("could not copy an answer to staff: %s", type(exc).__name__)
        await record_sent(d, chat_id, sent, question.case_id, ANSWER)
    staff_chat = _staff_chat(d)
    if staff_chat is not None:
        t = translator(d.settings.staff_language)
        kb = keyboard([[button("📂 " + t._("Open"), button_data(d, "open", question.case_id))]])
        await _reply(context, staff_chat, "💬 " + t._("New answer on case %(number)s.")
                     % {"number": number}, kb)
