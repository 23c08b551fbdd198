"""One journey driver for every test: answers whatever question is on screen from a plan keyed
by question id.

    await fill(user, {"relation": opt("sister"), "full_name": "Әлия"})

reads the question on screen the way the relative does (its prompt, in any of our languages,
matched against questionnaire.toml), answers it from the plan, and goes on until the form
leaves the questions (the add-person prompt, the review, the confirmation) or reaches the
question named in `until`. A question missing from the plan is skipped when it is optional and
answered with a plain valid answer (`auto`) when it is required, so adding a question to
questionnaire.toml breaks only the tests that are about it.

Answers in a plan:
    "text"             typed, as is
    opt("code")        the option button
    multi("a", "b")    toggle these, then Done
    SKIP               Skip (or Done for attachments); UNKNOWN: "I don't know" / Unknown
    press("same")      any form button by action (and arg)
    do(coroutine_fn)   anything else: called with the user (send a photo, a voice message...)
    [a, b, ...]        several inputs at the same question, in order (a photo, then the name)
"""

from __future__ import annotations

import asyncio
import html
import re
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

from bot.config import Settings
from bot.form.model import Form, Question, load_form
from bot.form.validators import chinese_id_check_char
from bot.i18n import LANGUAGE_NAMES, translator
from bot.sandbox.simusers import SimUser
from bot.sandbox.world import SentMessage, wait_event
from bot.services.case_numbers import parse_case_number

FORM: Form = load_form()
_TAG = re.compile(r"<[^>]+>")


@dataclass(frozen=True, slots=True)
class Press:
    action: str
    arg: str | None = None


@dataclass(frozen=True, slots=True)
class Multi:
    codes: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Do:
    run: Callable[[SimUser], Awaitable[Any]]


SKIP = Press("skip")
UNKNOWN = Press("unknown")
Answer = str | Press | Multi | Do | Sequence[Any]


def opt(code: str) -> Press:
    return Press("opt", code)


def multi(*codes: str) -> Multi:
    return Multi(codes)


def press(action: str, arg: str | None = None) -> Press:
    return Press(action, arg)


def do(run: Callable[[SimUser], Awaitable[Any]]) -> Do:
    return Do(run)


# ----------------------------------------------------------------------------- the screen


def plain(text: str) -> str:
    return html.unescape(_TAG.sub("", text))


def shown(lang: str, q: Question) -> str:
    """A question's prompt in `lang` as the bot sends it (the privacy notice states
    BOT_DRAFT_RETENTION_DAYS, at its default here)."""
    text = translator(lang)._(q.prompt)
    if "%(days)s" in q.prompt:
        text = text % {"days": Settings.model_fields["draft_retention_days"].default}
    return text


@cache
def prompts() -> tuple[tuple[str, str, str], ...]:
    """(prompt as shown, group id, question id) in every language, longest first."""
    found = {(plain(shown(lang, q)).strip(), g.id, q.id)
             for lang in LANGUAGE_NAMES for g in FORM.groups for q in g.questions}
    return tuple(sorted(found, key=lambda p: -len(p[0])))


def question(qid: str) -> Question:
    return next(g.by_id[qid] for g in FORM.groups if qid in g.by_id)


def prompt(lang: str, qid: str) -> str:
    """A question's prompt as the relative sees it in `lang`."""
    return plain(shown(lang, question(qid)))


def _form_buttons(message: SentMessage) -> list[str]:
    return [d for row in message.buttons for _, d in row if d and d.startswith("f:")]


def _seq(message: SentMessage) -> int:
    return max((int(d.split(":")[1]) for d in _form_buttons(message)), default=-1)


@dataclass(frozen=True, slots=True)
class Screen:
    """The step on screen: question (with its id), confirm_id, add_person, review, menu, other."""

    kind: str
    message: SentMessage | None = None
    group: str = ""
    qid: str = ""

    @property
    def question(self) -> Question:
        return FORM.question(self.group, self.qid)

    def actions(self) -> set[str]:
        return {d.split(":")[2] for d in _form_buttons(self.message)} if self.message else set()


