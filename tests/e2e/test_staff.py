"""Staff follow a case up through the emulator: announcement, take, status, question, answer.

And nobody else can: every staff and admin command from a non-staff user gets exactly the
unknown-command answer, and forged or replayed staff buttons change nothing.
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import openpyxl  # type: ignore[import-untyped]
import pytest

from bot.casework.status import PERSON_NOTICE_LABELS, WHOM
from bot.form.model import load_form
from bot.handlers.access import gate_of, parse_button
from bot.handlers.relative import STATUS_LABELS
from bot.handlers.staff import COMMANDS
from bot.sandbox.emulator import Emulator
from bot.sandbox.simusers import SimChat, SimUser
from bot.sandbox.world import SentMessage
from bot.services.case_numbers import parse_case_number
from bot.services.crypto import generate_keypair
from bot.storage.cases import NewCase
from bot.storage.staff import Workflow
from tests.e2e.conftest import BotRunner, click, tr
from tests.journeys import BROTHER, LONG_STORY, REPORTER, SISTER, do, female_id, fill, opt, start

FORM = load_form()
ADMIN, STAFF, OTHER_STAFF, OUTSIDER = 7001, 7002, 7003, 7009
GROUP = -100777


@pytest.fixture
async def staff_bot(emulator: Emulator, tmp_path: Path) -> AsyncIterator[BotRunner]:
    runner = BotRunner(emulator, tmp_path / "data", admin_ids=frozenset({ADMIN}),
                       staff_ids=frozenset({STAFF, OTHER_STAFF}), staff_chat_id=GROUP)
    await runner.start()
    try:
        yield runner
    finally:
        await runner.stop()


def staff_group(emulator: Emulator) -> SimChat:
    group = emulator.group(GROUP, title="Volunteers")
    group.state.known = True  # the bot was added to the staff group
    return group


def _seq(message: SentMessage) -> int:
    """The draft step a question's buttons belong to (-1 when it has none)."""
    seqs = [int(d.split(":")[1]) for row in message.buttons for _, d in row
            if d and d.startswith("f:")]
    return max(seqs, default=-1)


async def step(user: SimUser, action: str | None = None, arg: str | None = None, *,
               text: str | None = None, send: Callable[[], Awaitable[Any]] | None = None
               ) -> None:
    """Answer the question on screen, then wait for the next one: a busy machine can be slower
    than the emulator's settle time, and the next press must not land on the old question."""
    shown = max(_seq(m) for m in user.messages)
    if send is not None:
        await send()
    elif text is not None:
        await user.send_text(text)
    else:
        assert action is not None
        await click(user, action, arg)
    if action not in ("tog", "submit"):
        await user.wait_for(lambda m: _seq(m) > shown)


async def submitted(user: SimUser) -> str:
    await step(user, "submit")
    thanks = await user.wait_for(lambda m: any(parse_case_number(w) for w in m.plain.split()))
    return next(w for w in thanks.plain.split() if parse_case_number(w))


async def begin(user: SimUser, lang: str) -> None:
    await start(user, lang)
    await user.wait_for(lambda m: _seq(m) >= 0)
    await fill(user, {"consent_share": opt("yes"), "consent_publish": opt("anonymous")},
               until="reporter_name")


async def full_case(user: SimUser) -> str:
    """Two missing persons, names in three scripts, a 4,000-character story, a photo and a
    document (like the relative's journey test, without its detours)."""
    await begin(user, "ru")
    await fill(user, {**REPORTER, **SISTER})
    await step(user, "add")
    await fill(user, {**BROTHER, "more_details": opt("yes"),
                      "story": do(lambda u: u.send_voice(duration=75))})
    await step(user, "finish")
    return await submitted(user)


async def short_case(user: SimUser, lang: str, name: str = "Ерлан Серікұлы") -> str:
    """The shortest report: one person, every optional question skipped."""
    await begin(user, lang)
    await fill(user, {"reporter_country": opt("kz"), "relation": opt("brother"),
                      **BROTHER, "full_name": name})
    await step(user, "finish")
    return await submitted(user)


