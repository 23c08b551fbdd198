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

from bot.sandbox.emulator import Emulator
from bot.sandbox.simusers import SimChat, SimUser
from bot.sandbox.world import SentMessage
from bot.services.erasures import erased_numbers
from tests.e2e.conftest import BotRunner
from tests.e2e.test_staff import (
    ADMIN,
    GROUP,
    OTHER_STAFF,
    STAFF,
    begin,
    open_card,
    persons_rest,
    short_case,
    staff_group,
    step,
    submitted,
    workflow,
)

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


async def marked_case(user: SimUser) -> str:
    """A case whose every free answer carries a marker string."""
    await begin(user, "en")
    await step(user, text=MARKERS["reporter"])
    await step(user, "opt", "kz")
    await step(user, text=MARKERS["city"])
    for _ in range(2):  # citizenship, phone
        await step(user, "skip")
    await step(user, "opt", "brother")
    await step(user, text=MARKERS["name"])
    await persons_rest(user, story=lambda: user.send_text(MARKERS["story"]))
    await step(user, "finish")
    return await submitted(user)


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
