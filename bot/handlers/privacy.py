"""A relative's control over their data: /delete, /mydata, removing the questionnaire from the
chat, plus flood control and the purge of abandoned drafts."""

from __future__ import annotations

import contextlib
import io
import json
import logging
import time
from collections import deque
from datetime import datetime, timedelta
from typing import Any

from telegram import Update
from telegram.error import TelegramError
from telegram.ext import ApplicationHandlerStop, ContextTypes

from bot.context import data_of
from bot.evidence.intake import wake_vault
from bot.evidence.reading import files_for_copy
from bot.form import engine
from bot.form.engine import DraftState
from bot.handlers import render
from bot.handlers.common import (
    DELETE_PREFIX,
    MYDATA_PREFIX,
    Deps,
    button,
    deps,
    edit_or_send,
    esc,
    keyboard,
    split_html,
)
from bot.handlers.relative import STATUS_LABELS, action_button, with_language
from bot.i18n import LANGUAGE_NAMES, N_, Translator, translator
from bot.services import erasures, takeback
from bot.services.crypto import NoPrivateKey
from bot.storage.people import PeopleRepository
from bot.storage.privacy import PrivacyRepository

log = logging.getLogger(__name__)

FLOOD_LIMIT = 30  # updates ... (a person tapping buttons quickly stays well below)
FLOOD_WINDOW = 10.0  # ... in this many seconds
FLOOD_PAUSE = 60.0  # then ignored for this long, after one notice

#: Long answers (a story) are shortened in the readable copy; the file has them whole.
MYDATA_TEXT_LIMIT = 1000
MYDATA_INTRO = N_(
    "<b>Everything we keep about you</b>\n"
    "This is all we store about you, as you told us. Long answers are shortened here; press "
    "the button below to get everything as a file."
)

DELETE_DONE = N_(
    "Deleted from our database: your report in progress, your submitted cases, your files and "
    "your answers to volunteers. Volunteers will only see that the case was withdrawn. The bot "
    "also deleted the messages about your cases that it had sent volunteers in the last 48 "
    "hours.\n\n"
    "Not deleted: older messages to volunteers, files a volunteer saved on their own device, "
    "and our encrypted backups until they are replaced (after %(days)s days on our server; "
    "copies kept elsewhere last longer, but your cases are erased again whenever a backup is "
    "restored).\n\n"
    "This chat stays on your phone and in Telegram's cloud until you delete it: in Telegram, "
    "delete the chat."
)


def repo(context: ContextTypes.DEFAULT_TYPE) -> PrivacyRepository:
    return PrivacyRepository(deps(context).db)


# ----------------------------------------------------------------------------- /delete