async def snapshot(bot: BotRunner) -> dict[str, list[tuple[Any, ...]]]:
    """Every table staff and admin actions could change (users' last-seen and the outbox of
    messages being sent change with any reply, so they are left out)."""
    tables = [r[0] for r in await bot.d.db.fetchall(
        "SELECT name FROM sqlite_master WHERE type = 'table'"
        " AND name NOT IN ('users', 'outbox', 'schema_migrations')")]
    assert {"cases", "case_events", "audit_log", "staff_members", "case_questions"} <= set(tables)
    return {t: [tuple(r) for r in await bot.d.db.fetchall(f"SELECT * FROM {t}")]
            for t in tables}


def xlsx_rows(emulator: Emulator, message: SentMessage) -> list[list[Any]]:
    """The rows of the first sheet of an XLSX the bot sent (None cells as "")."""
    stored = emulator.world.files.get(message.file_id or "")
    assert stored is not None
    book = openpyxl.load_workbook(io.BytesIO(stored.data), read_only=True)
    return [["" if v is None else v for v in row] for row in book.worksheets[0].values]


def workflow(bot: BotRunner) -> Workflow:
    return Workflow(bot.d.db, bot.d.keys.seal, bot.d.keys.unseal)


async def open_card(user: SimUser, chat: SimUser, press: tuple[str, SentMessage] | str
                    ) -> list[SentMessage]:
    """Open a case card (by a button or a /case command, in `user`'s chat) and return its
    messages, which arrive in `chat`: the staff member's private chat, wherever they asked."""
    before = len(chat.messages)
    if isinstance(press, str):
        await user.send_text(press)
    else:
        await user.press(*press)
    # The card's last message ends with the Refresh button (an "open" button), in any language.
    last = await chat.wait_for(lambda m: any(x.startswith("🔄") for x in m.button_labels)
                               and m in chat.messages[before:])
    return chat.messages[before:chat.messages.index(last) + 1]


# ----------------------------------------------------------------------------- the follow-up


