"""The relative's commands and menus: /start, /language, /new, /status, /help, /cancel, the
main menu's buttons, unknown commands and messages in groups."""

from __future__ import annotations

from datetime import datetime

from telegram import (
    BotCommand,
    Update,
)
from telegram.ext import ContextTypes

from bot.casework.status import RELATIVE_LABELS
from bot.context import data_of
from bot.errors import telegram_noise
from bot.form import engine
from bot.handlers import conversation
from bot.handlers.about import who_we_are
from bot.handlers.common import (
    CANCEL_PREFIX,
    LANGUAGE_PREFIX,
    MENU_PREFIX,
    Deps,
    button,
    deps,
    edit_or_send,
    esc,
    keyboard,
    split_html,
)
from bot.handlers.relative.journey import (
    show_step,
)
from bot.handlers.relative.turn import (
    RelativeTurn,
    action_button,
    ask_language,
    load_state,
    main_menu,
    menu_keyboard,
    relative_handler,
    relative_turn,
    send_to_chat,
    strip_keyboard,
    user_language,
)
from bot.i18n import LANGUAGE_NAMES, LANGUAGES, N_, Translator, guess_language, translator
from bot.storage.privacy import PrivacyRepository

STATUS_LABELS = RELATIVE_LABELS  # moved to bot/casework/status.py


COMMANDS = (
    ("start", N_("Start or continue a report")),
    ("new", N_("Report another missing person")),
    ("status", N_("My cases and their status")),
    ("language", N_("Change the language")),
    ("cancel", N_("Discard the report in progress")),
    ("mydata", N_("See everything we keep about you")),
    ("delete", N_("Delete everything you sent")),
    ("stop_updates", N_("Stop receiving news")),
    ("start_updates", N_("Receive news again")),
    ("help", N_("What this bot does")),
)


def bot_commands(t: Translator) -> list[BotCommand]:
    return [BotCommand(name, t._(desc)) for name, desc in COMMANDS]


async def begin_draft(update: Update, context: ContextTypes.DEFAULT_TYPE, d: Deps,
                      lang: str) -> None:
    user = update.effective_user
    assert user is not None
    state = engine.start(d.form)
    await d.drafts.save(user.id, state.to_json().encode(), state.seq, d.form.version,
                        d.now_iso())
    # Remember where the questionnaire starts in the chat, to offer removing it after submission.
    message = update.effective_message
    if message is not None:
        await PrivacyRepository(d.db).set_first_message(user.id, message.message_id)
    # Who runs the bot, before the consent it asks for (the consent question comes next).
    await send_to_chat(update, who_we_are(translator(lang), d.settings, context.bot.username))
    await show_step(update, context, d, state, lang)