async def delete_cmd(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    d = deps(context)
    lang = await with_language(update, d)
    if lang is None or update.effective_chat is None:
        return
    t = translator(lang)
    await update.effective_chat.send_message(
        t._("Delete everything you have sent us: the report in progress, your submitted cases "
            "and your answers to volunteers? This cannot be undone.") + "\n\n" + t._(
            "Not everything can be erased at once: messages volunteers received more than 48 "
            "hours ago, files they saved, and our encrypted backups until they are replaced. "
            "After deleting, I will tell you exactly what remains."),
        reply_markup=keyboard([[button(t._("Yes, delete everything"), f"{DELETE_PREFIX}yes"),
                                button(t._("No, keep it"), f"{DELETE_PREFIX}no")]]),
    )


async def on_delete_choice(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    query = update.callback_query
    user = update.effective_user
    if query is None or user is None:
        return
    d = deps(context)
    t = translator(await d.users.language_of(user.id, "en"))
    await query.answer()
    if query.data != f"{DELETE_PREFIX}yes":
        await edit_or_send(query, t._("Nothing was deleted."))
        return
    # The case numbers (nothing else) are written down outside the database first, so that
    # restoring an older backup can never bring these cases back (bot/services/erasures.py).
    own = await d.cases.for_user(user.id)
    numbers = [case.number for case in own]
    erasures.remember(d.settings.data_dir, numbers)
    erased = await repo(context).erase_user(user.id, d.now_iso())
    wake_vault(context.application)  # their files were marked for erasure: removed now
    log.info("erased a relative's data: cases=%d", len(erased.withdrawn_cases))
    from bot.handlers.casework import forget_cases  # the search index forgets them too

    forget_cases(context, [case.case_id for case in own])
    # What staff were sent about these cases (cards, answers, files, exports) is taken back.
    await takeback.take_back_cases(context.bot, d, erased.withdrawn_cases)
    await edit_or_send(query, t._(DELETE_DONE) % {"days": d.settings.backup_keep})


# ----------------------------------------------------------------------------- /mydata


#: /mydata, for someone who started the bot and never reported (bot/handlers/people.py).
USERNAME_KEPT = N_(
    "A coded fingerprint of your Telegram @username, so that an admin can add you as a "
    "volunteer by name; we cannot read your @username from it. It is removed when you send a "
    "report or use /delete.")


async def mydata_cmd(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Everything we keep about the relative, as text they can read in their language, like
    the review screen; the same as a file (JSON) only when they press for it."""
    d = deps(context)
    lang = await with_language(update, d)
    user = update.effective_user
    if lang is None or user is None or update.effective_chat is None:
        return
    t = translator(lang)
    messages = split_html(await _readable_copy(d, t, user.id, lang))
    for text in messages[:-1]:
        await update.effective_chat.send_message(text)
    await update.effective_chat.send_message(messages[-1], reply_markup=keyboard(
        [[button("📄 " + t._("Send it to me as a file"), f"{MYDATA_PREFIX}file")]]))


async def _readable_copy(d: Deps, t: Translator, user_id: int, lang: str) -> list[str]:
    row = await d.users.get(user_id)
    news = t._("You receive our news.") if row is not None and row.updates_enabled \
        else t._("You do not receive our news.")
    settings = ["<b>" + esc(t._("Your settings")) + "</b>",
                t._("Your language: %(language)s") % {"language": LANGUAGE_NAMES[lang]}, news]
    if await PeopleRepository(d.db).username_tag_of(user_id) is not None:
        settings.append(esc(t._(USERNAME_KEPT)))
    blocks = [t._(MYDATA_INTRO), "\n".join(settings)]
    draft = await d.drafts.get(user_id)
    if draft is not None:
        state = DraftState.from_json(draft.state)
        blocks.append("<b>" + esc(t._("Report in progress (not sent yet)")) + "</b>")
        blocks += render.answers_text(t, d.form, engine.answered_blocks(d.form, state),
                                      only_answered=True, limit=MYDATA_TEXT_LIMIT)
    for case in await d.cases.for_user(user_id):
        submitted = t.format_date(datetime.fromisoformat(case.submitted_at).date())
        blocks.append("<b>" + t._("Case № %(number)s of %(date)s: %(status)s") % {
            "number": f"<code>{esc(case.number)}</code>", "date": esc(submitted),
            "status": esc(t._(STATUS_LABELS.get(case.status, case.status)))} + "</b>")
        try:
            data = await d.cases.data(case.number)
        except NoPrivateKey:
            blocks.append(t._("Your submitted answers are encrypted on our server; only the "
                              "organisation can open them, offline."))
            continue
        if data is not None:
            blocks += render.answers_text(t, d.form, render.stored_blocks(d.form, data),
                                          only_answered=True, limit=MYDATA_TEXT_LIMIT)
    files = await files_for_copy(d.db, user_id, d.keys.unseal)
    if files:
        blocks.append(t.ngettext("Files you sent that our archive keeps: %(count)s.",
                                 "Files you sent that our archive keeps: %(count)s.",
                                 len(files)) % {"count": len(files)})
    if draft is None and len(blocks) == 2:
        blocks.append(t._("You have not sent us any answers."))
    return blocks


async def on_mydata_file(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """The copy as a JSON file (codes and English keys), for whoever needs it whole."""
    query = update.callback_query
    user = update.effective_user
    if query is None or user is None:
        return
    await query.answer()
    d = deps(context)
    row = await d.users.get(user.id)
    if row is None or row.language is None:  # erased meanwhile: there is nothing to send
        return
    lang = row.language
    t = translator(lang)
    copy: dict[str, Any] = {
        "telegram_user_id": user.id,
        "language": lang,
        "updates_enabled": bool(row.updates_enabled),
        "username_fingerprint": tag.hex() if (
            tag := await PeopleRepository(d.db).username_tag_of(user.id)) else None,
        "draft": None,
        "cases": [],
    }
    draft = await d.drafts.get(user.id)
    if draft is not None:
        copy["draft"] = DraftState.from_json(draft.state).answers
    sealed_only = False
    for case in await d.cases.for_user(user.id):
        entry: dict[str, Any] = {"number": case.number, "status": case.status,
                                 "submitted_at": case.submitted_at}
        try:
            entry["answers"] = await d.cases.data(case.number)
        except NoPrivateKey:
            sealed_only = True
            entry["answers"] = "encrypted: only the organisation can open it, offline"
        copy["cases"].append(entry)
    # The evidence vault's record of every file they sent (bot/evidence/reading.py).
    copy["files"] = await files_for_copy(d.db, user.id, d.keys.unseal)
    body = json.dumps(copy, ensure_ascii=False, indent=2).encode()
    note = t._("This is everything we keep about you. Keep the file safe, or delete it after "
               "reading: it contains your answers.")
    if sealed_only:
        note += "\n\n" + t._("Your submitted answers are encrypted on our server; only the "
                             "organisation can open them, offline.")
    await context.bot.send_document(user.id, io.BytesIO(body), filename="my-data.json",
                                    caption=note)


# ----------------------------------------------------------------------------- clean chat


async def on_clean_chat(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Delete the questionnaire (the bot's messages and the relative's answers) from the chat.

    The range comes from the button; whatever it says, only this user's own private chat is
    touched, so a forged range can do no harm to anyone else.
    """
    query = update.callback_query
    user = update.effective_user
    if query is None or user is None or query.message is None:
        return
    await query.answer()
    try:
        _, first_s, last_s = (query.data or "").split(":")
        first, last = int(first_s), int(last_s)
    except ValueError:
        return
    first = max(first, last - 1000)  # a sane bound: a questionnaire is a few hundred messages
    ids = list(range(first, last + 1))
    for start in range(0, len(ids), 100):
        with contextlib.suppress(TelegramError):  # older than 48 h or already gone
            await context.bot.delete_messages(user.id, ids[start:start + 100])
    d = deps(context)
    t = translator(await d.users.language_of(user.id, "en"))
    with contextlib.suppress(TelegramError):  # the case number's message keeps its buttons
        await query.edit_message_reply_markup(reply_markup=keyboard(
            [[action_button(t, "status")], [action_button(t, "new")]]))
    await context.bot.send_message(user.id, t._(
        "The questions and answers were removed from this chat. Your case number stays in the "
        "message above."))


# ----------------------------------------------------------------------------- flood control


class FloodGuard:
    """More than `limit` updates in `window` seconds: one notice, then a pause."""

    def __init__(self, limit: int = FLOOD_LIMIT, window: float = FLOOD_WINDOW,
                 pause: float = FLOOD_PAUSE) -> None:
        self.limit, self.window, self.pause = limit, window, pause
        self._seen: dict[int, deque[float]] = {}
        self._paused_until: dict[int, float] = {}

    def check(self, user_id: int, now: float) -> str:
        """'ok', 'notice' (just went over: tell them once) or 'drop'."""
        until = self._paused_until.get(user_id)
        if until is not None:
            if now < until:
                return "drop"
            del self._paused_until[user_id]
        seen = self._seen.setdefault(user_id, deque())
        while seen and seen[0] <= now - self.window:
            seen.popleft()
        seen.append(now)
        if len(seen) > self.limit:
            self._paused_until[user_id] = now + self.pause
            seen.clear()
            return "notice"
        if len(self._seen) > 10_000:  # forget quiet users now and then
            self._seen = {k: v for k, v in self._seen.items() if v and v[-1] > now - self.window}
        return "ok"


async def flood_gate(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    user = update.effective_user
    if user is None:
        return
    data = data_of(context)
    if data.flood_guard is None:
        data.flood_guard = FloodGuard()
    guard = data.flood_guard
    verdict = guard.check(user.id, time.monotonic())
    if verdict == "ok":
        return
    if verdict == "notice" and update.effective_chat is not None \
            and update.effective_chat.type == "private":
        t = translator(await deps(context).users.language_of(user.id, "en"))
        with contextlib.suppress(TelegramError):
            await update.effective_chat.send_message(t._(
                "You are sending messages very fast, so I will pause for a minute. Nothing you "
                "sent before is lost; please continue after the pause."))
    if update.callback_query is not None:
        with contextlib.suppress(TelegramError):
            await update.callback_query.answer()
    raise ApplicationHandlerStop


# ----------------------------------------------------------------------------- retention


async def purge_job(context: ContextTypes.DEFAULT_TYPE) -> None:
    d = deps(context)
    retention = timedelta(days=d.settings.draft_retention_days)
    cutoff = (d.now() - retention).isoformat(timespec="seconds")
    n = await repo(context).purge_drafts(cutoff, d.now_iso())
    wake_vault(context.application)  # the purged drafts' files are swept from the vault
    log.info("purged abandoned drafts: %d", n)
