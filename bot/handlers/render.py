"""Turns the engine's views and answers into translated HTML text and inline keyboards."""

from __future__ import annotations

from datetime import date
from typing import Any

import phonenumbers
from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from bot.form.engine import EVENT_YEARS, AnsweredBlock, View
from bot.form.model import Form, Question
from bot.handlers.common import button, esc, form_data, keyboard, rows_of, shorten
from bot.i18n import N_, Translator

REVIEW_TEXT_LIMIT = 300

# Error codes from the engine and validators, with the message the relative sees.
ERRORS: dict[str, str] = {
    "use_buttons": N_("Please choose one of the buttons below the question."),
    "use_buttons_review": N_("Please use the buttons: Submit, or Edit to change an answer."),
    "no_back": N_("This is the first question; there is nothing before it."),
    "required": N_("We need this answer to look for the person. Please answer the question."),
    "choose_one": N_("Please choose at least one answer, then press Done."),
    "send_files": N_("Please send a photo, a document, a voice or a video message, or press Done."),
    "type_text_or_voice": N_("Please type the answer, or send a voice message."),
    "type_text": N_("Please type the answer."),
    "empty": N_("The answer is empty. Please type it again."),
    "one_line": N_("Please write this answer on one line, without line breaks."),
    "too_long": N_(
        "The answer is too long: %(length)s characters, and the limit is %(limit)s. "
        "Please shorten it, or send a voice message."
    ),
    "date_format": N_(
        "I could not read this date. Please write it like 04.2018, 12.03.2018, 1975, "
        "spring 2019 or about 1975, or press «I do not know»."
    ),
    "type_year": N_("Please type the year, for example 2014, or the month and the year: "
                    "04.2014."),
    "name_voice": N_("Please type the name, or send a photo of a document that shows it. "
                     "We cannot keep a name from a voice message."),
    "date_invalid": N_("This date does not exist. Please check the day and the month."),
    "date_future": N_("This date is in the future. Please check it."),
    "date_too_old": N_("This year is too early. Please check it."),
    "phone_invalid": N_(
        "This does not look like a phone number. Please write it with the country code, "
        "for example +7 701 123 45 67."
    ),
    "id_length": N_("A Chinese resident ID number has 18 characters. Please check it."),
    "id_chars": N_(
        "A Chinese resident ID number has 17 digits and a last character that is a digit or X."
    ),
    "id_checksum": N_(
        "This ID number does not add up: one of the digits may be wrong. "
        "Please compare it with the document."
    ),
    "id_birthdate": N_("The birth date inside this ID number is not possible. Please check it."),
    "too_many_files": N_("You have sent the most files we can take for one person (%(limit)s)."),
    "too_many_persons": N_("One report can name at most %(limit)s people."),
    "file_too_big": N_(
        "This file is larger than %(limit)s MB, and we cannot receive it through Telegram. "
        "Please send a smaller photo or a shorter video."
    ),
}

TYPE_HINTS: dict[str, str] = {
    "multi": N_("Choose all that apply, then press Done."),
    "text": N_("Type the answer, or send a voice message."),
    "date": N_("For example: 04.2018, 12.03.2018, 1975, spring 2019 or about 1975."),
    "phone": N_("For example: +7 701 123 45 67."),
    "chinese_id": N_("18 characters, for example 654001197503120013."),
}


def error_text(t: Translator, code: str, args: dict[str, Any]) -> str:
    msgid = ERRORS.get(code, ERRORS["use_buttons"])
    text = t._(msgid)
    return text % {k: esc(v) for k, v in args.items()} if args else text


def block_title(t: Translator, form: Form, block: str) -> str:
    group_id, _, index = block.partition(".")
    if index:
        return t._("Missing person %(number)s") % {"number": int(index) + 1}
    return t._(form.group(group_id).title)


def option_label(t: Translator, q: Question, code: str) -> str:
    opt = q.option(code)
    return t._(opt.label) if opt else code


SEASONS = {21: N_("spring %(year)s"), 22: N_("summer %(year)s"), 23: N_("autumn %(year)s"),
           24: N_("winter %(year)s")}


