"""Staff case work in Telegram: a status per missing person with an undo window, the needs_info
question, consent enforced, /find, possible duplicates, and relatives' messages to the volunteers.

Notices to the relative name whom they concern ("your brother Nurlan"), are held in the outbox
for UNDO_SECONDS (BOT_STATUS_UNDO_SECONDS) so the staff member can undo a change before anything
is sent, and are never sent for a move backwards in the workflow.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from dataclasses import dataclass
from typing import Any

from telegram import ForceReply, Update
from telegram.error import TelegramError
from telegram.ext import ApplicationHandlerStop, ContextTypes

from bot.casework.live import LiveIndex
from bot.casework.search import classify, find
from bot.casework.status import (
    NOTIFY_STATUSES,
    PERSON_NOTICE_LABELS,
    RELATIVE_LABELS,
    STATUSES,
    WHOM,
    WHOM_NUMBERED,
    WHOM_OTHER,
    is_backward,
)
from bot.context import bot_data
from bot.handlers.access import button_data, has_role, role_of
from bot.handlers.common import Deps, button, deps, esc, keyboard, rows_of, split_html
from bot.handlers.staff_view import status_label, text_blocks
from bot.i18n import Translator, translator
from bot.services.crypto import NoPrivateKey
from bot.services.outbox import outbox_repository, send_outbox_now, wake_outbox
from bot.storage.casework import CaseworkRepository, PersonLink, StatusChange
from bot.storage.staff import AuditLog, CaseInfo, Workflow
from bot.storage.stats import persons_by_status

log = logging.getLogger(__name__)

QUESTION_KIND = "staff_question"  # the outbox kind whose hook records a question's message


def _repo(d: Deps) -> CaseworkRepository:
    return CaseworkRepository(d.db, d.keys.seal_draft, d.keys.unseal_draft)


def _wf(d: Deps) -> Workflow:
    return Workflow(d.db, d.keys.seal, d.keys.unseal)


def _now(d: Deps) -> str:
    return d.now().isoformat(timespec="seconds")


def live_index(context: ContextTypes.DEFAULT_TYPE) -> LiveIndex:
    """The person index of this bot, started on first use (see bot/casework/live.py)."""
    app = context.application
    data = bot_data(app)
    index = data.person_index
    if index is None:
        d = deps(context)
        index = LiveIndex(d.db, d.keys.unseal, d.keys.offline)
        data.person_index = index
        index.start()
    return index


def forget_cases(context: ContextTypes.DEFAULT_TYPE, case_ids: list[int]) -> None:
    """Erased cases leave the in-memory index at once (nothing of them may be found)."""
    index = bot_data(context.application).person_index
    if index is not None:
        for case_id in case_ids:
            index.remove_case(case_id)


# ----------------------------------------------------------------------------- notices


async def _case_data(d: Deps, case: CaseInfo) -> dict[str, Any] | None:
    if case.status == "withdrawn":
        return None
    try:
        return await d.cases.data(case.number)
    except NoPrivateKey:
        return None


def whom(t: Translator, data: dict[str, Any] | None, person: int) -> str:
    """"your brother Nurlan" in the relative's language, or "the person no. 2 in your report"
    when the names cannot be read."""
    persons = (data or {}).get("persons") or []
    if not 0 < person <= len(persons):
        return t._(WHOM_NUMBERED) % {"person": person}
    answers = persons[person - 1]
    name = answers.get("full_name")
    if not isinstance(name, str) or not name.strip():
        return t._(WHOM_NUMBERED) % {"person": person}
    phrase = WHOM.get(str(answers.get("relation")), WHOM_OTHER)
    return t._(phrase) % {"name": name.strip()}


async def relative_language(d: Deps, case: CaseInfo) -> str:
    user = await d.users.get(case.user_id) if case.user_id is not None else None
    return user.language if user is not None and user.language else case.language


async def person_lines(d: Deps, t: Translator, case_id: int, number: str, count: int
                       ) -> list[str]:
    """/status for a case of several persons: whom each status concerns, in family words."""
    if count < 2:
        return []
    try:
        data = await d.cases.data(number)
    except NoPrivateKey:
        data = None
    return ["   • " + esc(t._("%(whom)s: %(status)s.") % {
        "whom": whom(t, data, person),
        "status": t._(PERSON_NOTICE_LABELS.get(status, RELATIVE_LABELS.get(status, status)))})
        for person, status in await _repo(d).person_statuses(case_id)]


def notice_text(t: Translator, data: dict[str, Any] | None, number: str,
                moves: list[tuple[int, str]], question: str | None = None) -> str:
    """The relative's notice of forward moves (person, status), with the question if any."""
    lines = ["<b>" + t._("News about your case %(number)s") % {
        "number": f"<code>{esc(number)}</code>"} + "</b>"]
    for person, status in moves:
        lines.append("• " + esc(t._("%(whom)s: %(status)s.") % {
            "whom": whom(t, data, person), "status": t._(PERSON_NOTICE_LABELS[status])}))
    text = "\n".join(lines)
    if question:
        text += ("\n\n<b>" + esc(t._("The volunteers ask:")) + "</b>\n" + esc(question)
                 + "\n\n" + esc(t._("Please answer by replying to this message: with text, a "
                                    "voice message, a photo or a document.")))
    return text


