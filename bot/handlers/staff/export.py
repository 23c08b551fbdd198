"""/export: cases to a spreadsheet sent to the staff member's private chat."""

from __future__ import annotations

import logging
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

from telegram import Update
from telegram.error import BadRequest, Forbidden
from telegram.ext import ContextTypes

from bot.export import FORMATS, ExportError, export_cases
from bot.export.summary import export_summary
from bot.handlers.access import button_data, has_role, role_of
from bot.handlers.common import Deps, button, esc, keyboard
from bot.handlers.staff.base import (
    PRIVATE_FIRST,
    _reply,
    _usage,
    _who,
    record_sent,
)
from bot.i18n import LANGUAGES, Translator
from bot.storage.export_queries import CONSENT_FILTERS
from bot.storage.staff import STATUSES, AuditLog
from bot.storage.staff_messages import EXPORT

log = logging.getLogger(__name__)

MAX_UPLOAD = 50 * 1024 * 1024


# ----------------------------------------------------------------------------- export


def _export_filters(args: list[str]) -> dict[str, str] | None:
    """`full`, status, language and up to two dates (since, until), in any order; `xlsx` is
    accepted (the only format in Telegram), `csv` and `jsonl` give {"fmt": ...} to refuse."""
    found: dict[str, str] = {}
    dates: list[str] = []
    for arg in args:
        low = arg.lower()
        if low == "full":
            found["full"] = "1"
        elif low in FORMATS:
            if low != "xlsx":
                found["fmt"] = low
        elif low in STATUSES or low == "withdrawn":
            found["status"] = low
        elif low in LANGUAGES:
            found["lang"] = low
        elif low in CONSENT_FILTERS:  # share / publish: what the relatives agreed to
            found["consent"] = low
        elif re.fullmatch(r"\d{4}-\d{2}-\d{2}", arg) and len(dates) < 2:
            dates.append(arg)
        else:
            return None
    if dates:
        found["since"] = dates[0]
    if len(dates) == 2:
        found["until"] = dates[1]
    return found


def _pack(found: dict[str, str]) -> str:
    """The filters as a button argument (no ':'; dates without dashes, to fit 64 bytes)."""
    parts = [found.get(k, "") for k in ("status", "lang")]
    parts += [found.get(k, "").replace("-", "") for k in ("since", "until")]
    parts.append(found.get("consent", ""))
    return ".".join(parts)


def _unpack(arg: str) -> dict[str, str]:
    parts = [*arg.split("."), "", "", "", "", ""][:5]
    found = {k: v for k, v in zip(("status", "lang"), parts[:2], strict=True) if v}
    for key, value in zip(("since", "until"), parts[2:4], strict=True):
        if len(value) == 8 and value.isdigit():
            found[key] = f"{value[:4]}-{value[4:6]}-{value[6:]}"
    if parts[4] in CONSENT_FILTERS:
        found["consent"] = parts[4]
    return found


