"""The comparator: our questionnaire written the way python-telegram-bot's examples teach.

    BOT_TOKEN=... BOT_API_BASE_URL=... BOT_DATA_DIR=... python -m tests.bench.reference_bot run

Modelled on the examples `persistentconversationbot.py` and `conversationbot2.py`: one
ConversationHandler(persistent=True, name=...) with PicklePersistence (default settings), the
answers kept in `context.user_data`, one state per kind of input (choosing a button, typing),
the current question's index in user_data, the Application's defaults (one update at a time).
It asks the same questions as bot/form/questionnaire.toml (read with tomllib, in English), with
the same buttons and the same Telegram calls per step as our bot (mark the chosen answer,
send the next question, take the buttons off the previous one, toggle multi-choice marks in
place, confirm a Chinese ID, add-person prompt, review, submit), so that the load is the same.

It deliberately imports nothing from `bot`: it is what someone would write without our code.
"""

from __future__ import annotations

import contextlib
import html
import logging
import os
import random
import re
import sys
import tomllib
from pathlib import Path
from typing import Any

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.constants import ParseMode
from telegram.error import BadRequest
from telegram.ext import (
    Application,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    ConversationHandler,
    MessageHandler,
    PicklePersistence,
    filters,
)

FORM_PATH = Path(__file__).resolve().parents[2] / "bot" / "form" / "questionnaire.toml"
PICKLE_NAME = "reference_bot.pickle"
CONVERSATION = "questionnaire"

LANG, CHOOSING, TYPING, CONFIRM_ID, ADD_PERSON, REVIEW = range(6)
LANGUAGES = {"kk": "Қазақша", "ru": "Русский", "en": "English"}
HINTS = {
    "multi": "Choose all that apply, then press Done.",
    "text": "Type the answer, or send a voice message.",
    "date": "For example: 1975, 03.2018 or 12.03.2018. If you do not know, press Unknown.",
    "phone": "For example: +7 701 123 45 67.",
    "chinese_id": "18 characters, for example 654001197503120013.",
}
DATE_RE = re.compile(r"^\s*(?:(\d{1,2})[./-])?(?:(\d{1,2})[./-])?(\d{4})\s*$")
ID_RE = re.compile(r"^\d{17}[\dXx]$")

logger = logging.getLogger(__name__)


def load_questions() -> tuple[list[dict[str, Any]], dict[str, str]]:
    """The questions in order (each with its group) and the titles of the groups."""
    with FORM_PATH.open("rb") as f:
        form = tomllib.load(f)
    shared = {name: spec["items"] for name, spec in form.get("options", {}).items()}
    questions, titles = [], {}
    for group in form["groups"]:
        titles[group["id"]] = group["title"]
        for q in group["questions"]:
            q = dict(q, group=group["id"])
            if isinstance(q.get("options"), str):
                q["options"] = shared[q["options"]]
            q.setdefault("required", True)
            questions.append(q)
    return questions, titles


QUESTIONS, TITLES = load_questions()
PERSON_START = next(i for i, q in enumerate(QUESTIONS) if q["group"] == "person")


# ----------------------------------------------------------------------------- helpers


def block_of(user_data: dict[str, Any], q: dict[str, Any]) -> dict[str, Any]:
    answers = user_data.setdefault("answers", {})
    if q["group"] == "person":
        persons = answers.setdefault("persons", [{}])
        return persons[-1]
    return answers.setdefault(q["group"], {})


def applies(user_data: dict[str, Any], q: dict[str, Any]) -> bool:
    block = block_of(user_data, q)
    for ref, mapping in q.get("infer", {}).items():  # a brother is a man: not asked
        inferred = mapping.get(block.get(ref))
        if inferred is not None:
            block[q["id"]] = inferred
            return False
    for ref, codes in q.get("when", {}).items():
        given = block_of(user_data, q).get(ref)
        chosen = set(given) if isinstance(given, list) else {given}
        if not chosen & set(codes):
            return False
    return True


def label(q: dict[str, Any], code: str) -> str:
    return next((o["label"] for o in q.get("options", []) if o["code"] == code), code)


def question_text(user_data: dict[str, Any], q: dict[str, Any]) -> str:
    title = TITLES[q["group"]]
    if q["group"] == "person":
        title = f"Missing person {len(user_data['answers'].setdefault('persons', [{}]))}"
    parts = [f"<b>{html.escape(title)}</b>", q["prompt"].strip()]
    if q["type"] in HINTS:
        parts.append(f"<i>{HINTS[q['type']]}</i>")
    return "\n\n".join(parts)


