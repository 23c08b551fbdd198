"""Broadcasts end to end: composing, sending under Telegram's 30/s, crashes, cancel, access.

The emulator enforces 30 messages per second overall, as Telegram does; the bot runs without
PTB's rate limiter here, so any 429 the emulator counts would be the sender's own fault.
"""

from __future__ import annotations

import argparse
import asyncio
import struct
import time
import zlib
from collections import Counter
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from bot.handlers.admin import USE_BUTTONS
from bot.handlers.relative import STATUS_LABELS
from bot.i18n import LANGUAGE_NAMES, LANGUAGES
from bot.sandbox.emulator import Emulator
from bot.sandbox.simusers import SimUser
from bot.sandbox.world import SentMessage
from bot.services.broadcast import (
    BATCH_SECONDS,
    DEFAULT_RATE,
    MAX_IN_FLIGHT,
    message_html,
    stop_background,
)
from bot.services.broadcast_cli import add_broadcast_parser, queue_broadcast_from_cli
from bot.storage.broadcasts import BroadcastRepository
from tests.e2e.conftest import BotRunner, plain, tr

ADMIN = 900_001
STAFF = 900_002
NOW = "2026-11-26T12:00:00+00:00"
TEXTS = {
    "kk": "БҰҰ біздің өтінішімізді алды. <Жиналыс> сенбіде & сағат 11-де.",
    "ru": "ООН получила наше обращение. <Встреча> в субботу & в 11 часов.",
    "en": "The UN has received our submission. <Meeting> on Saturday & at 11.",
}
UNKNOWN = "I do not know this command. Press Help to see what I can do."


@pytest.fixture
async def emulator() -> AsyncIterator[Emulator]:
    """Telegram's overall limit of 30 messages per second, enforced with 429 retry_after."""
    emu = Emulator(global_rate=30)
    await emu.start()
    try:
        yield emu
    finally:
        await emu.stop()


@pytest.fixture
async def bot(emulator: Emulator, tmp_path: Path) -> AsyncIterator[BotRunner]:
    runner = BotRunner(emulator, tmp_path / "data", admin_ids=frozenset({ADMIN}),
                       staff_ids=frozenset({STAFF}))
    await runner.start()
    try:
        yield runner
    finally:
        await runner.stop()


# ----------------------------------------------------------------------------- helpers


async def seed(bot: BotRunner, emulator: Emulator, first_id: int, per_language: int, *,
               updates_off: int = 0) -> dict[int, str]:
    """Relatives who once wrote to the bot: {user_id: language}, `per_language` of each."""
    people = {first_id + i * len(LANGUAGES) + j: lang
              for i in range(per_language) for j, lang in enumerate(LANGUAGES)}
    off = set(list(people)[:updates_off])
    async with bot.d.db.transaction() as conn:
        await conn.executemany(
            "INSERT INTO users (user_id, language, updates_enabled, created_at, last_seen_at)"
            " VALUES (?, ?, ?, ?, ?)",
            [(uid, lang, 0 if uid in off else 1, NOW, NOW) for uid, lang in people.items()])
    for uid, lang in people.items():
        emulator.user(uid, language_code=lang).chat.known = True
    return people


def received(emulator: Emulator, uid: int) -> list[SentMessage]:
    return [m for m in emulator.messages_in(uid) if m.from_bot]


def expected(lang: str, texts: dict[str, str] = TEXTS, fallback: str = "en") -> str:
    escaped = {k: v.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
               for k, v in texts.items()}
    return plain(message_html(escaped, fallback, lang))


def button_starting(user: SimUser, prefix: str) -> str:
    message = next(m for m in reversed(user.messages) if m.buttons and not m.deleted)
    return next(label for row in message.buttons for label, _ in row
                if label.startswith(prefix))


async def press_starting(user: SimUser, prefix: str) -> None:
    await user.press(button_starting(user, prefix))


async def wait_until(check: Callable[[], object], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)


async def states(bot: BotRunner, broadcast_id: int) -> Counter[str]:
    return Counter((await BroadcastRepository(bot.d.db).states_of(broadcast_id)).values())


async def broadcast_state(bot: BotRunner, broadcast_id: int) -> str:
    b = await BroadcastRepository(bot.d.db).get(broadcast_id)
    assert b is not None
    return b.state


