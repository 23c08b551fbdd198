"""Admins' broadcasts (/broadcast, /broadcast_cancel) and the statistics for staff (/stats).

/broadcast is a short dialog kept in the database (so it survives restarts): the text for each
language (kk, ru, en, any of them skipped), which language those without a text get, an optional
photo, the audience, then a preview of exactly what each language group will receive, the number
of recipients, and Send or Cancel. Send queues the broadcast (all recipients stored in one
transaction) and turns the summary into the progress message that the sender keeps editing.

Who may do what is checked by the central access gate (bot/handlers/access.py) when it is
installed, and again here, so that these handlers refuse strangers exactly like an unknown
command in any wiring order.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
from typing import Any

from telegram import Update
from telegram.error import TelegramError
from telegram.ext import ApplicationHandlerStop, ContextTypes

from bot.errors import telegram_noise
from bot.handlers import access, evidence, relative
from bot.handlers.common import BROADCAST_PREFIX, Deps, button, deps, esc, keyboard
from bot.handlers.staff_view import status_label
from bot.i18n import LANGUAGE_NAMES, LANGUAGES, N_, Translator, guess_language, translator
from bot.services.broadcast import (
    Tally,
    message_html,
    progress_text,
    sender_of,
    stop_keyboard,
    visible_length,
)
from bot.services.chart import bar_chart_png
from bot.storage.broadcasts import Audience, BroadcastRepository, NewBroadcast
from bot.storage.stats import StatsRepository

log = logging.getLogger(__name__)

BUTTON_PREFIX = BROADCAST_PREFIX
COMMAND_ROLES: dict[str, access.Role] = {
    "broadcast": "admin", "broadcast_cancel": "admin", "stats": "staff",
}
USAGES: dict[str, str] = {  # msgids, for /staffhelp and the staff's command menu
    "broadcast": N_("/broadcast: news for relatives, each in their own language (admins only)"),
    "broadcast_cancel": N_("/broadcast_cancel: stop the broadcast being sent (admins only)"),
    "stats": N_("/stats: cases by status, language and prefecture, and new cases per week"),
}
CAPTION_LIMIT = 1024
TEXT_LIMIT = 4096

STEP_ACTIONS = {  # which buttons belong to which step: older buttons do nothing
    "text": {"skip", "cancel"},
    "fallback": {"fb", "cancel"},
    "photo": {"nophoto", "cancel"},
    "audience": {"aud", "status", "cancel"},
    "status": {"aud", "back", "cancel"},
    "preview": {"send", "back", "cancel"},
}
NO_TEXT = N_("Nothing to send yet: write the message in at least one language.")
USE_BUTTONS = N_("Please use the buttons under the last message, or send /broadcast_cancel to "
                 "discard this broadcast.")


# ----------------------------------------------------------------------------- access


async def admin_language(update: Update, d: Deps) -> str:
    """The admin's chosen language, else a guess from Telegram's (admins need not /start)."""
    user = update.effective_user
    assert user is not None
    return await d.users.language_of(user.id, guess_language(user.language_code))


def _repo(d: Deps) -> BroadcastRepository:
    return BroadcastRepository(d.db, d.settings.staff_ids | d.settings.admin_ids)


# ----------------------------------------------------------------------------- the dialog


async def broadcast_cmd(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    d = deps(context)
    user = update.effective_user
    assert user is not None
    old = await _repo(d).get_draft(user.id)
    if old is not None:
        await _strip(context, user.id, old.get("prompt"))
    draft: dict[str, Any] = {"nonce": secrets.token_hex(3), "step": "text", "lang": LANGUAGES[0],
                             "texts": {}, "fallback": None, "photo": None, "audience": None}
    t = translator(await admin_language(update, d))
    await show_step(update, context, d, t, draft)


async def show_step(update: Update, context: ContextTypes.DEFAULT_TYPE, d: Deps, t: Translator,
                    draft: dict[str, Any], notice: str | None = None) -> None:
    """Send the prompt of the draft's step, take the buttons off the previous one, save."""
    chat = update.effective_chat
    user = update.effective_user
    assert chat is not None and user is not None
    step, nonce = draft["step"], draft["nonce"]

    def data(action: str, arg: str = "") -> str:
        return f"{BUTTON_PREFIX}{nonce}:{action}" + (f":{arg}" if arg else "")

    cancel = button("✖ " + t._("Cancel"), data("cancel"))
    rows: list[list[Any]]
    if step == "text":
        name = LANGUAGE_NAMES[draft["lang"]]
        text = t._("📣 <b>New broadcast.</b> Send the message for relatives who read "
                   "<b>%(language)s</b>, as they should see it (bold, italics and links are "
                   "kept), or skip this language.") % {"language": name}
        rows = [[button("⏭ " + t._("Skip %(language)s") % {"language": name}, data("skip"))],
                [cancel]]
    elif step == "fallback":
        missing = ", ".join(LANGUAGE_NAMES[lang] for lang in LANGUAGES
                            if lang not in draft["texts"])
        text = t._("There is no text for: %(languages)s. Which text should these relatives "
                   "get instead?") % {"languages": missing}
        rows = [[button(LANGUAGE_NAMES[lang], data("fb", lang))]
                for lang in LANGUAGES if lang in draft["texts"]] + [[cancel]]
    elif step == "photo":
        text = t._("Add a photo to the message? Send it now, or press No photo.")
        rows = [[button(t._("No photo"), data("nophoto"))], [cancel]]
    elif step == "audience":
        text, rows = await _audience_prompt(d, t, data)
        rows.append([cancel])
    elif step == "status":
        text, rows = await _status_prompt(d, t, data)
        rows.append([button("◀ " + t._("Back"), data("back")), cancel])
    else:
        text, rows = await _preview(update, context, d, t, draft, data)
        rows.append([cancel])
    if notice:
        text = f"{notice}\n\n{text}"
    sent = await chat.send_message(text, reply_markup=keyboard(rows))
    await _strip(context, chat.id, draft.get("prompt"))
    draft["prompt"] = sent.message_id
    await _repo(d).save_draft(user.id, draft, d.now_iso())