def current(user: SimUser) -> Screen:
    """What the relative would answer now: the live form message with the latest step."""
    live = [m for m in user.messages if not m.deleted and _form_buttons(m)]
    if not live:
        return Screen("other", user.messages[-1] if user.messages else None)
    message = max(live, key=lambda m: (_seq(m), m.message_id))
    actions = {d.split(":")[2] for d in _form_buttons(message)}
    if "submit" in actions:
        return Screen("review", message)
    if "finish" in actions:
        return Screen("add_person", message)
    if "id_yes" in actions:
        return Screen("confirm_id", message)
    if actions & {"edit", "editmenu", "remove_person"}:
        return Screen("menu", message)
    for prompt, group, qid in prompts():
        if prompt and prompt in message.plain:
            return Screen("question", message, group, qid)
    return Screen("other", message)


def button(message: SentMessage, action: str, arg: str | None = None) -> str:
    for data in _form_buttons(message):
        parts = data.split(":", 3)
        if parts[2] == action and (arg is None or parts[3:] == [arg]):
            return data
    raise AssertionError(f"no {action}:{arg} button in {message.buttons}")


def actions(user: SimUser) -> int:
    """Taps and messages the relative made so far (every press and every message sent)."""
    chat_id = user.chat.id
    sent = sum(1 for m in user.all_messages if not m.from_bot)
    taps = sum(1 for q in user.world.queries.values() if q.chat_id == chat_id)
    return sent + taps


# ----------------------------------------------------------------------------- answering


def auto(q: Question) -> Answer:
    """A plain valid answer for a required question the plan does not mention."""
    if q.must_be is not None:
        return opt(q.must_be)
    if q.type == "single":
        return opt(q.options[0].code)
    if q.type == "multi":
        return multi(q.options[0].code)
    if q.type == "date":
        return "2018"
    if q.type == "phone":
        return "+7 701 123 45 67"
    if q.type == "attachments":
        return press("done")
    return "Test"


async def answer(user: SimUser, screen: Screen, value: Answer) -> None:
    """Give one planned answer to the question on `screen`."""
    message = screen.message
    assert message is not None
    if isinstance(value, str):
        await user.send_text(value)
    elif isinstance(value, Do):
        await value.run(user)
    elif isinstance(value, Press):
        action = value.action
        if action == "skip" and screen.question.type == "attachments":
            action = "done"
        elif action == "skip" and "skip" not in screen.actions() and "unknown" in screen.actions():
            action = "unknown"  # a date: one "I do not know" button instead of Skip
        elif action == "unknown" and "unknown" not in screen.actions():
            action = "idk"
        await user.press(button(message, action, value.arg), message)
    elif isinstance(value, Multi):
        for code in value.codes:
            latest = current(user).message
            assert latest is not None
            await user.press(button(latest, "tog", code), latest)
        latest = current(user).message
        assert latest is not None
        await user.press(button(latest, "done"), latest)
    else:
        for item in value:
            await answer(user, current(user), item)


async def fill(user: SimUser, plan: Mapping[str, Answer] | None = None, *,
               default: Answer = SKIP, until: str | None = None,
               limit: int = 200, pause: float = 0.0) -> Screen:
    """Answer questions from `plan` until the form leaves the questions or reaches `until`.

    `pause`: seconds to wait before each answer (a bot with the real flood limit takes three
    updates a second).

    Returns the screen it stopped at. A question still on screen after its planned answer is
    an error (the bot refused it), as is a required question the plan skips.
    """
    plan = plan or {}
    answered: set[tuple[int, str]] = set()
    for _ in range(limit):
        screen = current(user)
        if screen.kind == "confirm_id":
            assert screen.message is not None
            await user.press(button(screen.message, "id_yes"), screen.message)
            continue
        if screen.kind != "question":
            return screen
        if screen.qid == until:
            return screen
        seq = _seq(screen.message) if screen.message else -1
        key = (seq, screen.qid)
        if key in answered:
            assert screen.message is not None
            raise AssertionError(f"{screen.qid} asked again after its answer; the bot said: "
                                 f"{[m.plain for m in user.messages[-3:]]}")
        answered.add(key)
        q = screen.question
        value = plan.get(screen.qid, default)
        required = "skip" not in screen.actions() and q.type not in ("attachments", "date")
        if value == SKIP and required and screen.qid not in plan:
            value = auto(q)  # required (maybe by an earlier answer): a plain valid answer
        if pause:
            await asyncio.sleep(pause)
        await answer(user, screen, value)
        await _settle(user, seq)
    raise AssertionError(f"no end after {limit} questions")


