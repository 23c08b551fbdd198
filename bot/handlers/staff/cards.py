"""New-case announcements, the case card with its buttons, a case's files and every staff button."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from telegram import CallbackQuery, InlineKeyboardMarkup, Message, Update
from telegram.error import BadRequest, Forbidden, TelegramError
from telegram.ext import ContextTypes

from bot.errors import MALFORMED_HTML, telegram_noise
from bot.handlers import evidence
from bot.handlers.access import button_data, parse_button
from bot.handlers.common import Deps, button, deps, esc, keyboard, rows_of, split_html
from bot.handlers.staff import alerts, export
from bot.handlers.staff.base import (
    PRIVATE_FIRST,
    SENT_PRIVATELY,
    _case_arg,
    _reply,
    _wf,
    _who,
    record_sent,
)
from bot.handlers.staff.lists import _list_page
from bot.handlers.staff.workflow import take
from bot.handlers.staff_view import (
    answer_blocks,
    card_header,
    file_label,
    files_of,
    history_blocks,
    status_label,
)
from bot.i18n import Translator
from bot.services.crypto import NoPrivateKey
from bot.storage.staff import (
    FINISHED,
    STATUSES,
    AuditLog,
    CaseInfo,
)
from bot.storage.staff_messages import CARD, FILE

log = logging.getLogger(__name__)

#: File buttons on one page of a card's keyboard (Telegram takes about 100 buttons in all).
FILES_PER_PAGE = 10


# ----------------------------------------------------------------------------- new cases


async def announce_case(context: ContextTypes.DEFAULT_TYPE, number: str) -> None:
    """Tell staff about a new case: numbers and places only, with Open and Take buttons.

    Through the outbox (bot/handlers/staff/alerts.py): queued with a record that the case was
    announced, sent until Telegram takes it; past BOT_ALERTS_PER_HOUR, in the hourly digest.
    """
    from bot.handlers.casework import check_new_case

    d = deps(context)
    case = await _wf(d).case(number)
    if case is not None:  # possible duplicates first: the alert names them (numbers only)
        await check_new_case(context, d, case)
    await alerts.announce(context.application, number)


# ----------------------------------------------------------------------------- the case card


def card_keyboard(d: Deps, t: Translator, case: CaseInfo, viewer: int,
                  files: list[tuple[str, dict[str, Any]]], page: int = 0,
                  extra: list[list[Any]] | None = None) -> InlineKeyboardMarkup | None:
    rows = list(extra or [])  # per-person statuses and duplicate links (casework.card_buttons)
    if case.status not in FINISHED and case.assignee_id != viewer:
        rows.append([button("✋ " + t._("Take"), button_data(d, "take", case.case_id))])
    if case.status != "withdrawn":
        rows += rows_of([button(status_label(t, s), button_data(d, "st", case.case_id, s))
                         for s in STATUSES if s != case.status], width=3)
    # Files on pages: a case may hold hundreds, and a keyboard about 100 buttons.
    pages = max(1, -(-len(files) // FILES_PER_PAGE))
    page = min(max(page, 0), pages - 1)
    shown = files[page * FILES_PER_PAGE:(page + 1) * FILES_PER_PAGE]
    rows += [[button("📎 " + file_label(t, ref, media),
                     button_data(d, "file", case.case_id, ref))] for ref, media in shown]
    if pages > 1:
        nav = []
        if page > 0:
            nav.append(button("◀️ " + t._("Files %(page)s/%(pages)s")
                              % {"page": page, "pages": pages},
                              button_data(d, "fp", case.case_id, str(page - 1))))
        if page + 1 < pages:
            nav.append(button(t._("Files %(page)s/%(pages)s")
                              % {"page": page + 2, "pages": pages} + " ▶️",
                              button_data(d, "fp", case.case_id, str(page + 1))))
        rows.append(nav)
    rows += extra or []  # verification levels, the vault (bot/handlers/evidence.py)
    rows.append([button("🔄 " + t._("Refresh"), button_data(d, "open", case.case_id))])
    return keyboard(rows)


async def send_card(context: ContextTypes.DEFAULT_TYPE, d: Deps, chat_id: int, viewer: int,
                    t: Translator, case: CaseInfo) -> bool:
    """Every answer, the consent choices, the files, the status and the whole history.

    Only ever to the viewer's own private chat (`chat_id` must be `viewer`); False when that
    chat cannot be reached. Each message is recorded to be deleted after BOT_CARD_TTL_HOURS.
    """
    if chat_id != viewer:
        raise ValueError("a case card goes only to the viewer's private chat")
    from bot.handlers.casework import card_buttons, card_top

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
    blocks.insert(1, await card_top(d, t, case, data))  # consent, persons, duplicates first
    if data is not None:
        blocks += answer_blocks(t, d.form, data)
    files = files_of(data) if data else []
    blocks += await evidence.card_blocks(d, t, case, files,
                                         {ref: file_label(t, ref, m) for ref, m in files})
    blocks += history_blocks(t, await wf.events(case.case_id), wf.reveal)
    messages = split_html(blocks)
    markup = card_keyboard(d, t, case, viewer, files, 0,
                           [*await card_buttons(d, t, case),
                            *await evidence.card_rows(d, t, case)])
    sent: list[Message] = []
    try:
        for text in messages[:-1]:
            sent.append(await context.bot.send_message(chat_id, text))
        sent.append(await context.bot.send_message(chat_id, messages[-1], reply_markup=markup))
    except (Forbidden, BadRequest) as exc:
        if isinstance(exc, BadRequest) and MALFORMED_HTML in exc.message.lower():
            raise  # our own HTML: reported by the error handler, not taken for a lost chat
        log.warning("could not send a card to a staff member: %s", type(exc).__name__)
        return False
    finally:
        await record_sent(d, chat_id, sent, case.case_id, CARD)
    await AuditLog(d.db).record(viewer, "case_view", {"case": case.number}, d.now_iso())
    return True


async def case_cmd(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    d, viewer, chat_id, t = await _who(update, context)
    case = await _case_arg(context, d, chat_id, t, "case", " ".join(context.args or []))
    if case is None:
        return
    sent = await send_card(context, d, viewer, viewer, t, case)
    if chat_id != viewer:  # the staff chat: never the card, only where it went
        await _reply(context, chat_id, t._(SENT_PRIVATELY if sent else PRIVATE_FIRST))


# ----------------------------------------------------------------------------- files


_SENDERS: dict[str, str] = {
    "photo": "send_photo", "document": "send_document", "voice": "send_voice",
    "audio": "send_audio", "video": "send_video", "video_note": "send_video_note",
}


async def resend_file(context: ContextTypes.DEFAULT_TYPE, d: Deps, chat_id: int, actor: int,
                      t: Translator, case: CaseInfo, ref: str) -> str | None:
    """Send one of the case's files again by its file_id, to the private chat `chat_id` (the
    staff member's own); returns a toast on failure."""
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
            message = await send(chat_id, media["file_id"])
        else:
            message = await send(chat_id, media["file_id"], caption=esc(caption))
    except Forbidden:
        log.warning("could not send a case file again: Forbidden")
        return t._(PRIVATE_FIRST)
    except TelegramError as exc:
        # The file_id no longer works (the bot's account changed, Telegram lost the file):
        # the copy in the evidence vault is sent instead.
        log.info("a case file's file_id failed (%s): sending it from the vault",
                 type(exc).__name__)
        toast, message = await evidence.send_from_vault(context, d, chat_id, t, case, media,
                                                        caption)
        if message is None:
            return toast
    await record_sent(d, chat_id, [message], case.case_id, FILE)
    await AuditLog(d.db).record(actor, "file", {"case": case.number, "file": ref}, d.now_iso())
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
        with telegram_noise():  # the same page again, or the list was deleted
            await query.edit_message_text(text, reply_markup=kb)
        return
    if action == "xf":  # the confirm button of /export full
        await query.answer()
        refused = await export.confirm_full(context, d, actor, chat_id, t, arg)
        if refused is not None:
            await _reply(context, chat_id, esc(refused))
        return
    case = await _wf(d).case_by_id(case_id)
    if case is None:
        await query.answer(t._("This case no longer exists."))
        return
    toast: str | None = None
    if action == "open":  # the card goes to the presser's private chat, wherever they pressed
        sent = await send_card(context, d, actor, actor, t, case)
        if not sent:
            toast = t._(PRIVATE_FIRST)
        elif chat_id != actor:
            toast = t._(SENT_PRIVATELY)
        await query.answer(toast)
        return
    if action == "fp":
        await query.answer()
        await _file_page(query, d, t, case, actor, arg)
        return
    from bot.handlers import casework

    handled, toast = await casework.on_button(context, d, chat_id, actor, t, case, action, arg)
    if handled:
        await query.answer(toast)
        return
    if action == "take":
        toast = await take(context, d, chat_id, actor, t, case)
    elif action == "file":
        toast = await resend_file(context, d, actor, actor, t, case, arg)
        if toast is None and chat_id != actor:
            toast = t._(SENT_PRIVATELY)
    elif action == "ver":
        toast = await evidence.on_verify_button(d, t, actor, case, arg, d.now_iso())
    elif action == "vretry":
        toast = await evidence.retry_files(context, d, t, case)
    await query.answer(toast)


async def _file_page(query: CallbackQuery, d: Deps, t: Translator, case: CaseInfo, viewer: int,
                     arg: str) -> None:
    """Show another page of the card's file buttons, in place."""
    from bot.handlers.casework import card_buttons

    try:
        data = await d.cases.data(case.number)
    except NoPrivateKey:
        return
    page = int(arg) if arg.isdigit() else 0
    markup = card_keyboard(d, t, case, viewer, files_of(data or {}), page,
                           [*await card_buttons(d, t, case),
                            *await evidence.card_rows(d, t, case)])
    with telegram_noise():  # the same page again, or the card was deleted
        await query.edit_message_reply_markup(reply_markup=markup)