async def compose_everyone(admin: SimUser) -> None:
    """The admin writes all three texts, no photo, everyone: up to the preview."""
    await admin.send_command("broadcast")
    assert "New broadcast" in admin.last.plain and LANGUAGE_NAMES["kk"] in admin.last.plain
    for lang in LANGUAGES:
        await admin.send_text(TEXTS[lang])
    assert "Add a photo" in admin.last.plain
    await admin.press("No photo")
    assert "Who should receive it?" in admin.last.plain
    await press_starting(admin, "Everyone")
    await admin.wait_for("Ready to send")


async def queue_from_cli(bot: BotRunner, *argv: str) -> int:
    parser = argparse.ArgumentParser()
    add_broadcast_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["broadcast", *argv])
    return await queue_broadcast_from_cli(args, bot.settings())


# ----------------------------------------------------------------------------- the tests


async def test_300_relatives_in_three_languages_at_full_speed(
        bot: BotRunner, emulator: Emulator) -> None:
    people = await seed(bot, emulator, 10_000, 100, updates_off=3)
    blocked = [uid for uid in list(people)[10:100:6]]  # 15 of them, every language
    for uid in blocked:
        emulator.user(uid).block(notify=False)
    # A relative turns news off through the bot itself.
    quiet_uid = list(people)[200]
    quiet = emulator.user(quiet_uid)
    await quiet.send_command("stop_updates")
    assert "no longer receive news" in quiet.last.plain
    admin = emulator.user(ADMIN, language_code="en")
    await compose_everyone(admin)

    # The preview: each language group's exact message, after a line saying who gets it.
    total = len(people) - 3 - 1
    assert f"Ready to send to {total} relatives" in admin.last.plain
    shown = [m.plain for m in admin.messages]
    for lang in LANGUAGES:
        head = next(i for i, text in enumerate(shown)
                    if text.startswith(f"👁 What readers of {LANGUAGE_NAMES[lang]}"))
        assert shown[head + 1] == expected(lang)
        assert "(100)" in shown[head] or "(99)" in shown[head] or "(98)" in shown[head]

    # Send, and meanwhile a relative asks for help: the reply is not held up by the broadcast.
    await admin.press(button_starting(admin, "✅ Send to"))
    assert "Broadcast #1" in admin.last.plain
    probe = emulator.user(777_777, language_code="en")
    await probe.send_command("start")
    await probe.press("English")
    latencies = []
    for _ in range(3):
        await asyncio.sleep(1.5)
        before = len(probe.messages)
        started = time.monotonic()
        await probe.send_command("help", wait=False)
        await wait_until(lambda b=before: len(probe.messages) > b, timeout=5)
        latencies.append(time.monotonic() - started)
    assert await broadcast_state(bot, 1) == "sending"  # the probes ran during the broadcast
    await wait_until(lambda: _done(bot, 1), timeout=40)

    # Everyone else got it exactly once, in their language; the blocked ones are marked.
    for uid, lang in people.items():
        got = received(emulator, uid)
        if uid in blocked or uid == quiet_uid or uid in list(people)[:3]:
            assert not [m for m in got if TEXTS[lang][:20] in m.plain], uid
            continue
        assert [m.plain for m in got] == [expected(lang)], (uid, lang)
        # News can be turned off with a button under the message, not a typed command.
        assert got[0].buttons == [[("🔕 " + tr(lang, "Stop receiving news"), "u:off")]]
    for uid in blocked:
        user = await bot.d.users.get(uid)
        assert user is not None and not user.active
    counts = await states(bot, 1)
    assert counts == {"sent": total - len(blocked), "blocked": len(blocked)}
    assert emulator.stats["429"] == 0
    assert max(latencies) < 1.0, latencies

    # Progress was shown in one message, edited; the final report came as a new message.
    progress = next(m for m in admin.messages if m.plain.startswith("📣 Broadcast #1"))
    assert progress.edits and "is finished" in progress.plain
    report = admin.last.plain
    assert "Broadcast #1 is finished" in report
    assert f"Sent: {total - len(blocked)}" in report
    assert f"Blocked the bot: {len(blocked)}" in report


async def _done(bot: BotRunner, broadcast_id: int) -> bool:
    return await broadcast_state(bot, broadcast_id) == "done"


