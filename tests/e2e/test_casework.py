"""Case work through the emulator, as staff and relatives do it: a status per missing person
with an undo window, the needs_info question, consent enforced, /find in any script, duplicates
at submission, relatives writing to the volunteers, people by name, /stats by person."""

from __future__ import annotations

import asyncio
import functools
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bot.casework.status import PERSON_NOTICE_LABELS, WHOM
from bot.sandbox.emulator import Emulator
from bot.sandbox.simusers import SimChat, SimUser
from bot.storage.broadcasts import Audience, BroadcastRepository
from bot.storage.cases import NewCase
from bot.storage.casework import CaseworkRepository
from bot.storage.staff import Workflow
from tests.e2e.conftest import BotRunner, tr
from tests.e2e.test_relative_journey import female_id
from tests.e2e.test_staff import full_case, short_case, staff_group, xlsx_rows

ADMIN, STAFF = 7101, 7102
GROUP = -100777
UNDO = 2  # seconds of the undo window in these tests


@pytest.fixture
async def office(emulator: Emulator, tmp_path: Path) -> AsyncIterator[BotRunner]:
    runner = BotRunner(emulator, tmp_path / "data", admin_ids=frozenset({ADMIN}),
                       staff_ids=frozenset({STAFF}), staff_chat_id=GROUP,
                       status_undo_seconds=UNDO)
    await runner.start()
    try:
        yield runner
    finally:
        await runner.stop()


async def seed(bot: BotRunner, user: SimUser, persons: list[dict[str, Any]], number: str, *,
               share: str = "yes", phone: str | None = None, day: int = 1) -> int:
    """A submitted case, sealed as the bot stores it, for `user` (who has chosen Russian)."""
    d = bot.d
    user.chat.known = True  # they wrote to the bot before (the bot may write to them)
    await d.users.seen(user.id, "2026-11-01T10:00:00+00:00")
    await d.users.set_language(user.id, "ru")
    data = {"consent": {"consent_store": "agree", "consent_share": share,
                        "consent_publish": "no"},
            "reporter": {"reporter_phone": phone} if phone else {}, "persons": persons}
    await d.cases.submit(NewCase(user.id, "ru", len(persons), persons[0].get("prefecture"), 0,
                                 share, "no", 1, 1, json.dumps(data, ensure_ascii=False).encode()),
                         f"2026-11-{day:02d}T10:00:00+00:00", functools.partial(str, number))
    case = await Workflow(d.db).case(number)
    assert case is not None
    return case.case_id


def staff_users(emulator: Emulator) -> tuple[SimUser, SimUser, SimChat]:
    group = staff_group(emulator)
    private = emulator.user(STAFF, language_code="en", first_name="Arman", username="arman")
    return private, private.in_chat(group), group


BROTHER = {"relation": "brother", "full_name": "Нұрлан Асқар", "birth_date": "1975",
           "prefecture": "ili", "what_happened": ["camp"], "happened_date": "2018"}
MOTHER = {"relation": "mother", "full_name": "Гүлжан", "prefecture": "ili",
          "what_happened": ["passport_taken"], "happened_date": "2017-05"}


def notice_line(lang: str, relation: str, name: str, status: str) -> str:
    return "• " + tr(lang, "%(whom)s: %(status)s.", whom=tr(lang, WHOM[relation], name=name),
                     status=tr(lang, PERSON_NOTICE_LABELS[status]))


# ----------------------------------------------------------------------------- status