async def export_cmd(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Export cases to an XLSX sent to the staff member's private chat, never a group.

    Non-identifying columns by default (bot/export/summary.py); every answer only
    for admins who ask for it (`/export full ...`) and confirm a warning.
    """
    d, actor, chat_id, t = await _who(update, context)
    found = _export_filters(context.args or [])
    if found is None:
        await _usage(context, chat_id, t, "export")
        return
    if "fmt" in found:
        await _reply(context, chat_id, t._("In Telegram, exports are XLSX only. CSV and JSONL "
                                           "are for programs: export them on the server with "
                                           "python -m bot export."))
        return
    if found.pop("full", None) is None:
        await send_export(context, d, actor, chat_id, t, found, full=False)
        return
    if not has_role(await role_of(d, actor), "admin"):
        await _reply(context, chat_id, t._("Only admins can export every answer. Without "
                                           "\"full\", the export has no names."))
        return
    if d.keys.offline:
        await _reply(context, chat_id, t._("The private key is kept offline: export on the "
                                           "server with python -m bot export, and open the "
                                           "sealed file on the offline computer."))
        return
    kb = keyboard([[button("⚠️ " + t._("Yes, send every answer"),
                           button_data(d, "xf", 0, _pack(found)))]])
    await _reply(context, chat_id, "⚠️ " + esc(t._(
        "The full export holds every answer: names, ID numbers, phone numbers and stories. "
        "Once sent, the file stays in Telegram's cloud and on every device where you use "
        "Telegram, even after the bot deletes its message from the chat. Export on the "
        "server (python -m bot export) unless you need it in Telegram.")), kb)


async def confirm_full(context: ContextTypes.DEFAULT_TYPE, d: Deps, actor: int, chat_id: int,
                       t: Translator, arg: str) -> str | None:
    """The confirm button of `/export full`; returns a toast (admins only)."""
    if not has_role(await role_of(d, actor), "admin"):
        return t._("Only admins can export every answer. Without \"full\", the export has "
                   "no names.")
    await send_export(context, d, actor, chat_id, t, _unpack(arg), full=True)
    return None


def _export_dir(d: Deps) -> Path:
    """BOT_DATA_DIR/tmp (0700): the file exists only there, 0600, until it is sent."""
    folder = d.settings.data_dir / "tmp"
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(folder, 0o700)
    return folder


async def send_export(context: ContextTypes.DEFAULT_TYPE, d: Deps, actor: int, chat_id: int,
                      t: Translator, found: dict[str, str], *, full: bool) -> None:
    name = f"cases-{d.now().date().isoformat()}{'-full' if full else ''}.xlsx"
    detail: dict[str, Any] = {"format": "xlsx", "columns": "full" if full else "summary",
                              "filters": found, "via": "telegram"}
    filters = {k: found.get(k) for k in ("since", "until", "status", "lang", "consent")}
    work = Path(tempfile.mkdtemp(prefix="export-", dir=_export_dir(d)))
    output = work / name
    try:
        try:
            if full:
                result = await export_cases(
                    d.db, d.form, fmt="xlsx", output=output, decode=d.keys.unseal,
                    since=filters["since"], until=filters["until"], status=filters["status"],
                    lang=filters["lang"], consent=filters["consent"])
                detail.update(rows=result.rows, cases=result.cases)
                cases = result.cases
            else:
                summary = await export_summary(
                    d.db, output, decode=d.keys.unseal, since=filters["since"],
                    until=filters["until"], status=filters["status"], lang=filters["lang"],
                    consent=filters["consent"])
                detail.update(rows=summary.cases, cases=summary.cases)
                cases = summary.cases
        except (ValueError, ExportError) as exc:
            log.warning("a Telegram export failed: %s", type(exc).__name__)
            await _reply(context, chat_id, t._("The export failed. Check the dates "
                                               "(YYYY-MM-DD) and try again."))
            return
        if output.stat().st_size > MAX_UPLOAD:
            detail["delivered"] = False
            await AuditLog(d.db).record(actor, "export", detail, d.now_iso())
            await _reply(context, chat_id, t._("The file is too big for Telegram: export on the "
                                               "server with python -m bot export."))
            return
        caption = t.ngettext("%(count)s case", "%(count)s cases", cases) % {"count": cases}
        if not full:
            caption += "\n" + t._("Without names: /export full (admins) has every answer.")
        try:
            with output.open("rb") as fh:
                sent = await context.bot.send_document(actor, fh, filename=name,
                                                       caption=esc(caption))
            detail["delivered"] = True
            await record_sent(d, actor, [sent], None, EXPORT)
        except (Forbidden, BadRequest):
            detail["delivered"] = False
    finally:
        shutil.rmtree(work, ignore_errors=True)
    await AuditLog(d.db).record(actor, "export", detail, d.now_iso())
    if not detail["delivered"]:
        await _reply(context, chat_id, t._(PRIVATE_FIRST))
    elif chat_id != actor:
        await _reply(context, chat_id, t._("I sent the file to you in a private chat."))