async def test_killed_and_restarted_mid_broadcast_skips_nobody(
        bot: BotRunner, emulator: Emulator) -> None:
    people = await seed(bot, emulator, 20_000, 70)
    assert await queue_from_cli(bot, "--text", f"kk={TEXTS['kk']}", "--text",
                                f"ru={TEXTS['ru']}", "--text", f"en={TEXTS['en']}",
                                "--yes", "--no-wait") == 0
    repo = BroadcastRepository(bot.d.db)

    async def sent() -> int:
        return (await states(bot, 1))["sent"]

    # A graceful stop: the calls in flight finish, the rest waits; nothing is in flight after.
    await wait_until(lambda: _at_least(sent, 50), timeout=20)
    await bot.stop()
    await bot.start()
    repo = BroadcastRepository(bot.d.db)
    assert (await states(bot, 1))["sending"] == 0
    graceful_dupes = [uid for uid in people if len(received(emulator, uid)) > 1]
    assert graceful_dupes == []

    # A crash: the sender dies mid-flight; rows still 'sending' are the only ones in doubt.
    await wait_until(lambda: _at_least(sent, 120), timeout=20)
    await stop_background(bot.app, graceful=False)
    in_doubt = {uid for uid, state in (await repo.states_of(1)).items() if state == "sending"}
    assert len(in_doubt) <= round(DEFAULT_RATE * BATCH_SECONDS) + MAX_IN_FLIGHT
    await bot.stop()
    await bot.start()
    await wait_until(lambda: _done(bot, 1), timeout=30)

    counts = {uid: len(received(emulator, uid)) for uid in people}
    assert min(counts.values()) == 1, "somebody was skipped"
    twice = {uid for uid, n in counts.items() if n > 1}
    assert twice <= in_doubt and max(counts.values()) <= 2
    assert all(m.plain == expected(people[uid], fallback="ru")
               for uid in people for m in received(emulator, uid))
    assert await states(bot, 1) == {"sent": len(people)}
    assert emulator.stats["429"] == 0


async def _at_least(value: Callable[[], object], n: int) -> bool:
    result = value()
    assert asyncio.iscoroutine(result)
    return int(await result) >= n


async def test_cancel_stops_the_broadcast(bot: BotRunner, emulator: Emulator) -> None:
    people = await seed(bot, emulator, 30_000, 100)
    admin = emulator.user(ADMIN, language_code="en")
    await admin.send_command("broadcast")
    await admin.press(button_starting(admin, "⏭"))  # no Kazakh text
    await admin.press(button_starting(admin, "⏭"))  # no Russian text
    await admin.send_text(TEXTS["en"])  # one language: everyone else falls back to it
    await admin.press("No photo")
    await press_starting(admin, "Everyone")
    await admin.wait_for("Ready to send")
    kk_head = next(m.plain for m in admin.messages if "readers of Қазақша" in m.plain)
    assert "They get the English text, as there is no Қазақша text." in kk_head
    await admin.press(button_starting(admin, "✅ Send to"))
    await wait_until(lambda: _sent_at_least(bot, 40), timeout=10)
    await admin.send_command("broadcast_cancel")
    await admin.wait_for("Stopping broadcast #1: relatives who have not received it yet")
    report = await admin.wait_for("Broadcast #1 was stopped")
    await asyncio.sleep(1.0)
    counts = await states(bot, 1)
    delivered = sum(len(received(emulator, uid)) for uid in people)
    assert counts["sent"] == delivered < len(people)
    assert counts["sent"] + counts["cancelled"] == len(people)
    assert f"Not sent because of the stop: {counts['cancelled']}" in report.plain
    assert await broadcast_state(bot, 1) == "cancelled"
    await asyncio.sleep(0.5)
    assert sum(len(received(emulator, uid)) for uid in people) == delivered
    await admin.send_command("broadcast_cancel")
    assert "No broadcast is being sent." in admin.last.plain

    # The progress message's Stop button does the same.
    await compose_everyone(admin)
    await admin.press(button_starting(admin, "✅ Send to"))
    progress = admin.last
    await wait_until(lambda: _sent_at_least(bot, 20, broadcast_id=2), timeout=10)
    answer = await admin.press(button_starting(admin, "⏹"), progress)
    assert answer is not None and answer.text is not None
    assert answer.text.startswith("Stopping broadcast #2")
    await admin.wait_for("Broadcast #2 was stopped")
    assert (await states(bot, 2))["cancelled"] > 0


