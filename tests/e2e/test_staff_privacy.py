"""Case content reaches only named staff, in their private chats, and is taken back.

The staff group is shared with people who are not staff (and with staff removed later): it gets
non-identifying notices only. Cards, relatives' answers, files and exports go to private chats,
to staff who hold the role at the moment of delivery, and are deleted after BOT_CARD_TTL_HOURS
or at once when the relative erases their data; an erased case stays erased after a restart on
an older copy of the database.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import time
from pathlib import Path

from bot.handlers.staff import alerts
from bot.i18n import translator
from bot.sandbox.emulator import Emulator
from bot.sandbox.simusers import SimChat, SimUser
from bot.sandbox.world import SentMessage
from bot.services.erasures import erased_numbers
from bot.storage.staff import Workflow
from tests.e2e.conftest import BotRunner, tr
from tests.journeys import BROTHER, button, current, do, fill, opt, press, start, submit

ADMIN, STAFF, OTHER_STAFF = 7001, 7002, 7003
GROUP = -100777
OUTSIDER_IN_GROUP = 7020  # a member of the staff group who is not staff
REMOVED = 7005

MARKERS = {
    "reporter": "Reporter MRKa1",
    "city": "City MRKb2",
    "name": "Name MRKc3",
    "story": "Story MRKd4",
    "answer": "Answer MRKe5",
    "caption": "Caption MRKf6",
}


def staff_group(emulator: Emulator) -> SimChat:
    group = emulator.group(GROUP, title="Volunteers")
    group.state.known = True  # the bot was added to the staff group
    return group


def workflow(bot: BotRunner) -> Workflow:
    return Workflow(bot.d.db, bot.d.keys.seal, bot.d.keys.unseal)


async def open_card(user: SimUser, chat: SimUser, press_: tuple[str, SentMessage] | str
                    ) -> list[SentMessage]:
    """Open a case card (a button or /case, in `user`'s chat); its messages arrive in `chat`,
    the staff member's private chat."""
    before = len(chat.messages)
    if isinstance(press_, str):
        await user.send_text(press_)
    else:
        await user.press(*press_)
    last = await chat.wait_for(lambda m: any(x.startswith("🔄") for x in m.button_labels)
                               and m in chat.messages[before:])
    return chat.messages[before:chat.messages.index(last) + 1]


async def begin(user: SimUser, lang: str) -> None:
    """/start, the language, the consent; stops at the reporter's name."""
    await start(user, lang)
    await fill(user, {"consent_share": opt("yes"), "consent_publish": opt("anonymous")},
               until="reporter_name")


async def short_case(user: SimUser, lang: str, name: str = "Ерлан Серікұлы") -> str:
    await begin(user, lang)
    await fill(user, {"reporter_country": opt("kz"), **BROTHER, "full_name": name})
    return await submit(user)


async def marked_case(user: SimUser) -> str:
    """A case whose every free answer carries a marker string."""
    await begin(user, "en")
    await fill(user, {"reporter_name": MARKERS["reporter"], "reporter_country": opt("kz"),
                      "reporter_more": opt("yes"), "reporter_city": MARKERS["city"], **BROTHER,
                      "more_details": opt("yes"), "full_name": MARKERS["name"],
                      "story": MARKERS["story"]})
    return await submit(user)


async def press_form(user: SimUser, action: str) -> None:
    """Press a form button (finish, submit) on the screen the relative sees."""
    screen = current(user)
    assert screen.message is not None, screen
    await user.press(button(screen.message, action), screen.message)


def shown(messages: list[SentMessage]) -> str:
    """Everything the messages showed, edits included."""
    parts = []
    for m in messages:
        parts.append(m.plain)
        parts += [str(e.get("plain") or "") for e in m.edits]
    return "\n".join(parts)


async def recorded(bot: BotRunner) -> int:
    row = await bot.d.db.fetchone("SELECT count(*) FROM staff_messages")
    return int(row[0]) if row else -1


def privacy_bot(emulator: Emulator, tmp_path: Path, **settings: object) -> BotRunner:
    return BotRunner(emulator, tmp_path / "data", admin_ids=frozenset({ADMIN}),
                     staff_ids=frozenset({STAFF, OTHER_STAFF}), staff_chat_id=GROUP, **settings)


async def test_the_staff_group_sees_no_case_content(emulator: Emulator, tmp_path: Path) -> None:
    """H1: a group member who is not staff records every group message across a whole staff
    flow and finds nothing the relative typed or sent."""
    bot = privacy_bot(emulator, tmp_path)
    await bot.start()
    try:
        group: SimChat = staff_group(emulator)
        outsider = emulator.user(OUTSIDER_IN_GROUP).in_chat(group)  # only reads the group
        private = emulator.user(STAFF)
        await private.send_text("/staffhelp")
        staff = emulator.user(STAFF).in_chat(group)
        admin = emulator.user(ADMIN).in_chat(group)
        await emulator.user(ADMIN).send_text("/staffhelp")

        relative = emulator.user(3101, language_code="en")
        number = await marked_case(relative)
        ann = await staff.wait_for(lambda m: number in m.plain and "New case" in m.plain)

        # Open in the group: the card goes to the presser's private chat; the group sees no card.
        card = await open_card(staff, private, ("📂 Open", ann))
        assert MARKERS["name"] in shown(card) and MARKERS["story"] in shown(card)
        answer = await staff.press("📂 Open", ann)
        assert answer is not None and answer.text == "I sent it to you in a private chat."
        await staff.press("✋ Take", ann)
        await staff.wait_for(f"took case {number}")
        for status in ("needs_info", "verified"):
            await staff.send_text(f"/setstatus {number} {status}")
        await staff.send_text(f"/note {number} call the consulate")
        await staff.send_text(f"/case {number}")
        await staff.wait_for("I sent it to you in a private chat.")
        await staff.send_text("/cases")
        await staff.send_text("/cases new")

        # /ask from the group; the answers (text, photo, voice) go to the assignee's private chat.
        await staff.send_text(f"/ask {number} Where did he work?")
        asked = await relative.wait_for("Where did he work?")
        await relative.send_text(MARKERS["answer"], reply_to=asked.message_id)
        await private.wait_for(MARKERS["answer"])
        photo = await relative.send_photo(caption=MARKERS["caption"])
        await private.wait_for(lambda m: m.kind == "photo" and m.file_id == photo.file_id)
        voice = await relative.send_voice(duration=5)
        await private.wait_for(lambda m: m.kind == "voice" and m.file_id == voice.file_id)
        await staff.wait_for(f"New answer on case {number}")

        await staff.send_text("/export")
        await private.wait_for(lambda m: m.kind == "document")
        await admin.send_text("/stats")
        await emulator.wait_idle(quiet=0.3)

        seen = outsider.messages
        assert len(seen) >= 10 and seen == group.messages
        text = shown(seen)
        for marker in MARKERS.values():
            assert marker not in text, marker
        relative_files = {m.file_id for m in relative.all_messages if not m.from_bot}
        assert not [m for m in seen if m.file_id and m.file_id in relative_files]
        # Text only, but for the /stats chart (counts per week).
        assert [m.plain for m in seen if m.kind != "text"] == [
            "New cases per week, last 12 weeks"]
        # ... while the named staff member has it all, privately.
        mine = shown(private.messages)
        for marker in MARKERS.values():
            assert marker in mine, marker
    finally:
        await bot.stop()


async def test_removed_staff_get_nothing_more(emulator: Emulator, tmp_path: Path) -> None:
    """M2: /staff remove unassigns their open cases (audited), and answers then go to the
    remaining staff, never to the removed member."""
    bot = privacy_bot(emulator, tmp_path)
    await bot.start()
    try:
        staff_group(emulator)
        admin, removed, staff = emulator.user(ADMIN), emulator.user(REMOVED), emulator.user(STAFF)
        await staff.send_text("/staffhelp")
        await admin.send_text(f"/staff add {REMOVED}")
        await removed.send_text("/staffhelp")
        relative = emulator.user(3102, language_code="en")
        number = await short_case(relative, "en")
        await removed.send_text(f"/assign {number} me")
        case = await workflow(bot).case(number)
        assert case is not None and case.assignee_id == REMOVED

        await admin.send_text(f"/staff remove {REMOVED}")
        told = admin.last.plain
        assert "no longer staff" in told and number in told and "assigned to nobody" in told
        assert "Remove them from the staff group" in told
        case = await workflow(bot).case(number)
        assert case is not None and case.assignee_id is None
        audit = await bot.d.db.fetchall(
            "SELECT actor_id, detail FROM audit_log WHERE action = 'assign'")
        assert json.loads(audit[-1][1]) == {"case": number, "from": REMOVED, "to": None,
                                            "why": "staff_remove"}
        assert audit[-1][0] == ADMIN

        seen = len(removed.messages)
        await staff.send_text(f"/ask {number} Any news?")
        asked = await relative.wait_for("Any news?")
        await relative.send_text("secret answer MRKg7", reply_to=asked.message_id)
        await staff.wait_for("secret answer MRKg7")
        await emulator.wait_idle(quiet=0.3)
        assert not any("MRKg7" in m.plain for m in removed.messages[seen:])
        assert len(removed.messages) == seen
    finally:
        await bot.stop()


async def test_what_staff_were_sent_is_taken_back(emulator: Emulator, tmp_path: Path) -> None:
    """M3/M4: cards, answers and exports are deleted after BOT_CARD_TTL_HOURS; a relative's
    /delete deletes at once what staff still hold about their cases, and their case numbers are
    kept (only them) outside the database, so an older copy of it is erased again at start."""
    bot = privacy_bot(emulator, tmp_path, card_ttl_hours=0.0015)  # 5.4 s
    await bot.start()
    try:
        group = staff_group(emulator)
        private = emulator.user(STAFF)
        await private.send_text("/staffhelp")
        relative = emulator.user(3103, language_code="en")
        number = await marked_case(relative)
        await emulator.user(STAFF).in_chat(group).wait_for(
            lambda m: number in m.plain and "New case" in m.plain)

        # After the lifetime, the card is gone from the private chat; the alert stays.
        card = await open_card(private, private, f"/case {number}")
        assert await recorded(bot) == len(card)
        deadline = time.monotonic() + 30
        while not all(m.deleted for m in card):
            assert time.monotonic() < deadline, "the card was not deleted"
            await asyncio.sleep(0.2)
        assert await recorded(bot) == 0

        # Telegram refuses to delete a message older than 48 hours: it stays, and is forgotten.
        card = await open_card(private, private, f"/case {number}")
        emulator.advance_clock(49 * 3600)
        deadline = time.monotonic() + 30
        while await recorded(bot):
            assert time.monotonic() < deadline, "the old card was never given up"
            await asyncio.sleep(0.2)
        assert not any(m.deleted for m in card)
    finally:
        await bot.stop()

    # A long lifetime now: only /delete takes things back.
    bot = privacy_bot(emulator, tmp_path)
    await bot.start()
    try:
        group = staff_group(emulator)
        staff = emulator.user(STAFF).in_chat(group)
        card = await open_card(private, private, f"/case {number}")
        await staff.send_text(f"/assign {number} me")
        await private.send_text(f"/ask {number} Which city?")
        asked = await relative.wait_for("Which city?")
        await relative.send_text(MARKERS["answer"], reply_to=asked.message_id)
        posted = await private.wait_for(MARKERS["answer"])
        await private.send_text("/export")
        export = await private.wait_for(lambda m: m.kind == "document")
        other = emulator.user(3104, language_code="en")
        other_number = await short_case(other, "en", name="Other person")
        other_card = await open_card(private, private, f"/case {other_number}")
        taken = [*card, posted, export]
        assert not any(m.deleted for m in taken)

        backup = tmp_path / "older.sqlite3"
        await bot.d.db.checkpoint()
        shutil.copy(bot.settings().db_path, backup)  # a copy made before the erasure

        await relative.send_text("/delete")
        assert "Not everything can be erased at once" in relative.last.plain  # said before
        await relative.press("Yes, delete everything")
        done = await relative.wait_for("Deleted from our database")
        assert "Not deleted" in done.plain and "7 days" in done.plain
        await emulator.wait_idle(quiet=0.3)
        assert all(m.deleted for m in taken)
        assert not any(m.deleted for m in other_card)  # another relative's case stays
        assert erased_numbers(bot.settings().data_dir) == [number]
        listed = (bot.settings().data_dir / "erased-cases.txt").read_text()
        assert listed == f"{number}\n"
    finally:
        await bot.stop()

    # The older copy is put back (as a restore would): the case is erased again at start.
    db_path = bot.settings().db_path
    for side in (db_path, db_path.with_name(db_path.name + "-wal"),
                 db_path.with_name(db_path.name + "-shm")):
        side.unlink(missing_ok=True)
    shutil.copy(backup, db_path)
    bot = privacy_bot(emulator, tmp_path)
    await bot.start()
    try:
        case = await workflow(bot).case(number)
        assert case is not None and case.status == "withdrawn" and case.user_id is None
        row = await bot.d.db.fetchone("SELECT length(data) FROM cases WHERE number = ?",
                                      (number,))
        assert row is not None and row[0] == 0
        assert await bot.d.users.get(relative.id) is None
        details = await bot.d.db.fetchall(
            "SELECT detail FROM case_events WHERE case_id = ? AND detail IS NOT NULL",
            (case.case_id,))
        assert details == []
        kept = await workflow(bot).case(other_number)
        assert kept is not None and kept.status != "withdrawn"
    finally:
        await bot.stop()


# ----------------------------------------------------------------------------- floods (M5)

DAILY_LIMIT = ("You have already sent %(limit)s report in the last 24 hours, the most we can "
               "take from one person in a day. This report is saved: press the same button "
               "again tomorrow to send it. If it is urgent, write to the organisation directly.",
               "You have already sent %(limit)s reports in the last 24 hours, the most we can "
               "take from one person in a day. This report is saved: press the same button "
               "again tomorrow to send it. If it is urgent, write to the organisation directly.")


async def test_floods_are_held_back(emulator: Emulator, tmp_path: Path) -> None:
    """M5: past BOT_MAX_CASES_PER_DAY a relative is told (in their language) and the report
    waits as a draft; past BOT_ALERTS_PER_HOUR the staff chat gets a digest instead of alerts;
    /cases new lists new cases, the oldest first."""
    bot = privacy_bot(emulator, tmp_path, max_cases_per_day=1, alerts_per_hour=1)
    await bot.start()
    try:
        group = staff_group(emulator)
        staff = emulator.user(STAFF).in_chat(group)
        first = await short_case(emulator.user(3201, language_code="en"), "en")
        await staff.wait_for(lambda m: first in m.plain and "New case" in m.plain)
        second = await short_case(emulator.user(3202, language_code="ru"), "ru")
        await emulator.wait_idle(quiet=0.3)
        assert not any(second in m.plain for m in group.messages)  # held for the digest
        assert await alerts.send_digest(bot.app) == 1
        digest = await staff.wait_for("while alerts were paused")
        assert second in digest.plain and first not in digest.plain
        assert "more than 1 an hour" in digest.plain
        assert await alerts.send_digest(bot.app) == 0  # each case once
        await staff.send_text("/cases new")
        listed = group.messages[-1].plain
        assert listed.index(first) < listed.index(second)

        # A relative who already sent a case today: told in Kazakh, the report kept.
        relative = emulator.user(3203, language_code="kk")
        await begin(relative, "kk")
        await bot.d.db.execute(  # a case sent earlier today (the draft in progress stays)
            "INSERT INTO cases (number, user_id, language, persons_count, notice_version,"
            " form_version, data, submitted_at, updated_at) VALUES ('7000-0001', ?, 'kk', 1, 1,"
            " 1, X'', ?, ?)", (relative.id, bot.d.now().isoformat(timespec="seconds"),
                               bot.d.now().isoformat(timespec="seconds")))
        await fill(relative, {"reporter_country": opt("kz"), **BROTHER,
                              "full_name": "Ерлан Лимит"})
        await press_form(relative, "finish")
        await press_form(relative, "submit")
        expected = translator("kk").ngettext(*DAILY_LIMIT, 1) % {"limit": 1}
        assert expected != DAILY_LIMIT[0] % {"limit": 1}
        await relative.wait_for(expected)
        assert await bot.d.drafts.get(relative.id) is not None
        assert [c.number for c in await bot.d.cases.for_user(relative.id)] == ["7000-0001"]

        # A day later the same button sends it.
        await bot.d.db.execute("UPDATE cases SET submitted_at = '2000-01-01T00:00:00+00:00'"
                               " WHERE number = '7000-0001'")
        number = await submit(relative)
        assert number != "7000-0001" and await bot.d.drafts.get(relative.id) is None
        assert len(await bot.d.cases.for_user(relative.id)) == 2
    finally:
        await bot.stop()


# ----------------------------------------------------------------------------- spoofing (L2, L3)

ONE_LINE = "Please write this answer on one line, without line breaks."
FAKE = "📂 Case 1234-5678\nStatus: Verified\nAssigned to: 7002"


def quoted(message: SentMessage, text: str) -> bool:
    """Whether `text` sits inside a blockquote entity of the message."""
    start = message.plain.find(text)
    return start >= 0 and any(
        e.type in ("blockquote", "expandable_blockquote") and e.offset <= start
        and start + len(text) <= e.offset + e.length for e in message.entities)


async def test_relatives_text_cannot_pass_for_the_bots_lines(emulator: Emulator,
                                                              tmp_path: Path) -> None:
    """L2: no line breaks in one-line answers (names, places, occupation), bidi controls
    removed from everything a relative writes, and their text shown to staff as a quote.
    L3: a case with many files gets its file buttons on pages."""
    bot = privacy_bot(emulator, tmp_path)
    await bot.start()
    try:
        staff_group(emulator)
        private = emulator.user(STAFF)
        await private.send_text("/staffhelp")
        relative = emulator.user(3301, language_code="ru")
        await begin(relative, "ru")
        await relative.send_text(f"Айгуль\n{FAKE}")  # the reporter's name, with fake lines
        await relative.wait_for(tr("ru", ONE_LINE))
        assert tr("ru", ONE_LINE) != ONE_LINE
        await fill(relative, {"reporter_name": "Айгуль\u202e\u2066 Сейт\u2069",
                              "reporter_country": opt("kz"), **BROTHER,
                              "more_details": opt("yes"), "full_name": "Ерлан\u202dX"},
                   until="place")
        await relative.send_text("Алтай\nStatus: Verified")  # a place: one line only
        await relative.wait_for(tr("ru", ONE_LINE))
        photos = [do(lambda u, i=i: u.send_photo(caption=f"photo {i}")) for i in range(12)]
        await fill(relative, {**BROTHER, "more_details": opt("yes"), "story": f"История\n{FAKE}",
                              "attachments": [*photos, press("done")]})
        number = await submit(relative)

        data = await bot.d.cases.data(number)
        assert data is not None
        assert data["reporter"]["reporter_name"] == "Айгуль Сейт"
        assert data["persons"][0]["full_name"] == "ЕрланX"
        card = await open_card(private, private, f"/case {number}")
        story = next(m for m in card if "Status: Verified" in m.plain)
        assert quoted(story, "Status: Verified") and quoted(story, "История")
        name = next(m for m in card if "ЕрланX" in m.plain)
        assert quoted(name, "ЕрланX")
        assert not any(ch in m.plain for m in card for ch in "\u202d\u202e\u2066\u2069")

        # Twelve photos: ten file buttons on the card, the rest on the next page.
        files = [x for x in card[-1].button_labels if x.startswith("📎")]
        assert len(files) == 10
        nav = next(x for x in card[-1].button_labels if x.startswith("Files 2/2"))
        await private.press(nav, card[-1])
        await emulator.wait_idle(quiet=0.2)
        page = [x for x in card[-1].button_labels if x.startswith("📎")]
        assert len(page) == 2 and not set(page) & set(files)
        assert any(x.startswith("◀️ Files 1/2") for x in card[-1].button_labels)

        # An answer to /ask: bidi controls removed, shown as a quote.
        await private.send_text(f"/ask {number} Где он работал?")
        asked = await relative.wait_for("Где он работал?")
        await relative.send_text(f"\u202eНа шахте\n{FAKE}", reply_to=asked.message_id)
        posted = await private.wait_for("На шахте")
        assert quoted(posted, "На шахте") and quoted(posted, "Status: Verified")
        assert "\u202e" not in posted.plain
    finally:
        await bot.stop()


async def test_new_case_alerts_are_never_dropped(emulator: Emulator, tmp_path: Path) -> None:
    """H1: alerts go through the outbox; when Telegram refuses the staff chat (the bot is not
    in it), each staff member gets the alert privately instead."""
    bot = privacy_bot(emulator, tmp_path)
    await bot.start()
    try:
        private = emulator.user(STAFF)
        await private.send_text("/staffhelp")
        relative = emulator.user(3401, language_code="en")
        number = await short_case(relative, "en")  # the group is unknown to Telegram: 400
        alert = await private.wait_for(lambda m: number in m.plain and "New case" in m.plain)
        assert "Ерлан" not in alert.plain and [b for b in alert.button_labels] == [
            "📂 Open", "✋ Take"]
        rows = await bot.d.db.fetchall("SELECT chat_id, state FROM outbox WHERE kind ="
                                       " 'case_alert' ORDER BY outbox_id")
        assert tuple(rows[0]) == (GROUP, "failed")

        # Once the bot is in the group, alerts go there (and only there).
        group = staff_group(emulator)
        seen = len(private.messages)
        second = await short_case(emulator.user(3402, language_code="en"), "en")
        await emulator.user(STAFF).in_chat(group).wait_for(
            lambda m: second in m.plain and "New case" in m.plain)
        assert not any(second in m.plain for m in private.messages[seen:])
    finally:
        emulator.set_faults(0)
        await bot.stop()
