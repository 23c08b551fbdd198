"""A status per missing person: the relative's notices (whom they concern, family words),
consent enforced, and the undo window before anything is sent (BOT_STATUS_UNDO_SECONDS); no
notice for a move backwards."""

from __future__ import annotations

import json
import logging
from typing import Any

from telegram import ForceReply
from telegram.ext import ContextTypes

from bot.casework.status import (
    NOTIFY_STATUSES,
    PERSON_NOTICE_LABELS,
    RELATIVE_LABELS,
    WHOM,
    WHOM_NUMBERED,
    WHOM_OTHER,
    is_backward,
)
from bot.handlers.access import button_data
from bot.handlers.casework.base import QUESTION_KIND, _now, _repo, _wf
from bot.handlers.common import Deps, button, esc, keyboard
from bot.handlers.staff_view import status_label
from bot.i18n import Translator, translator
from bot.services.crypto import NoPrivateKey
from bot.services.outbox import outbox_repository, wake_outbox
from bot.storage.casework import StatusChange
from bot.storage.staff import CaseInfo

log = logging.getLogger(__name__)

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
    from bot.handlers.casework.conversation import _queue_question  # it imports us
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