def keyboard(user_data: dict[str, Any], q: dict[str, Any]) -> InlineKeyboardMarkup:
    rows: list[list[InlineKeyboardButton]] = []
    options = q.get("options", [])
    if q["type"] in ("single", "multi"):
        chosen = user_data.get("pending", [])
        buttons = []
        for o in options:
            mark = ("✅ " if o["code"] in chosen else "▫️ ") if q["type"] == "multi" else ""
            action = "tog" if q["type"] == "multi" else "opt"
            buttons.append(InlineKeyboardButton(mark + o["label"],
                                                callback_data=f"{action}:{o['code']}"))
        width = 1 if any(len(b.text) > 18 for b in buttons) else 2
        rows += [buttons[i:i + width] for i in range(0, len(buttons), width)]
    if q["type"] in ("multi", "attachments"):
        rows.append([InlineKeyboardButton("Done ✔️", callback_data="done")])
    if q["type"] == "date":
        rows.append([InlineKeyboardButton("Unknown", callback_data="unknown")])
    nav = []
    if user_data.get("q", 0) > 0:
        nav.append(InlineKeyboardButton("⬅️ Back", callback_data="back"))
    if not q["required"] and q["type"] != "attachments":
        nav.append(InlineKeyboardButton("Skip ⏭", callback_data="skip"))
    if nav:
        rows.append(nav)
    return InlineKeyboardMarkup(rows)


async def strip_buttons(context: ContextTypes.DEFAULT_TYPE, chat_id: int,
                        message_id: int | None) -> None:
    """Take the buttons off the previous question (not needed once it was edited)."""
    if message_id:
        with contextlib.suppress(BadRequest):
            await context.bot.edit_message_reply_markup(chat_id, message_id, reply_markup=None)


async def show_choice(query: Any, context: ContextTypes.DEFAULT_TYPE, text: str) -> None:
    """Leave the answered question with the chosen answer and no buttons."""
    await query.edit_message_text(text, parse_mode=ParseMode.HTML)
    if context.user_data is not None:
        context.user_data.pop("msg", None)


async def ask(update: Update, context: ContextTypes.DEFAULT_TYPE, notice: str = "") -> int:
    """Send the current question and return the conversation state that waits for it."""
    user_data = context.user_data
    assert user_data is not None and update.effective_chat is not None
    q = QUESTIONS[user_data["q"]]
    if q["type"] == "multi":
        user_data["pending"] = []
    text = question_text(user_data, q)
    if notice:
        text = f"{notice}\n\n{text}"
    old = user_data.get("msg")
    message = await update.effective_chat.send_message(
        text, parse_mode=ParseMode.HTML, reply_markup=keyboard(user_data, q))
    await strip_buttons(context, update.effective_chat.id, old)
    user_data["msg"] = message.message_id
    return CHOOSING if q["type"] in ("single", "multi", "attachments") else TYPING


async def advance(update: Update, context: ContextTypes.DEFAULT_TYPE) -> int:
    """Move to the next question that applies, or to the add-person prompt."""
    user_data = context.user_data
    assert user_data is not None
    i = user_data["q"] + 1
    while i < len(QUESTIONS) and not applies(user_data, QUESTIONS[i]):
        i += 1
    if i >= len(QUESTIONS):
        assert update.effective_chat is not None
        n = len(user_data["answers"]["persons"])
        old = user_data.get("msg")
        message = await update.effective_chat.send_message(
            f"You have told us about {n} person(s). Is another family member missing?",
            reply_markup=InlineKeyboardMarkup([
                [InlineKeyboardButton("➕ Add another person", callback_data="add")],
                [InlineKeyboardButton("No, go to the review ➡️", callback_data="finish")],
            ]))
        await strip_buttons(context, update.effective_chat.id, old)
        user_data["msg"] = message.message_id
        return ADD_PERSON
    user_data["q"] = i
    return await ask(update, context)


# ----------------------------------------------------------------------------- handlers


async def start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> int:
    assert update.message is not None
    buttons = [[InlineKeyboardButton(name, callback_data=f"L:{code}")]
               for code, name in LANGUAGES.items()]
    await update.message.reply_text("Тілді таңдаңыз · Выберите язык · Choose your language",
                                    reply_markup=InlineKeyboardMarkup(buttons))
    return LANG


async def language(update: Update, context: ContextTypes.DEFAULT_TYPE) -> int:
    query = update.callback_query
    assert query is not None and context.user_data is not None
    await query.answer()
    code = (query.data or "L:en")[2:]
    context.user_data["lang"] = code
    await query.edit_message_text(f"🌐 {LANGUAGES.get(code, code)}")
    context.user_data["answers"] = {}
    context.user_data["q"] = 0
    context.user_data.pop("msg", None)
    return await ask(update, context)