async def _audience_prompt(d: Deps, t: Translator, data: Any) -> tuple[str, list[list[Any]]]:
    repo = _repo(d)

    async def size(code: str) -> str:
        return t.format_number(sum((await repo.audience_sizes(Audience.parse(code))).values()))

    rows = [[button(t._("Everyone (%(n)s)") % {"n": await size("all")}, data("aud", "all"))]]
    for lang in LANGUAGES:
        label = t._("Readers of %(language)s (%(n)s)") % {"language": LANGUAGE_NAMES[lang],
                                                           "n": await size(f"lang:{lang}")}
        rows.append([button(label, data("aud", f"lang:{lang}"))])
    rows.append([button(t._("Relatives with an open case (%(n)s)")
                        % {"n": await size("open-cases")}, data("aud", "open-cases"))])
    rows.append([button(t._("By case status…"), data("status"))])
    return t._("Who should receive it? (Relatives who turned updates off or blocked the bot "
               "are never counted.)"), rows


async def _status_prompt(d: Deps, t: Translator, data: Any) -> tuple[str, list[list[Any]]]:
    repo = _repo(d)
    rows = []
    for code, label in relative.STATUS_LABELS.items():
        n = sum((await repo.audience_sizes(Audience("status", code))).values())
        rows.append([button(f"{t._(label)} ({t.format_number(n)})", data("aud", f"status:{code}"))])
    return t._("Relatives with a case in which status?"), rows


def _audience_label(t: Translator, audience: Audience) -> str:
    if audience.kind == "lang":
        return t._("readers of %(language)s") % {"language": LANGUAGE_NAMES[audience.value]}
    if audience.kind == "open-cases":
        return t._("relatives with an open case")
    if audience.kind == "status":
        label = relative.STATUS_LABELS.get(audience.value, audience.value)
        return t._("relatives with a case in status: %(status)s") % {"status": t._(label)}
    return t._("everyone")