async def test_staff_follow_a_case_up(emulator: Emulator, staff_bot: BotRunner) -> None:
    bot = staff_bot
    group = staff_group(emulator)
    staff = emulator.user(STAFF, language_code="en", first_name="Arman",
                          username="arman").in_chat(group)
    private = emulator.user(STAFF)
    await private.send_text("/staffhelp")  # opens the private chat (cards, answers, exports)

    # A relative reports two people in Russian; the staff group is told, without names.
    relative = emulator.user(3001, language_code="ru")
    number = await full_case(relative)
    ann = await staff.wait_for(lambda m: number in m.plain and "New case" in m.plain)
    assert "2 missing persons" in ann.plain and "Ili (Ghulja)" in ann.plain
    assert "2 attachments" in ann.plain and "Русский" in ann.plain
    for name in ("Әлия", "王小明", "ئابدۇللا", "Гүлжан"):
        assert name not in ann.plain
    case = await workflow(bot).case(number)
    assert case is not None and case.status == "new"

    # Take: the case is the staff member's, in review, and the relative is told in Russian.
    await staff.press("✋ Take", ann)
    notice = await relative.wait_for(tr("ru", STATUS_LABELS["in_review"]))
    assert number in notice.plain
    case = await workflow(bot).case(number)
    assert case is not None and (case.assignee_id, case.status) == (STAFF, "in_review")

    # The card (in the private chat only): every answer exactly as written, labels in English,
    # files, no message too long.
    card = await open_card(staff, private, ("📂 Open", ann))
    assert len(card) >= 2 and all(len(m.plain) <= 4096 for m in card)
    text = "\n".join(m.plain for m in card)
    for exact in ("Әлия Нұрланқызы Төлеубаева", "王小明", "ئابدۇللا 🙏",
                  "Гүлжан <b>Тохтасын</b> & Co", "Лагерь №3 <script>", female_id(),
                  LONG_STORY.strip(), "+7 701 123 45 67", "passport.pdf"):
        assert exact in text, exact
    for label in (FORM.question("person", "full_name").short, "Yes, I agree",
                  FORM.question("consent", "consent_publish").short, "Yes, without names",
                  'Camp ("re-education")', "Ili (Ghulja)"):
        assert tr("en", label) in text, label
    assert "In review" in text and "Arman (@arman)" in text  # by name, not number
    assert str(STAFF) not in text

    # A file is sent again by its file_id.
    document = next(m for m in relative.all_messages if m.kind == "document" and not m.from_bot)
    labels = card[-1].button_labels
    await private.press(next(x for x in labels if "document" in x), card[-1])
    resent = await private.wait_for(lambda m: m.kind == "document")
    assert resent.file_id == document.file_id

    # A status button: recorded with who and when, the relative told in Russian.
    await private.press("Verified", card[-1])
    notice = await relative.wait_for(tr("ru", PERSON_NOTICE_LABELS["verified"]))
    assert tr("ru", PERSON_NOTICE_LABELS["verified"]) != PERSON_NOTICE_LABELS["verified"]
    case = await workflow(bot).case(number)
    assert case is not None and case.status == "verified"
    events = await workflow(bot).events(case.case_id)
    assert [(e.kind, e.actor_id, e.detail) for e in events if e.kind == "status"] == [
        ("status", STAFF, "new>in_review"), ("status", STAFF, "in_review>verified")]

    # A question to the relative, who answers with a reply and then a photo.
    question = "Когда вы последний раз говорили с ней?\nИ где? <i>не тег</i> & «кавычки»"
    await staff.send_text(f"/ask {number} {question}")
    asked = await relative.wait_for("Когда вы последний раз")
    assert number in asked.plain and question in asked.plain
    answer = "В марте 2018, по телефону & WeChat <b>"
    await relative.send_text(answer, reply_to=asked.message_id)
    assert number in relative.last.plain
    posted = await private.wait_for(lambda m: answer in m.plain)  # to the assignee
    assert number in posted.plain
    await staff.wait_for(f"New answer on case {number}")
    photo = await relative.send_photo(caption="паспорт")
    copied = await private.wait_for(lambda m: m.kind == "photo")
    assert copied.file_id == photo.file_id and copied.plain == "паспорт"
    assert number in relative.last.plain

    # An internal note; the relative never sees it.
    await staff.send_text(f"/note {number} Позвонить в консульство\nв понедельник")
    assert "Note added" in staff.last.plain
    assert not any("консульство" in m.plain for m in relative.messages)

    # Stored sealed, and the whole exchange is in the history.
    events = await workflow(bot).events(case.case_id)
    personal = [e for e in events if e.kind in ("question", "answer", "note")]
    assert [e.kind for e in personal] == ["question", "answer", "answer", "note"]
    for e in personal:
        assert e.detail is not None and base64.b64decode(e.detail).startswith(b"S1")
        assert "консульство" not in e.detail and "марте" not in e.detail
    assert workflow(bot).reveal(personal[1]) == {"question": 1, "kind": "text", "text": answer}
    card = await open_card(staff, private, f"/case {number}")
    await staff.wait_for("I sent it to you in a private chat.")
    history = "\n".join(m.plain for m in card)
    for exact in (question, answer, "[photo] паспорт", "Позвонить в консульство\nв понедельник",
                  "status: In review → Verified", "Arman (@arman): asked the relative:",
                  "relative: answered: [photo]"):
        assert exact in history, exact

    # A staff member who chose Russian sees Russian labels.
    admin = emulator.user(ADMIN, language_code="ru")
    await admin.send_text("/language")
    await admin.press("Русский")
    card = await open_card(admin, admin, f"/case {number}")
    assert tr("ru", FORM.question("person", "full_name").short) in "".join(m.plain for m in card)

    # /export in the group: an XLSX without names, to the private chat only.
    before = len(private.messages)
    await staff.send_text("/export")
    sent = await private.wait_for(lambda m: m.kind == "document" and m in private.messages[before:])
    await staff.wait_for("I sent the file to you in a private chat.")
    assert not any(m.kind == "document" for m in group.messages)
    rows = xlsx_rows(emulator, sent)
    assert rows[0][:4] == ["Case number", "Submitted at (ISO 8601)", "Last change (ISO 8601)",
                           "Status (code)"]
    assert [r[0] for r in rows[1:]] == [number]
    assert "detained;camp | no_contact" in rows[1]
    sheet = json.dumps(rows, ensure_ascii=False)
    for name in ("Әлия", "王小明", "ئابدۇللا", "Гүлжан", "Лагерь", LONG_STORY[:30]):
        assert name not in sheet

    # Every answer only for admins, after a warning about Telegram's cloud.
    await staff.send_text("/export csv")
    assert "XLSX only" in group.messages[-1].plain
    await staff.send_text("/export full")
    assert "Only admins" in group.messages[-1].plain
    admin_private = emulator.user(ADMIN)
    await admin_private.send_text("/export full")
    warning = admin_private.last
    assert "Telegram's cloud" in warning.plain or "Telegram" in warning.plain
    before = len(admin_private.messages)
    await admin_private.press(warning.button_labels[0], warning)
    full = await admin_private.wait_for(
        lambda m: m.kind == "document" and m in admin_private.messages[before:])
    sheet = json.dumps(xlsx_rows(emulator, full), ensure_ascii=False)
    assert "Әлия Нұрланқызы Төлеубаева" in sheet and "ئابدۇللا 🙏" in sheet
    assert not list((bot.settings().data_dir / "tmp").iterdir())  # nothing left behind

    # The audit log: who did what, with no personal data.
    audit = await bot.d.db.fetchall("SELECT actor_id, action, detail FROM audit_log")
    actions = [r[1] for r in audit]
    for action in ("assign", "status", "ask", "note", "export", "case_view", "file"):
        assert action in actions, action
    exports = [json.loads(r[2]) for r in audit if r[1] == "export"]
    assert [(e["cases"], e["format"], e["columns"]) for e in exports] == [
        (1, "xlsx", "summary"), (1, "xlsx", "full")]
    dump = " ".join(str(r[2]) for r in audit)
    for secret in ("Әлия", "консульство", "Когда", "марте", "Гүлжан"):
        assert secret not in dump