async def button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> int:
    query = update.callback_query
    user_data = context.user_data
    assert query is not None and user_data is not None
    await query.answer()
    q = QUESTIONS[user_data["q"]]
    action, _, arg = (query.data or "").partition(":")
    block = block_of(user_data, q)
    if action == "back":
        user_data["q"] = max(0, user_data["q"] - 1)
        return await ask(update, context)
    if action == "tog":
        pending = user_data.setdefault("pending", [])
        if arg in pending:
            pending.remove(arg)
        else:
            pending.append(arg)
        await query.edit_message_reply_markup(reply_markup=keyboard(user_data, q))
        return CHOOSING
    if action == "skip":
        block.pop(q["id"], None)
    elif action == "opt":
        if q.get("must_be") and arg != q["must_be"]:
            await query.edit_message_text("We cannot take a report without your agreement.")
            user_data.pop("answers", None)
            return ConversationHandler.END
        block[q["id"]] = arg
        await show_choice(query, context, f"{question_text(user_data, q)}\n\n"
                          f"✔️ <b>{html.escape(label(q, arg))}</b>")
    elif action == "done":
        if q["type"] == "multi":
            if not user_data.get("pending") and q["required"]:
                return await ask(update, context, "⚠️ Please choose at least one answer.")
            block[q["id"]] = list(user_data.pop("pending", []))
            chosen = ", ".join(label(q, c) for c in block[q["id"]])
            await show_choice(query, context, f"{question_text(user_data, q)}\n\n"
                              f"✔️ <b>{html.escape(chosen)}</b>")
    elif action == "unknown":
        block[q["id"]] = "unknown"
    else:
        return CHOOSING if q["type"] in ("single", "multi") else TYPING
    return await advance(update, context)


async def typed(update: Update, context: ContextTypes.DEFAULT_TYPE) -> int:
    user_data = context.user_data
    assert update.message is not None and user_data is not None
    q = QUESTIONS[user_data["q"]]
    text = (update.message.text or "").strip()
    if q["type"] == "date" and not DATE_RE.match(text):
        return await ask(update, context, "⚠️ I could not read this date.")
    if q["type"] == "phone" and len(re.sub(r"\D", "", text)) < 7:
        return await ask(update, context, "⚠️ This does not look like a phone number.")
    if q["type"] == "chinese_id":
        if not ID_RE.match(text):
            return await ask(update, context, "⚠️ An ID number has 18 characters.")
        user_data["pending_id"] = text.upper()
        old = user_data.get("msg")
        message = await update.message.reply_text(
            f"This ID number says: born {text[6:10]}-{text[10:12]}-{text[12:14]}.\n\n"
            "Is this right?",
            reply_markup=InlineKeyboardMarkup([[
                InlineKeyboardButton("Yes, it is right", callback_data="id_yes"),
                InlineKeyboardButton("No, enter it again", callback_data="id_no")]]))
        await strip_buttons(context, update.message.chat_id, old)
        user_data["msg"] = message.message_id
        return CONFIRM_ID
    if len(text) > q.get("max_len", 1000):
        return await ask(update, context, "⚠️ The answer is too long.")
    block_of(user_data, q)[q["id"]] = text
    return await advance(update, context)


async def confirm_id(update: Update, context: ContextTypes.DEFAULT_TYPE) -> int:
    query = update.callback_query
    user_data = context.user_data
    assert query is not None and user_data is not None
    await query.answer()
    q = QUESTIONS[user_data["q"]]
    if query.data == "id_yes":
        block_of(user_data, q)[q["id"]] = user_data.pop("pending_id", None)
        await query.edit_message_reply_markup(reply_markup=None)
        user_data.pop("msg", None)
        return await advance(update, context)
    return await ask(update, context)


