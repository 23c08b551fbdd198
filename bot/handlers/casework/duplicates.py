"""Possible duplicates: the lines the alert and the card show, and staff's confirm/reject."""

from __future__ import annotations

import logging

from telegram.ext import ContextTypes

from bot.handlers.casework.base import _now, _repo, live_index
from bot.handlers.casework.statuses import _case_data
from bot.handlers.common import Deps, esc
from bot.i18n import Translator
from bot.storage.casework import PersonLink
from bot.storage.staff import CaseInfo

log = logging.getLogger(__name__)

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
