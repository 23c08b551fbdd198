"""What relatives read around the questionnaire, in kk and ru: who we are (before consent, in
/help, after a refusal), /start without asking the language again, /help with every command,
/mydata as readable text, buttons instead of typed commands, multi-answers one per line."""

from __future__ import annotations

import html
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.handlers.about import ABOUT, ABOUT_ORG, CHECK, OFFICE
from bot.handlers.privacy import MYDATA_INTRO
from bot.handlers.relative import COMMANDS, DECLINED, STATUS_LABELS, THANKS
from bot.handlers.render import REVIEW_INTRO
from bot.i18n import LANGUAGE_NAMES, LANGUAGES
from bot.sandbox.emulator import Emulator
from bot.sandbox.simusers import SimUser
from tests.e2e.conftest import BotRunner, click, tr
from tests.journeys import CONSENT, REPORTER, SISTER, current, fill, prompt, start, submit

ORG = "Атажұрт <еріктілері>"  # markup-like on purpose: it must be shown as written
CONTACTS = {
    "kk": "Алматы, Абай даңғылы 1, 2-қабат\nТел.: +7 727 000 00 01\nДс–Жм 10:00–18:00",
    "ru": "Алматы, пр. Абая 1, 2 этаж\nТел.: +7 727 000 00 02\nПн–Пт 10:00–18:00",
}
LANGS = ["kk", "ru"]


@pytest.fixture
async def org_bot(emulator: Emulator, tmp_path: Path) -> AsyncIterator[BotRunner]:
    runner = BotRunner(emulator, tmp_path / "data", org_name=ORG,
                       org_contacts=json.dumps(CONTACTS, ensure_ascii=False))
    await runner.start()
    try:
        yield runner
    finally:
        await runner.stop()


def assert_who_we_are(text: str, lang: str, bot: BotRunner) -> None:
    """The organisation, its office in the reader's language, and how to check the bot."""
    assert tr(lang, ABOUT_ORG, org=html.escape(ORG)) in text
    assert tr(lang, OFFICE) in text
    assert CONTACTS[lang] in text
    assert CONTACTS["ru" if lang == "kk" else "kk"] not in text
    assert tr(lang, CHECK, bot=bot.app.bot.username) in text
    assert f"@{bot.app.bot.username}" in text


def button_labels(user: SimUser) -> list[str]:
    return [label for row in user.last.buttons for label, _ in row]


async def choose_language(user: SimUser, lang: str) -> None:
    """/start: the chooser, Kazakh first; then the language."""
    await user.send_text("/start")
    assert [row[0][0] for row in user.last.buttons] == [LANGUAGE_NAMES[c] for c in LANGUAGES]
    await user.press(LANGUAGE_NAMES[lang])


def consent_head(lang: str) -> str:
    return prompt(lang, "consent_store").split("\n")[0]


@pytest.mark.parametrize("lang", LANGS)
async def test_who_we_are_comes_before_consent(emulator: Emulator, org_bot: BotRunner,
                                               lang: str) -> None:
    user = emulator.user(7100 + LANGS.index(lang), language_code="ru")
    await user.send_text("/start")
    # Kazakh first, even on a phone set to Russian.
    assert [row[0][0] for row in user.last.buttons] == [LANGUAGE_NAMES[c] for c in LANGUAGES]
    assert button_labels(user)[0] == "Қазақша"
    await user.press(LANGUAGE_NAMES[lang])
    intro, consent = user.messages[-2:]
    assert_who_we_are(intro.plain, lang, org_bot)
    assert "<" in ORG and ORG in intro.plain  # escaped, shown exactly
    assert consent_head(lang) in consent.plain
    assert consent.buttons and not intro.buttons
    # The notice says whose authorities are written to (relatives fear contact with China's).
    assert {"kk": "Қазақстанның билік органдарына", "ru": "властям Казахстана"}[lang] \
        in consent.plain


@pytest.mark.parametrize("lang", LANGS)
async def test_without_settings_the_bot_still_says_how_to_check_it(
        emulator: Emulator, bot: BotRunner, lang: str) -> None:
    user = emulator.user(7110 + LANGS.index(lang), language_code=lang)
    await choose_language(user, lang)
    intro = user.messages[-2].plain
    assert tr(lang, ABOUT) in intro
    assert tr(lang, OFFICE) not in intro  # no office configured: none invented
    assert tr(lang, CHECK, bot=bot.app.bot.username) in intro