async def test_a_status_per_person_with_an_undo_window(emulator: Emulator,
                                                       office: BotRunner) -> None:
    bot = office
    private, _, _ = staff_users(emulator)
    relative = emulator.user(3101, language_code="ru")
    case_id = await seed(bot, relative, [BROTHER, MOTHER], "4821-0015")
    await private.send_text("/start")  # staff get their own welcome, not the consent form
    assert "You are staff" in private.last.plain and "/find TEXT" in private.last.plain

    card = await private.send_text("/case 4821-0015")
    card = private.last
    text = "\n".join(m.plain for m in private.messages[-3:])
    # The consent choices and each person's status come first.
    assert "Share with international organisations: Yes" in text
    assert "Missing person 1: New" in text and "Missing person 2: New" in text
    assert "Missing person 1 · " not in text  # names only quoted, in the answers below
    await private.press("👤 Person 1: status", card)
    chooser = await private.wait_for("Choose the new status")
    await private.press("Located", chooser)
    told = await private.wait_for("missing person 1: New → Located")
    assert "Arman (@arman)" in told.plain and f"told in {UNDO} seconds" in told.plain
    repo = CaseworkRepository(bot.d.db)
    assert await repo.person_statuses(case_id) == [(1, "located"), (2, "new")]
    case = await Workflow(bot.d.db).case_by_id(case_id)
    assert case is not None and case.status == "new"  # waits on the mother, still new

    # Undo within the window: back where it was, and nothing ever reaches the relative.
    await private.press("↩️ Undo", told)
    await private.wait_for("nothing was sent to the relative")
    assert await repo.person_statuses(case_id) == [(1, "new"), (2, "new")]
    await asyncio.sleep(UNDO + 1)
    assert relative.messages == []
    assert await bot.d.db.fetchone("SELECT 1 FROM outbox WHERE chat_id = ?", (relative.id,)) \
        is None

    # Again, without undo: after the window the relative hears whom it is about, in words a
    # family reads correctly ("we have news of where this person is", never "found").
    await private.press("Located", chooser)
    told = await private.wait_for(lambda m: "New → Located" in m.plain and m is not told)
    notice = await relative.wait_for("4821-0015", timeout=UNDO + 8)
    assert notice.plain == (tr("ru", "News about your case %(number)s", number="4821-0015")
                            + "\n" + notice_line("ru", "brother", "Нұрлан Асқар", "located"))
    assert "Ваш брат Нұрлан Асқар" in notice.plain and "найден" not in notice.plain
    await relative.send_text("/status")  # one status per person, in family words
    assert notice_line("ru", "brother", "Нұрлан Асқар", "located")[2:] in relative.last.plain
    assert tr("ru", WHOM["mother"], name="Гүлжан") in relative.last.plain
    await private.press("↩️ Undo", told)
    assert "Too late to undo" in (private.answers[-1].text or "")

    # A move backwards is recorded but never told.
    await private.press("👤 Person 1: status", card)
    chooser = await private.wait_for(lambda m: "Choose the new status" in m.plain
                                     and "Located." in m.plain)
    await private.press("In review", chooser)
    back = await private.wait_for("Located → In review")
    assert "not told" in back.plain
    seen = len(relative.messages)
    await asyncio.sleep(UNDO + 1)
    assert len(relative.messages) == seen
    history = (await private.send_text("/case 4821-0015"), private.messages[-3:])[1]
    assert "missing person 1: New → Located (undone)" in "\n".join(m.plain for m in history)


async def test_cases_list_shows_each_persons_status(emulator: Emulator,
                                                    office: BotRunner) -> None:
    bot = office
    private, _, _ = staff_users(emulator)
    await seed(bot, emulator.user(3108, language_code="ru"), [BROTHER, MOTHER], "4821-0015")
    await seed(bot, emulator.user(3109, language_code="ru"), [BROTHER], "4821-0028")
    await private.send_text("/case 4821-0015")
    card = next(m for m in reversed(private.messages)
                if "👤 Person 2: status" in m.button_labels)
    await private.press("👤 Person 2: status", card)
    chooser = await private.wait_for("Choose the new status")
    await private.press("Located", chooser)
    await private.wait_for("missing person 2: New → Located")
    await private.send_text("/cases")
    lines = {line.split(" · ")[0]: line for line in private.last.plain.splitlines()}
    assert lines["4821-0015"].startswith("4821-0015 · 2 persons: New, Located · ")
    assert lines["4821-0028"].startswith("4821-0028 · New · ")  # one person: the case's
    assert "1 person" in lines["4821-0028"]


