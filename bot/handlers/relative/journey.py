"""The relative's journey through the questionnaire: showing a step (and sending it again when
it may not have arrived), turning a message or a button press into the engine's input, saving
the outcome and only then showing the next step, and submitting the report.

A handler loads the draft, calls the pure engine, saves the new state (one transaction), and
only then shows the next step: a relative who sees the next question knows the answer is kept.
"""

from __future__ import annotations

import difflib
import json
import logging
from datetime import datetime, timedelta
from typing import Any, cast

from telegram import (
    Message,
    Update,
)
from telegram.error import BadRequest, NetworkError, TelegramError
from telegram.ext import ContextTypes

from bot.context import data_of
from bot.errors import telegram_noise
from bot.evidence.intake import attach_case_files, note_file
from bot.evidence.vault import download_limit
from bot.form import engine
from bot.form.engine import DraftState, Outcome
from bot.form.model import Question
from bot.handlers import conversation, render
from bot.handlers.about import office, who_we_are
from bot.handlers.common import (
    CLEAN_CHAT_PREFIX,
    Deps,
    button,
    deps,
    esc,
    keyboard,
    media_of,
    parse_form_data,
    split_html,
)
from bot.handlers.relative.turn import (
    action_button,
    ask_language,
    load_state,
    main_menu,
    relative_turn,
    send_to_chat,
    strip_keyboard,
    user_language,
)
from bot.i18n import N_, Translator, translator
from bot.services.case_numbers import new_case_number
from bot.storage.cases import NewCase
from bot.storage.privacy import PrivacyRepository
from bot.storage.staff_messages import CaseAlerts

log = logging.getLogger(__name__)


THANKS = N_(
    "<b>Thank you. Your report has been received.</b>\n\n"
    "Case number: <code>%(number)s</code>\n"
    "Please write this number down. Volunteers will read your report and may ask you "
    "questions here. With the buttons below you can see what is happening with your case at "
    "any time, or report another family member."
)


DECLINED = N_(
    "We cannot take a report without your agreement to store it, and nothing has been kept. "
    "If you change your mind, press Start again."
)


#: Seconds after which a question whose sending failed in a way that may or may not have
#: delivered it (a timeout, a connection lost on the way) is sent again, if the relative has
#: not written meanwhile; then each later try. See ResilientRateLimiter for why not at once.
RESEND_AFTER = (10.0, 20.0, 40.0, 80.0, 160.0)


async def show_step(update: Update, context: ContextTypes.DEFAULT_TYPE, d: Deps,
                    state: DraftState, lang: str, *, notice: str | None = None,
                    old_message_id: int | None = None) -> None:
    """Send the current step, take the buttons off the previous one, and record what is shown."""
    user = update.effective_user
    assert user is not None
    await _show(context, d, user.id, state, lang, notice, old_message_id)


async def _show(context: ContextTypes.DEFAULT_TYPE, d: Deps, user_id: int, state: DraftState,
                lang: str, notice: str | None, old_message_id: int | None,
                attempt: int = 0) -> None:
    t = translator(lang)
    v = engine.view(d.form, state)
    send = context.bot.send_message
    # From here the question may reach the relative even if we die before recording it as
    # shown: their typed answer to it is then kept (see _is_stale_resume).
    await d.drafts.mark_sending(user_id, state.seq)
    try:
        if v.step == "review":
            blocks = render.review_blocks(t, d.form, engine.answered_blocks(d.form, state))
            if notice:
                blocks.insert(0, notice)
            messages = split_html(blocks)
            for text in messages[:-1]:
                await send(user_id, text)
            sent = await send(user_id, messages[-1],
                              reply_markup=render.review_keyboard(t, v.seq, v.persons))
        else:
            text, markup = render.view_message(t, d.form, v,
                                               draft_days=d.settings.draft_retention_days)
            if notice:
                text = f"{notice}\n\n{text}"
            sent = await send(user_id, text, reply_markup=markup)
    except NetworkError as exc:
        # It may have arrived or not. Until the relative has surely seen it, what they write
        # brings this step back rather than answering it (drafts.shown_seq), and if they stay
        # silent it is sent again a little later: never a second copy at once, which could
        # arrive after they answered the first one.
        if attempt >= len(RESEND_AFTER) or context.job_queue is None:
            raise
        log.info("a question may not have arrived (%s); again in %.0f s", type(exc).__name__,
                 RESEND_AFTER[attempt])
        context.job_queue.run_once(
            _resend, RESEND_AFTER[attempt], name="resend-question",
            data=(user_id, state.seq, lang, attempt + 1),
            job_kwargs={"misfire_grace_time": None})
        return
    # Recorded before the old buttons are taken off: the relative has seen the new question
    # even if that edit fails, and their next press must be taken as an answer to it.
    await d.drafts.mark_shown(user_id, state.seq, sent.message_id, d.now_iso())
    if old_message_id is not None and old_message_id != sent.message_id:
        await strip_keyboard(context, user_id, old_message_id)