async def start_cmd(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """The language is asked once; later /start goes on where the relative is (/language
    changes it). Staff get their own welcome."""
    from bot.handlers.staff.members import staff_welcome

    if await staff_welcome(update, context):
        return
    turn = await relative_turn(update, context)
    if turn is not None:
        await continue_journey(update, context, turn.d, turn.lang)


async def language_cmd(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    await ask_language(update)


async def on_language(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    query = update.callback_query
    user = update.effective_user
    assert query is not None and user is not None
    lang = (query.data or "").removeprefix(LANGUAGE_PREFIX)
    if lang not in LANGUAGES:
        await query.answer()
        return
    d = deps(context)
    await d.users.seen(user.id, d.now_iso())
    await d.users.set_language(user.id, lang)
    await query.answer()
    with telegram_noise():
        await query.edit_message_text(f"🌐 {LANGUAGE_NAMES[lang]}", reply_markup=None)
    personal_menu = data_of(context).personal_menu  # staff see theirs too (menus.py)
    if personal_menu is not None:
        await personal_menu(context.bot, d, user.id, lang)
    await continue_journey(update, context, d, lang)


async def continue_journey(update: Update, context: ContextTypes.DEFAULT_TYPE, d: Deps,
                           lang: str) -> None:
    """The current question of the report in progress, else the menu, else a new report."""
    user = update.effective_user
    assert user is not None
    loaded = await load_state(d, user.id)
    if loaded is not None:
        state, row = loaded
        await show_step(update, context, d, state, lang, old_message_id=row.question_message_id)
        return
    if await d.cases.for_user(user.id):
        await main_menu(update, lang, d)
        return
    await begin_draft(update, context, d, lang)


@relative_handler
async def new_cmd(turn: RelativeTurn) -> None:
    update, context, d, lang, t = turn.update, turn.context, turn.d, turn.lang, turn.t
    loaded = await load_state(d, turn.user_id)
    if loaded is not None:
        state, row = loaded
        await show_step(update, context, d, state, lang, old_message_id=row.question_message_id,
                        notice=t._("You have a report in progress. Let us finish it first."))
        return
    await begin_draft(update, context, d, lang)


@relative_handler
async def status_cmd(turn: RelativeTurn) -> None:
    await send_status(turn.update, turn.d, turn.lang)


async def send_status(update: Update, d: Deps, lang: str) -> None:
    t = translator(lang)
    user = update.effective_user
    assert user is not None
    cases = await d.cases.for_user(user.id)
    if not cases:
        await send_to_chat(update, t._("You have no submitted cases yet."),
                           keyboard([[action_button(t, "new")]]))
        return
    from bot.handlers.casework import person_lines  # each person's own status

    lines = [t.ngettext("<b>Your case</b>", "<b>Your cases</b>", len(cases))]
    for c in cases:
        submitted = t.format_date(datetime.fromisoformat(c.submitted_at).date())
        lines.append(
            t._("№ %(number)s of %(date)s: %(status)s")
            % {"number": f"<code>{esc(c.number)}</code>", "date": esc(submitted),
               "status": esc(t._(STATUS_LABELS.get(c.status, c.status)))}
        )
        lines += await person_lines(d, t, c.case_id, c.number, c.persons_count)
    writable = any(c.status != "withdrawn" for c in cases)
    await send_to_chat(update, "\n".join(lines), keyboard([
        [conversation.write_button(t)] if writable else [],
        [action_button(t, "new")],
    ]))


@relative_handler
async def help_cmd(turn: RelativeTurn) -> None:
    await send_help(turn.update, turn.context, turn.d, turn.lang)


async def send_help(update: Update, context: ContextTypes.DEFAULT_TYPE, d: Deps,
                    lang: str) -> None:
    """Who we are, the office, how to check the bot, and every command a relative has."""
    t = translator(lang)
    user = update.effective_user
    assert user is not None
    commands = "\n".join(f"/{name}: {esc(t._(desc))}" for name, desc in COMMANDS)
    text = (who_we_are(t, d.settings, context.bot.username) + "\n\n"
            + "<b>" + esc(t._("Commands")) + "</b>\n" + commands)
    has_cases = bool(await d.cases.for_user(user.id))
    for part in split_html([text]):
        await send_to_chat(update, part)
    can_write = bool(await conversation.open_cases(d, user.id))
    await send_to_chat(update, t._("Or use the buttons:"),
                       menu_keyboard(t, has_cases=has_cases, can_write=can_write))


@relative_handler
async def cancel_cmd(turn: RelativeTurn) -> None:
    update, t = turn.update, turn.t
    if await turn.d.drafts.get(turn.user_id) is None:
        await send_to_chat(update, t._("There is no report in progress."))
        return
    await send_to_chat(update, t._("Discard the report in progress? Your answers will be deleted."),
                       keyboard([[button(t._("Yes, discard it"), f"{CANCEL_PREFIX}yes"),
                                  button(t._("No, continue"), f"{CANCEL_PREFIX}no")]]))


async def on_cancel_choice(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    query = update.callback_query
    user = update.effective_user
    assert query is not None and user is not None
    d = deps(context)
    lang = await user_language(update, d) or "en"
    t = translator(lang)
    await query.answer()
    loaded = await load_state(d, user.id)
    if query.data == f"{CANCEL_PREFIX}yes":
        if loaded is not None:
            await d.drafts.delete(user.id)
            await strip_keyboard(context, user.id, loaded[1].question_message_id)
        await edit_or_send(query, t._("The report was discarded."),
                           keyboard([[action_button(t, "again")]]))
        return
    await edit_or_send(query, t._("We continue."))
    if loaded is not None:
        state, row = loaded
        await show_step(update, context, d, state, lang, old_message_id=row.question_message_id)


async def on_menu(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    query = update.callback_query
    assert query is not None
    await query.answer()
    d = deps(context)
    lang = await user_language(update, d)
    action, _, keep = (query.data or "").removeprefix(MENU_PREFIX).partition(":")
    if lang is None or action == "lang":
        await ask_language(update)
        return
    if keep != "k":  # the main menu goes once used; buttons under a text stay with it
        await strip_keyboard(context, query.message.chat.id if query.message else 0,
                             query.message.message_id if query.message else None)
    if action == "status":
        await send_status(update, d, lang)
    elif action == "help":
        await send_help(update, context, d, lang)
    else:
        await new_cmd(update, context)


@relative_handler
async def unknown_cmd(turn: RelativeTurn) -> None:
    update, t = turn.update, turn.t
    await send_to_chat(update, t._("I do not know this command. Press Help to see what I can do."),
                       keyboard([[action_button(t, "help")]]))


async def group_message(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """In groups the questionnaire never runs: what people write there is seen by others."""
    user = update.effective_user
    lang = guess_language(user.language_code if user else None)
    t = translator(lang)
    me = context.bot.username
    msg = update.effective_message
    if msg is not None:
        await msg.reply_text(t._("Please write to me in a private chat: @%(bot)s. "
                                 "What you write here is seen by everyone in the group.")
                             % {"bot": esc(me)})