# ----------------------------------------------------------------------------- the gate


async def test_nobody_else_can_use_staff_commands_or_buttons(
        emulator: Emulator, staff_bot: BotRunner) -> None:
    bot = staff_bot
    group = staff_group(emulator)
    staff = emulator.user(STAFF).in_chat(group)
    await emulator.user(STAFF).send_text("/staffhelp")
    relative = emulator.user(3002, language_code="kk")
    number = await short_case(relative, "kk")
    ann = await staff.wait_for(lambda m: number in m.plain)
    card = await open_card(staff, emulator.user(STAFF), ("📂 Open", ann))
    buttons = [d for m in (ann, card[-1]) for row in m.buttons for _, d in row if d]
    assert any(":st:" in d for d in buttons) and any(":take:" in d for d in buttons)
    before = await snapshot(bot)

    outsider = emulator.user(OUTSIDER, language_code="ru")
    await outsider.send_text("/nosuchcommand")
    unknown = outsider.last.plain
    plain_staff = emulator.user(OTHER_STAFF, language_code="en")  # staff, not admin
    await plain_staff.send_text("/nosuchcommand")
    unknown_en = plain_staff.last.plain
    gate = gate_of(bot.app)
    assert gate is not None and set(COMMANDS) <= set(gate.commands)
    tries = [(outsider, name, unknown) for name in gate.commands]  # other modules' too
    tries += [(plain_staff, name, unknown_en) for name, role in gate.commands.items()
              if role == "admin"]
    assert ("staff", "admin") in {(n, r) for n, r in gate.commands.items()}
    for user, name, expected in tries:
        for text in (f"/{name}", f"/{name.upper()}@sandbox_bot {number} closed {OUTSIDER}",
                     f"/{name} add {OUTSIDER}"):
            count = len(user.messages)
            await user.send_text(text)
            assert user.last.plain == expected, text
            assert len(user.messages) == count + 1, text

    # In the staff group, someone who is not staff gets what any unknown command gets there.
    outsider_in_group = outsider.in_chat(group)
    await outsider_in_group.send_text("/nosuchcommand")
    group_unknown = group.messages[-1].plain
    for name in gate.commands:
        await outsider_in_group.send_text(f"/{name} {number}")
        assert group.messages[-1].plain == group_unknown

    # Real staff buttons pressed by an outsider, in the group and forged in a private chat.
    shown = len(group.messages)
    for data in buttons:
        answer = await outsider_in_group.press_data(data, card[-1].message_id)
        assert answer is not None and answer.text is None
        answer = await outsider.press_data(data, outsider.last.message_id)
        assert answer is not None and answer.text is None
    assert len(group.messages) == shown
    assert await snapshot(bot) == before

    # Staff cannot steer a button onto another case, nor use staff commands in another group.
    take = next(d for d in buttons if ":take:" in d)
    parsed = parse_button(bot.d, take)
    assert parsed is not None
    forged = take.replace(f":{parsed[1]}:", f":{parsed[1] + 1}:")
    answer = await staff.press_data(forged, ann.message_id)
    assert answer is not None and answer.text == "This button is not valid."
    other_group = emulator.group(-100888, "Family")
    other_group.state.known = True
    await emulator.user(STAFF).in_chat(other_group).send_text(f"/case {number}")
    assert "private chat" in other_group.messages[-1].plain
    assert number not in other_group.messages[-1].plain
    await emulator.user(STAFF).in_chat(other_group).press_data(take, 1)
    assert await snapshot(bot) == before