def format_date_answer(t: Translator, value: str) -> str:
    """A stored date (ISO 8601 / EDTF: 2018, 2018-04, 2018-04-12, 2019-21 for spring 2019,
    197X for the 1970s, a trailing ~ when approximate) in the relative's language."""
    if value == "unknown":
        return t._("unknown")
    approx = value.endswith("~")
    value = value.rstrip("~")
    if value.endswith("X"):
        shown = t._("the %(decade)ss") % {"decade": value[:-1] + "0"}
    else:
        parts = [int(p) for p in value.split("-")]
        if len(parts) == 1:
            shown = str(parts[0])
        elif len(parts) == 2 and parts[1] > 12:
            shown = t._(SEASONS.get(parts[1], "%(year)s")) % {"year": parts[0]}
        elif len(parts) == 2:
            shown = t.format_year_month(date(parts[0], parts[1], 1))
        else:
            shown = t.format_date(date(parts[0], parts[1], parts[2]))
    return t._("about %(date)s") % {"date": shown} if approx else shown


def format_phone(e164: str) -> str:
    """+77012345678 as +7 701 234 56 78 (as written in Kazakhstan); others as the ITU writes."""
    if e164.startswith("+7") and len(e164) == 12:
        d = e164[2:]
        return f"+7 {d[:3]} {d[3:6]} {d[6:8]} {d[8:]}"
    try:
        return str(phonenumbers.format_number(phonenumbers.parse(e164),
                                              phonenumbers.PhoneNumberFormat.INTERNATIONAL))
    except phonenumbers.NumberParseException:  # stored data is shown as it is
        return e164


def format_answer(t: Translator, q: Question, value: Any, *, limit: int | None = None) -> str:
    """An answer as escaped HTML for the relative (review) or staff (full text)."""
    if value is None or value == [] or value == "":
        return "—"
    if q.type == "single":
        return esc(option_label(t, q, str(value)))
    if q.type == "multi":
        return esc(", ".join(option_label(t, q, c) for c in value))
    if q.type == "date":
        return esc(format_date_answer(t, str(value)))
    if q.type == "phone" and isinstance(value, str):
        return esc(format_phone(value))
    if q.type == "attachments":
        n = len(value)
        return t.ngettext("%(count)s file", "%(count)s files", n) % {"count": n}
    if isinstance(value, dict) and "voice" in value:
        seconds = int(value["voice"].get("duration") or 0)
        duration = f"{seconds // 60}:{seconds % 60:02d}"
        return t._("voice message, %(duration)s") % {"duration": duration}
    text = str(value)
    return esc(shorten(text, limit) if limit else text)


def _question_text(t: Translator, form: Form, v: View, draft_days: int) -> str:
    assert v.question is not None
    q = v.question
    head = f"<b>{esc(block_title(t, form, v.block))}</b>"
    body = t._(q.prompt)  # our own text, which may carry simple HTML (the privacy notice)
    if "%(days)s" in q.prompt:  # the notice says how long unfinished answers are kept
        body = body % {"days": draft_days}
    parts = [head, body]
    hint = TYPE_HINTS.get(q.type)
    if hint and v.step == "question":
        parts.append(f"<i>{t._(hint)}</i>")
    if v.answer is not None and q.type not in ("multi", "attachments"):
        parts.append(t._("Current answer: %(answer)s")
                     % {"answer": format_answer(t, q, v.answer, limit=REVIEW_TEXT_LIMIT)})
    if q.type == "attachments" and v.answer:
        n = len(v.answer)
        parts.append(t.ngettext("Received: %(count)s file.", "Received: %(count)s files.", n)
                     % {"count": n})
    return "\n\n".join(parts)


def _nav_row(t: Translator, v: View) -> list[InlineKeyboardButton]:
    row = []
    if v.can_back:
        row.append(button("⬅️ " + t._("Back"), form_data(v.seq, "back")))
    if v.answer not in (None, [], "") and v.question is not None and v.question.type not in (
        "multi", "attachments"
    ):
        row.append(button(t._("Keep"), form_data(v.seq, "keep")))
    if v.can_skip and v.question is not None and v.question.type not in ("attachments", "date"):
        # A date has one "I do not know" instead of both Unknown and Skip.
        row.append(button(t._("Skip") + " ⏭", form_data(v.seq, "skip")))
    return row


