"""Who is staff (/staff) and the commands each role may use (/staffhelp, the menus)."""

from __future__ import annotations

import logging

from telegram import Update
from telegram.ext import ContextTypes

from bot.context import data_of
from bot.handlers import access, admin
from bot.handlers.access import has_role, role_of
from bot.handlers.common import esc
from bot.handlers.staff.base import (
    _reply,
    _usage,
    _wf,
    _who,
)
from bot.storage.staff import (
    StaffRepository,
)

log = logging.getLogger(__name__)

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
        if removed:
            numbers = await _wf(d).unassign_all(target, actor, d.now_iso())
            if numbers:
                text += "\n" + t.ngettext(
                    "Their %(count)s open case is now assigned to nobody: %(numbers)s.",
                    "Their %(count)s open cases are now assigned to nobody: %(numbers)s.",
                    len(numbers)) % {"count": len(numbers), "numbers": ", ".join(
                        f"<code>{esc(n)}</code>" for n in numbers)}
            if settings.staff_chat_id is not None:
                text += "\n⚠️ " + esc(t._(
                    "Remove them from the staff group too: everyone in it sees new-case "
                    "alerts and status changes."))
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
    from bot.handlers.staff import COMMANDS  # the table needs every handler: imported late
    usages = [(name, c.role, c.usage) for name, c in COMMANDS.items()]
    usages += [(name, needed, admin.USAGES[name])
               for name, needed in admin.COMMAND_ROLES.items()]
    return [(name, usage) for name, needed, usage in usages if has_role(role, needed)]