@pytest.mark.parametrize("lang", LANGS)
async def test_declining_shows_the_office_and_a_button_to_start_again(
        emulator: Emulator, org_bot: BotRunner, lang: str) -> None:
    user = emulator.user(7120 + LANGS.index(lang), language_code=lang)
    await choose_language(user, lang)
    await click(user, "opt", "decline")
    text = user.last.plain
    assert tr(lang, DECLINED) in text
    assert_who_we_are(text, lang, org_bot)
    assert "/new" not in text
    assert await org_bot.d.drafts.get(user.id) is None
    await user.press("📝 " + tr(lang, "Start again"))
    assert consent_head(lang) in user.last.plain


@pytest.mark.parametrize("lang", LANGS)
async def test_start_goes_on_without_asking_the_language_again(
        emulator: Emulator, bot: BotRunner, lang: str) -> None:
    user = emulator.user(7130 + LANGS.index(lang), language_code="en")
    await choose_language(user, lang)
    await click(user, "opt", "agree")
    await user.send_text("/start")
    assert not any(d and d.startswith("L:") for row in user.last.buttons for _, d in row)
    assert prompt(lang, "consent_share") in user.last.plain  # where they were
    await click(user, "opt", "yes")  # and its buttons work
    step = current(user)
    assert step.kind == "question" and step.qid != "consent_share"
    assert prompt(lang, step.qid) in user.last.plain
    await user.send_text("/language")  # the language is changed there
    assert user.last.buttons[0][0][0] == LANGUAGE_NAMES["kk"]
    other = "ru" if lang == "kk" else "kk"
    await user.press(LANGUAGE_NAMES[other])
    assert prompt(other, step.qid) in user.last.plain


@pytest.mark.parametrize("lang", LANGS)
async def test_help_lists_every_command_and_who_we_are(emulator: Emulator, org_bot: BotRunner,
                                                       lang: str) -> None:
    user = emulator.user(7140 + LANGS.index(lang), language_code=lang)
    await choose_language(user, lang)
    await user.send_text("/help")
    text = "\n".join(m.plain for m in user.messages[-2:])
    assert_who_we_are(text, lang, org_bot)
    for name, description in COMMANDS:
        assert f"/{name}: {tr(lang, description)}" in text
    assert "📝 " + tr(lang, "Report a missing person") in button_labels(user)
    # A mistyped command offers Help as a button, which shows the same.
    await user.send_text("/nonsense")
    assert "/help" not in user.last.plain
    await user.press("❓ " + tr(lang, "Help"))
    assert "/mydata: " + tr(lang, "See everything we keep about you") in "\n".join(
        m.plain for m in user.messages[-2:])


async def submit_one_person(user: SimUser, lang: str) -> str:
    await start(user, lang)
    await fill(user, {**CONSENT, **REPORTER, **SISTER})
    assert current(user).kind == "add_person"
    await click(user, "finish")
    review = "\n".join(m.plain for m in user.messages[-3:])
    assert tr(lang, REVIEW_INTRO) in review
    # Options chosen together, one per line: their labels hold commas themselves.
    camp = tr(lang, 'Camp ("re-education")')
    assert f"{tr(lang, 'What happened')}:\n   • {tr(lang, 'Detained')}\n   • {camp}" in review
    return await submit(user)


@pytest.mark.parametrize("lang", LANGS)
async def test_thanks_and_status_have_buttons_not_commands(emulator: Emulator, bot: BotRunner,
                                                           lang: str) -> None:
    user = emulator.user(7150 + LANGS.index(lang), language_code=lang)
    number = await submit_one_person(user, lang)
    thanks = user.last
    assert tr(lang, THANKS, number=number) == thanks.plain
    for command in ("/status", "/new", "/delete", "/stop_updates"):
        assert command not in thanks.plain
    await user.press("📋 " + tr(lang, "My cases"), thanks)
    assert number in user.last.plain
    assert tr(lang, STATUS_LABELS["new"]) in user.last.plain
    assert thanks.buttons  # still there to press again
    await user.press("📝 " + tr(lang, "Report a missing person"))
    assert consent_head(lang) in user.last.plain
    await user.send_text("/cancel")
    await user.press(tr(lang, "Yes, discard it"))
    assert user.last.plain == tr(lang, "The report was discarded.")
    await user.press("📝 " + tr(lang, "Start again"))
    assert consent_head(lang) in user.last.plain