async def test_needs_info_sends_the_question_with_the_status(emulator: Emulator,
                                                            office: BotRunner) -> None:
    bot = office
    private, in_group, group = staff_users(emulator)
    await private.send_text("/staffhelp")
    relative = emulator.user(3102, language_code="ru")
    case_id = await seed(bot, relative, [BROTHER], "4821-0028")
    # Pressed in the group: the prompt comes privately (the question is case content).
    await in_group.send_text("/setstatus 4821-0028 needs_info")
    await in_group.wait_for("I sent it to you in a private chat.")
    prompt = await private.wait_for("What should the relative of case 4821-0028 be asked")
    question = "В каком уезде он жил? <b>не тег</b>"
    await private.send_text(question, reply_to=prompt.message_id)
    await private.wait_for("New → Needs information")
    notice = await relative.wait_for("4821-0028", timeout=UNDO + 8)
    assert notice_line("ru", "brother", "Нұрлан Асқар", "needs_info") in notice.plain
    assert question in notice.plain  # both in one message
    assert not any(question in m.plain for m in group.messages)
    await relative.send_text("Дөрбілжин ауданы", reply_to=notice.message_id)
    await private.wait_for("Дөрбілжин ауданы")
    persons = await CaseworkRepository(bot.d.db).person_statuses(case_id)
    assert persons == [(1, "needs_info")]


async def test_referred_is_refused_without_consent_to_share(emulator: Emulator,
                                                           office: BotRunner) -> None:
    bot = office
    private, _, _ = staff_users(emulator)
    relative = emulator.user(3103, language_code="ru")
    await seed(bot, relative, [BROTHER], "4821-0314", share="no")
    await private.send_text("/setstatus 4821-0314 referred")
    refusal = private.last.plain
    assert "cannot be referred" in refusal and "«No»" in refusal
    assert "«Share with international organisations»" in refusal
    case = await Workflow(bot.d.db).case("4821-0314")
    assert case is not None and case.status == "new"
    await private.send_text("/case 4821-0314")
    assert "⛔ Share with international organisations: No" in "\n".join(
        m.plain for m in private.messages[-3:])
    # Exports can be limited to the cases whose relatives agreed to sharing.
    await seed(bot, emulator.user(3104), [MOTHER], "4821-0028", share="yes", day=2)
    await private.send_text("/export share")
    sent = await private.wait_for(lambda m: m.kind == "document")
    assert [r[0] for r in xlsx_rows(emulator, sent)[1:]] == ["4821-0028"]


# ----------------------------------------------------------------------------- search


async def test_find_in_any_script_by_id_phone_and_number(emulator: Emulator,
                                                         office: BotRunner) -> None:
    bot = office
    private, _, _ = staff_users(emulator)
    await seed(bot, emulator.user(3111), [BROTHER], "4821-0111", phone="+77011234567")
    await seed(bot, emulator.user(3112), [{"relation": "father", "full_name": "王小明",
                                           "chinese_id": female_id(), "prefecture": "ili"}],
               "4821-0122", day=2)
    await bot.restart()  # the index is built from the sealed cases at start-up
    for query in ("Nurlan", "Нурлан", "нұрлан", "نۇرلان"):
        await private.send_text(f"/find {query}")
        found = private.last
        assert "4821-0111 · missing person 1 · New" in found.plain, query
        assert "4821-0122" not in found.plain
        assert found.button_labels == ["📂 4821-0111"]
    await private.send_text("/find Wang Xiaoming")
    assert "4821-0122" in private.last.plain
    await private.send_text(f"/find {female_id()[-6:]}")
    assert "4821-0122" in private.last.plain
    await private.send_text("/find 8 701 123 45 67")
    assert "4821-0111" in private.last.plain
    await private.send_text("/find 4821-0122")
    assert "4821-0122" in private.last.plain
    await private.send_text("/find 48211022")  # two digits swapped
    assert "a digit is wrong or two are swapped" in private.last.plain
    await private.send_text("/case 4812-0111")
    assert "a digit is wrong or two are swapped" in private.last.plain
    await private.send_text("/find Zzzyx Qwerty")
    assert private.last.plain == "Nothing found."
    await private.press("📂 4821-0111", (await private.send_text("/find Nurlan"), private.last)[1])
    await private.wait_for(lambda m: "Нұрлан Асқар" in m.plain and "Case 4821-0111" in m.plain)
    audit = await bot.d.db.fetchall("SELECT detail FROM audit_log WHERE action = 'find'")
    assert audit and all("Nurlan" not in r[0] for r in audit)  # what was searched: not kept

    # A relative who erases their data can no longer be found, at once.
    gone = emulator.user(3111)
    await gone.send_text("/delete")
    await gone.press_data("del:yes", gone.last.message_id)
    await private.send_text("/find Nurlan")
    assert private.last.plain == "Nothing found."