async def _resend(context: ContextTypes.DEFAULT_TYPE) -> None:
    """The question again, unless the relative has seen it or moved on (see _show)."""
    assert context.job is not None
    user_id, seq, lang, attempt = cast(tuple[int, int, str, int], context.job.data)
    d = deps(context)
    loaded = await load_state(d, user_id)
    if loaded is None:
        return
    state, row = loaded
    if row.seq != seq or row.shown_seq == row.seq:
        return
    await _show(context, d, user_id, state, lang, None, row.question_message_id, attempt)


#: At start-up, relatives active this recently whose question may not be on screen get it again.
RESEND_ACTIVE_WITHIN = timedelta(hours=1)


async def resend_unseen_job(context: ContextTypes.DEFAULT_TYPE) -> None:
    """After a restart: the current question again for relatives who were mid-answer and may
    not have it on screen (the bot died after saving their answer, before or while sending
    the next question), so that they have live buttons without having to write first."""
    d = deps(context)
    since = (d.now() - RESEND_ACTIVE_WITHIN).isoformat(timespec="seconds")
    sent = 0
    for user_id in await d.drafts.unseen_since(since):
        loaded = await load_state(d, user_id)
        lang = await d.users.language_of(user_id)
        if loaded is None or lang is None:
            continue
        state, row = loaded
        try:
            await _show(context, d, user_id, state, lang, None, row.question_message_id)
            sent += 1
        except TelegramError as exc:  # blocked, or Telegram out of reach: they can write
            log.info("could not send a question again after the restart: %s",
                     type(exc).__name__)
    if sent:
        log.info("questions sent again after the restart: %d", sent)


def to_input(message: Message) -> engine.Input:
    """Turn a Telegram message into the engine's input, whatever it is."""
    if message.text is not None:
        return engine.Text(message.text)
    if message.contact is not None:
        return engine.Contact(message.contact.phone_number)
    if message.animation is not None:  # a GIF also carries a document: it is not a file
        return engine.Unsupported("animation")
    media = media_of(message)
    if media is not None:
        return media
    for kind in ("sticker", "location", "venue", "poll", "dice", "game", "story", "invoice"):
        if getattr(message, kind, None) is not None:
            return engine.Unsupported(kind)
    return engine.Unsupported("other")


def _is_stale_resume(d: Deps, row: Any) -> bool:
    """True when the relative has not seen the current step, or comes back after a while."""
    if row.shown_seq != row.seq and row.sent_seq != row.seq:
        return True  # never sent: what they typed was not an answer to it
    last = datetime.fromisoformat(row.updated_at)
    return d.now() - last > timedelta(hours=d.settings.resume_after_hours)