@pytest.mark.parametrize("lang", LANGS)
async def test_mydata_is_readable_and_the_file_only_on_request(
        emulator: Emulator, bot: BotRunner, lang: str) -> None:
    user = emulator.user(7160 + LANGS.index(lang), language_code=lang)
    number = await submit_one_person(user, lang)
    await user.send_text("/new")
    await click(user, "opt", "agree")  # a second report in progress
    before = len(user.messages)
    await user.send_text("/mydata")
    shown = user.messages[before:]
    assert all(m.kind == "text" for m in shown)
    text = "\n".join(m.plain for m in shown)
    assert tr(lang, MYDATA_INTRO) in text
    assert tr(lang, "Your language: %(language)s", language=LANGUAGE_NAMES[lang]) in text
    assert tr(lang, "You receive our news.") in text
    assert tr(lang, "Report in progress (not sent yet)") in text
    assert number in text and tr(lang, STATUS_LABELS["new"]) in text
    # Answers as the review shows them: labels and option names in the relative's language.
    assert "Гүлжан <b>Тохтасын</b> & Co" in text  # as typed
    assert f"{tr(lang, 'Full name')}: Әлия Нұрланқызы Төлеубаева" in text
    assert f"{tr(lang, 'What happened')}:\n   • {tr(lang, 'Detained')}" in text
    assert f"{tr(lang, 'Consent to store and process')}: {tr(lang, 'Yes, I agree')}" in text
    assert "…" in text  # the long story is shortened here
    for raw in ('"cases"', "consent_store", "detained", "reporter_name"):
        assert raw not in text  # no JSON keys or codes
    # The whole file, with codes, only when pressed for.
    await user.press("📄 " + tr(lang, "Send it to me as a file"))
    doc = user.last
    assert doc.kind == "document"
    stored = emulator.world.files.get(doc.file_id or "")
    assert stored is not None
    content = json.loads(stored.data.decode())
    assert content["cases"][0]["number"] == number
    assert content["cases"][0]["answers"]["persons"][0]["what_happened"] == ["detained", "camp"]
    assert content["draft"]["consent"]["consent_store"] == "agree"


@pytest.mark.parametrize("lang", LANGS)
async def test_news_can_be_turned_off_and_on_with_buttons(emulator: Emulator, bot: BotRunner,
                                                          lang: str) -> None:
    user = emulator.user(7170 + LANGS.index(lang), language_code=lang)
    await choose_language(user, lang)
    await user.send_text("/stop_updates")
    assert "/start_updates" not in user.last.plain
    row = await bot.d.users.get(user.id)
    assert row is not None and not row.updates_enabled
    await user.press("🔔 " + tr(lang, "Receive news again"))
    assert "/stop_updates" not in user.last.plain
    row = await bot.d.users.get(user.id)
    assert row is not None and row.updates_enabled
    await user.press("🔕 " + tr(lang, "Stop receiving news"))
    row = await bot.d.users.get(user.id)
    assert row is not None and not row.updates_enabled


@pytest.mark.parametrize("lang", LANGS)
async def test_keep_button_is_short(emulator: Emulator, bot: BotRunner, lang: str) -> None:
    """Back | Keep | Skip share a row: the corrected labels fit a small phone."""
    user = emulator.user(7180 + LANGS.index(lang), language_code=lang)
    await start(user, lang)
    await fill(user, CONSENT, until="reporter_name")
    await user.send_text("Name")
    await click(user, "back")
    row = user.last.buttons[-1]
    labels = [label for label, _ in row]
    assert tr(lang, "Keep") in labels and len(row) >= 2  # Skip too when the question is optional
    assert all(len(label) <= 12 for label in labels), labels


@pytest.mark.parametrize("lang", LANGS)
async def test_the_daily_limit_points_to_the_office(emulator: Emulator, tmp_path: Path,
                                                    lang: str) -> None:
    """"If it is urgent, write to the organisation directly": with the office's contacts."""
    runner = BotRunner(emulator, tmp_path / "data", max_cases_per_day=1,
                       org_contacts=json.dumps(CONTACTS, ensure_ascii=False))
    await runner.start()
    try:
        user = emulator.user(7190 + LANGS.index(lang), language_code=lang)
        await start(user, lang)
        now = runner.d.now().isoformat(timespec="seconds")
        await runner.d.db.execute(  # a case sent earlier today
            "INSERT INTO cases (number, user_id, language, persons_count, notice_version,"
            " form_version, data, submitted_at, updated_at) VALUES ('7000-0002', ?, ?, 1, 1,"
            " 1, X'', ?, ?)", (user.id, lang, now, now))
        await fill(user, {**CONSENT, **SISTER})
        await click(user, "finish")
        await click(user, "submit")
        assert CONTACTS[lang] in user.last.plain and tr(lang, OFFICE) in user.last.plain
        assert await runner.d.drafts.get(user.id) is not None  # kept for tomorrow
    finally:
        await runner.stop()
