"""Case lists (/cases) with their pages."""

from __future__ import annotations

import logging
from typing import Any

from telegram import InlineKeyboardMarkup, Update
from telegram.ext import ContextTypes

from bot.handlers.access import button_data
from bot.handlers.common import Deps, button, esc, keyboard, rows_of
from bot.handlers.staff.base import (
    _reply,
    _usage,
    _wf,
    _who,
)
from bot.handlers.staff_view import (
    filter_label,
    list_line,
)
from bot.i18n import Translator
from bot.storage.casework import CaseworkRepository
from bot.storage.staff import (
    STATUSES,
)

log = logging.getLogger(__name__)

PAGE_SIZE = 10


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
    repo = CaseworkRepository(d.db)
    lines = [head] + ([list_line(t, d.form, c,
                                 [s for _, s in await repo.person_statuses(c.case_id)])
                       for c in cases] or [esc(t._("No cases here."))])
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
