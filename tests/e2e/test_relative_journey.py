"""A relative reports missing family members from start to finish, in kk, ru and en."""

from __future__ import annotations

import json

import pytest

from bot.form.model import load_form
from bot.handlers.relative import THANKS
from bot.handlers.render import ERRORS, REVIEW_INTRO
from bot.i18n import LANGUAGE_NAMES
from bot.sandbox.emulator import Emulator
from bot.sandbox.simusers import SimUser
from bot.services.case_numbers import parse_case_number
from tests.e2e.conftest import BotRunner, click, tr
from tests.journeys import LONG_STORY, UNKNOWN, do, female_id, fill, multi, opt, press

FORM = load_form()
PERSON = FORM.repeat_group


def prompt(lang: str, group: str, qid: str) -> str:
    return tr(lang, FORM.question(group, qid).prompt)


async def choose_language(user: SimUser, lang: str) -> None:
    await user.send_text("/start")
    assert "Выберите язык" in user.last.plain
    labels = [row[0][0] for row in user.last.buttons]
    assert set(labels) == set(LANGUAGE_NAMES.values())
    await user.press(LANGUAGE_NAMES[lang])


async def give_consent(user: SimUser, lang: str) -> None:
    notice = prompt(lang, "consent", "consent_store")
    assert notice.split("\n")[0] in user.last.plain  # the notice, in the chosen language
    assert "/delete" in user.last.plain
    await click(user, "opt", "agree")
    assert prompt(lang, "consent", "consent_share") in user.last.plain
    await click(user, "opt", "yes")
    await click(user, "opt", "anonymous")


async def answer_reporter(user: SimUser, lang: str) -> None:
    assert prompt(lang, "reporter", "reporter_name") in user.last.plain
    await fill(user, {"reporter_name": "Гүлжан <b>Тохтасын</b> & Co", "reporter_country": opt("kz"),
                      "reporter_city": "Алматы"}, until="reporter_phone")
    # A phone number that is not one: explained in the user's language, question again.
    await user.send_text("12345")
    assert tr(lang, ERRORS["phone_invalid"]) in user.last.plain
    assert prompt(lang, "reporter", "reporter_phone") in user.last.plain
    await fill(user, {"reporter_phone": "8 701 123 45 67"}, until="relation")


async def answer_first_person(user: SimUser, lang: str) -> None:
    assert prompt(lang, "person", "relation") in user.last.plain
    assert tr(lang, "Missing person %(number)s", number=1) in user.last.plain
    await user.send_sticker()  # a sticker at a button question
    assert tr(lang, ERRORS["use_buttons"]) in user.last.plain
    await fill(user, {"relation": opt("sister"), "full_name": "Әлия Нұрланқызы",
                      "chinese_name": "王小明", "gender": opt("female")}, until="birth_date")
    await user.send_text("31.02.1975")  # no such day
    assert tr(lang, ERRORS["date_invalid"]) in user.last.plain
    await fill(user, {"birth_date": "03.1975", "ethnicity": opt("kazakh"),
                      "citizenship": opt("cn")}, until="occupation")
    # Back from occupation to citizenship, which shows the current answer; keep it.
    await click(user, "back")
    assert prompt(lang, "person", "citizenship") in user.last.plain
    await click(user, "keep")
    await fill(user, {"prefecture": opt("ili"), "place": "Құлжа, Іле"}, until="chinese_id")
    await user.send_text(female_id())
    assert tr(lang, "Is this right?") in user.last.plain
    await click(user, "id_yes")
    assert prompt(lang, "person", "what_happened") in user.last.plain
    await click(user, "done")  # nothing chosen yet
    assert tr(lang, ERRORS["choose_one"]) in user.last.plain
    await fill(user, {"what_happened": multi("detained", "camp"), "happened_date": "2018"},
               until="place_held")
    assert prompt(lang, "person", "place_held") in user.last.plain  # shown: she is in a camp
    await fill(user, {"place_held": "Лагерь №3 <script>", "responsible": multi("police"),
                      "last_contact": "12.03.2018", "steps_taken": multi("un")}, until="story")
    await user.send_photo()  # a photo while the story is asked: kept with her files
    await fill(user, {"story": LONG_STORY, "attachments": [
        do(lambda u: u.send_document(b"%PDF-1.4 fake", file_name="passport.pdf",
                                     mime_type="application/pdf")), press("done")]})


