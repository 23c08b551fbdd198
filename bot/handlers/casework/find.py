"""/find: names in any script, Chinese IDs, phones and case numbers."""

from __future__ import annotations

import logging

from telegram import Update
from telegram.ext import ContextTypes

from bot.casework.search import classify, find
from bot.handlers.access import button_data
from bot.handlers.casework.base import _now, _repo, _wf, live_index
from bot.handlers.common import button, esc, keyboard, rows_of
from bot.handlers.staff_view import status_label
from bot.i18n import Translator
from bot.storage.staff import AuditLog, CaseInfo

log = logging.getLogger(__name__)

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