async def test_find_with_the_private_key_offline(emulator: Emulator, tmp_path: Path) -> None:
    from bot.services.crypto import generate_keypair

    keys = tmp_path / "keys"
    public, _ = generate_keypair(keys)
    bot = BotRunner(emulator, tmp_path / "data", staff_ids=frozenset({STAFF}),
                    public_key_file=public, staff_chat_id=GROUP)
    await bot.start()
    try:
        private = emulator.user(STAFF, language_code="en")
        await private.send_text("/find Nurlan")
        assert "kept offline" in private.last.plain
        assert "python -m bot duplicates --key FILE" in private.last.plain
        # The alert says duplicates could not be checked, and where to check them.
        in_group = private.in_chat(staff_group(emulator))
        number = await short_case(emulator.user(3170, language_code="ru"), "ru")
        alert = await in_group.wait_for(lambda m: number in m.plain)
        assert "Duplicates not checked: the private key is offline" in alert.plain
    finally:
        await bot.stop()


# ----------------------------------------------------------------------------- duplicates


async def test_duplicates_at_submission(emulator: Emulator, office: BotRunner) -> None:
    bot = office
    private, in_group, _ = staff_users(emulator)
    await private.send_text("/staffhelp")
    # Already stored: the same woman (same Chinese ID), reported by another relative.
    await seed(bot, emulator.user(3120), [{"relation": "sister", "full_name": "Алия Толеубаева",
                                           "chinese_id": female_id(), "prefecture": "ili"}],
               "4821-0201")
    await bot.restart()
    relative = emulator.user(3121, language_code="ru")
    number = await full_case(relative)
    alert = await in_group.wait_for(lambda m: number in m.plain and "New case" in m.plain)
    assert ("Missing person 1: possibly the same person as 4821-0201 (person 1) · the same "
            "Chinese ID") in alert.plain
    assert "Әлия" not in alert.plain and "Алия" not in alert.plain  # no names in the group
    await in_group.press("📂 Open", alert)
    card = await private.wait_for(lambda m: any(x.startswith("✔") for x in m.button_labels))
    await private.press("✔ Same as 4821-0201/1", card)
    await in_group.wait_for("") if False else None
    confirmed = await private.wait_for("confirmed: Missing person 1")
    assert "Arman (@arman)" in confirmed.plain
    keys = await CaseworkRepository(bot.d.db).person_keys()
    assert set(keys.values()) == {min(f"{number}/1", "4821-0201/1")}  # one key for both
    await private.send_text("/stats")
    stats = await private.wait_for("Missing persons:")
    assert "Missing persons: 3 (distinct persons: 2)" in stats.plain


# ----------------------------------------------------------------------------- conversation