async def answer_second_person(user: SimUser, lang: str, bot: BotRunner) -> None:
    labels = [label for row in user.last.buttons for label, _ in row]
    assert any(tr(lang, "Add another person") in label for label in labels)
    await click(user, "add")
    assert tr(lang, "Missing person %(number)s", number=2) in user.last.plain
    await fill(user, {"relation": opt("brother")}, until="full_name")
    await user.send_location(43.25, 76.95)  # at a text question
    assert tr(lang, ERRORS["type_text_or_voice"]) in user.last.plain
    await user.send_text("x" * 5000)
    assert tr(lang, ERRORS["too_long"], length=5000, limit=300) in user.last.plain
    await fill(user, {"full_name": "ئابدۇللا 🙏"}, until="chinese_name")

    # The bot restarts here. The question on screen still works after the restart.
    assert prompt(lang, "person", "chinese_name") in user.last.plain
    await bot.restart()
    await click(user, "skip")
    # ...and had the bot died after saving an answer but before showing the next question,
    # the relative's next message brings that question back instead of being taken as an answer.
    await bot.d.db.execute("UPDATE drafts SET shown_seq = -1")
    await user.send_text("hello?")
    assert tr(lang, "Welcome back. We continue where you stopped:") in user.last.plain
    assert prompt(lang, "person", "other_names") in user.last.plain
    await fill(user, until="gender")
    await user.send_animation()  # a GIF at a button question
    assert tr(lang, ERRORS["use_buttons"]) in user.last.plain
    await fill(user, {"gender": opt("male"), "birth_date": UNKNOWN, "prefecture": opt("altay"),
                      "what_happened": multi("no_contact"), "happened_date": UNKNOWN},
               until="responsible")
    # No place_held: not detained.
    await fill(user, {"story": do(lambda u: u.send_voice(duration=75))})
    await click(user, "finish")


async def review_edit_submit(user: SimUser, lang: str) -> str:
    review = "\n".join(m.plain for m in user.messages[-3:])
    assert tr(lang, REVIEW_INTRO) in review
    assert "Гүлжан <b>Тохтасын</b> & Co" in review  # escaped, shown exactly as typed
    assert "ئابدۇللا" in review
    assert "…" in review  # the long story is shortened in the review
    await click(user, "editmenu")
    await click(user, "editmenu", "person.0")
    await click(user, "edit", "person.0:full_name")
    assert prompt(lang, "person", "full_name") in user.last.plain
    await user.send_text("Әлия Нұрланқызы Төлеубаева")
    assert tr(lang, REVIEW_INTRO) in "\n".join(m.plain for m in user.messages[-3:])
    await click(user, "submit")
    text = user.last.plain
    found = [w for w in text.replace("\n", " ").split() if parse_case_number(w)]
    assert found, text
    assert tr(lang, THANKS, number=found[0]) == text
    return found[0]