async def test_an_admin_message_is_a_broadcast_text_only_while_composing(
        bot: BotRunner, emulator: Emulator) -> None:
    """The compose handler group (bot/app.py) takes an admin's message only for a draft."""
    admin = emulator.user(ADMIN, language_code="en")
    await admin.send_text("Hello")  # no draft: the relative's journey, which asks the language
    assert "Выберите язык" in admin.last.plain
    await admin.send_command("broadcast")
    for lang in LANGUAGES:
        await admin.send_text(TEXTS[lang])
    await admin.press("No photo")
    assert "Who should receive it?" in admin.last.plain
    await admin.send_text("Hello")  # a draft waiting for a button: not the journey
    assert tr("en", USE_BUTTONS) in admin.last.plain
    assert (await BroadcastRepository(bot.d.db).get_draft(ADMIN) or {})["step"] == "audience"


async def _sent_at_least(bot: BotRunner, n: int, broadcast_id: int = 1) -> bool:
    return (await states(bot, broadcast_id))["sent"] >= n


async def test_photo_fallback_and_status_audience(bot: BotRunner, emulator: Emulator) -> None:
    people = await seed(bot, emulator, 40_000, 4)
    in_review = list(people)[:6]
    async with bot.d.db.transaction() as conn:
        for i, uid in enumerate(people):
            await conn.execute(
                "INSERT INTO cases (number, user_id, language, status, persons_count,"
                " notice_version, form_version, data, submitted_at, updated_at)"
                " VALUES (?, ?, ?, ?, 1, 1, 1, X'', ?, ?)",
                (f"1000-{i:04d}", uid, people[uid],
                 "in_review" if uid in in_review else "closed", NOW, NOW))
    admin = emulator.user(ADMIN, language_code="en")
    # Too long for a photo's caption: refused with the reason, and the admin can go on.
    await admin.send_command("broadcast")
    await admin.press(button_starting(admin, "⏭"))
    await admin.send_text("Длинный текст. " * 80)
    await admin.send_text(TEXTS["en"])
    await admin.press("Русский")  # Kazakh readers get the Russian text
    await admin.send_photo()
    assert "must fit in 1024 characters" in admin.last.plain
    await admin.press(button_starting(admin, "✖"))
    assert "discarded" in admin.last.plain

    await admin.send_command("broadcast")
    await admin.press(button_starting(admin, "⏭"))
    await admin.send_text(TEXTS["ru"])
    await admin.send_text(TEXTS["en"])
    await admin.press("Русский")
    await admin.send_photo()
    await admin.press(button_starting(admin, "By case status"))
    await press_starting(admin, f"{STATUS_LABELS['in_review']} (")
    await admin.wait_for("Ready to send to 6 relatives")
    texts = {"ru": TEXTS["ru"], "en": TEXTS["en"]}
    kk_preview = next(m for i, m in enumerate(admin.messages)
                      if i and "readers of Қазақша" in admin.messages[i - 1].plain)
    assert kk_preview.kind == "photo" and kk_preview.plain == expected("kk", texts, "ru")
    await admin.press(button_starting(admin, "✅ Send to 6"))
    await wait_until(lambda: _done(bot, 1), timeout=15)
    for uid, lang in people.items():
        got = received(emulator, uid)
        if uid in in_review:
            assert [(m.kind, m.plain) for m in got] == [("photo", expected(lang, texts, "ru"))]
        else:
            assert got == []
    # A second press of an old Send button queues nothing.
    send = next(m for m in admin.messages if m.plain.startswith("📣 Broadcast #1"))
    assert not send.buttons or all("Send" not in label for label in send.button_labels)


async def test_strangers_are_refused_like_an_unknown_command(
        bot: BotRunner, emulator: Emulator) -> None:
    await seed(bot, emulator, 50_000, 2)
    relative = emulator.user(50_000, language_code="kk")
    staff = emulator.user(STAFF, language_code="en")
    await staff.send_command("start")  # the staff welcome, then the language
    await staff.press("🌐 Language")
    await staff.press("English")
    admin = emulator.user(ADMIN, language_code="en")
    await admin.send_command("broadcast")
    nonce = admin.last.buttons[0][0][1].split(":")[1]  # type: ignore[union-attr]
    unknown_kk = tr("kk", UNKNOWN)
    for person, refused, expected_text in (
            (relative, ("broadcast", "broadcast_cancel", "stats", "no_such_command"),
             unknown_kk),
            (staff, ("broadcast", "broadcast_cancel"), tr("en", UNKNOWN))):
        for command in refused:
            await person.send_command(command)
            assert person.last.plain == expected_text, (person, command)
        # Buttons: made-up ones, and the admin's own draft's: answered with nothing at all.
        message = person.last
        before = len(person.messages)
        for data in (f"bc:{nonce}:skip", f"bc:{nonce}:cancel", "bc:-:stop:1",
                     f"bc:{nonce}:aud:all"):
            answer = await person.press_data(data, message.message_id)
            assert answer is not None and answer.text is None
        assert len(person.messages) == before
    assert (await BroadcastRepository(bot.d.db).get_draft(ADMIN)) is not None
    assert await BroadcastRepository(bot.d.db).active() == []
    # The relative's ordinary messages are not taken for a broadcast text.
    await relative.send_text("Сәлем")
    assert (await BroadcastRepository(bot.d.db).get_draft(ADMIN) or {})["texts"] == {}