async def test_admins_manage_staff(emulator: Emulator, staff_bot: BotRunner) -> None:
    bot = staff_bot
    admin = emulator.user(ADMIN, first_name="Dana", username="dana")
    newcomer = emulator.user(OUTSIDER, first_name="Nurlan")
    plain_staff = emulator.user(STAFF, first_name="Arman", username="arman")
    await newcomer.send_text("/nosuchcommand")
    unknown = newcomer.last.plain
    await newcomer.send_text("/cases")
    assert newcomer.last.plain == unknown

    await plain_staff.send_text("/cases")  # staff are known by name once they act
    await plain_staff.send_text("/nosuchcommand")
    await plain_staff.send_text(f"/staff add {OUTSIDER}")  # staff, not admin: refused
    assert plain_staff.last.plain == plain_staff.messages[-2].plain
    await admin.send_text(f"/staff add {OUTSIDER}")
    assert f"{OUTSIDER} is now staff" in admin.last.plain  # never seen by name before
    await newcomer.send_text("/cases")
    assert "Open cases" in newcomer.last.plain
    await admin.send_text("/staff list")  # by name and @username, not numbers
    assert "Nurlan · added by Dana (@dana)" in admin.last.plain
    assert "Arman (@arman)" in admin.last.plain and str(STAFF) not in admin.last.plain
    await admin.send_text(f"/staff remove {STAFF}")  # set by BOT_STAFF_IDS
    assert "setting" in admin.last.plain
    await admin.send_text(f"/staff remove {OUTSIDER}")
    assert "Nurlan is no longer staff" in admin.last.plain
    await newcomer.send_text("/cases")
    assert newcomer.last.plain == unknown
    audit = await bot.d.db.fetchall("SELECT actor_id, action, detail FROM audit_log")
    assert [tuple(r) for r in audit] == [
        (ADMIN, "staff_add", json.dumps({"user_id": OUTSIDER})),
        (ADMIN, "staff_remove", json.dumps({"user_id": OUTSIDER}))]


# ----------------------------------------------------------------------------- no staff chat