def told(change: StatusChange) -> list[tuple[int, str]]:
    """The moves of a change the relative is told about: forward, to a status they hear of."""
    return [(p, new) for p, old, new in change.persons
            if new in NOTIFY_STATUSES and not is_backward(old, new)]


# ----------------------------------------------------------------------------- consent


def consent_refusal(t: Translator, d: Deps, case: CaseInfo, status: str) -> str | None:
    """Why `status` cannot be set on this case, naming the relative's consent; None if it can."""
    if status == "referred" and case.consent_share == "no":
        question = d.form.question("consent", "consent_share")
        return t._("Case %(number)s cannot be referred: the relative answered «%(answer)s» to "
                   "«%(consent)s». Only cases whose relatives agreed to sharing may be passed "
                   "to an international organisation.") % {
            "number": case.number, "answer": t._("No"), "consent": t._(question.short)}
    return None


# ----------------------------------------------------------------------------- status changes


def _undo_seconds(d: Deps) -> int:
    return int(getattr(d.settings, "status_undo_seconds", 60))


def persons_label(t: Translator, persons: list[int] | None, count: int) -> str:
    if persons is None or count <= 1:
        return t.ngettext("%(count)s missing person", "%(count)s missing persons", count) % {
            "count": count}
    return ", ".join(t._("missing person %(person)s") % {"person": p} for p in persons)


