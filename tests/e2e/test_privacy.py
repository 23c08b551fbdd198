"""What relatives tell us stays safe: sealed at rest, erasable, absent from logs, flood-limited."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import time
from pathlib import Path

import pytest

from bot.privacy_log import install
from bot.sandbox.emulator import Emulator
from bot.services.crypto import generate_keypair
from tests.e2e.conftest import BotRunner, click
from tests.journeys import CONSENT, MARKERS, REPORTER, SISTER, fill, report, start


def files_of(data_dir: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in data_dir.glob("bot.sqlite3*")}


def assert_no_markers(blobs: dict[str, bytes]) -> None:
    for name, blob in blobs.items():
        for marker in MARKERS:
            assert marker.encode() not in blob, f"{marker!r} in plain text in {name}"


async def full_journey(emulator: Emulator, bot: BotRunner, user_id: int, lang: str = "ru") -> str:
    user = emulator.user(user_id, language_code=lang)
    return await report(user, lang)


async def test_database_and_wal_hold_no_plain_text(emulator: Emulator, bot: BotRunner) -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    install(handler)
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        number = await full_journey(emulator, bot, 3001)
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)
    # Mid-journey (drafts) and after submission (cases), in the database and its WAL.
    assert_no_markers(files_of(bot.data_dir))
    log_text = stream.getvalue()
    assert "sendMessage" in log_text  # DEBUG logging really ran
    for marker in MARKERS:
        assert marker not in log_text, f"{marker!r} in the DEBUG log"
    # The key on the server still opens the case for staff.
    data = await bot.d.cases.data(number)
    assert data is not None and data["persons"][1]["full_name"] == "ئابدۇللا 🙏"


async def test_offline_key_mode_seals_too(emulator: Emulator, tmp_path: Path) -> None:
    pub, _priv = generate_keypair(tmp_path / "offline")
    runner = BotRunner(emulator, tmp_path / "data", public_key_file=pub)
    await runner.start()
    try:
        user = emulator.user(3002, language_code="en")
        await start(user, "en")
        await fill(user, {**CONSENT, **REPORTER}, until="relation")
        assert_no_markers(files_of(runner.data_dir))
        assert runner.d.keys.offline
    finally:
        await runner.stop()


#: What the /delete answer must say it could not erase (the relative's own chat stays in
#: Telegram's cloud), in the relative's language.
CHAT_STAYS = {"kk": "Бұл чат Сіз өшірмейінше телефоныңызда және Telegram бұлтында қалады",
              "ru": "Этот чат остаётся на Вашем телефоне и в облаке Telegram"}


@pytest.mark.parametrize(("lang", "uid"), [("kk", 3003), ("ru", 3013)])
async def test_delete_erases_everything(emulator: Emulator, bot: BotRunner, lang: str,
                                        uid: int) -> None:
    number = await full_journey(emulator, bot, uid, lang)
    row = await bot.d.db.fetchone("SELECT data FROM cases WHERE number = ?", (number,))
    assert row is not None
    sealed = bytes(row[0])
    user = emulator.user(uid, language_code=lang)
    await user.send_text("/new")  # a new draft in progress, too
    await user.send_text("/delete")
    await user.press_data("del:yes", user.last.message_id)
    assert CHAT_STAYS[lang] in user.last.plain
    assert await bot.d.drafts.get(uid) is None
    assert await bot.d.users.get(uid) is None
    status = await bot.d.db.fetchone("SELECT status, user_id, length(data) FROM cases "
                                     "WHERE number = ?", (number,))
    assert tuple(status) == ("withdrawn", None, 0)  # type: ignore[arg-type]
    blobs = files_of(bot.data_dir)
    for name, blob in blobs.items():  # secure_delete: not even in free pages or the WAL
        for i in range(0, len(sealed) - 32, 256):
            assert sealed[i:i + 32] not in blob, f"sealed case bytes survive in {name}"


async def test_mydata_sends_a_copy(emulator: Emulator, bot: BotRunner) -> None:
    user = emulator.user(3004, language_code="en")
    await start(user, "en")
    await fill(user, CONSENT, until="reporter_name")
    await user.send_text("Marker Name 123")
    await user.send_text("/mydata")
    assert "Marker Name 123" in user.last.plain  # readable text first
    await user.press("📄 Send it to me as a file")  # the file only on request
    doc = user.last
    assert doc.kind == "document"
    stored = emulator.world.files.get(doc.file_id or "")
    assert stored is not None
    content = json.loads(stored.data.decode())
    assert content["draft"]["reporter"]["reporter_name"] == "Marker Name 123"
    assert content["draft"]["consent"]["consent_store"] == "agree"


async def test_clean_chat_removes_the_questionnaire(emulator: Emulator, bot: BotRunner) -> None:
    user = emulator.user(3005, language_code="en")
    await report(user, "en", SISTER)
    confirmation = user.last
    await user.press("🧹 Remove these questions and answers from the chat", confirmation)
    on_screen = [m for m in user.visible if m.message_id < confirmation.message_id]
    assert len(on_screen) <= 1, [m.plain[:40] for m in on_screen]  # at most /start itself
    assert not confirmation.deleted and "Case number" in confirmation.plain


async def test_flooding_user_does_not_slow_others(emulator: Emulator, tmp_path: Path) -> None:
    bot = BotRunner(emulator, tmp_path / "data", real_flood_limit=True)
    await bot.start()
    try:
        await _flood(emulator)
    finally:
        await bot.stop()


async def _flood(emulator: Emulator) -> None:
    flooder = emulator.user(3006, language_code="en")
    other = emulator.user(3007, language_code="en")
    await start(flooder, "en")
    await start(other, "en")
    for i in range(60):
        await flooder.send_text(f"spam {i}", wait=False)
    started = time.monotonic()
    await click(other, "opt", "agree")
    assert time.monotonic() - started < 1.0
    await emulator.wait_idle(quiet=0.3)
    notices = [m for m in flooder.messages if "very fast" in m.plain]
    assert len(notices) == 1
    replies = len(flooder.messages)
    await flooder.send_text("still here?", wait=False)
    await asyncio.sleep(0.3)
    assert len(flooder.messages) == replies  # paused: dropped without a reply


async def test_double_taps_and_gone_messages_still_get_an_answer(emulator: Emulator,
                                                                bot: BotRunner) -> None:
    """Yes pressed twice, or a confirmation whose message is gone: one clear answer each,
    never an error (found by the fuzz test)."""
    user = emulator.user(3010, language_code="en")
    await start(user, "en")
    await user.send_text("/cancel")
    ask = user.last.message_id
    await user.press_data("x:yes", ask)
    assert "discarded" in user.last.plain and user.last.message_id == ask  # edited in place
    count = len(user.messages)
    await user.press_data("x:yes", ask)  # the second tap: the message already says so
    assert len(user.messages) == count
    await user.send_text("/delete")
    ask = user.last.message_id
    user.chat.by_id[ask].deleted = True  # deleted on the relative's phone meanwhile
    await user.press_data("del:yes", ask)
    assert "deleted" in user.last.plain.lower() and user.last.message_id != ask
    assert await bot.d.users.get(3010) is None
    assert bot.app.bot_data.errors.total == 0
