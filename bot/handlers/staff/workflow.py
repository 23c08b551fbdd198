"""Status changes (and the relative's notice), take, assign and internal notes."""

from __future__ import annotations

import logging
from typing import Any

from telegram import Update
from telegram.ext import ContextTypes

from bot.handlers import relative
from bot.handlers.access import has_role, role_of
from bot.handlers.common import Deps, esc
from bot.handlers.staff.base import (
    _case_arg,
    _reply,
    _rest,
    _usage,
    _wf,
    _who,
    staff_language,
)
from bot.handlers.staff_view import (
    status_label,
)
from bot.i18n import Translator, translator
from bot.services.outbox import (
    outbox_repository,
    send_outbox_now,
    wake_outbox,
)
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
