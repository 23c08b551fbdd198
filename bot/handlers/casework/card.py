"""The case card's case-work part: consent first, each person's status, the buttons."""

from __future__ import annotations

import logging
from typing import Any

from telegram.ext import ContextTypes

from bot.casework.status import (
    STATUSES,
)
from bot.handlers.access import button_data
from bot.handlers.casework.base import _repo
from bot.handlers.casework.conversation import ask_for_question, ask_reply
from bot.handlers.casework.duplicates import decide_link, link_line
from bot.handlers.casework.statuses import apply_status, undo_change
from bot.handlers.common import Deps, button, esc, keyboard, rows_of
from bot.handlers.staff_view import status_label
from bot.i18n import Translator
from bot.storage.staff import CaseInfo

log = logging.getLogger(__name__)

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
