"""/export: cases to a spreadsheet sent to the staff member's private chat."""

from __future__ import annotations

import logging
import re
import tempfile
from pathlib import Path
from typing import Any, cast

from telegram import Update
from telegram.error import BadRequest, Forbidden
from telegram.ext import ContextTypes

from bot.handlers.common import esc
from bot.handlers.staff.base import (
    _now,
    _reply,
    _usage,
    _who,
)
from bot.i18n import LANGUAGES
from bot.services.export import FORMATS, ExportError, ExportFormat, export_cases
from bot.storage.staff import (
    STATUSES,
    AuditLog,
)

log = logging.getLogger(__name__)

MAX_UPLOAD = 50 * 1024 * 1024


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
            await AuditLog(d.db).record(actor, "export", detail, _now(d))
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
    await AuditLog(d.db).record(actor, "export", detail, _now(d))
    if not detail["delivered"]:
        await _reply(context, chat_id, t._("I cannot write to you privately. Open a private "
                                           "chat with me, press Start, then try again."))
    elif chat_id != actor:
        await _reply(context, chat_id, t._("I sent the file to you in a private chat."))