async def test_stop_and_start_updates(bot: BotRunner, emulator: Emulator) -> None:
    relative = emulator.user(60_001, language_code="ru")
    await relative.send_command("start")
    await relative.press("Русский")
    await relative.send_command("stop_updates")
    assert (await bot.d.users.get(60_001)).updates_enabled is False  # type: ignore[union-attr]
    assert "/start_updates" not in relative.last.plain  # a button instead of a command
    await relative.press("🔔 " + tr("ru", "Receive news again"))
    assert (await bot.d.users.get(60_001)).updates_enabled is True  # type: ignore[union-attr]
    await relative.press("🔕 " + tr("ru", "Stop receiving news"))
    assert (await bot.d.users.get(60_001)).updates_enabled is False  # type: ignore[union-attr]
    await relative.send_command("start_updates")
    assert (await bot.d.users.get(60_001)).updates_enabled is True  # type: ignore[union-attr]


async def test_stats_with_a_chart(bot: BotRunner, emulator: Emulator) -> None:
    people = await seed(bot, emulator, 70_000, 3)
    today = bot.d.now().date()
    rows = []
    for i, uid in enumerate(people):
        day = today.toordinal() - 7 * (i % 4)
        submitted = f"{type(today).fromordinal(day).isoformat()}T10:00:00+00:00"
        rows.append((f"2000-{i:04d}", uid, people[uid], ("new", "in_review", "closed")[i % 3],
                     ("ili", "altay", None)[i % 3], submitted, submitted))
    async with bot.d.db.transaction() as conn:
        await conn.executemany(
            "INSERT INTO cases (number, user_id, language, status, persons_count, prefecture,"
            " notice_version, form_version, data, submitted_at, updated_at)"
            " VALUES (?, ?, ?, ?, 1, ?, 1, 1, X'', ?, ?)", rows)
    staff = emulator.user(STAFF, language_code="en")
    await staff.send_command("stats")
    photo = await staff.wait_for(lambda m: m.kind == "photo")
    text = next(m.plain for m in staff.messages if m.plain.startswith("Cases: 9"))
    assert "• New: 3" in text and "Ili (Ghulja): 3" in text and "Altay: 3" in text
    assert "Қазақша: 3" in text and "not given: 3" in text
    assert "New cases per week" in photo.plain
    assert photo.file_id is not None
    stored = emulator.world.files.get(photo.file_id)
    assert stored is not None
    png = stored.data
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    width, height = struct.unpack(">II", png[16:24])
    idat = png[png.index(b"IDAT") + 4: png.index(b"IEND") - 8]
    assert len(zlib.decompress(idat)) == height * (1 + width * 3)
    # Relatives do not get statistics.
    first = next(iter(people))
    relative = emulator.user(first)
    await relative.send_command("stats")
    assert relative.last.plain == tr(people[first], UNKNOWN)


async def test_command_line_queues_and_prints_progress(
        bot: BotRunner, emulator: Emulator, capsys: pytest.CaptureFixture[str]) -> None:
    people = await seed(bot, emulator, 80_000, 10)
    emulator.user(80_001).block(notify=False)  # a Russian reader
    code = await asyncio.wait_for(
        queue_from_cli(bot, "--text", "ru=Встреча в <субботу>", "--audience", "lang:ru",
                       "--yes"), timeout=20)
    out = capsys.readouterr().out
    assert code == 0
    assert "Queued broadcast #1 for 10 relatives" in out
    assert "Встреча в <субботу>" in out  # the preview, as relatives will see it
    assert "#1 done: sent 9, blocked 1, failed 0, remaining 0" in out
    ru = [uid for uid, lang in people.items() if lang == "ru" and uid != 80_001]
    assert all(len(received(emulator, uid)) == 1 for uid in ru)
    assert all(received(emulator, uid) == [] for uid in people if uid not in ru)