async def test_a_relative_writes_to_the_volunteers(emulator: Emulator, office: BotRunner
                                                   ) -> None:
    bot = office
    private, in_group, group = staff_users(emulator)
    await private.send_text("/staffhelp")
    relative = emulator.user(3130, language_code="ru")
    case_id = await seed(bot, relative, [BROTHER], "4821-0309")
    await relative.send_text("/status")
    status = relative.last
    await relative.press("✉️ " + tr("ru", "Write to the volunteers"), status)
    await relative.wait_for("4821-0309")
    await relative.send_text("Брата видели в Кульдже в мае")
    thanks = relative.last
    assert tr("ru", "Thank you. Your message was passed on to the volunteers working on case "
                    "%(number)s.", number="4821-0309") == thanks.plain
    posted = await private.wait_for("Брата видели в Кульдже")
    assert "Message from the relative, case 4821-0309" in posted.plain
    assert "↩️ Reply" in posted.button_labels
    await in_group.wait_for("New message from the relative on case 4821-0309")
    assert not any("Кульдже" in m.plain for m in group.messages)
    events = await Workflow(bot.d.db).events(case_id)
    message = next(e for e in events if e.kind == "message")
    assert "Кульдже" not in (message.detail or "")  # sealed

    # A free message: offered for the case, passed on only when the relative says so.
    await relative.send_photo(caption="справка")
    offer = relative.last
    assert "4821-0309" in offer.plain
    await relative.press("✉️ " + tr("ru", "Yes, pass it on"), offer)
    copied = await private.wait_for(lambda m: m.kind == "photo")
    assert copied.plain == "справка"

    # With two cases the relative chooses which.
    await seed(bot, relative, [MOTHER], "4821-0314", day=2)
    await relative.send_text("ещё одно")
    choose = relative.last
    assert choose.plain == tr("ru", "Shall I pass this message on to the volunteers? Choose "
                                    "the case it is about.")
    assert {tr("ru", "Case %(number)s", number=n) for n in ("4821-0309", "4821-0314")} <= set(
        choose.button_labels)
    await relative.press("✖ " + tr("ru", "No"), choose)
    await relative.wait_for(tr("ru", "All right, the message was not passed on."))
    # Staff answer with the Reply button: the relative gets the question (and their next
    # message is the answer).
    await private.press("↩️ Reply", posted)
    prompt = await private.wait_for("Your answer to the relative of case 4821-0309")
    await private.send_text("Спасибо, уточните дату", reply_to=prompt.message_id)
    await relative.wait_for("Спасибо, уточните дату")

    # While a report is in progress, messages go to the report.
    await relative.send_text("/new")
    await relative.wait_for(lambda m: m.buttons != [])
    before = len(private.messages)
    await relative.send_text("Иван")
    assert len(private.messages) == before
    assert not any("Shall I pass" in m.plain for m in relative.messages[-2:])


# ----------------------------------------------------------------------------- people


async def test_staff_added_by_picker_or_forward_with_warnings(emulator: Emulator,
                                                              office: BotRunner) -> None:
    bot = office
    admin = emulator.user(ADMIN, language_code="en", first_name="Dana", username="dana")
    stranger = emulator.user(3140, first_name="Erzhan", username="erzhan")
    reporter = emulator.user(3141, first_name="Aigul")
    await seed(bot, reporter, [BROTHER], "4821-0405")
    await admin.send_text("/staff add")
    assert admin.reply_keyboard == [["👤 Choose the person"]]
    await admin.share_user(1, stranger)
    added = admin.last.plain
    assert "Erzhan (@erzhan) is now staff" in added and "never started the bot" in added
    assert admin.reply_keyboard is None
    await admin.send_text("/staff add")
    await admin.forward_from(reporter, "hello")
    added = admin.last.plain
    assert "Aigul is now staff" in added and "reported as a relative" in added
    await admin.send_text("/staff list")
    assert "Erzhan (@erzhan) · added by Dana (@dana)" in admin.last.plain
    # Staff are not relatives: broadcasts leave them out.
    await emulator.user(STAFF).send_text("/start")
    sizes = await BroadcastRepository(bot.d.db, {STAFF, ADMIN}).audience_sizes(
        Audience.parse("all"))
    assert sum(sizes.values()) == 0  # the reporter is now staff; the admin and staff too