async def test_without_a_staff_chat_each_staff_member_is_told(
        emulator: Emulator, tmp_path: Path) -> None:
    bot = BotRunner(emulator, tmp_path / "data", admin_ids=frozenset({ADMIN}),
                    staff_ids=frozenset({STAFF}))
    await bot.start()
    try:
        admin, staff = emulator.user(ADMIN), emulator.user(STAFF)
        for member in (admin, staff):
            await member.send_text("/staffhelp")
            assert "/case NUMBER" in member.last.plain
        assert "/staff list" in admin.last.plain and "/staff list" not in staff.last.plain
        relative = emulator.user(3003, language_code="en")
        number = await short_case(relative, "en", name="Ерлан")
        for member in (admin, staff):
            ann = await member.wait_for(lambda m: number in m.plain and "New case" in m.plain)
            assert "Ерлан" not in ann.plain and "Altay" in ann.plain

        # Assigned: the relative's answer goes to the assignee only.
        await admin.send_text(f"/assign {number} {STAFF}")
        assert "assigned" in admin.last.plain
        await staff.wait_for("was assigned to you")
        await admin.send_text(f"/ask {number} Do you have a photo of him?")
        asked = await relative.wait_for("Do you have a photo")
        admin_seen = len(admin.messages)
        await relative.send_voice(duration=7)
        await staff.wait_for(lambda m: m.kind == "voice")
        assert len(admin.messages) == admin_seen
        # With a new report in progress, only a reply to the question goes to staff.
        await relative.send_text("/new")
        staff_seen = len(staff.messages)
        await relative.send_text("not an answer")
        assert "choose one of the buttons" in relative.last.plain
        await relative.send_text("an answer", reply_to=asked.message_id)
        await staff.wait_for("an answer")
        assert len(staff.messages) == staff_seen + 1

        # /setstatus, /cases with paging, /export in a private chat.
        await staff.send_text(f"/setstatus {number} needs_info Which county exactly?")
        needs = await relative.wait_for(tr("en", PERSON_NOTICE_LABELS["needs_info"]))
        assert "Which county exactly?" in needs.plain  # the question comes with the status
        d = bot.d
        for i in range(11):
            await d.cases.submit(NewCase(user_id=relative.id, language="en", persons_count=1,
                                         prefecture="ili", attachments_count=0,
                                         consent_share="no", consent_publish="no",
                                         notice_version=1, form_version=1,
                                         data=json.dumps({"persons": []}).encode()),
                                 f"2024-01-{i + 1:02d}T10:00:00+00:00",
                                 lambda i=i: f"5{i:02d}0-000{i % 10}")
        await staff.send_text("/cases all")
        assert "12, page 1 of 2" in staff.last.plain
        assert number not in staff.last.plain  # the oldest first: ours is the newest
        await staff.press("Next ▶️")
        page = await staff.wait_for("page 2 of 2")
        assert number in page.plain
        await staff.send_text("/cases mine")
        assert number in staff.last.plain and "1, page 1 of 1" in staff.last.plain
        await staff.send_text("/export needs_info")
        exported = staff.last
        assert exported.kind == "document"
        assert [r[0] for r in xlsx_rows(emulator, exported)[1:]] == [number]
    finally:
        await bot.stop()


async def test_key_offline_card_shows_no_answers(emulator: Emulator, tmp_path: Path) -> None:
    public, _private = generate_keypair(tmp_path / "org")
    bot = BotRunner(emulator, tmp_path / "data", staff_ids=frozenset({STAFF}),
                    public_key_file=public)
    await bot.start()
    try:
        staff = emulator.user(STAFF)
        await staff.send_text("/staffhelp")
        relative = emulator.user(3004, language_code="en")
        number = await short_case(relative, "en", name="Ерлан Offline")
        await staff.wait_for(number)
        card = await open_card(staff, staff, f"/case {number}")
        text = "\n".join(m.plain for m in card)
        assert number in text and "private key is kept offline" in text
        assert "Ерлан" not in text and "Altay" in text
        # Questions still work; the answer reaches staff only as "stored sealed".
        await staff.send_text(f"/ask {number} Where was he working?")
        asked = await relative.wait_for("Where was he working?")
        await relative.send_text("At the Altay mine, secret-answer", reply_to=asked.message_id)
        posted = await staff.wait_for("stored sealed")
        assert number in posted.plain
        assert not any("secret-answer" in m.plain for m in staff.messages)
        card = await open_card(staff, staff, f"/case {number}")
        text = "\n".join(m.plain for m in card)
        assert "answered: (sealed" in text and "secret-answer" not in text
    finally:
        await bot.stop()


