"""New-case announcements, the case card with its buttons, a case's files and every staff button."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from telegram import InlineKeyboardMarkup, Update
from telegram.error import BadRequest, TelegramError
from telegram.ext import ContextTypes

from bot.handlers.access import button_data, parse_button
from bot.handlers.common import Deps, button, deps, esc, keyboard, rows_of, split_html
from bot.handlers.staff.base import (
    _case_arg,
    _now,
    _reply,
    _targets,
    _wf,
    _who,
)
from bot.handlers.staff.lists import _list_page
from bot.handlers.staff.workflow import change_status, take
from bot.handlers.staff_view import (
    announcement,
    answer_blocks,
    card_header,
    file_label,
    files_of,
    history_blocks,
    status_label,
)
from bot.i18n import Translator, translator
from bot.services.crypto import NoPrivateKey
from bot.storage.staff import (
    FINISHED,
    STATUSES,
    AuditLog,
    CaseInfo,
)

log = logging.getLogger(__name__)

SHOW_NAMES_IN_ANNOUNCEMENTS = False


# ----------------------------------------------------------------------------- new cases


async def announce_case(context: ContextTypes.DEFAULT_TYPE, number: str) -> None:
    """Tell staff about a new case: numbers and places only, with Open and Take buttons."""
    d = deps(context)
    case = await _wf(d).case(number)
    if case is None:
        return
    names: list[str] = []
    if SHOW_NAMES_IN_ANNOUNCEMENTS and not d.keys.offline:
        data = await d.cases.data(number) or {}
        names = [str(p.get("full_name", "")) for p in data.get("persons") or []]
    for chat_id, lang in await _targets(d, None):
        t = translator(lang)
        kb = keyboard([[button("📂 " + t._("Open"), button_data(d, "open", case.case_id)),
                        button("✋ " + t._("Take"), button_data(d, "take", case.case_id))]])
        await _reply(context, chat_id, announcement(t, d.form, case, names), kb)


# ----------------------------------------------------------------------------- the case card


def card_keyboard(d: Deps, t: Translator, case: CaseInfo, viewer: int,
                  files: list[tuple[str, dict[str, Any]]]) -> InlineKeyboardMarkup | None:
    rows = []
    if case.status not in FINISHED and case.assignee_id != viewer:
        rows.append([button("✋ " + t._("Take"), button_data(d, "take", case.case_id))])
    if case.status != "withdrawn":
        rows += rows_of([button(status_label(t, s), button_data(d, "st", case.case_id, s))
                         for s in STATUSES if s != case.status], width=3)
    rows += [[button("📎 " + file_label(t, ref, media),
                     button_data(d, "file", case.case_id, ref))] for ref, media in files]
    rows.append([button("🔄 " + t._("Refresh"), button_data(d, "open", case.case_id))])
    return keyboard(rows)


async def send_card(context: ContextTypes.DEFAULT_TYPE, d: Deps, chat_id: int, viewer: int,
                    t: Translator, case: CaseInfo) -> None:
    """Every answer, the consent choices, the files, the status and the whole history."""
    wf = _wf(d)
    data: dict[str, Any] | None = None
    blocks = [card_header(t, d.form, case)]
    if case.status == "withdrawn":
        blocks.append("🔒 " + esc(t._("The relative erased their data: only the case number "
                                      "and its history remain.")))
    else:
        try:
            data = await d.cases.data(case.number)
        except NoPrivateKey:
            blocks.append("🔒 " + esc(t._(
                "The answers are sealed: the private key is kept offline. Export the cases "
                "and open them on the offline computer.")))
    if data is not None:
        blocks += answer_blocks(t, d.form, data)
    blocks += history_blocks(t, await wf.events(case.case_id), wf.reveal)
    messages = split_html(blocks)
    markup = card_keyboard(d, t, case, viewer, files_of(data) if data else [])
    for text in messages[:-1]:
        await context.bot.send_message(chat_id, text)
    await context.bot.send_message(chat_id, messages[-1], reply_markup=markup)
    await AuditLog(d.db).record(viewer, "case_view", {"case": case.number}, _now(d))


async def case_cmd(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    d, viewer, chat_id, t = await _who(update, context)
    case = await _case_arg(context, d, chat_id, t, "case", " ".join(context.args or []))
    if case is not None:
        await send_card(context, d, chat_id, viewer, t, case)



# ----------------------------------------------------------------------------- files


_SENDERS: dict[str, str] = {
    "photo": "send_photo", "document": "send_document", "voice": "send_voice",
    "audio": "send_audio", "video": "send_video", "video_note": "send_video_note",
}


async def resend_file(context: ContextTypes.DEFAULT_TYPE, d: Deps, chat_id: int, actor: int,
                      t: Translator, case: CaseInfo, ref: str) -> str | None:
    """Send one of the case's files again by its file_id; returns a toast on failure."""
    try:
        data = await d.cases.data(case.number)
    except NoPrivateKey:
        return t._("The files are sealed: the private key is kept offline.")
    media = dict(files_of(data or {})).get(ref)
    if media is None:
        return t._("This file is no longer there.")
    kind = str(media.get("kind") or "voice")
    send: Callable[..., Awaitable[Any]] = getattr(context.bot, _SENDERS.get(kind, "send_document"))
    caption = f"{case.number} · {file_label(t, ref, media)}"
    try:
        if kind == "video_note":
            await send(chat_id, media["file_id"])
        else:
            await send(chat_id, media["file_id"], caption=esc(caption))
    except TelegramError as exc:
        log.warning("could not send a case file again: %s", type(exc).__name__)
        return t._("Telegram could not send this file.")
    await AuditLog(d.db).record(actor, "file", {"case": case.number, "file": ref}, _now(d))
    return None


# ----------------------------------------------------------------------------- buttons


async def on_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Every staff button (s:...): open, take, status, file, list page."""
    query = update.callback_query
    assert query is not None
    d, actor, chat_id, t = await _who(update, context)
    parsed = parse_button(d, query.data or "")
    if parsed is None:
        await query.answer(t._("This button is not valid."))
        return
    action, case_id, arg = parsed
    if action == "ls":
        name, _, page = arg.partition(".")
        await query.answer()
        text, kb = await _list_page(d, actor, t, name, int(page or 0))
        with contextlib.suppress(BadRequest):
            await query.edit_message_text(text, reply_markup=kb)
        return
    case = await _wf(d).case_by_id(case_id)
    if case is None:
        await query.answer(t._("This case no longer exists."))
        return
    toast: str | None = None
    if action == "open":
        await query.answer()
        await send_card(context, d, chat_id, actor, t, case)
        return
    if action == "take":
        toast = await take(context, d, chat_id, actor, t, case)
    elif action == "st" and arg in STATUSES:
        if not await change_status(context, d, chat_id, actor, t, case, arg):
            toast = t._("Nothing changed.")
    elif action == "file":
        toast = await resend_file(context, d, chat_id, actor, t, case, arg)
    await query.answer(toast)