def question_keyboard(t: Translator, v: View) -> InlineKeyboardMarkup | None:
    q = v.question
    assert q is not None
    rows: list[list[InlineKeyboardButton]] = []
    if v.same_as is not None:
        shown = shorten(plain_answer(t, q, v.same_as), 30)
        rows.append([button("👥 " + t._("Same as person 1: %(answer)s") % {"answer": shown},
                            form_data(v.seq, "same"))])
    if q.type == "single":
        rows += rows_of([button(t._(o.label), form_data(v.seq, "opt", o.code)) for o in q.options],
                        width=2)
    elif q.type == "multi":
        marks = [("✅ " if o.code in v.pending else "▫️ ") + t._(o.label) for o in q.options]
        rows += rows_of([button(m, form_data(v.seq, "tog", o.code))
                         for m, o in zip(marks, q.options, strict=True)], width=2)
        rows.append([button(t._("Done") + " ✔️", form_data(v.seq, "done"))])
    elif q.type == "date":
        if q.year_buttons:
            years = [button(y, form_data(v.seq, "year", y)) for y in EVENT_YEARS]
            rows += rows_of(years, width=4)
            rows.append([button(t._("Earlier"), form_data(v.seq, "earlier"))])
        rows.append([button(t._("I do not know"), form_data(v.seq, "unknown"))])
    elif q.type == "attachments":
        rows.append([button(t._("Done") + " ✔️", form_data(v.seq, "done"))])
    rows.append(_nav_row(t, v))
    return keyboard(rows)


def confirm_id_view(t: Translator, form: Form, v: View) -> tuple[str, InlineKeyboardMarkup | None]:
    info = v.id_info
    assert info is not None
    gender = t._("man") if info.gender == "male" else t._("woman")
    lines = [
        f"<b>{esc(block_title(t, form, v.block))}</b>",
        t._("This ID number says:"),
        "• " + t._("born %(date)s") % {"date": esc(t.format_date(info.birth_date))},
        "• " + gender,
    ]
    if info.prefecture:
        label = form.repeat_group.by_id["prefecture"].option(info.prefecture)
        lines.append("• " + t._("registered in %(place)s")
                     % {"place": esc(t._(label.label) if label else info.prefecture)})
    for code in info.mismatches:
        lines.append("")
        lines.append("ℹ️ " + t._(MISMATCH_NOTES[code]))
    lines.append("")
    lines.append(t._("Is this right?"))
    kb = keyboard([
        [button(t._("Yes, it is right"), form_data(v.seq, "id_yes")),
         button(t._("No, enter it again"), form_data(v.seq, "id_no"))],
        [button("⬅️ " + t._("Back"), form_data(v.seq, "back"))] if v.can_back else [],
    ])
    return "\n".join(lines), kb


MISMATCH_NOTES = {
    "birth_date": N_(
        "The birth date in the ID is not the one you gave earlier. Either can be right; "
        "please check, and change the earlier answer in the review if needed."
    ),
    "gender": N_(
        "The ID is of a person of the other gender than you chose earlier. "
        "Please check the number or the earlier answer."
    ),
    "prefecture": N_(
        "The ID was issued in another prefecture than the one you named. This is common when "
        "people move; we note both."
    ),
}


def view_message(t: Translator, form: Form, v: View, *, draft_days: int
                 ) -> tuple[str, InlineKeyboardMarkup | None]:
    """The message for the current step (question, ID confirmation or add-person prompt);
    `draft_days` is BOT_DRAFT_RETENTION_DAYS, which the privacy notice states."""
    if v.step == "confirm_id":
        return confirm_id_view(t, form, v)
    if v.step == "add_person":
        n = v.persons
        text = t.ngettext(
            "You have told us about %(count)s person. Is another family member missing?",
            "You have told us about %(count)s people. Is another family member missing?",
            n,
        ) % {"count": n}
        kb = keyboard([
            [button("➕ " + t._("Add another person"), form_data(v.seq, "add"))],
            [button(t._("No, go to the review") + " ➡️", form_data(v.seq, "finish"))],
            [button("⬅️ " + t._("Back"), form_data(v.seq, "back"))],
        ])
        return text, kb
    return _question_text(t, form, v, draft_days), question_keyboard(t, v)


def plain_answer(t: Translator, q: Question, value: Any) -> str:
    """An answer as plain text (for a button label)."""
    if q.type == "single":
        return option_label(t, q, str(value))
    if q.type == "date":
        return format_date_answer(t, str(value))
    return str(value) if isinstance(value, str) else "…"


def chosen_line(t: Translator, q: Question, value: Any) -> str:
    return "✔️ <b>" + format_answer(t, q, value, limit=REVIEW_TEXT_LIMIT) + "</b>"