async def apply_status(context: ContextTypes.DEFAULT_TYPE, d: Deps, chat_id: int, actor: int,
                       t: Translator, case: CaseInfo, persons: list[int] | None, status: str,
                       question: str | None = None) -> bool | None:
    """Move persons of a case to `status`, hold the relative's notice for the undo window, and
    tell the staff member (with an Undo button). False when nothing changed; None when it was
    refused (and the staff member told why)."""
    from bot.handlers.people import staff_name
    from bot.handlers.staff.base import _reply, in_chat_language

    refusal = consent_refusal(t, d, case, status)
    if refusal is not None:
        await _reply(context, chat_id, "⛔ " + esc(refusal))
        return None
    rt = translator(await relative_language(d, case))
    data = await _case_data(d, case)
    wf = _wf(d)
    question_id = None
    if question and case.user_id is not None:
        question_id = await wf.ask(case, question, actor, _now(d))
    undo = _undo_seconds(d)
    outbox = outbox_repository(d)
    queued: list[int] = []

    async def queue_notice(conn: Any, change: StatusChange) -> None:
        moves = told(change)
        if case.user_id is None or (not moves and question_id is None):
            return
        if not moves:  # needs_info again: the question still goes with its status
            moves = [(p, new) for p, _, new in change.persons]
        text = notice_text(rt, data, case.number, moves, question if question_id else None)
        meta = None
        markup = None
        kind = "status_notice"
        if question_id is not None:
            kind = QUESTION_KIND
            meta = json.dumps({"question": question_id, "case": case.number, "chat": chat_id,
                               "lang": t.lang})
            markup = ForceReply(selective=True).to_json()
        outbox_id = await outbox.enqueue(
            conn, case.user_id, text, "HTML", markup, kind=kind,
            dedup_key=f"case:{case.case_id}:status:{change.event_id}", meta=meta, delay=undo)
        if outbox_id is not None:
            queued.append(outbox_id)

    change = await _repo(d).set_person_status(case.case_id, persons, status, actor, _now(d),
                                              in_transaction=queue_notice)
    if change is None:
        if question_id is not None and question:  # already needs_info: the question still goes
            await _queue_question(context, d, chat_id, t, case, question_id, question)
            return True
        return False
    if queued:
        wake_outbox(context.application)
    t = in_chat_language(d, chat_id, t)
    moves = "; ".join(
        t._("missing person %(person)s: %(old)s → %(new)s") % {
            "person": p, "old": status_label(t, old), "new": status_label(t, new)}
        for p, old, new in change.persons)
    text = (t._("Case %(number)s · %(moves)s (by %(staff)s).") % {
        "number": f"<code>{esc(case.number)}</code>", "moves": esc(moves),
        "staff": await staff_name(d, actor)})
    if queued:
        text += "\n" + esc(t.ngettext(
            "The relative will be told in %(seconds)s second; until then you can undo it.",
            "The relative will be told in %(seconds)s seconds; until then you can undo it.",
            undo) % {"seconds": undo})
    else:
        text += "\n" + esc(t._("The relative is not told about this change."))
    markup = keyboard([[button("↩️ " + t._("Undo"),
                               button_data(d, "undo", case.case_id, str(change.event_id)))]])
    await _reply(context, chat_id, text, markup)
    return True


async def undo_change(context: ContextTypes.DEFAULT_TYPE, d: Deps, chat_id: int, actor: int,
                      t: Translator, case: CaseInfo, event_id: int) -> str | None:
    """The Undo button: put the persons back, and withdraw the notice unless it has gone out.
    Returns the toast to show."""
    from datetime import datetime

    from bot.handlers.people import staff_name
    from bot.handlers.staff.base import _reply, in_chat_language

    repo = _repo(d)
    found = await repo.change(event_id)
    if found is None or found[0].case_id != case.case_id:
        return t._("This change was already undone.")
    made_at = datetime.fromisoformat(found[1])
    outbox = outbox_repository(d)
    window = _undo_seconds(d)

    async def withdraw(conn: Any) -> bool:
        gone = await outbox.withdraw(conn, f"case:{case.case_id}:status:{event_id}")
        if gone is None:  # nothing was to be sent: undo within the same window
            return (d.now() - made_at).total_seconds() < window
        return gone

    change = await repo.undo(event_id, actor, _now(d), in_transaction=withdraw)
    if change is None:
        return t._("Too late to undo: the relative has been told. Set the status again "
                   "instead.")
    t = in_chat_language(d, chat_id, t)
    await _reply(context, chat_id, "↩️ " + esc(t._(
        "Undone by %(staff)s: case %(number)s is back where it was; nothing was sent to the "
        "relative.") % {"staff": await staff_name(d, actor), "number": case.number}))
    return None


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


async def build_index(context: ContextTypes.DEFAULT_TYPE) -> None:
    """The start-up job that builds the person index (without waiting for it)."""
    live_index(context)


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


# ----------------------------------------------------------------------------- /find


