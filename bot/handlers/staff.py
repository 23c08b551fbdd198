"""Staff follow-up in Telegram: new cases, case cards, workflow, questions, export, staff list.

Every command and button here sits behind the gate in access.py (bot/app.py's handler table
puts it in front of them), so no handler checks roles itself. Staff work in their private chat
with the bot and in the staff chat (BOT_STAFF_CHAT_ID); what they see is in their own language
(the one they chose in the bot, English by default), with everything relatives wrote shown
exactly as written.
"""

from __future__ import annotations

import json
import logging
import re
import tempfile
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any, cast

from telegram import ForceReply, InlineKeyboardMarkup, Message, Update
from telegram.error import BadRequest, Forbidden, TelegramError
from telegram.ext import ApplicationHandlerStop, ContextTypes

from bot.context import AnyApp, data_of
from bot.errors import MALFORMED_HTML, telegram_noise
from bot.handlers import access, admin, relative
from bot.handlers.access import StaffCommand, button_data, has_role, parse_button, role_of
from bot.handlers.common import (
    Deps,
    button,
    deps,
    deps_of,
    esc,
    keyboard,
    media_of,
    rows_of,
    split_html,
)
from bot.handlers.staff_view import (
    announcement,
    answer_blocks,
    card_header,
    file_label,
    files_of,
    filter_label,
    history_blocks,
    list_line,
    status_label,
    text_blocks,
)
from bot.i18n import LANGUAGES, N_, Translator, translator
from bot.services.case_numbers import parse_case_number
from bot.services.crypto import NoPrivateKey
from bot.services.export import FORMATS, ExportError, ExportFormat, export_cases
from bot.services.outbox import (
    outbox_repository,
    outbox_sender,
    send_outbox_now,
    wake_outbox,
)
from bot.storage.outbox import SENT, OutboxRow
from bot.storage.staff import (
    FINISHED,
    STATUSES,
    AuditLog,
    CaseInfo,
    OpenQuestion,
    StaffRepository,
    Workflow,
)

log = logging.getLogger(__name__)

#: Status changes the relative is told about, in their own language: all but "new", which is
#: what they were told at submission. A constant until the organisation needs a setting.
NOTIFY_STATUSES: frozenset[str] = frozenset(STATUSES) - {"new"}
#: Announcements carry no names: they stay in every staff member's chat list and notifications.
#: A constant, not a setting, until the organisation decides otherwise.
SHOW_NAMES_IN_ANNOUNCEMENTS = False
#: The staff chat is shared by volunteers of several languages.
STAFF_CHAT_LANGUAGE = "en"
PAGE_SIZE = 10
#: A question waits this long for its first answer; after an answer, more messages (a photo
#: after a text) are taken as part of it for FOLLOW_UP.
QUESTION_WAITS = timedelta(days=30)
FOLLOW_UP = timedelta(minutes=30)
MAX_QUESTION = 3000
MAX_UPLOAD = 50 * 1024 * 1024
QUESTION_KIND = "staff_question"  # the outbox kind of questions to relatives


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
    await _reply(context, chat_id, esc(t._(COMMANDS[name].usage)))


async def _case_arg(context: ContextTypes.DEFAULT_TYPE, d: Deps, chat_id: int, t: Translator,
                    name: str, text: str) -> CaseInfo | None:
    """The case a command names, or None after telling the staff member what is wrong."""
    number = parse_case_number(text)
    if number is None:
        await _usage(context, chat_id, t, name)
        return None
    case = await _wf(d).case(number)
    if case is None:
        await _reply(context, chat_id, t._("There is no case %(number)s.")
                     % {"number": f"<code>{esc(number)}</code>"})
    return case


def _staff_chat(d: Deps) -> int | None:
    return d.settings.staff_chat_id


async def _targets(d: Deps, assignee: int | None) -> list[tuple[int, str]]:
    """Where staff news goes: the staff chat; else the assignee; else every staff member."""
    chat = _staff_chat(d)
    if chat is not None:
        return [(chat, STAFF_CHAT_LANGUAGE)]
    ids = [assignee] if assignee is not None else await access.staff_ids(d)
    return [(uid, await staff_language(d, uid)) for uid in ids]