async def on_message(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    message = update.effective_message
    user = update.effective_user
    if message is None or user is None:
        return
    turn = await relative_turn(update, context)
    if turn is None:
        return
    d, lang, t = turn.d, turn.lang, turn.t
    loaded = await load_state(d, user.id)
    if loaded is None:
        # No report in progress: a message for the volunteers about a case, if there is one.
        if not await conversation.take_message(update, context, lang):
            await main_menu(update, lang, d)
        return
    state, row = loaded
    if _is_stale_resume(d, row):
        await show_step(update, context, d, state, lang, old_message_id=row.question_message_id,
                        notice=t._("Welcome back. We continue where you stopped:"))
        return
    before = engine.view(d.form, state)
    inp = to_input(message)
    if isinstance(inp, engine.Text) and before.step == "question" and before.question is not None:
        code = typed_option(t, before.question, inp.text)
        if code is not None:  # a button's label typed out counts as pressing it
            action = "tog" if before.question.type == "multi" else "opt"
            inp = engine.Press(state.seq, action, code)
    limit = download_limit(d.settings.api_base_url, d.settings.file_download_limit_mb)
    outcome = engine.apply(d.form, state, inp, d.now(), max_file_mb=limit // (1024 * 1024))
    if isinstance(inp, engine.Media) and outcome.changed and outcome.error is None:
        # Fetched into the evidence vault at once, before Telegram can lose it (issue 15).
        await note_file(context.application, d, user.id, inp, message.date)
    echo = None
    if outcome.error is None and outcome.changed and before.question is not None \
            and outcome.event in ("typed", "typed_year", None) and before.step == "question":
        value = outcome.state.answers.get(before.block, {}).get(before.question.id)
        if value is not None:  # what was understood: "✔️ April 2018"
            echo = render.chosen_line(t, before.question, value)
    await after_outcome(update, context, d, lang, outcome, row.question_message_id, echo=echo)


def typed_option(t: Translator, q: Question, text: str) -> str | None:
    """The option of a choice question whose label (in the relative's language) was typed,
    exactly or nearly ("казахстан" for «Қазақстан», one letter off)."""
    if q.type not in ("single", "multi"):
        return None
    wanted = _label_key(text)
    if not wanted or len(wanted) > 80:
        return None
    labels: dict[str, str] = {_label_key(t._(o.label)): o.code for o in q.options}
    if wanted in labels:
        return labels[wanted]
    close = difflib.get_close_matches(wanted, list(labels), n=1, cutoff=0.85)
    return labels[close[0]] if close else None


def _label_key(text: str) -> str:
    return " ".join("".join(c for c in text.casefold() if c.isalnum() or c.isspace()).split())


async def on_form_press(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    query = update.callback_query
    user = update.effective_user
    if query is None or user is None:
        return
    d = deps(context)
    lang = await user_language(update, d)
    parsed = parse_form_data(query.data or "")
    loaded = await load_state(d, user.id)
    if lang is None or parsed is None or loaded is None:
        await query.answer()
        if query.message is not None:
            await strip_keyboard(context, query.message.chat.id, query.message.message_id)
        if lang is None:
            await ask_language(update)
        elif loaded is None:
            await main_menu(update, lang, d)
        return
    t = translator(lang)
    state, row = loaded
    seq, action, arg = parsed
    pressed_id = query.message.message_id if query.message else None
    # The step counter alone says whether the button belongs to the current step: a copy of
    # the current question (sent again after a timeout, or before a crash) is as good as the
    # recorded one, and pressing it shows the relative saw it.
    if seq != state.seq:
        await query.answer(t._("This button is from an earlier question."))
        if pressed_id is not None and pressed_id != row.question_message_id:
            await strip_keyboard(context, user.id, pressed_id)
        return
    if action in ("editmenu", "rmmenu", "review") and state.pos.step == "review":
        await query.answer()
        await show_review_menu(query, t, d, state, action, arg)
        return
    await query.answer()
    before = engine.view(d.form, state)
    outcome = engine.apply(d.form, state, engine.Press(seq, action, arg), d.now())
    old_message_id = row.question_message_id
    saved = await _save(d, user.id, outcome)
    # Marked "✔️" only once saved: a crash before the save brings the same question back,
    # and a mark would have said the answer was kept.
    if outcome.changed and outcome.event != "toggled" and before.question is not None \
            and pressed_id is not None and outcome.error is None \
            and await _mark_answered(query, t, d, before, outcome) \
            and pressed_id == old_message_id:
        old_message_id = None  # its buttons are gone already: no second edit to take them off
    await after_outcome(update, context, d, lang, outcome, old_message_id,
                        pressed_id=pressed_id, saved=saved)


async def _save(d: Deps, user_id: int, outcome: Outcome) -> bool:
    """Keep the new draft state; False when there is nothing to keep here."""
    if outcome.event == "stale" or not outcome.changed or outcome.event in ("submit", "declined"):
        return False
    state = outcome.state
    await d.drafts.save(user_id, state.to_json().encode(), state.seq, d.form.version,
                        d.now_iso())
    return True


async def _mark_answered(query: Any, t: Translator, d: Deps, before: engine.View,
                         outcome: Outcome) -> bool:
    """Leave the answered question in the chat with the chosen answer and no buttons.

    True when the message was edited (and so has no buttons left).
    """
    q = before.question
    assert q is not None
    value = outcome.state.answers.get(before.block, {}).get(q.id)
    if value is None or before.step != "question" or q.type == "attachments":
        return False
    text, _ = render.view_message(t, d.form, before,
                                  draft_days=d.settings.draft_retention_days)
    text = text.split("\n\n<i>")[0]  # drop the typing hint; the answer follows
    with telegram_noise() as noise:
        await query.edit_message_text(f"{text}\n\n{render.chosen_line(t, q, value)}",
                                      reply_markup=None)
    return noise.ignored is None


async def show_review_menu(query: Any, t: Translator, d: Deps, state: DraftState,
                           action: str, arg: str) -> None:
    blocks = engine.answered_blocks(d.form, state)
    if action == "editmenu":
        text, kb = render.edit_menu(t, d.form, state.seq, blocks, arg or None)
    elif action == "rmmenu":
        text, kb = render.remove_menu(t, d.form, state.seq, blocks)
    else:  # back to the review: the message with the buttons held its last part
        text = split_html(render.review_blocks(t, d.form, blocks))[-1]
        kb = render.review_keyboard(t, state.seq, len(state.person_blocks()))
    with telegram_noise():
        await query.edit_message_text(text, reply_markup=kb)


async def after_outcome(update: Update, context: ContextTypes.DEFAULT_TYPE, d: Deps, lang: str,
                        outcome: Outcome, old_message_id: int | None,
                        pressed_id: int | None = None, *, saved: bool = False,
                        echo: str | None = None) -> None:
    user = update.effective_user
    assert user is not None
    t = translator(lang)
    state = outcome.state
    if outcome.event == "stale":
        return
    if not saved:
        await _save(d, user.id, outcome)
    if outcome.event == "declined":
        await d.drafts.delete(user.id)
        await strip_keyboard(context, user.id, old_message_id)
        # Who we are and where the office is: a relative who would rather not write here can
        # come or call, and knows how to tell this bot from an impostor.
        text = t._(DECLINED) + "\n\n" + who_we_are(t, d.settings, context.bot.username)
        await send_to_chat(update, text, keyboard([[action_button(t, "again")]]))
        return
    if outcome.event == "submit":
        await submit(update, context, d, lang, state, old_message_id)
        return
    if outcome.event == "toggled" and pressed_id is not None:
        v = engine.view(d.form, state)
        try:
            with telegram_noise():  # not modified (a double press), or the message is gone
                await context.bot.edit_message_reply_markup(
                    user.id, pressed_id, reply_markup=render.question_keyboard(t, v))
        except BadRequest:  # a NetworkError too, but not one to show the question again for
            raise
        except NetworkError:
            # The ticks may not be on screen, and the buttons there carry the old step
            # counter: the question comes again with them (at once, or later; see _show).
            await show_step(update, context, d, state, lang, old_message_id=pressed_id)
            return
        await d.drafts.mark_shown(user.id, state.seq, pressed_id, d.now_iso())
        return
    notice = echo
    if outcome.error is not None:
        notice = "⚠️ " + render.error_text(t, outcome.error, outcome.error_args)
    elif outcome.event == "media_saved":
        notice = "📎 " + t._("Kept with this person's photos and documents. Please also answer "
                            "the question.")
    if outcome.event in ("year_only", "typed_year"):  # after the echo of a typed year
        note = "ℹ️ " + t._("The UN asks for the month as well. If you remember it, you can "
                          "add it when you check your answers at the end.")
        notice = f"{notice}\n{note}" if notice else note
    await show_step(update, context, d, state, lang, notice=notice,
                    old_message_id=old_message_id)


async def submit(update: Update, context: ContextTypes.DEFAULT_TYPE, d: Deps, lang: str,
                 state: DraftState, old_message_id: int | None) -> None:
    user = update.effective_user
    assert user is not None
    t = translator(lang)
    # At most BOT_MAX_CASES_PER_DAY reports a day from one person (floods of fake reports
    # would bury real ones); the draft stays, to be sent later with the same button.
    since = (d.now() - timedelta(hours=24)).isoformat(timespec="seconds")
    if await CaseAlerts(d.db).submissions_since(user.id, since) >= d.settings.max_cases_per_day:
        log.info("a relative reached the daily limit of submissions")
        await send_to_chat(update, "⏳ " + t.ngettext(
            "You have already sent %(limit)s report in the last 24 hours, the most we can take "
            "from one person in a day. This report is saved: press the same button again "
            "tomorrow to send it. If it is urgent, write to the organisation directly.",
            "You have already sent %(limit)s reports in the last 24 hours, the most we can "
            "take from one person in a day. This report is saved: press the same button again "
            "tomorrow to send it. If it is urgent, write to the organisation directly.",
            d.settings.max_cases_per_day) % {"limit": d.settings.max_cases_per_day}
            + ("\n\n" + office(t, d.settings) if d.settings.org_contacts else ""))
        return
    consent = state.answers.get("consent", {})
    persons = [state.answers[b] for b in state.person_blocks()]
    data = {
        "form_version": d.form.version,
        "notice_version": d.form.notice_version,
        "language": lang,
        "consent": consent,
        "consent_at": state.answered_at,
        "reporter": state.answers.get("reporter", {}),
        "persons": persons,
    }
    case = NewCase(
        user_id=user.id,
        language=lang,
        persons_count=len(persons),
        prefecture=persons[0].get("prefecture") if persons else None,
        attachments_count=sum(len(p.get("attachments") or []) for p in persons),
        consent_share=consent.get("consent_share"),
        consent_publish=consent.get("consent_publish"),
        notice_version=d.form.notice_version,
        form_version=d.form.version,
        data=json.dumps(data, ensure_ascii=False).encode(),
        urgent=any(p.get("in_danger") == "yes" for p in persons),
    )
    from bot.services.outbox import outbox_repository, send_outbox_now

    first = await PrivacyRepository(d.db).first_message(user.id)
    rows = [[action_button(t, "status")], [action_button(t, "new")]]  # long labels: a row each
    if first is not None and old_message_id is not None:
        rows.append([button("🧹 " + t._("Remove these questions and answers from the chat"),
                            f"{CLEAN_CHAT_PREFIX}{first}:{old_message_id}")])
    clean = keyboard(rows)
    outbox = outbox_repository(d)
    queued: list[int] = []

    async def confirm(conn: Any, number: str, case_id: int) -> None:
        # In the case's transaction: the confirmation exists if and only if the case does, and
        # the outbox sends it until Telegram takes it, across restarts.
        outbox_id = await outbox.enqueue(
            conn, user.id, t._(THANKS) % {"number": esc(number)}, "HTML",
            clean.to_json() if clean is not None else None,
            kind="case_confirmation", dedup_key=f"case:{case_id}:confirmation")
        if outbox_id is not None:
            queued.append(outbox_id)
        await attach_case_files(conn, d, user.id, case_id, data)

    number = await d.cases.submit(case, d.now_iso(), new_case_number, in_transaction=confirm)
    log.info("case submitted: persons=%d", case.persons_count)
    await strip_keyboard(context, user.id, old_message_id)
    for outbox_id in queued:  # sent now; the outbox retries it if Telegram does not take it
        await send_outbox_now(context.application, outbox_id)
    context.application.create_task(_announce(context, number), update=update)


async def _announce(context: ContextTypes.DEFAULT_TYPE, number: str) -> None:
    """Tell staff (staff.announce_case, wired in bot/app.py)."""
    announce = data_of(context).announce_case
    if announce is not None:
        await announce(context, number)