REVIEW_INTRO = N_("<b>Please check your answers.</b> Press Edit to change one, then Submit.")


def review_blocks(t: Translator, form: Form, blocks: list[AnsweredBlock]) -> list[str]:
    return [t._(REVIEW_INTRO), *answers_text(t, form, [b for b in blocks
                                                       if b.group.id != "consent"])]


def answers_text(t: Translator, form: Form, blocks: list[AnsweredBlock], *,
                 only_answered: bool = False, limit: int = REVIEW_TEXT_LIMIT) -> list[str]:
    """One HTML block per part, a line per answer (for the relative: review, /mydata)."""
    out = []
    for b in blocks:
        lines = [f"<b>{esc(block_title(t, form, b.block))}</b>"]
        lines += [answer_line(t, q, value, limit=limit) for q, value in b.items
                  if not (only_answered and value in (None, [], ""))]
        if len(lines) > 1 or not only_answered:
            out.append("\n".join(lines))
    return out


def answer_line(t: Translator, q: Question, value: Any, *, limit: int) -> str:
    """"Label: answer"; several chosen options one per line, as their labels hold commas."""
    label = esc(t._(q.short))
    if q.type == "multi" and isinstance(value, list) and len(value) > 1:
        return f"{label}:" + "".join(f"\n   • {esc(option_label(t, q, str(c)))}" for c in value)
    return f"{label}: {format_answer(t, q, value, limit=limit)}"


def stored_blocks(form: Form, data: dict[str, Any]) -> list[AnsweredBlock]:
    """A submitted case's answers (consent, reporter, persons) in the form's order."""
    out = []
    for group in form.groups:
        parts = (list(enumerate(data.get("persons") or [])) if group.repeat
                 else [(None, data.get(group.id) or {})])
        for index, answers in parts:
            if not isinstance(answers, dict):
                continue
            block = f"{group.id}.{index}" if index is not None else group.id
            items = tuple((q, answers[q.id]) for q in group.questions if q.id in answers)
            out.append(AnsweredBlock(block, group, index, items))
    return out


def review_keyboard(t: Translator, seq: int, persons: int) -> InlineKeyboardMarkup | None:
    rows = [
        [button("✅ " + t._("Submit"), form_data(seq, "submit"))],
        [button("✏️ " + t._("Edit an answer"), form_data(seq, "editmenu"))],
        [button("➕ " + t._("Add another person"), form_data(seq, "add"))],
    ]
    if persons > 1:
        rows.append([button("➖ " + t._("Remove a person"), form_data(seq, "rmmenu"))])
    return keyboard(rows)


def edit_menu(t: Translator, form: Form, seq: int, blocks: list[AnsweredBlock],
              block: str | None) -> tuple[str, InlineKeyboardMarkup | None]:
    """First the parts (About you, Missing person 1, ...), then the questions of one part."""
    editable = [b for b in blocks if b.group.id != "consent"]
    back = [button("⬅️ " + t._("Back to the review"), form_data(seq, "review"))]
    chosen = next((b for b in editable if b.block == block), None)
    if chosen is None:
        rows = [[button(block_title(t, form, b.block), form_data(seq, "editmenu", b.block))]
                for b in editable]
        return t._("Which part do you want to change?"), keyboard([*rows, back])
    rows = [[button(shorten(t._(q.short), 40), form_data(seq, "edit", f"{chosen.block}:{q.id}"))]
            for q, _ in chosen.items]
    title = esc(block_title(t, form, chosen.block))
    return t._("Which answer in «%(part)s» do you want to change?") % {"part": title}, \
        keyboard([*rows, back])


def remove_menu(t: Translator, form: Form, seq: int, blocks: list[AnsweredBlock]
                ) -> tuple[str, InlineKeyboardMarkup | None]:
    rows = []
    for b in blocks:
        if b.person_index is None:
            continue
        name = next((v for q, v in b.items if q.id == "full_name" and isinstance(v, str)), "")
        label = block_title(t, form, b.block) + (f": {shorten(name, 30)}" if name else "")
        rows.append([button(label, form_data(seq, "remove_person", b.block))])
    rows.append([button("⬅️ " + t._("Back to the review"), form_data(seq, "review"))])
    return t._("Which person do you want to remove from this report?"), keyboard(rows)