# ----------------------------------------------------------------------------- the outbox

NOTICE = "The status of your case %(number)s has changed: %(status)s."


async def latest_outbox(bot: BotRunner, kind: str) -> tuple[int, str, int]:
    """(outbox id, state, attempts) of the latest message of `kind`."""
    row = await bot.d.db.fetchone(
        "SELECT outbox_id, state, attempts FROM outbox WHERE kind = ?"
        " ORDER BY outbox_id DESC LIMIT 1", (kind,))
    assert row is not None, f"no {kind} in the outbox"
    return int(row[0]), str(row[1]), int(row[2])


async def wait_outbox(bot: BotRunner, kind: str, *, attempts: int = 0, state: str = "pending",
                      after: int = 0, timeout: float = 30.0) -> int:
    """Wait until the latest `kind` (newer than outbox id `after`) has `state` and at least
    `attempts` attempts; returns its outbox id."""
    deadline = time.monotonic() + timeout
    while True:
        found = await bot.d.db.fetchone(
            "SELECT outbox_id, state, attempts FROM outbox WHERE kind = ? AND outbox_id > ?"
            " ORDER BY outbox_id DESC LIMIT 1", (kind, after))
        if found is not None and found[1] == state and found[2] >= attempts:
            return int(found[0])
        assert time.monotonic() < deadline, f"{kind}: {found and tuple(found)}"
        await asyncio.sleep(0.05)


async def test_notices_and_questions_arrive_once_through_outages_and_restarts(
        emulator: Emulator, tmp_path: Path) -> None:
    """Status notices and staff questions go through the outbox: when Telegram fails, they
    wait and are sent again until it takes them, across restarts, and arrive exactly once."""
    bot = BotRunner(emulator, tmp_path / "data", staff_ids=frozenset({STAFF}))
    await bot.start()
    try:
        staff = emulator.user(STAFF, language_code="en")
        await staff.send_text("/staffhelp")
        relative = emulator.user(3005, language_code="kk")
        number = await short_case(relative, "kk", name="Ерлан Outbox")
        await staff.wait_for(number)

        def notices(status: str) -> list[SentMessage]:
            whom = tr("kk", WHOM["brother"], name="Ерлан Outbox")
            text = (tr("kk", "News about your case %(number)s", number=number) + "\n• "
                    + tr("kk", "%(whom)s: %(status)s.", whom=whom,
                         status=tr("kk", PERSON_NOTICE_LABELS[status])))
            return [m for m in relative.messages if m.plain == text]

        question = "Соңғы рет қашан сөйлестіңіз? <b>не тег</b> & «тырнақша»"

        def questions() -> list[SentMessage]:
            return [m for m in relative.messages if question in m.plain]

        # Telegram refuses every message for a while: the notice waits, then arrives once.
        emulator.set_faults(1.0, kinds=("500", "502", "drop"), methods={"sendMessage"})
        await staff.send_text(f"/setstatus {number} in_review", wait=False)
        notice_id = await wait_outbox(bot, "status_notice", attempts=2)
        assert notices("in_review") == []
        emulator.set_faults(0)
        await relative.wait_for(lambda m: m in notices("in_review"))
        await wait_outbox(bot, "status_notice", state="sent", attempts=3)

        # A question during an outage, and the bot restarts before Telegram is back.
        emulator.set_faults(1.0, kinds=("500", "502", "drop"), methods={"sendMessage"})
        await staff.send_text(f"/ask {number} {question}", wait=False)
        await wait_outbox(bot, "staff_question", attempts=1)
        await bot.restart()
        await wait_outbox(bot, "staff_question", attempts=2)  # the new process tries again
        assert questions() == []
        emulator.set_faults(0)
        asked = await relative.wait_for(question)
        assert number in asked.plain
        await staff.wait_for("The question was sent to the relative of case")
        # Its message id was recorded on delivery: the relative's reply reaches staff.
        await relative.send_text("2018 жылы, телефонмен", reply_to=asked.message_id)
        posted = await staff.wait_for("2018 жылы, телефонмен")
        assert number in posted.plain

        # A status notice across a restart.
        emulator.set_faults(1.0, kinds=("500",), methods={"sendMessage"})
        await staff.send_text(f"/setstatus {number} verified", wait=False)
        await wait_outbox(bot, "status_notice", attempts=1, after=notice_id)
        await bot.restart()
        emulator.set_faults(0)
        await relative.wait_for(lambda m: m in notices("verified"))

        # Never again after that, whatever restarts.
        await bot.restart()
        await asyncio.sleep(1.0)
        await emulator.wait_idle(quiet=0.3)
        assert len(notices("in_review")) == 1 and len(notices("verified")) == 1
        assert len(questions()) == 1
        assert len([m for m in staff.messages if "The question was sent" in m.plain]) == 1
        rows = await bot.d.db.fetchall("SELECT kind, state, attempts, length(text) FROM outbox"
                                       " WHERE kind NOT IN ('case_confirmation', 'case_alert')"
                                       " ORDER BY outbox_id")
        assert [(r[0], r[1], r[2] >= 2, r[3]) for r in rows] == [
            ("status_notice", "sent", True, 0), ("staff_question", "sent", True, 0),
            ("status_notice", "sent", True, 0)]
    finally:
        emulator.set_faults(0)
        await bot.stop()


