"""A relative reports missing family members from start to finish, in kk, ru and en."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from bot.form.model import load_form
from bot.handlers.relative import THANKS
from bot.handlers.render import ERRORS, REVIEW_INTRO
from bot.i18n import LANGUAGE_NAMES
from bot.sandbox.emulator import Emulator
from bot.sandbox.simusers import SimUser
from bot.services.case_numbers import parse_case_number
from tests.e2e.conftest import BotRunner, click, tr
from tests.journeys import (
    LONG_STORY,
    SKIP,
    UNKNOWN,
    actions,
    do,
    female_id,
    fill,
    multi,
    opt,
    press,
    start,
    submit,
)

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


#: Sentences of the privacy notice (notice_version 3) that must reach the relative: Telegram
#: keeps chats in its cloud, and unfinished answers are kept BOT_DRAFT_RETENTION_DAYS (14).
NOTICE_PROMISES = {
    "en": ["Telegram can read chats with bots and keeps them in its cloud.",
           "we keep your unfinished answers for 14 days after your last answer.",
           "In Telegram they see it only in their private chats with this bot."],
    "ru": ["Telegram может читать чаты с ботами и хранит их в своём облаке.",
           "мы храним Ваши незаконченные ответы 14 дн. после Вашего последнего ответа.",
           "В Telegram они видят его только в своих личных чатах с этим ботом."],
    "kk": ["Telegram боттармен жазысуларды оқи алады және оларды өз бұлтында сақтайды.",
           "аяқталмаған жауаптарыңызды соңғы жауабыңыздан кейін 14 күн сақтаймыз.",
           "Telegram-да олар оны тек осы ботпен жеке чаттарында көреді."],
}


async def give_consent(user: SimUser, lang: str) -> None:
    notice = prompt(lang, "consent", "consent_store")
    assert notice.split("\n")[0] in user.last.plain  # the notice, in the chosen language
    assert "/delete" in user.last.plain
    for sentence in NOTICE_PROMISES[lang]:
        assert sentence in user.last.plain
    assert "%(days)s" not in user.last.plain
    await click(user, "opt", "agree")
    assert prompt(lang, "consent", "consent_share") in user.last.plain
    await click(user, "opt", "yes")
    # Shared with the UN: may the UN name the reporter to China? No comes first.
    assert prompt(lang, "consent", "consent_reveal") in user.last.plain
    assert user.last.buttons[0][0][1].endswith(":opt:no")
    await click(user, "opt", "no")
    # "Publish with names" says whose names.
    labels = [label for row in user.last.buttons for label, _ in row]
    assert tr(lang, "Yes, with the names of the missing people") in labels
    await click(user, "opt", "anonymous")


async def answer_reporter(user: SimUser, lang: str) -> None:
    assert prompt(lang, "reporter", "reporter_name") in user.last.plain
    # Shared with the UN: the name is needed, so no Skip.
    assert not any(d and d.endswith(":skip") for row in user.last.buttons for _, d in row)
    await fill(user, {"reporter_name": "Гүлжан <b>Тохтасын</b> & Co", "reporter_country": opt("kz"),
                      "reporter_more": opt("yes")}, until="reporter_city")
    # The reporter's region, not their village.
    assert prompt(lang, "reporter", "reporter_city") in user.last.plain
    assert tr(lang, "In which region or city do you live? The region is enough.") in user.last.plain
    await fill(user, {"reporter_city": "Алматы"}, until="reporter_citizenship")
    labels = [label for row in user.last.buttons for label, _ in row]
    assert tr(lang, "Two citizenships") not in labels
    await click(user, "skip")
    # A phone number that is not one: explained in the user's language, question again.
    await user.send_text("12345")
    assert tr(lang, ERRORS["phone_invalid"]) in user.last.plain
    assert prompt(lang, "reporter", "reporter_phone") in user.last.plain
    await user.send_text("8 701 123 45 67")
    assert "✔️ +7 701 123 45 67" in user.last.plain  # echoed as understood


async def answer_first_person(user: SimUser, lang: str) -> None:
    assert prompt(lang, "person", "relation") in user.last.plain
    assert tr(lang, "Missing person %(number)s", number=1) in user.last.plain
    await user.send_sticker()  # a sticker at a button question
    assert tr(lang, ERRORS["use_buttons"]) in user.last.plain
    await click(user, "opt", "sister")
    assert prompt(lang, "person", "full_name") in user.last.plain
    await user.send_photo()  # a passport at the name question: kept with her files
    assert tr(lang, "Kept with this person's photos and documents. Please also answer the "
                    "question.") in user.last.plain
    await user.send_voice(duration=4)  # a name is not taken from a voice message
    assert tr(lang, ERRORS["name_voice"]) in user.last.plain
    await user.send_text("Әлия Нұрланқызы")
    assert "✔️ Әлия Нұрланқызы" in user.last.plain
    # A sister is a woman: no gender question.
    assert prompt(lang, "person", "prefecture") in user.last.plain
    await click(user, "opt", "ili")
    await click(user, "done")  # nothing chosen yet
    assert tr(lang, ERRORS["choose_one"]) in user.last.plain
    # A typed label ticks a multiple-choice answer, as pressing it would.
    await user.send_text(tr(lang, "Detained").lower())
    assert "✅ " + tr(lang, "Detained") in [label for row in user.last.buttons
                                           for label, _ in row]
    await fill(user, {"what_happened": multi("camp")}, until="happened_date")
    await click(user, "year", "2018")
    assert tr(lang, "The UN asks for the month as well. If you remember it, you can add it "
                    "when you check your answers at the end.") in user.last.plain
    # A typed label counts as the button ("At home", in the relative's language).
    await user.send_text(tr(lang, "At home").upper())
    assert prompt(lang, "person", "in_danger") in user.last.plain
    await fill(user, {"in_danger": opt("yes"), "more_details": opt("yes"),
                      "chinese_name": "王小明"}, until="birth_date")
    await user.send_text("31.02.1975")  # no such day
    assert tr(lang, ERRORS["date_invalid"]) in user.last.plain
    await user.send_text({"kk": "шамамен 1975", "ru": "примерно 1975"}.get(lang, "about 1975"))
    assert "✔️ " + tr(lang, "about %(date)s", date="1975") in user.last.plain
    await fill(user, {"ethnicity": opt("kazakh"), "citizenship": opt("cn")}, until="occupation")
    # Back from occupation to citizenship, which shows the current answer; keep it.
    await click(user, "back")
    assert prompt(lang, "person", "citizenship") in user.last.plain
    await click(user, "keep")
    await fill(user, {"place": "Құлжа, Іле"}, until="chinese_id")
    await user.send_text(female_id())
    assert tr(lang, "Is this right?") in user.last.plain
    await click(user, "id_yes")
    await fill(user, {"place_held": "Лагерь №3 <script>", "current_situation": opt("sentenced")},
               until="situation_date")
    await user.send_text({"kk": "2019 жылдың көктемі", "ru": "весной 2019"}.get(lang,
                                                                              "spring 2019"))
    assert "✔️ " + tr(lang, "spring %(year)s", year=2019) in user.last.plain
    await fill(user, {"sentence": "10", "charge": "extremism",
                      "responsible": multi("camp_admin"), "reasons_given": multi("religion"),
                      "last_contact": "12.03.2018", "steps_taken": multi("un"),
                      "steps_result": "2019: no answer", "links": "https://example.org/a",
                      "reference_numbers": "Atazhurt 123"}, until="story")
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
    await fill(user, {"full_name": "ئابدۇللا 🙏"}, until="prefecture")

    # The bot restarts here. The question on screen still works after the restart.
    assert prompt(lang, "person", "prefecture") in user.last.plain
    assert tr(lang, "Same as person 1: %(answer)s", answer=tr(lang, "Ili (Ghulja)")) in [
        label.removeprefix("👥 ") for row in user.last.buttons for label, _ in row]
    await bot.restart()
    await click(user, "same")
    # ...and had the bot died after saving an answer but before sending the next question,
    # the relative's next message brings that question back instead of being taken as an answer.
    await bot.d.db.execute("UPDATE drafts SET shown_seq = -1, sent_seq = -1")
    await user.send_text("hello?")
    assert tr(lang, "Welcome back. We continue where you stopped:") in user.last.plain
    assert prompt(lang, "person", "what_happened") in user.last.plain
    await user.send_animation()  # a GIF at a button question
    assert tr(lang, ERRORS["use_buttons"]) in user.last.plain
    await fill(user, {"what_happened": multi("no_contact")}, until="happened_date")
    await user.send_text("2019")  # the year alone: kept, with a note that the UN needs the month
    assert "✔️ 2019" in user.last.plain
    assert tr(lang, "The UN asks for the month as well. If you remember it, you can add it "
                    "when you check your answers at the end.") in user.last.plain
    await fill(user, {"taken_from": opt("border"), "in_danger": opt("no"),
                      "more_details": opt("yes"), "birth_date": UNKNOWN},
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
                               "consent_reveal": "no", "consent_publish": "anonymous"}
    assert data["reporter"] == {"reporter_name": "Гүлжан <b>Тохтасын</b> & Co",
                                "reporter_country": "kz", "reporter_more": "yes",
                                "reporter_city": "Алматы", "reporter_phone": "+77011234567"}
    first, second = data["persons"]
    assert first["full_name"] == "Әлия Нұрланқызы Төлеубаева"
    assert first["chinese_name"] == "王小明"
    assert first["birth_date"] == "1975~"  # about 1975
    assert first["gender"] == "female"  # from the relation
    assert first["happened_date"] == "2018" and first["taken_from"] == "home"
    assert first["situation_date"] == "2019-21"  # spring 2019
    assert first["in_danger"] == "yes" and first["current_situation"] == "sentenced"
    assert first["chinese_id"] == female_id()
    assert first["what_happened"] == ["detained", "camp"]
    assert first["place_held"] == "Лагерь №3 <script>"
    assert first["story"] == LONG_STORY.strip()
    assert [a["kind"] for a in first["attachments"]] == ["photo", "photo", "document"]
    assert second["full_name"] == "ئابدۇللا 🙏"
    assert second["prefecture"] == "ili" and second["gender"] == "male"
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


async def test_notice_states_the_draft_retention_setting(emulator: Emulator,
                                                         tmp_path: Path) -> None:
    runner = BotRunner(emulator, tmp_path / "data", draft_retention_days=30)
    await runner.start()
    try:
        user = emulator.user(2010, language_code="ru")
        await choose_language(user, "ru")
        assert "Ваши незаконченные ответы 30 дн." in user.last.plain
        assert "14 дн." not in user.last.plain
    finally:
        await runner.stop()


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


SHORTEST: dict[str, Any] = {
    "consent_store": opt("agree"), "consent_share": opt("yes"), "consent_reveal": opt("no"),
    "consent_publish": opt("no"), "reporter_name": "Гүлжан", "reporter_country": opt("kz"),
    "reporter_more": opt("no"), "relation": opt("brother"), "full_name": "Ерлан Серікұлы",
    "prefecture": opt("ili"), "what_happened": multi("detained"),
    "happened_date": press("year", "2018"), "taken_from": opt("home"), "in_danger": opt("no"),
    "more_details": opt("no"),
}


@pytest.mark.parametrize("lang", ["kk", "ru"])
async def test_shortest_honest_path_counts_actions(emulator: Emulator, bot: BotRunner,
                                                   lang: str) -> None:
    """Every required question answered, every optional one left: at most 20 taps and
    messages for one missing person (from /start, the language included), 12 more for a
    second one (README: "How long the questionnaire is")."""
    one = emulator.user(2100 + len(lang), language_code=lang)
    await start(one, lang)
    assert (await fill(one, SHORTEST, default=SKIP)).kind == "add_person"
    number = await submit(one)
    first = actions(one)
    print(f"{lang}: one person {first} actions")
    assert first <= 20, first

    two = emulator.user(2200 + len(lang), language_code=lang)
    await start(two, lang)
    await fill(two, SHORTEST)
    before_second = actions(two)
    await click(two, "add")
    await fill(two, {**SHORTEST, "relation": opt("mother"), "full_name": "Күлпаш",
                     "prefecture": press("same")})
    second = actions(two) - before_second
    await submit(two)
    print(f"{lang}: second person {second} actions")
    assert second <= 12, second

    data = await bot.d.cases.data(number)
    assert data is not None
    person = data["persons"][0]
    assert person["gender"] == "male" and person["happened_date"] == "2018"
    assert data["reporter"]["reporter_name"] == "Гүлжан"


@pytest.mark.parametrize("lang", ["kk", "ru"])
async def test_through_restarts(emulator: Emulator, bot: BotRunner, lang: str) -> None:
    """Issue 14 item 10: marked only once saved; the question again after a restart for a
    relative who may not have it; a typed answer kept whenever its question was sent."""
    user = emulator.user(2300 + len(lang), language_code=lang)
    await start(user, lang)
    await fill(user, {**SHORTEST}, until="reporter_country")
    # A save that fails (the bot dies in it): the pressed answer is not marked as kept.
    question = user.last
    real_save = bot.d.drafts.save

    async def broken_save(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("the disk is gone")

    bot.d.drafts.save = broken_save  # type: ignore[method-assign]
    await click(user, "opt", "kz")
    bot.d.drafts.save = real_save  # type: ignore[method-assign]
    assert "✔️ " + tr(lang, "Kazakhstan") not in question.plain and question.buttons
    row = await bot.d.drafts.get(user.id)
    assert row is not None and json.loads(row.state)["pos"]["qid"] == "reporter_country"
    assert "reporter_country" not in json.loads(row.state)["answers"]["reporter"]

    # Died after sending the next question, before recording it as shown: a typed answer to
    # it is kept (no "welcome back").
    await click(user, "opt", "kz")
    await click(user, "opt", "no")  # nothing more about the reporter
    assert prompt(lang, "person", "relation") in user.last.plain
    await click(user, "opt", "brother")
    await bot.d.db.execute("UPDATE drafts SET shown_seq = -1")
    await user.send_text("Ерлан")
    assert tr(lang, "Welcome back. We continue where you stopped:") not in user.last.plain
    state = await bot.d.drafts.get(user.id)
    assert state is not None and "Ерлан".encode() in state.state

    # The bot dies after saving an answer, before the next question was shown; at start-up
    # it sends that question again, without the relative writing first.
    await bot.d.db.execute("UPDATE drafts SET shown_seq = -1")
    seen = len(user.messages)
    await bot.restart()
    again = await user.wait_for(lambda m: m.message_id > user.messages[seen - 1].message_id
                                and prompt(lang, "person", "prefecture") in m.plain)
    assert again.buttons
    await click(user, "opt", "ili")
    assert prompt(lang, "person", "what_happened") in user.last.plain


def v1_draft() -> str:
    """A relative half-way through form version 1: about their sister, at her occupation."""
    return json.dumps({
        "form_version": 1, "seq": 20, "pending": None, "pending_id": None, "editing": False,
        "pos": {"step": "question", "block": "person.0", "qid": "occupation"},
        "answers": {
            "consent": {"consent_store": "agree", "consent_share": "no",
                        "consent_publish": "anonymous"},
            "reporter": {"reporter_name": "Гүлжан", "reporter_country": "kz",
                         "reporter_city": "Алматы"},
            "person.0": {"relation": "sister", "full_name": "Әлия", "gender": "female",
                         "birth_date": "1975", "ethnicity": "kazakh", "citizenship": "dual"}},
        "history": [], "answered_at": {"consent_store": "2026-11-01T10:00:00+00:00"},
    }, ensure_ascii=False)


@pytest.mark.parametrize("lang", ["kk", "ru"])
async def test_a_draft_begun_on_form_version_1_goes_on(emulator: Emulator, bot: BotRunner,
                                                       lang: str) -> None:
    user = emulator.user(2400 + len(lang), language_code=lang)
    await start(user, lang)  # the user row, with the language
    await bot.d.drafts.delete(user.id)
    now = bot.d.now_iso()
    await bot.d.drafts.save(user.id, v1_draft().encode(), 20, 1, now)
    await bot.d.drafts.mark_shown(user.id, 20, None, now)
    await user.send_text("Мұғалім")  # the occupation, as the old form asked
    assert "✔️ Мұғалім" in user.last.plain
    assert prompt(lang, "person", "place") in user.last.plain  # the old details go on
    await fill(user, {"place": "Құлжа"})
    await click(user, "finish")
    await click(user, "submit")  # the questions version 2 requires come before submitting
    assert prompt(lang, "person", "prefecture") in user.last.plain
    await fill(user, {"prefecture": opt("ili"), "what_happened": multi("camp"),
                      "taken_from": opt("home"), "in_danger": opt("no")})
    number = await submit(user)
    data = await bot.d.cases.data(number)
    assert data is not None
    person = data["persons"][0]
    assert person["occupation"] == "Мұғалім" and person["place"] == "Құлжа"
    assert person["citizenship"] == "dual"  # an old answer is kept as given
    assert person["taken_from"] == "home"