async def _preview(update: Update, context: ContextTypes.DEFAULT_TYPE, d: Deps, t: Translator,
                   draft: dict[str, Any], data: Any) -> tuple[str, list[list[Any]]]:
    """Show each language group its exact message; return the summary and its buttons."""
    chat = update.effective_chat
    assert chat is not None
    texts, fallback, photo = draft["texts"], draft["fallback"], draft["photo"]
    audience = Audience.parse(draft["audience"])
    sizes = await _repo(d).audience_sizes(audience)
    lines = []
    for lang in LANGUAGES:
        n = sizes.get(lang, 0)
        if not n:
            continue
        head = t._("👁 What readers of %(language)s will receive (%(n)s):") % {
            "language": LANGUAGE_NAMES[lang], "n": t.format_number(n)}
        line = f"• {LANGUAGE_NAMES[lang]}: {t.format_number(n)}"
        if lang not in texts:
            note = t._("the %(fallback)s text, as there is no %(language)s text") % {
                "fallback": LANGUAGE_NAMES[fallback], "language": LANGUAGE_NAMES[lang]}
            head += "\n" + t._("They get %(note)s.") % {"note": note}
            line += f" ({note})"
        lines.append(line)
        await chat.send_message(head)
        body = message_html(texts, fallback, lang)
        if photo:
            await chat.send_photo(photo, caption=body)
        else:
            await chat.send_message(body)
    total = sum(sizes.values())
    who = _audience_label(t, audience)
    if not total:
        return (t._("Nobody would receive this broadcast (%(audience)s). Choose another "
                    "audience.") % {"audience": who},
                [[button("◀ " + t._("Change the audience"), data("back"))]])
    summary = t._("<b>Ready to send to %(n)s relatives</b> (%(audience)s):") % {
        "n": t.format_number(total), "audience": who}
    return "\n".join([summary, *lines]), [
        [button("✅ " + t._("Send to %(n)s") % {"n": t.format_number(total)}, data("send"))],
        [button("◀ " + t._("Change the audience"), data("back"))],
    ]


async def _strip(context: ContextTypes.DEFAULT_TYPE, chat_id: int, message_id: Any) -> None:
    if isinstance(message_id, int):
        with contextlib.suppress(TelegramError):
            await context.bot.edit_message_reply_markup(chat_id, message_id, reply_markup=None)


def _next_after_texts(draft: dict[str, Any]) -> str | None:
    """Move on from the texts: ask for the fallback only when there is a choice to make."""
    given = [lang for lang in LANGUAGES if lang in draft["texts"]]
    if not given:
        draft.update(step="text", lang=LANGUAGES[0])
        return NO_TEXT
    if len(given) < len(LANGUAGES) and len(given) > 1:
        draft["step"] = "fallback"
        return None
    draft.update(step="photo", fallback=given[0])
    return None


def _advance_text(draft: dict[str, Any]) -> str | None:
    i = LANGUAGES.index(draft["lang"])
    if i + 1 < len(LANGUAGES):
        draft["lang"] = LANGUAGES[i + 1]
        return None
    return _next_after_texts(draft)


def _longest_message(text_html: str) -> int:
    """The length of this text as sent, with the longest of the opt-out lines."""
    return max(visible_length(message_html({"x": text_html}, "x", lang)) for lang in LANGUAGES)


def _too_long_for_caption(draft: dict[str, Any]) -> list[tuple[str, int]]:
    """Languages whose message would not fit in a photo's caption, with their length."""
    out = []
    for lang in LANGUAGES:
        length = visible_length(message_html(draft["texts"], draft["fallback"], lang))
        if length > CAPTION_LIMIT:
            out.append((lang, length))
    return out