async def test_a_question_to_a_relative_who_blocked_the_bot(emulator: Emulator,
                                                            staff_bot: BotRunner) -> None:
    """403: not retried; the question is closed and the staff member told, once."""
    staff = emulator.user(STAFF, language_code="en")
    await staff.send_text("/staffhelp")
    relative = emulator.user(3006, language_code="en")
    number = await short_case(relative, "en")
    relative.block()
    await staff.send_text(f"/ask {number} Are you there?", wait=False)
    await staff.wait_for("The question could not be delivered")
    await wait_outbox(staff_bot, "staff_question", state="blocked", attempts=1)
    case = await workflow(staff_bot).case(number)
    assert case is not None
    events = await workflow(staff_bot).events(case.case_id)
    assert [e.kind for e in events if e.kind in ("question", "undelivered")] == [
        "question", "undelivered"]
    await staff.send_text(f"/setstatus {number} closed")
    await wait_outbox(staff_bot, "status_notice", state="blocked", attempts=1)
    user = await staff_bot.d.users.get(relative.id)
    assert user is not None and not user.active
    assert len([m for m in staff.messages if "could not be delivered" in m.plain]) == 1


@pytest.mark.parametrize("lang", ["kk", "ru"])
async def test_someone_in_danger_makes_the_alert_urgent(emulator: Emulator, staff_bot: BotRunner,
                                                        lang: str) -> None:
    group = staff_group(emulator)
    staff = emulator.user(STAFF, language_code="en").in_chat(group)
    urgent = tr("en", "<b>Urgent:</b> the relative says a person is in danger now (illness, "
                      "old age, a recent arrest).")
    relative = emulator.user(7100 + len(lang), language_code=lang)
    await begin(relative, lang)
    await fill(relative, {"reporter_country": opt("kz"), **BROTHER, "in_danger": opt("yes")})
    await step(relative, "finish")
    number = await submitted(relative)
    alert = await staff.wait_for(lambda m: number in m.plain and "New case" in m.plain)
    assert urgent in alert.plain
    case = await workflow(staff_bot).case(number)
    assert case is not None and case.urgent

    calm = emulator.user(7200 + len(lang), language_code=lang)
    other = await short_case(calm, lang)  # nobody in danger
    alert = await staff.wait_for(lambda m: other in m.plain and "New case" in m.plain)
    assert urgent not in alert.plain
