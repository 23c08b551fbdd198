"""Status changes (and the relative's notice), take, assign and internal notes."""

from __future__ import annotations

import logging

from telegram import Update
from telegram.ext import ContextTypes

from bot.handlers import evidence, relative
from bot.handlers.access import has_role, role_of
from bot.handlers.common import Deps, esc
from bot.handlers.people import staff_name
from bot.handlers.staff.base import (
    PRIVATE_FIRST,
    SENT_PRIVATELY,
    _case_arg,
    _reply,
    _rest,
    _usage,
    _wf,
    _who,
    in_chat_language,
    staff_language,
)
from bot.i18n import Translator, translator
from bot.storage.staff import (
    FINISHED,
    STATUSES,
    CaseInfo,
)

log = logging.getLogger(__name__)

#: Status changes the relative is told about, in their own language: all but "new", which is
#: what they were told at submission. A constant until the organisation needs a setting.
NOTIFY_STATUSES: frozenset[str] = frozenset(STATUSES) - {"new"}


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
    """Every person of the case to `status` (bot/handlers/casework/statuses.py: the
    relative's notice after the undo window, consent enforced)."""
    from bot.handlers.casework import apply_status

    return bool(await apply_status(context, d, chat_id, actor, t, case, None, status))


async def verify_cmd(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/verify NUMBER PERSON LEVEL: a missing person's verification level (handlers/evidence)."""
    d, actor, chat_id, t = await _who(update, context)
    args = await evidence.verify_args(update)
    if args is None:
        await _usage(context, chat_id, t, "verify")
        return
    case = await _case_arg(context, d, chat_id, t, "verify", args[0])
    if case is not None:
        await _reply(context, chat_id, esc(await evidence.set_level(
            d, t, actor, case, args[1], args[2], d.now_iso())))


async def setstatus_cmd(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/setstatus NUMBER [PERSON] STATUS [QUESTION]: every person, or one; needs_info takes
    the question to send with it (else it is asked for)."""
    from bot.handlers.casework import apply_status, ask_for_question

    d, actor, chat_id, t = await _who(update, context)
    args = context.args or []
    person: int | None = None
    if len(args) >= 3 and args[1].isdigit():
        person = int(args[1])
        args = [args[0], *args[2:]]
    if len(args) < 2 or args[1] not in STATUSES or (len(args) > 2 and args[1] != "needs_info"):
        await _usage(context, chat_id, t, "setstatus")
        return
    case = await _case_arg(context, d, chat_id, t, "setstatus", args[0])
    if case is None:
        return
    if person is not None and not 1 <= person <= case.persons_count:
        await _reply(context, chat_id, t._("Case %(number)s has no missing person %(person)s.")
                     % {"number": case.number, "person": person})
        return
    persons = [person] if person is not None else None
    question = _rest(update, 4 if person is not None else 3)
    if args[1] == "needs_info" and not question:
        if not await ask_for_question(context, d, chat_id, actor, t, case, persons):
            await _reply(context, chat_id, t._(PRIVATE_FIRST))
        elif chat_id != actor:
            await _reply(context, chat_id, t._(SENT_PRIVATELY))
        return
    if chat_id != actor and question:
        await _reply(context, chat_id, t._("Send a question in a private chat with me, not "
                                           "here: it is case content."))
        return
    if await apply_status(context, d, chat_id, actor, t, case, persons, args[1],
                          question=question or None) is False:
        await _reply(context, chat_id, t._("Nothing changed."))


async def take(context: ContextTypes.DEFAULT_TYPE, d: Deps, chat_id: int, actor: int,
               t: Translator, case: CaseInfo) -> str:
    """Give the case to the staff member who presses Take; returns the toast to show."""
    if case.assignee_id == actor:
        return t._("This case is already yours.")
    if case.assignee_id is not None:
        return t._("This case is assigned to %(staff)s. Use /assign to change that.") % {
            "staff": await staff_name(d, case.assignee_id, html=False)}
    if case.status in FINISHED:
        return t._("This case is closed.")
    await _wf(d).assign(case.case_id, actor, actor, d.now_iso())
    here = in_chat_language(d, chat_id, t)
    await _reply(context, chat_id, "✋ " + here._("%(staff)s took case %(number)s.") % {
        "staff": await staff_name(d, actor), "number": f"<code>{esc(case.number)}</code>"})
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
    who = await staff_name(d, target) if target is not None else esc(t._("nobody"))
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