async def add_person(update: Update, context: ContextTypes.DEFAULT_TYPE) -> int:
    query = update.callback_query
    user_data = context.user_data
    assert query is not None and user_data is not None and update.effective_chat is not None
    await query.answer()
    if query.data == "add":
        user_data["answers"]["persons"].append({})
        user_data["q"] = PERSON_START
        return await ask(update, context)
    lines = ["<b>Please check your answers.</b> Press Edit to change one, then Submit."]
    answers = user_data["answers"]
    for q in QUESTIONS:
        if q["group"] == "consent":
            continue
        blocks = answers["persons"] if q["group"] == "person" else [answers.get(q["group"], {})]
        for b in blocks:
            value = b.get(q["id"])
            if isinstance(value, list):
                value = ", ".join(label(q, v) for v in value)
            elif value is not None and q["type"] == "single":
                value = label(q, value)
            shown = "—" if value in (None, "") else str(value)
            if len(shown) > 300:
                shown = shown[:299] + "…"
            lines.append(f"{html.escape(q.get('short', q['id']))}: {html.escape(shown)}")
    text = "\n".join(lines)[:4000]
    message = await update.effective_chat.send_message(
        text, parse_mode=ParseMode.HTML, reply_markup=InlineKeyboardMarkup([
            [InlineKeyboardButton("✅ Submit", callback_data="submit")],
            [InlineKeyboardButton("✏️ Edit an answer", callback_data="edit")],
            [InlineKeyboardButton("➕ Add another person", callback_data="add")],
        ]))
    await strip_buttons(context, update.effective_chat.id, user_data.get("msg"))
    user_data["msg"] = message.message_id
    return REVIEW


async def review(update: Update, context: ContextTypes.DEFAULT_TYPE) -> int:
    query = update.callback_query
    user_data = context.user_data
    assert query is not None and user_data is not None and update.effective_chat is not None
    await query.answer()
    if query.data == "add":
        return await add_person(update, context)
    if query.data != "submit":
        user_data["q"] = PERSON_START
        return await ask(update, context)
    number = f"{random.randint(1000, 9999)}-{random.randint(1000, 9999)}"
    case = {"number": number, "lang": user_data.get("lang"), "status": "new",
            **user_data.pop("answers")}
    user_data.setdefault("cases", []).append(case)
    user_data.pop("q", None)
    await strip_buttons(context, update.effective_chat.id, user_data.pop("msg", None))
    await update.effective_chat.send_message(
        f"<b>Thank you. Your report has been received.</b>\n\nCase number: <code>{number}</code>"
        "\nSend /status at any time to see what is happening with your case.",
        parse_mode=ParseMode.HTML)
    return ConversationHandler.END


async def cancel(update: Update, context: ContextTypes.DEFAULT_TYPE) -> int:
    if context.user_data is not None:
        context.user_data.pop("answers", None)
    if update.message is not None:
        await update.message.reply_text("The report was discarded. Send /start to begin again.")
    return ConversationHandler.END


async def status(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    cases = (context.user_data or {}).get("cases", [])
    assert update.message is not None
    text = "\n".join(f"№ {c['number']}: {c['status']}" for c in cases) or "No cases yet."
    await update.message.reply_text(text)


def build(token: str, base_url: str, data_dir: Path) -> Application[Any, Any, Any, Any, Any, Any]:
    persistence = PicklePersistence(filepath=data_dir / PICKLE_NAME)
    application = (
        Application.builder()
        .token(token)
        .base_url(f"{base_url}/bot")
        .base_file_url(f"{base_url}/file/bot")
        .persistence(persistence)
        .build()
    )
    conv_handler = ConversationHandler(
        entry_points=[CommandHandler("start", start)],
        states={
            LANG: [CallbackQueryHandler(language, pattern=r"^L:")],
            CHOOSING: [CallbackQueryHandler(button)],
            TYPING: [MessageHandler(filters.TEXT & ~filters.COMMAND, typed),
                     CallbackQueryHandler(button)],
            CONFIRM_ID: [CallbackQueryHandler(confirm_id, pattern=r"^id_"),
                         MessageHandler(filters.TEXT & ~filters.COMMAND, typed)],
            ADD_PERSON: [CallbackQueryHandler(add_person)],
            REVIEW: [CallbackQueryHandler(review)],
        },
        fallbacks=[CommandHandler("cancel", cancel)],
        name=CONVERSATION,
        persistent=True,
    )
    application.add_handler(conv_handler)
    application.add_handler(CommandHandler("status", status))
    return application


def main() -> int:
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        level=os.environ.get("BOT_LOG_LEVEL", "WARNING").upper())
    logging.getLogger("httpx").setLevel(logging.WARNING)
    data_dir = Path(os.environ.get("BOT_DATA_DIR", "data"))
    data_dir.mkdir(parents=True, exist_ok=True)
    application = build(os.environ["BOT_TOKEN"],
                        os.environ.get("BOT_API_BASE_URL", "https://api.telegram.org"), data_dir)
    application.run_polling(allowed_updates=Update.ALL_TYPES)
    return 0


if __name__ == "__main__":
    if sys.argv[1:] not in ([], ["run"]):
        sys.exit("usage: python -m tests.bench.reference_bot [run]")
    sys.exit(main())