@pytest.mark.parametrize("lang", ["kk", "ru", "en"])
async def test_full_journey(emulator: Emulator, bot: BotRunner, lang: str) -> None:
    user = emulator.user(1000 + len(lang), language_code="ru" if lang != "en" else "en")
    await choose_language(user, lang)
    await give_consent(user, lang)
    await answer_reporter(user, lang)
    await answer_first_person(user, lang)
    await answer_second_person(user, lang, bot)
    number = await review_edit_submit(user, lang)

    # What is stored: every answer as typed, options as codes, the draft gone.
    d = bot.d
    assert await d.drafts.get(user.id) is None
    data = await d.cases.data(number)
    assert data is not None
    assert data["language"] == lang
    assert data["consent"] == {"consent_store": "agree", "consent_share": "yes",
                               "consent_publish": "anonymous"}
    assert data["reporter"] == {"reporter_name": "Гүлжан <b>Тохтасын</b> & Co",
                                "reporter_country": "kz", "reporter_city": "Алматы",
                                "reporter_phone": "+77011234567"}
    first, second = data["persons"]
    assert first["full_name"] == "Әлия Нұрланқызы Төлеубаева"
    assert first["chinese_name"] == "王小明"
    assert first["birth_date"] == "1975-03"
    assert first["chinese_id"] == female_id()
    assert first["what_happened"] == ["detained", "camp"]
    assert first["place_held"] == "Лагерь №3 <script>"
    assert first["story"] == LONG_STORY.strip()
    assert [a["kind"] for a in first["attachments"]] == ["photo", "document"]
    assert second["full_name"] == "ئابدۇللا 🙏"
    assert second["birth_date"] == "unknown"
    assert "place_held" not in second
    assert second["story"]["voice"]["duration"] == 75

    # Status in the relative's language; and they can report again.
    await user.send_text("/status")
    assert number in user.last.plain
    assert tr(lang, "received, waiting for a volunteer") in user.last.plain
    await user.send_text("/new")
    assert prompt(lang, "consent", "consent_store").split("\n")[0] in user.last.plain


async def test_language_change_mid_journey_and_cancel(emulator: Emulator, bot: BotRunner) -> None:
    user = emulator.user(2001, language_code="kk")
    await user.send_text("/start")
    assert user.last.buttons[0][0][0] == LANGUAGE_NAMES["kk"]  # the guess comes first
    await user.press(LANGUAGE_NAMES["kk"])
    await click(user, "opt", "agree")
    await user.send_text("/language")
    await user.press(LANGUAGE_NAMES["en"])
    assert prompt("en", "consent", "consent_share") in user.last.plain
    assert ("start", "Start or continue a report") in user.commands
    await user.send_text("/cancel")
    await user.press("Yes, discard it")
    assert "discarded" in user.last.plain
    assert await bot.d.drafts.get(user.id) is None


async def test_declining_consent_keeps_nothing(emulator: Emulator, bot: BotRunner) -> None:
    user = emulator.user(2002, language_code="en")
    await choose_language(user, "en")
    await click(user, "opt", "decline")
    assert "cannot take a report" in user.last.plain
    assert await bot.d.drafts.get(user.id) is None


async def test_stale_button_is_answered_not_applied(emulator: Emulator, bot: BotRunner) -> None:
    user = emulator.user(2003, language_code="en")
    await choose_language(user, "en")
    consent_message = user.last
    stale = next(d for row in consent_message.buttons for _, d in row if d and "decline" in d)
    await click(user, "opt", "agree")
    answer = await user.press_data(stale, consent_message.message_id)
    assert answer is not None and "earlier question" in (answer.text or "")
    state = await bot.d.drafts.get(user.id)
    assert state is not None and b"decline" not in state.state


async def test_group_chat_points_to_private_chat(emulator: Emulator, bot: BotRunner) -> None:
    group = emulator.group(-100123, title="Family")
    user = emulator.user(2004, language_code="ru").in_chat(group)
    await user.send_text("/start")
    assert tr("ru", "Please write to me in a private chat: @%(bot)s. What you write here is "
                    "seen by everyone in the group.", bot=bot.app.bot.username) in user.last.plain
    assert await bot.d.drafts.get(2004) is None


async def test_comes_back_after_a_week(emulator: Emulator, bot: BotRunner) -> None:
    user = emulator.user(2005, language_code="en")
    await choose_language(user, "en")
    await give_consent(user, "en")
    # A week passes: move the draft's last update back in time.
    await bot.d.db.execute("UPDATE drafts SET updated_at = '2000-01-01T00:00:00+00:00'")
    await user.send_text("My name")
    assert "Welcome back" in user.last.plain
    assert prompt("en", "reporter", "reporter_name") in user.last.plain
    await user.send_text("My name")
    assert prompt("en", "reporter", "reporter_country") in user.last.plain
    raw = await bot.d.drafts.get(user.id)
    assert raw is not None and json.loads(raw.state)["answers"]["reporter"] == {
        "reporter_name": "My name"}