async def test_stats_count_persons(emulator: Emulator, office: BotRunner) -> None:
    bot = office
    private, _, _ = staff_users(emulator)
    await seed(bot, emulator.user(3150), [BROTHER, MOTHER], "4821-0507")
    await bot.restart()
    await private.send_text("/stats")
    stats = await private.wait_for("Missing persons:")
    text = stats.plain
    assert "• New: 1" in text and "received, waiting" not in text  # staff labels
    assert "Missing persons: 2 (distinct persons: 2)" in text
    assert 'Camp ("re-education"): 1' in text and "2017: 1" in text and "2018: 1" in text
    await private.wait_for("Missing persons by the year it happened")  # the chart
    assert [m.kind for m in private.messages[-2:]] == ["photo", "photo"]


async def test_the_staff_group_reads_bot_staff_language(emulator: Emulator,
                                                        tmp_path: Path) -> None:
    bot = BotRunner(emulator, tmp_path / "data", staff_ids=frozenset({STAFF}),
                    staff_chat_id=GROUP, staff_language="kk", timezone="Asia/Almaty")
    await bot.start()
    try:
        private, in_group, _ = staff_users(emulator)  # who reads English privately
        await private.send_text("/staffhelp")
        assert "/find TEXT" in private.last.plain
        await in_group.send_text("/staffhelp")
        assert tr("kk", "/find TEXT: cases by a name in any script, a Chinese ID (or its last 6 "
                        "characters), a phone number or a case number") in in_group.last.plain
        relative = emulator.user(3160, language_code="ru")
        number = "4821-0608"  # a valid number (Damm)
        await seed(bot, relative, [BROTHER], number)
        await in_group.send_text(f"/setstatus {number} verified")
        said = in_group.last.plain
        assert tr("kk", "Case %(number)s · %(moves)s (by %(staff)s).", number=number,
                  moves=tr("kk", "missing person %(person)s: %(old)s → %(new)s", person=1,
                           old=tr("kk", "New"), new=tr("kk", "Verified")),
                  staff="Arman (@arman)") in said
        await private.send_text(f"/case {number}")
        card = "\n".join(m.plain for m in private.messages[-3:])
        assert "Submitted: Nov 1, 2026, 3:00" in card  # 10:00 UTC in Almaty, no seconds
    finally:
        await bot.stop()


async def test_staff_are_left_out_of_a_broadcast_through_the_dialog(emulator: Emulator,
                                                                   office: BotRunner) -> None:
    """Staff who also reported as relatives (by a setting, or added in the bot) get nothing;
    the families get the admin's broadcast."""
    from tests.e2e.test_broadcast import (
        TEXTS,
        _done,
        button_starting,
        compose_everyone,
        expected,
        wait_until,
    )

    bot = office
    staff = emulator.user(STAFF, language_code="ru")
    added = emulator.user(3160, language_code="kk", first_name="Saule")
    families = [emulator.user(3161, language_code="ru"), emulator.user(3162, language_code="kk")]
    await seed(bot, staff, [BROTHER], "4821-0015")
    await seed(bot, added, [MOTHER], "4821-0028")
    await seed(bot, families[0], [BROTHER], "4821-0314")
    await seed(bot, families[1], [MOTHER], "4821-0405")
    await bot.d.users.set_language(families[1].id, "kk")
    admin = emulator.user(ADMIN, language_code="en", first_name="Dana")
    await admin.send_text(f"/staff add {added.id}")
    await admin.wait_for("is now staff")
    await staff.send_text("/start")  # a staff member's /start: the staff welcome
    before = {u.id: len(u.messages) for u in (staff, added, *families)}

    await compose_everyone(admin)
    assert "Ready to send to 2 relatives" in admin.last.plain
    await admin.press(button_starting(admin, "✅ Send to 2"))
    for family, lang in zip(families, ("ru", "kk"), strict=True):
        got = await family.wait_for(TEXTS[lang][:20], timeout=15)
        assert got.plain == expected(lang)
    await wait_until(lambda: _done(bot, 1), timeout=15)
    for member in (staff, added):
        assert len(member.messages) == before[member.id], member.messages[before[member.id]:]
    rows = await bot.d.db.fetchall("SELECT user_id FROM broadcast_recipients")
    assert sorted(int(r[0]) for r in rows) == sorted(f.id for f in families)