async def _settle(user: SimUser, seq: int, timeout: float = 10.0) -> None:
    """Wait until the step after `seq` is on screen (a busy machine can be slower than the
    emulator's settle time, and the next answer must not land on the old question)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        screen = current(user)
        if screen.kind != "question" or screen.message is None or _seq(screen.message) > seq:
            return
        await wait_event(user.chat.changed, 0.2)


def female_id() -> str:
    """A valid Chinese resident ID: Ili, 12 March 1975, a woman."""
    first17 = "654002" + "19750312" + "002"
    return first17 + chinese_id_check_char(first17)


LONG_STORY = ("Мой брат «Ерлан» \"исчез\" в 2018 году; <b>не</b> тег & амперсанд.\n" * 60)[:3990]


async def start(user: SimUser, lang: str) -> None:
    """/start and the language choice."""
    await user.send_text("/start")
    await user.press(LANGUAGE_NAMES[lang])


# ----------------------------------------------------------------------------- whole reports

CONSENT: dict[str, Answer] = {"consent_store": opt("agree"), "consent_share": opt("yes"),
                              "consent_publish": opt("anonymous")}
REPORTER: dict[str, Answer] = {
    "reporter_name": "Гүлжан <b>Тохтасын</b> & Co", "reporter_country": opt("kz"),
    "reporter_more": opt("yes"), "reporter_city": "Алматы", "reporter_phone": "8 701 123 45 67",
}
SISTER: dict[str, Answer] = {
    "relation": opt("sister"), "full_name": "Әлия Нұрланқызы Төлеубаева",
    "taken_from": opt("home"), "in_danger": opt("no"), "more_details": opt("yes"),
    "chinese_name": "王小明", "gender": opt("female"), "birth_date": "03.1975",
    "ethnicity": opt("kazakh"), "citizenship": opt("cn"), "prefecture": opt("ili"),
    "place": "Құлжа, Іле", "chinese_id": female_id(),
    "what_happened": multi("detained", "camp"), "happened_date": "2018",
    "place_held": "Лагерь №3 <script>", "responsible": multi("police"),
    "last_contact": "12.03.2018", "steps_taken": multi("un"), "story": LONG_STORY,
    "attachments": [do(lambda u: u.send_photo()),
                    do(lambda u: u.send_document(b"%PDF-1.4 fake", file_name="passport.pdf",
                                                 mime_type="application/pdf")),
                    press("done")],
}
# A missing man in Altay, out of contact, every optional question after his name skipped.
BROTHER: dict[str, Answer] = {
    "relation": opt("brother"), "full_name": "ئابدۇللا 🙏", "gender": opt("male"),
    "birth_date": UNKNOWN, "prefecture": opt("altay"), "what_happened": multi("no_contact"),
    "happened_date": UNKNOWN, "taken_from": opt("unknown"), "in_danger": opt("no"),
    "more_details": opt("no"),
}


#: Words of a report() with the default answers that must never be stored or logged in plain text.
MARKERS = ["Гүлжан", "Тохтасын", "Әлия Нұрланқызы", "王小明", "ئابدۇللا", "Лагерь №3",
           "Алматы", "Құлжа", "77011234567", "исчез"]


async def submit(user: SimUser) -> str:
    """From the add-person prompt or the review: submit; the case number."""
    screen = current(user)
    if screen.kind == "add_person":
        assert screen.message is not None
        await user.press(button(screen.message, "finish"), screen.message)
        await user.wait_for(lambda m: "submit" in Screen("", m).actions())
        screen = current(user)
    assert screen.kind == "review" and screen.message is not None, screen
    await user.press(button(screen.message, "submit"), screen.message)
    thanks = await user.wait_for(lambda m: any(parse_case_number(w) for w in m.plain.split()))
    return next(w for w in thanks.plain.split() if parse_case_number(w))


async def report(user: SimUser, lang: str, *persons: Mapping[str, Answer],
                 answers: Mapping[str, Answer] | None = None) -> str:
    """A whole report from /start to its case number: consent, reporter, then each person."""
    await start(user, lang)
    for i, person in enumerate(persons or (SISTER, BROTHER)):
        if i:
            screen = current(user)
            assert screen.kind == "add_person" and screen.message is not None, screen
            await user.press(button(screen.message, "add"), screen.message)
        await fill(user, {**CONSENT, **REPORTER, **(answers or {}), **person})
    return await submit(user)