# ----------------------------------------------------------------------------- new cases


async def announce_case(context: ContextTypes.DEFAULT_TYPE, number: str) -> None:
    """Tell staff about a new case: numbers and places only, with Open and Take buttons."""
    d = deps(context)
    case = await _wf(d).case(number)
    if case is None:
        return
    names: list[str] = []
    if SHOW_NAMES_IN_ANNOUNCEMENTS and not d.keys.offline:
        data = await d.cases.data(number) or {}
        names = [str(p.get("full_name", "")) for p in data.get("persons") or []]
    for chat_id, lang in await _targets(d, None):
        t = translator(lang)
        kb = keyboard([[button("📂 " + t._("Open"), button_data(d, "open", case.case_id)),
                        button("✋ " + t._("Take"), button_data(d, "take", case.case_id))]])
        await _reply(context, chat_id, announcement(t, d.form, case, names), kb)


# ----------------------------------------------------------------------------- the case card


def card_keyboard(d: Deps, t: Translator, case: CaseInfo, viewer: int,
                  files: list[tuple[str, dict[str, Any]]]) -> InlineKeyboardMarkup | None:
    rows = []
    if case.status not in FINISHED and case.assignee_id != viewer:
        rows.append([button("✋ " + t._("Take"), button_data(d, "take", case.case_id))])
    if case.status != "withdrawn":
        rows += rows_of([button(status_label(t, s), button_data(d, "st", case.case_id, s))
                         for s in STATUSES if s != case.status], width=3)
    rows += [[button("📎 " + file_label(t, ref, media),
                     button_data(d, "file", case.case_id, ref))] for ref, media in files]
    rows.append([button("🔄 " + t._("Refresh"), button_data(d, "open", case.case_id))])
    return keyboard(rows)


async def send_card(context: ContextTypes.DEFAULT_TYPE, d: Deps, chat_id: int, viewer: int,
                    t: Translator, case: CaseInfo) -> None:
    """Every answer, the consent choices, the files, the status and the whole history."""
    wf = _wf(d)
    data: dict[str, Any] | None = None
    blocks = [card_header(t, d.form, case)]
    if case.status == "withdrawn":
        blocks.append("🔒 " + esc(t._("The relative erased their data: only the case number "
                                      "and its history remain.")))
    else:
        try:
            data = await d.cases.data(case.number)
        except NoPrivateKey:
            blocks.append("🔒 " + esc(t._(
                "The answers are sealed: the private key is kept offline. Export the cases "
                "and open them on the offline computer.")))
    if data is not None:
        blocks += answer_blocks(t, d.form, data)
    blocks += history_blocks(t, await wf.events(case.case_id), wf.reveal)
    messages = split_html(blocks)
    markup = card_keyboard(d, t, case, viewer, files_of(data) if data else [])
    for text in messages[:-1]:
        await context.bot.send_message(chat_id, text)
    await context.bot.send_message(chat_id, messages[-1], reply_markup=markup)
    await AuditLog(d.db).record(viewer, "case_view", {"case": case.number}, d.now_iso())