async def find_cmd(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/find TEXT: a name in any script, a Chinese ID (or its last 6), a phone, a case number."""
    from bot.handlers.people import staff_name
    from bot.handlers.staff.base import _reply, _rest, _usage, _who

    d, actor, chat_id, t = await _who(update, context)
    query = classify(_rest(update, 1))
    if query.kind == "empty":
        await _usage(context, chat_id, t, "find")
        return
    if query.kind == "case_mistake":
        await _reply(context, chat_id, esc(mistake_text(t)))
        return
    wf = _wf(d)
    hits: list[tuple[CaseInfo, int | None]] = []
    if query.kind == "case":
        case = await wf.case(query.value)
        hits = [(case, None)] if case is not None else []
    else:
        index = live_index(context)
        if not await index.ready():
            await _reply(context, chat_id, esc(t._(
                "The private key is kept offline, so the bot cannot read names, ID numbers or "
                "phone numbers to search them. Search by case number, or on the offline "
                "computer: python -m bot duplicates --key FILE --input EXPORT --output "
                "REPORT lists persons reported more than once.")))
            return
        for hit in find(index.index, query):
            case = await wf.case_by_id(hit.case_id)
            if case is not None and case.status != "withdrawn":
                hits.append((case, hit.person))
    await AuditLog(d.db).record(actor, "find", {"kind": query.kind, "results": len(hits)},
                                _now(d))
    if not hits:
        await _reply(context, chat_id, esc(t._("Nothing found.")))
        return
    repo = _repo(d)
    lines = ["<b>" + esc(t.ngettext("%(count)s found", "%(count)s found", len(hits))
                         % {"count": len(hits)}) + "</b>"]
    buttons = []
    shown: set[int] = set()
    for case, person in hits:
        statuses = dict(await repo.person_statuses(case.case_id))
        status = statuses.get(person, case.status) if person is not None else case.status
        who = (t._("missing person %(person)s") % {"person": person} if person is not None
               else t.ngettext("%(count)s missing person", "%(count)s missing persons",
                               case.persons_count) % {"count": case.persons_count})
        lines.append(f"• <code>{esc(case.number)}</code> · {esc(who)} · "
                     f"{esc(status_label(t, status))} · {await staff_name(d, case.assignee_id)}")
        if case.case_id not in shown:
            shown.add(case.case_id)
            buttons.append(button("📂 " + case.number, button_data(d, "open", case.case_id)))
    await _reply(context, chat_id, "\n".join(lines), keyboard(rows_of(buttons, width=2)))


def mistake_text(t: Translator) -> str:
    return t._("This case number has a mistake: a digit is wrong or two are swapped. Please "
               "check it against what the relative wrote down.")


# ----------------------------------------------------------------------------- duplicates


def link_line(t: Translator, link: PersonLink, case_id: int) -> str:
    """"Missing person 2: possibly the same person as 2614-4542 (person 1)" from the side of
    `case_id`: numbers only, never names (the line may reach the staff group)."""
    mine, other = ((link.person, (link.other_number, link.other_person))
                   if link.case_id == case_id else
                   (link.other_person, (link.number, link.person)))
    text = t._("Missing person %(person)s: possibly the same person as %(number)s (person "
               "%(other)s)") % {"person": mine, "number": other[0], "other": other[1]}
    if link.certainty == "certain":
        text += " · " + t._("the same Chinese ID")
    if link.state == "confirmed":
        text += " · " + t._("confirmed by staff")
    return text


async def link_lines(d: Deps, t: Translator, case: CaseInfo) -> str:
    """The alert's lines about possible duplicates (numbers only: it goes to the group)."""
    if d.keys.offline:
        return "\n" + esc(t._("Duplicates not checked: the private key is offline (python -m "
                              "bot duplicates on the offline computer)."))
    links = await _repo(d).links_of(case.case_id)
    return "".join("\n⚠️ " + esc(link_line(t, link, case.case_id)) for link in links)


async def check_new_case(context: ContextTypes.DEFAULT_TYPE, d: Deps, case: CaseInfo
                         ) -> list[PersonLink]:
    """Index a new case's persons and record possible duplicates; the links found."""
    index = live_index(context)
    if index.offline:
        return []
    data = await _case_data(d, case)
    if data is None:
        return []
    found = await index.add_case(case.case_id, case.number, data, _now(d))
    return await _repo(d).links_of(case.case_id) if found else []


async def decide_link(context: ContextTypes.DEFAULT_TYPE, d: Deps, chat_id: int, actor: int,
                      t: Translator, case: CaseInfo, arg: str) -> str | None:
    from bot.handlers.people import staff_name
    from bot.handlers.staff.base import _reply, in_chat_language

    link_id, _, verdict = arg.partition(".")
    link = await _repo(d).link(int(link_id)) if link_id.isdigit() else None
    if link is None or case.case_id not in (link.case_id, link.other_case_id):
        return t._("This button is not valid.")
    state = "confirmed" if verdict == "c" else "rejected"
    if not await _repo(d).decide_link(link.link_id, state, actor, _now(d)):
        return t._("Nothing changed.")
    t = in_chat_language(d, chat_id, t)
    text = (t._("%(staff)s confirmed: %(link)s.") if state == "confirmed"
            else t._("%(staff)s rejected: %(link)s."))
    await _reply(context, chat_id, text % {"staff": await staff_name(d, actor),
                                           "link": esc(link_line(t, link, case.case_id))})
    return None


# ----------------------------------------------------------------------------- the card


async def card_top(d: Deps, t: Translator, case: CaseInfo,
                   data: dict[str, Any] | None) -> str:
    """Consent choices first (what may be done with the case), then each person's status and
    possible duplicates."""
    lines = []
    for qid in ("consent_share", "consent_publish"):
        q = d.form.question("consent", qid)
        code = case.consent_share if qid == "consent_share" else case.consent_publish
        option = q.option(code) if code else None
        answer = t._(option.label) if option is not None else (code or "—")
        mark = "⛔" if code == "no" else "✅"
        lines.append(f"{mark} {esc(t._(q.short))}: <b>{esc(answer)}</b>")
    # By number only, like the rest of the card: a relative's text (the name) is shown to
    # staff only as a quote, in the answers below, so that it cannot pass for the bot's lines
    # (tests/e2e/test_staff_privacy.py::test_relatives_text_cannot_pass_for_the_bots_lines).
    for person, status in await _repo(d).person_statuses(case.case_id):
        lines.append("👤 " + esc(t._("Missing person %(person)s") % {"person": person})
                     + f": <b>{esc(status_label(t, status))}</b>")
    for link in await _repo(d).links_of(case.case_id):
        lines.append("⚠️ " + esc(link_line(t, link, case.case_id)))
    return "\n".join(lines)


async def card_buttons(d: Deps, t: Translator, case: CaseInfo) -> list[list[Any]]:
    """A status chooser per person (when several) and Confirm/Reject per suggested link."""
    rows: list[list[Any]] = []
    if case.status != "withdrawn" and case.persons_count > 1:
        rows += rows_of([button("👤 " + t._("Person %(person)s: status") % {"person": p},
                                button_data(d, "pp", case.case_id, str(p)))
                         for p in range(1, case.persons_count + 1)], width=2)
    for link in await _repo(d).links_of(case.case_id):
        if link.state != "suggested":
            continue
        other = (f"{link.other_number}/{link.other_person}" if link.case_id == case.case_id
                 else f"{link.number}/{link.person}")
        rows.append([button("✔ " + t._("Same as %(other)s") % {"other": other},
                            button_data(d, "lk", case.case_id, f"{link.link_id}.c")),
                     button("✖ " + t._("Not the same"),
                            button_data(d, "lk", case.case_id, f"{link.link_id}.r"))])
    return rows


async def person_chooser(context: ContextTypes.DEFAULT_TYPE, d: Deps, chat_id: int,
                         t: Translator, case: CaseInfo, person: int) -> None:
    from bot.handlers.staff.base import _reply

    current = dict(await _repo(d).person_statuses(case.case_id)).get(person)
    if current is None:
        return
    text = t._("Case %(number)s · missing person %(person)s: %(status)s. Choose the new "
               "status:") % {"number": case.number, "person": person,
                             "status": status_label(t, current)}
    kb = keyboard(rows_of([button(status_label(t, s),
                                  button_data(d, "ps", case.case_id, f"{person}.{s}"))
                           for s in STATUSES if s != current], width=3))
    await _reply(context, chat_id, esc(text), kb)


async def set_from_button(context: ContextTypes.DEFAULT_TYPE, d: Deps, chat_id: int,
                          actor: int, t: Translator, case: CaseInfo,
                          persons: list[int] | None, status: str) -> str | None:
    """A status button (the card's: every person; a person's chooser: that one)."""
    from bot.handlers.staff.base import PRIVATE_FIRST, SENT_PRIVATELY

    if status == "needs_info":
        if not await ask_for_question(context, d, chat_id, actor, t, case, persons):
            return t._(PRIVATE_FIRST)
        return t._(SENT_PRIVATELY) if chat_id != actor else None
    if await apply_status(context, d, chat_id, actor, t, case, persons, status) is False:
        return t._("Nothing changed.")
    return None


async def on_button(context: ContextTypes.DEFAULT_TYPE, d: Deps, chat_id: int, actor: int,
                    t: Translator, case: CaseInfo, action: str, arg: str
                    ) -> tuple[bool, str | None]:
    """The case-work buttons: (handled, toast)."""
    from bot.handlers.staff.base import PRIVATE_FIRST
    if action == "st" and arg in STATUSES:
        return True, await set_from_button(context, d, chat_id, actor, t, case, None, arg)
    if action == "ps":
        person, _, status = arg.partition(".")
        if person.isdigit() and status in STATUSES:
            return True, await set_from_button(context, d, chat_id, actor, t, case,
                                               [int(person)], status)
        return True, t._("This button is not valid.")
    if action == "pp" and arg.isdigit():
        await person_chooser(context, d, chat_id, t, case, int(arg))
        return True, None
    if action == "undo" and arg.isdigit():
        return True, await undo_change(context, d, chat_id, actor, t, case, int(arg))
    if action == "lk":
        return True, await decide_link(context, d, chat_id, actor, t, case, arg)
    if action == "rp":
        if not await ask_reply(context, d, chat_id, actor, t, case):
            return True, t._(PRIVATE_FIRST)
        return True, None
    return False, None


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


# ----------------------------------------------------------------------------- /stats


@dataclass(frozen=True, slots=True)
class PersonStats:
    lines: list[str]
    years: list[tuple[int, int]]  # (year it happened, persons), for the chart


async def person_stats(context: ContextTypes.DEFAULT_TYPE, d: Deps, t: Translator
                       ) -> PersonStats:
    """/stats about persons: how many (and how many distinct once duplicates are linked), by
    status, and, when the names can be read, by what happened and by year."""
    n = t.format_number
    total, distinct = await _repo(d).persons_count()
    lines = ["<b>" + esc(t._("Missing persons: %(n)s (distinct persons: %(distinct)s)") % {
        "n": n(total), "distinct": n(distinct)}) + "</b>",
             "<b>" + esc(t._("Persons by status")) + "</b>"]
    lines += [f"• {esc(status_label(t, code))}: {n(count)}"
              for code, count in await persons_by_status(d.db)]
    index = live_index(context)
    if not await index.ready():
        lines.append(esc(t._("Counts by what happened and by year need the private key: it is "
                             "kept offline.")))
        return PersonStats(lines, [])
    happened: Counter[str] = Counter()
    years: Counter[int] = Counter()
    for record in index.index.records():
        happened.update(record.what_happened or ("unknown",))
        if record.happened_year is not None:
            years[record.happened_year] += 1
    question = d.form.repeat_group.by_id.get("what_happened")
    lines.append("<b>" + esc(t._("Persons by what happened")) + "</b>")
    for code, count in happened.most_common():
        option = question.option(code) if question is not None else None
        label = t._(option.label) if option is not None else t._("not given")
        lines.append(f"• {esc(label)}: {n(count)}")
    lines.append("<b>" + esc(t._("Persons by the year it happened")) + "</b>")
    lines += [f"• {year}: {n(count)}" for year, count in sorted(years.items())]
    return PersonStats(lines, sorted(years.items()))