async def test_staff_added_by_username_once_they_started_the_bot(emulator: Emulator,
                                                                 office: BotRunner) -> None:
    bot = office
    admin = emulator.user(ADMIN, language_code="en", first_name="Dana", username="dana")
    volunteer = emulator.user(3170, language_code="ru", first_name="Yerlan",
                              username="Yerlan_K")
    reporter = emulator.user(3171, language_code="ru", first_name="Aigul", username="aigul_r")
    await seed(bot, reporter, [BROTHER], "4821-0015")
    await reporter.send_text("/start")  # a relative who reported: never found by @username
    await admin.send_text("/staff add @yerlan_k")  # not started yet: unknown
    refusal = admin.last.plain
    assert refusal.startswith("I do not know @yerlan_k.")
    assert "choose the person with the button, or forward me a message" in refusal
    assert not await bot.d.db.fetchall("SELECT user_id FROM staff_members")

    await volunteer.send_text("/start")
    await volunteer.press("Русский")  # they have started the bot
    await admin.send_text("/staff add @yerlan_k")
    added = admin.last.plain
    assert "Yerlan (@Yerlan_K) is now staff" in added and "never started" not in added
    assert [tuple(r) for r in await bot.d.db.fetchall(
        "SELECT user_id FROM staff_members")] == [(volunteer.id,)]
    await admin.send_text("/staff add @aigul_r")
    assert admin.last.plain.startswith("I do not know @aigul_r.")
    await admin.send_text("/staff list")
    assert "Yerlan (@Yerlan_K) · added by Dana (@dana)" in admin.last.plain
    # No @username is stored, only a keyed hash, and none at all for the relative.
    rows = {int(r[0]): r[1] for r in await bot.d.db.fetchall(
        "SELECT user_id, username_tag FROM users")}
    assert rows[reporter.id] is None and len(rows[volunteer.id]) == 16
    assert b"yerlan" not in rows[volunteer.id].lower()
    # /mydata says so, to whoever it is kept for (not to the relative, for whom it is not).
    from bot.handlers.privacy import USERNAME_KEPT
    await volunteer.send_text("/mydata")
    assert tr("ru", USERNAME_KEPT) in volunteer.last.plain and tr("ru", USERNAME_KEPT) != \
        USERNAME_KEPT
    await reporter.send_text("/mydata")
    assert not any(tr("ru", USERNAME_KEPT) in m.plain for m in reporter.messages)
    await admin.send_text("/staff remove @Yerlan_K")
    assert "Yerlan (@Yerlan_K) is no longer staff" in admin.last.plain

    # A name given up since (changed in Telegram, not yet seen by the bot) finds nobody: the
    # bot checks with Telegram that the @username is still that person's.
    renamed = emulator.user(3172, language_code="ru", first_name="Marat", username="marat_t")
    await renamed.send_text("/start")
    await renamed.press("Русский")
    assert renamed.chat.user is not None
    renamed.chat.user["username"] = "marat_new"
    await admin.send_text("/staff add @marat_t")
    assert admin.last.plain.startswith("I do not know @marat_t.")

    # In Russian, the refusal is translated.
    await admin.send_text("/language")
    await admin.press("Русский")
    await admin.send_text("/staff add @nobody_here")
    assert admin.last.plain.startswith("Я не знаю @nobody_here.")
    assert admin.last.plain == tr("ru", "I do not know %(username)s. The bot finds a person by "
                                  "@username only once they have started it, and never among "
                                  "relatives who reported. Send /staff add and choose the "
                                  "person with the button, or forward me a message they "
                                  "wrote.", username="@nobody_here")