async def on_admin_message(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """An admin's message: part of the broadcast being composed (then no later handler group
    sees it), else left to the staff answers and the relative's journey (app.py)."""
    d = deps(context)
    user = update.effective_user
    message = update.effective_message
    assert user is not None and message is not None
    repo = _repo(d)
    draft = await repo.get_draft(user.id) if user.id in d.settings.admin_ids else None
    if draft is None:
        return
    if draft["step"] not in ("text", "photo"):
        t = translator(await admin_language(update, d))
        await show_step(update, context, d, t, draft, t._(USE_BUTTONS))
        raise ApplicationHandlerStop
    t = translator(await admin_language(update, d))
    notice: str | None = None
    if draft["step"] == "text":
        if not message.text:
            notice = t._("Please send the text as a message; a photo can be added next.")
        elif (length := _longest_message(message.text_html)) > TEXT_LIMIT:
            notice = t._("The message would have %(length)s characters with the line on how to "
                         "stop news; at most %(limit)s fit. Please send a shorter text.") % {
                "length": length, "limit": TEXT_LIMIT}
        else:
            draft["texts"][draft["lang"]] = message.text_html
            notice = _advance_text(draft)
    elif message.photo:
        draft["photo"] = message.photo[-1].file_id
        too_long = _too_long_for_caption(draft)
        if too_long:
            draft["photo"] = None
            notice = t._("With a photo, the message must fit in %(limit)s characters; it has "
                         "%(length)s for %(language)s. Shorten the text (/broadcast to start "
                         "again) or press No photo.") % {
                "limit": CAPTION_LIMIT, "length": too_long[0][1],
                "language": LANGUAGE_NAMES[too_long[0][0]]}
        else:
            draft["step"] = "audience"
    else:
        notice = t._("Send a photo, or press No photo.")
    await show_step(update, context, d, t, draft, notice)
    raise ApplicationHandlerStop


async def on_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    query = update.callback_query
    user = update.effective_user
    assert query is not None and user is not None
    d = deps(context)
    t = translator(await admin_language(update, d))
    parts = (query.data or "").split(":", 3)
    nonce, action = (parts[1], parts[2]) if len(parts) >= 3 else ("", "")
    arg = parts[3] if len(parts) > 3 else ""
    if nonce == "-" and action == "stop" and arg.isdigit():
        await _stop_pressed(update, context, d, t, int(arg))
        return
    repo = _repo(d)
    draft = await repo.get_draft(user.id)
    if draft is None or draft["nonce"] != nonce or action not in STEP_ACTIONS[draft["step"]]:
        await query.answer(t._("This button is from an earlier step."))
        if query.message is not None and (draft is None or query.message.message_id
                                          != draft.get("prompt")):
            await _strip(context, query.message.chat.id, query.message.message_id)
        return
    await query.answer()
    if action == "cancel":
        await repo.delete_draft(user.id)
        with telegram_noise():
            await query.edit_message_text(t._("The broadcast was discarded; nothing was sent."))
        return
    if action == "send":
        await _send_pressed(update, context, d, t, draft)
        return
    notice = None
    if action == "skip":
        notice = _advance_text(draft)
    elif action == "fb" and arg in draft["texts"]:
        draft.update(step="photo", fallback=arg)
    elif action == "nophoto":
        draft.update(step="audience", photo=None)
    elif action == "status":
        draft["step"] = "status"
    elif action == "back":
        draft["step"] = "audience"
    elif action == "aud":
        try:
            draft.update(step="preview", audience=Audience.parse(arg).code)
        except ValueError:
            return
    await show_step(update, context, d, t, draft, notice)


async def _send_pressed(update: Update, context: ContextTypes.DEFAULT_TYPE, d: Deps,
                        t: Translator, draft: dict[str, Any]) -> None:
    query = update.callback_query
    user = update.effective_user
    assert query is not None and user is not None and query.message is not None
    new = NewBroadcast(
        audience=Audience.parse(draft["audience"]), texts=dict(draft["texts"]),
        fallback=draft["fallback"], photo_file_id=draft["photo"], created_by=user.id,
        notify_chat_id=query.message.chat.id, progress_message_id=query.message.message_id,
        notify_language=t.lang,
    )
    queued = await _repo(d).queue(new, d.now_iso(), draft=(user.id, draft["nonce"]))
    if queued is None:  # pressed twice: the first press queued it
        return
    broadcast_id, total = queued
    log.info("broadcast %d queued by an admin: recipients=%d", broadcast_id, total)
    with telegram_noise():
        await query.edit_message_text(
            progress_text(t, broadcast_id, Tally(remaining=total), None),
            reply_markup=stop_keyboard(t, broadcast_id))
    sender = sender_of(context.application)
    if sender is not None:
        sender.wake()


async def _stop_pressed(update: Update, context: ContextTypes.DEFAULT_TYPE, d: Deps,
                        t: Translator, broadcast_id: int) -> None:
    query = update.callback_query
    assert query is not None
    outcome = await _cancel(context, d, broadcast_id)
    await query.answer(t._(_CANCEL_ANSWERS[outcome]) % {"id": broadcast_id})


_CANCEL_ANSWERS = {
    "stopping": N_("Stopping broadcast #%(id)s: relatives who have not received it yet will "
                   "not get it. A report follows."),
    "cancelled": N_("Broadcast #%(id)s was cancelled before it started; nobody received it."),
    "over": N_("Broadcast #%(id)s is not being sent any more."),
}


async def _cancel(context: ContextTypes.DEFAULT_TYPE, d: Deps, broadcast_id: int) -> str:
    """Cancel a broadcast: "stopping" (the sender is on it), "cancelled" (queued) or "over"."""
    sender = sender_of(context.application)
    sending = sender is not None and sender.current == broadcast_id
    if sender is not None:
        done = await sender.cancel(broadcast_id)
    else:
        done = await _repo(d).cancel(broadcast_id, d.now_iso())
    if not done:
        return "over"
    return "stopping" if sending else "cancelled"


async def broadcast_cancel_cmd(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Stop the broadcast being sent (or #N with an argument); else drop the one being composed."""
    d = deps(context)
    user, chat = update.effective_user, update.effective_chat
    assert user is not None and chat is not None
    t = translator(await admin_language(update, d))
    repo = _repo(d)
    active = await repo.active()
    wanted = (context.args or [""])[0].lstrip("#")
    if wanted:
        active = [b for b in active if str(b.broadcast_id) == wanted]
    elif active:
        sender = sender_of(context.application)
        current = sender.current if sender is not None else None
        active = [next((b for b in active if b.broadcast_id == current), active[0])]
    if active:
        outcome = await _cancel(context, d, active[0].broadcast_id)
        if outcome != "over":
            await chat.send_message(t._(_CANCEL_ANSWERS[outcome])
                                    % {"id": active[0].broadcast_id})
            return
    draft = await repo.get_draft(user.id)
    if draft is not None and not wanted:
        await repo.delete_draft(user.id)
        await _strip(context, chat.id, draft.get("prompt"))
        await chat.send_message(t._("The broadcast was discarded; nothing was sent."))
        return
    await chat.send_message(t._("No broadcast is being sent."))


# ----------------------------------------------------------------------------- /stats


async def stats_cmd(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Cases by status, language and prefecture, new cases per week, and a chart of those."""
    d = deps(context)
    chat = update.effective_chat
    assert chat is not None
    t = translator(await admin_language(update, d))
    stats = await StatsRepository(d.db).case_stats(d.now().date())
    n = t.format_number
    prefecture_q = d.form.repeat_group.by_id.get("prefecture")

    def prefecture(code: str | None) -> str:
        option = prefecture_q.option(code) if prefecture_q is not None and code else None
        if option is not None:
            return t._(option.label)
        return esc(code) if code else t._("not given")

    blocks = [t._("<b>Cases: %(n)s</b>") % {"n": n(stats.total)}, t._("<b>By status</b>")]
    blocks += [f"• {esc(status_label(t, code))}: {n(count)}" for code, count in stats.by_status]
    from bot.handlers.casework import person_stats  # it imports the staff side, which uses us

    persons = await person_stats(context, d, t)
    blocks += persons.lines
    blocks.append(t._("<b>By language</b>"))
    blocks += [f"• {LANGUAGE_NAMES.get(lang, esc(lang))}: {n(count)}"
               for lang, count in stats.by_language]
    blocks.append(t._("<b>By prefecture</b> (of the first missing person)"))
    blocks += [f"• {prefecture(code)}: {n(count)}" for code, count in stats.by_prefecture]
    blocks.append(t._("<b>New cases per week</b> (weeks start on Monday)"))
    blocks += [f"• {esc(t.format_date(week))}: {n(count)}" for week, count in stats.per_week]
    blocks += await evidence.stats_blocks(d, t)  # verification levels, the evidence vault
    await chat.send_message("\n".join(blocks))
    png = bar_chart_png([c for _, c in stats.per_week],
                        [f"{w.day:02d}.{w.month:02d}" for w, _ in stats.per_week])
    await chat.send_photo(png, caption=t._("New cases per week, last %(n)s weeks")
                          % {"n": len(stats.per_week)})
    if persons.years:
        png = bar_chart_png([c for _, c in persons.years], [str(y) for y, _ in persons.years])
        await chat.send_photo(png, caption=t._("Missing persons by the year it happened"))