async def case_cmd(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    d, viewer, chat_id, t = await _who(update, context)
    case = await _case_arg(context, d, chat_id, t, "case", " ".join(context.args or []))
    if case is not None:
        await send_card(context, d, chat_id, viewer, t, case)


# ----------------------------------------------------------------------------- workflow


async def status_notice(d: Deps, case: CaseInfo, status: str) -> str | None:
    """What the relative is told, in their language, when their case moves to `status`
    (None: nothing to tell, or nobody to tell it to)."""
    if case.user_id is None or status not in NOTIFY_STATUSES:
        return None
    t = translator(await d.users.language_of(case.user_id, case.language))
    return t._("The status of your case %(number)s has changed: %(status)s.") % {
        "number": f"<code>{esc(case.number)}</code>",
        "status": f"<b>{esc(t._(relative.STATUS_LABELS[status]))}</b>",
    }


async def change_status(context: ContextTypes.DEFAULT_TYPE, d: Deps, chat_id: int,
                        actor: int, t: Translator, case: CaseInfo, status: str) -> bool:
    # The relative's notice goes through the outbox, queued in the change's own transaction
    # under its event id: one notice per change, sent until Telegram takes it, across
    # restarts; given up (and the relative marked inactive) when they blocked the bot.
    notice = await status_notice(d, case, status)
    queued: list[int] = []

    async def queue_notice(conn: Any, event_id: int) -> None:
        assert notice is not None and case.user_id is not None
        outbox_id = await outbox_repository(d).enqueue(
            conn, case.user_id, notice, "HTML", kind="status_notice",
            dedup_key=f"case:{case.case_id}:status:{event_id}")
        if outbox_id is not None:
            queued.append(outbox_id)

    old = await _wf(d).set_status(case.case_id, status, actor, d.now_iso(),
                                  in_transaction=queue_notice if notice else None)
    if old is None:
        return False
    if queued:
        wake_outbox(context.application)
    await _reply(context, chat_id, t._("Case %(number)s: %(old)s → %(new)s (by %(staff)s).") % {
        "number": f"<code>{esc(case.number)}</code>", "old": esc(status_label(t, old)),
        "new": f"<b>{esc(status_label(t, status))}</b>", "staff": f"<code>{actor}</code>"})
    for outbox_id in queued:  # waits for the first attempt: the notice keeps its place
        await send_outbox_now(context.application, outbox_id)
    return True


async def setstatus_cmd(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    d, actor, chat_id, t = await _who(update, context)
    args = context.args or []
    if len(args) != 2 or args[1] not in STATUSES:
        await _usage(context, chat_id, t, "setstatus")
        return
    case = await _case_arg(context, d, chat_id, t, "setstatus", args[0])
    if case is not None and not await change_status(context, d, chat_id, actor, t, case,
                                                    args[1]):
        await _reply(context, chat_id, t._("Nothing changed."))


async def take(context: ContextTypes.DEFAULT_TYPE, d: Deps, chat_id: int, actor: int,
               t: Translator, case: CaseInfo) -> str:
    """Give the case to the staff member who presses Take; returns the toast to show."""
    if case.assignee_id == actor:
        return t._("This case is already yours.")
    if case.assignee_id is not None:
        return t._("This case is assigned to %(staff)s. Use /assign to change that.") % {
            "staff": case.assignee_id}
    if case.status in FINISHED:
        return t._("This case is closed.")
    await _wf(d).assign(case.case_id, actor, actor, d.now_iso())
    await _reply(context, chat_id, "✋ " + t._("%(staff)s took case %(number)s.") % {
        "staff": f"<code>{actor}</code>", "number": f"<code>{esc(case.number)}</code>"})
    if case.status == "new":
        await change_status(context, d, chat_id, actor, t, case, "in_review")
    return t._("You took case %(number)s.") % {"number": case.number}


async def assign_cmd(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    d, actor, chat_id, t = await _who(update, context)
    args = context.args or []
    if len(args) != 2:
        await _usage(context, chat_id, t, "assign")
        return
    target: int | None
    if args[1].lower() == "me":
        target = actor
    elif args[1].lower() in ("none", "-"):
        target = None
    elif args[1].isdigit():
        target = int(args[1])
    else:
        await _usage(context, chat_id, t, "assign")
        return
    case = await _case_arg(context, d, chat_id, t, "assign", args[0])
    if case is None:
        return
    if target is not None and not has_role(await role_of(d, target), "staff"):
        await _reply(context, chat_id, t._("%(staff)s is not a staff member.")
                     % {"staff": f"<code>{target}</code>"})
        return
    if not await _wf(d).assign(case.case_id, target, actor, d.now_iso()):
        await _reply(context, chat_id, t._("Nothing changed."))
        return
    who = f"<code>{target}</code>" if target is not None else esc(t._("nobody"))
    await _reply(context, chat_id, t._("Case %(number)s is now assigned to %(staff)s.")
                 % {"number": f"<code>{esc(case.number)}</code>", "staff": who})
    if target is not None and target != actor and target != chat_id:
        tt = translator(await staff_language(d, target))
        await _reply(context, target, tt._("Case %(number)s was assigned to you. Send /case "
                                           "%(number)s to see it.") % {"number": case.number})


async def note_cmd(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    d, actor, chat_id, t = await _who(update, context)
    args = context.args or []
    text = _rest(update, 2)
    if not args or not text:
        await _usage(context, chat_id, t, "note")
        return
    case = await _case_arg(context, d, chat_id, t, "note", args[0])
    if case is None:
        return
    await _wf(d).add_note(case.case_id, text, actor, d.now_iso())
    await _reply(context, chat_id, t._("Note added to case %(number)s. Relatives never see "
                                       "notes.") % {"number": f"<code>{esc(case.number)}</code>"})


# ----------------------------------------------------------------------------- lists


async def _list_page(d: Deps, viewer: int, t: Translator, name: str, page: int
                     ) -> tuple[str, InlineKeyboardMarkup | None]:
    status = name if name in STATUSES or name == "withdrawn" else None
    wf = _wf(d)
    query: dict[str, Any] = {"status": status, "open_only": name in ("open", "mine"),
                             "assignee_id": viewer if name == "mine" else None}
    cases, total = await wf.list_cases(**query, offset=page * PAGE_SIZE, limit=PAGE_SIZE)
    pages = max(1, (total + PAGE_SIZE - 1) // PAGE_SIZE)
    if page >= pages:
        page = pages - 1
        cases, total = await wf.list_cases(**query, offset=page * PAGE_SIZE, limit=PAGE_SIZE)
    head = "<b>" + esc(filter_label(t, name)) + "</b> · " + esc(t._(
        "%(count)s, page %(page)s of %(pages)s")
        % {"count": total, "page": page + 1, "pages": pages})
    lines = [head] + ([list_line(t, d.form, c) for c in cases] or [esc(t._("No cases here."))])
    rows = rows_of([button(c.number, button_data(d, "open", c.case_id)) for c in cases],
                   width=2)
    nav = []
    if page > 0:
        nav.append(button("◀️ " + t._("Previous"), button_data(d, "ls", 0, f"{name}.{page - 1}")))
    if page + 1 < pages:
        nav.append(button(t._("Next") + " ▶️", button_data(d, "ls", 0, f"{name}.{page + 1}")))
    return "\n".join(lines), keyboard([*rows, nav])


LIST_NAMES = ("open", "all", "mine", *STATUSES, "withdrawn")


async def cases_cmd(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    d, viewer, chat_id, t = await _who(update, context)
    name, page = "open", 0
    for arg in context.args or []:
        if arg.lower() in LIST_NAMES:
            name = arg.lower()
        elif arg.isdigit() and int(arg) > 0:
            page = int(arg) - 1
        else:
            await _usage(context, chat_id, t, "cases")
            return
    text, kb = await _list_page(d, viewer, t, name, page)
    await _reply(context, chat_id, text, kb)


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
    number = f"<code>{esc(case.number)}</code>"
    if case.user_id is None or case.status == "withdrawn":
        await _reply(context, chat_id, t._("The relative of case %(number)s can no longer be "
                                           "reached.") % {"number": number})
        return
    wf = _wf(d)
    question_id = await wf.ask(case, text, actor, d.now_iso())
    rt = translator(await d.users.language_of(case.user_id, case.language))
    message = (rt._("<b>A question from the volunteers about your case %(number)s</b>")
               % {"number": number} + "\n\n" + esc(text) + "\n\n"
               + rt._("Please answer by replying to this message: with text, a voice message, "
                      "a photo or a document."))
    # Through the outbox, right after the question is recorded (Workflow.ask has its own
    # transaction), one message per question: sent at once and retried until Telegram takes
    # it. question_outcome records the message id and tells the staff member how it went.
    meta = {"question": question_id, "case": case.number, "chat": chat_id, "lang": t.lang}
    outbox_id = await outbox_repository(d).enqueue(
        d.db, case.user_id, message, "HTML", ForceReply(selective=True).to_json(),
        kind=QUESTION_KIND, dedup_key=f"question:{question_id}", meta=json.dumps(meta))
    if outbox_id is not None:
        await send_outbox_now(context.application, outbox_id)


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
    """What a relative's reply holds, to store sealed: text, or a file by reference."""
    if message.text is not None:
        return {"kind": "text", "text": message.text}
    media = media_of(message)
    if media is None:
        return None
    content: dict[str, Any] = {"kind": media.kind, "file_id": media.file_id,
                               "file_unique_id": media.file_unique_id}
    if media.name:
        content["file_name"] = media.name
    if message.caption:
        content["caption"] = message.caption
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
    """Show the answer to the staff chat, or the assignee, or every staff member."""
    for chat_id, lang in await _targets(d, case.assignee_id if case else None):
        t = translator(lang)
        head = "💬 " + t._("<b>Answer from the relative, case %(number)s</b>") % {
            "number": f"<code>{esc(question.number)}</code>"}
        kb = keyboard([[button("📂 " + t._("Open"), button_data(d, "open", question.case_id))]])
        if d.keys.offline:
            note = t._("The answer is stored sealed; open it with the offline key.")
            await _reply(context, chat_id, f"{head}\n{esc(note)}", kb)
            continue
        if content["kind"] == "text":
            messages = split_html(text_blocks(head, str(content["text"])))
            for text in messages[:-1]:
                await _reply(context, chat_id, text)
            await _reply(context, chat_id, messages[-1], kb)
            continue
        if await _reply(context, chat_id, head, kb) is not None:
            try:
                await context.bot.copy_message(chat_id, message.chat_id, message.message_id)
            except TelegramError as exc:
                log.warning("could not copy an answer to staff: %s", type(exc).__name__)


# ----------------------------------------------------------------------------- files


_SENDERS: dict[str, str] = {
    "photo": "send_photo", "document": "send_document", "voice": "send_voice",
    "audio": "send_audio", "video": "send_video", "video_note": "send_video_note",
}


async def resend_file(context: ContextTypes.DEFAULT_TYPE, d: Deps, chat_id: int, actor: int,
                      t: Translator, case: CaseInfo, ref: str) -> str | None:
    """Send one of the case's files again by its file_id; returns a toast on failure."""
    try:
        data = await d.cases.data(case.number)
    except NoPrivateKey:
        return t._("The files are sealed: the private key is kept offline.")
    media = dict(files_of(data or {})).get(ref)
    if media is None:
        return t._("This file is no longer there.")
    kind = str(media.get("kind") or "voice")
    send: Callable[..., Awaitable[Any]] = getattr(context.bot, _SENDERS.get(kind, "send_document"))
    caption = f"{case.number} · {file_label(t, ref, media)}"
    try:
        if kind == "video_note":
            await send(chat_id, media["file_id"])
        else:
            await send(chat_id, media["file_id"], caption=esc(caption))
    except TelegramError as exc:
        log.warning("could not send a case file again: %s", type(exc).__name__)
        return t._("Telegram could not send this file.")
    await AuditLog(d.db).record(actor, "file", {"case": case.number, "file": ref}, d.now_iso())
    return None


# ----------------------------------------------------------------------------- buttons


async def on_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Every staff button (s:...): open, take, status, file, list page."""
    query = update.callback_query
    assert query is not None
    d, actor, chat_id, t = await _who(update, context)
    parsed = parse_button(d, query.data or "")
    if parsed is None:
        await query.answer(t._("This button is not valid."))
        return
    action, case_id, arg = parsed
    if action == "ls":
        name, _, page = arg.partition(".")
        await query.answer()
        text, kb = await _list_page(d, actor, t, name, int(page or 0))
        with telegram_noise():  # the same page again, or the list was deleted
            await query.edit_message_text(text, reply_markup=kb)
        return
    case = await _wf(d).case_by_id(case_id)
    if case is None:
        await query.answer(t._("This case no longer exists."))
        return
    toast: str | None = None
    if action == "open":
        await query.answer()
        await send_card(context, d, chat_id, actor, t, case)
        return
    if action == "take":
        toast = await take(context, d, chat_id, actor, t, case)
    elif action == "st" and arg in STATUSES:
        if not await change_status(context, d, chat_id, actor, t, case, arg):
            toast = t._("Nothing changed.")
    elif action == "file":
        toast = await resend_file(context, d, chat_id, actor, t, case, arg)
    await query.answer(toast)


# ----------------------------------------------------------------------------- export


def _export_filters(args: list[str]) -> dict[str, str] | None:
    """Format, status, language and up to two dates (since, until), in any order."""
    found: dict[str, str] = {"fmt": "xlsx"}
    dates: list[str] = []
    for arg in args:
        low = arg.lower()
        if low in FORMATS:
            found["fmt"] = low
        elif low in STATUSES or low == "withdrawn":
            found["status"] = low
        elif low in LANGUAGES:
            found["lang"] = low
        elif re.fullmatch(r"\d{4}-\d{2}-\d{2}", arg) and len(dates) < 2:
            dates.append(arg)
        else:
            return None
    if dates:
        found["since"] = dates[0]
    if len(dates) == 2:
        found["until"] = dates[1]
    return found


async def export_cmd(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Export cases to a spreadsheet sent to the staff member's private chat, never a group."""
    d, actor, chat_id, t = await _who(update, context)
    found = _export_filters(context.args or [])
    if found is None:
        await _usage(context, chat_id, t, "export")
        return
    if d.keys.offline:
        await _reply(context, chat_id, t._("The private key is kept offline: export on the "
                                           "server with python -m bot export, and open the "
                                           "sealed file on the offline computer."))
        return
    fmt = cast(ExportFormat, found.pop("fmt"))
    name = f"cases-{d.now().date().isoformat()}.{fmt}"
    detail: dict[str, Any] = {"format": fmt, "filters": found, "via": "telegram"}
    with tempfile.TemporaryDirectory(prefix="export-") as tmp:
        output = Path(tmp) / name
        try:
            result = await export_cases(
                d.db, d.form, fmt=fmt, output=output, decode=d.keys.unseal,
                since=found.get("since"), until=found.get("until"), status=found.get("status"),
                lang=found.get("lang"))
        except (ValueError, ExportError) as exc:
            log.warning("a Telegram export failed: %s", type(exc).__name__)
            await _reply(context, chat_id, t._("The export failed. Check the dates "
                                               "(YYYY-MM-DD) and try again."))
            return
        detail.update(rows=result.rows, cases=result.cases)
        if output.stat().st_size > MAX_UPLOAD:
            detail["delivered"] = False
            await AuditLog(d.db).record(actor, "export", detail, d.now_iso())
            await _reply(context, chat_id, t._("The file is too big for Telegram: export on the "
                                               "server with python -m bot export."))
            return
        caption = t.ngettext("%(count)s case", "%(count)s cases", result.cases) % {
            "count": result.cases}
        try:
            with output.open("rb") as fh:
                await context.bot.send_document(actor, fh, filename=name, caption=esc(caption))
            detail["delivered"] = True
        except (Forbidden, BadRequest):
            detail["delivered"] = False
    await AuditLog(d.db).record(actor, "export", detail, d.now_iso())
    if not detail["delivered"]:
        await _reply(context, chat_id, t._("I cannot write to you privately. Open a private "
                                           "chat with me, press Start, then try again."))
    elif chat_id != actor:
        await _reply(context, chat_id, t._("I sent the file to you in a private chat."))


# ----------------------------------------------------------------------------- staff list


async def staff_cmd(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Admins only: /staff list, /staff add ID, /staff remove ID."""
    d, actor, chat_id, t = await _who(update, context)
    args = context.args or []
    settings = d.settings
    repo = StaffRepository(d.db)
    if args[:1] == ["list"] or not args:
        members = await repo.all()
        admins = [f"<code>{i}</code>" for i in sorted(settings.admin_ids)]
        configured = [f"<code>{i}</code>" for i in sorted(settings.staff_ids)]
        in_bot = [f"<code>{m.user_id}</code> · "
                  + esc(t._("added by %(admin)s") % {"admin": m.added_by}) for m in members]
        sections = [(t._("Admins (BOT_ADMIN_IDS)"), admins),
                    (t._("Staff (BOT_STAFF_IDS)"), configured),
                    (t._("Staff added in the bot"), in_bot)]
        lines = []
        for title, ids in sections:
            lines += [f"<b>{esc(title)}</b>", *(ids or ["—"])]
        await _reply(context, chat_id, "\n".join(lines))
        return
    if len(args) != 2 or args[0] not in ("add", "remove") or not args[1].isdigit():
        await _usage(context, chat_id, t, "staff")
        return
    target = int(args[1])
    who = {"staff": f"<code>{target}</code>"}
    if target in settings.admin_ids or target in settings.staff_ids:
        text = t._("%(staff)s is staff by a setting (BOT_STAFF_IDS or BOT_ADMIN_IDS); change "
                   "the setting instead.") % who
    elif args[0] == "add":
        added = await repo.add(target, actor, d.now_iso())
        text = (t._("%(staff)s is now staff.") if added
                else t._("%(staff)s is already staff.")) % who
    else:
        removed = await repo.remove(target, actor, d.now_iso())
        text = (t._("%(staff)s is no longer staff.") if removed
                else t._("%(staff)s was not staff.")) % who
    await _reply(context, chat_id, text)
    personal_menu = data_of(context).personal_menu  # their "/" menu (menus.py)
    if personal_menu is not None:
        await personal_menu(context.bot, d, target)


async def staffhelp_cmd(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    d, actor, chat_id, t = await _who(update, context)
    role = await role_of(d, actor)
    lines = ["<b>" + esc(t._("Staff commands")) + "</b>"]
    lines += [esc(t._(usage)) for _, usage in role_usages(role)]
    await _reply(context, chat_id, "\n".join(lines))


def role_usages(role: access.Role | None) -> list[tuple[str, str]]:
    """(command, usage msgid) of every staff and admin command `role` may use."""
    usages = [(name, c.role, c.usage) for name, c in COMMANDS.items()]
    usages += [(name, needed, admin.USAGES[name])
               for name, needed in admin.COMMAND_ROLES.items()]
    return [(name, usage) for name, needed, usage in usages if has_role(role, needed)]


# ----------------------------------------------------------------------------- wiring


COMMANDS: dict[str, StaffCommand] = {
    "case": StaffCommand("staff", case_cmd, N_(
        "/case NUMBER: the case with every answer, its files and its history")),
    "cases": StaffCommand("staff", cases_cmd, N_(
        "/cases [open|all|mine|STATUS] [PAGE]: list cases")),
    "assign": StaffCommand("staff", assign_cmd, N_(
        "/assign NUMBER USER_ID|me|none: give a case to a staff member")),
    "setstatus": StaffCommand("staff", setstatus_cmd, N_(
        "/setstatus NUMBER STATUS: new, in_review, needs_info, verified, referred, located or "
        "closed")),
    "note": StaffCommand("staff", note_cmd, N_(
        "/note NUMBER TEXT: an internal note (relatives never see notes)")),
    "ask": StaffCommand("staff", ask_cmd, N_(
        "/ask NUMBER TEXT: send the relative a question; the answer comes back here")),
    "export": StaffCommand("staff", export_cmd, N_(
        "/export [xlsx|csv|jsonl] [STATUS] [LANGUAGE] [SINCE] [UNTIL]: a spreadsheet, sent "
        "to your private chat")),
    "staffhelp": StaffCommand("staff", staffhelp_cmd, N_("/staffhelp: these commands")),
    "staff": StaffCommand("admin", staff_cmd, N_(
        "/staff list | add USER_ID | remove USER_ID: who is staff (admins only)")),
}
