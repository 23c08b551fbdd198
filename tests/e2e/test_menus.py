"""Command menus: relatives see theirs; staff and admins also see their own, in their language."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.handlers import admin, staff
from bot.i18n import LANGUAGE_NAMES, translator
from bot.sandbox.emulator import Emulator
from bot.sandbox.simusers import SimUser
from tests.e2e.conftest import BotRunner
from tests.journeys import start

ADMIN, STAFF, NEWCOMER, RELATIVE = 8001, 8002, 8003, 8004
RELATIVE_COMMANDS = {"start", "new", "status", "language", "cancel", "help", "mydata", "delete",
                     "stop_updates", "start_updates"}
STAFF_ONLY = set(staff.COMMANDS) - {"staff"} | {"stats"}
ADMIN_ONLY = {"staff", "broadcast", "broadcast_cancel"}


@pytest.fixture
async def menu_bot(emulator: Emulator, tmp_path: Path) -> AsyncIterator[BotRunner]:
    runner = BotRunner(emulator, tmp_path / "data", admin_ids=frozenset({ADMIN}),
                       staff_ids=frozenset({STAFF}))
    await runner.start()
    try:
        yield runner
    finally:
        await runner.stop()


def names(user: SimUser) -> set[str]:
    return {name for name, _ in user.commands}


async def test_each_role_sees_its_commands_in_its_language(emulator: Emulator,
                                                           menu_bot: BotRunner) -> None:
    relative = emulator.user(RELATIVE, language_code="kk")
    await start(relative, "kk")
    assert names(relative) == RELATIVE_COMMANDS

    worker = emulator.user(STAFF, language_code="ru")
    await worker.send_text("/start")  # staff get their welcome; the language from its button
    assert "/find" in worker.last.plain
    await worker.press("🌐 Language")
    await worker.press(LANGUAGE_NAMES["ru"])
    assert names(worker) == RELATIVE_COMMANDS | STAFF_ONLY
    described = dict(worker.commands)
    usage = translator("ru")._(staff.COMMANDS["case"].usage)
    assert described["case"] == usage.partition(": ")[2]  # Russian, without "/case NUMBER"
    assert described["stats"] == translator("ru")._(admin.USAGES["stats"]).partition(": ")[2]

    boss = emulator.user(ADMIN, language_code="en")
    await boss.send_text("/start")  # admins too
    await boss.press("🌐 Language")
    await boss.press(LANGUAGE_NAMES["en"])
    assert names(boss) == RELATIVE_COMMANDS | STAFF_ONLY | ADMIN_ONLY
    assert all(0 < len(text) <= 256 for _, text in boss.commands)

    # /staffhelp lists the same commands, with their arguments.
    await worker.send_text("/staffhelp")
    assert "/stats:" in worker.last.plain and "/broadcast" not in worker.last.plain
    await boss.send_text("/staffhelp")
    assert "/broadcast_cancel:" in boss.last.plain and "/staff list" in boss.last.plain

    # At start-up everyone with a role gets their menu again (e.g. after a new release).
    del emulator.world.commands[(f"chat:{STAFF}", "")]
    assert names(worker) == RELATIVE_COMMANDS  # falls back to the all-private-chats menu
    await menu_bot.restart()
    assert names(worker) == RELATIVE_COMMANDS | STAFF_ONLY


async def test_adding_and_removing_staff_changes_their_menu(emulator: Emulator,
                                                            menu_bot: BotRunner) -> None:
    boss = emulator.user(ADMIN, language_code="en")
    newcomer = emulator.user(NEWCOMER, language_code="ru")
    await start(newcomer, "ru")
    assert names(newcomer) == RELATIVE_COMMANDS
    await boss.send_text(f"/staff add {NEWCOMER}")
    assert names(newcomer) == RELATIVE_COMMANDS | STAFF_ONLY
    assert dict(newcomer.commands)["cases"] == translator("ru")._(
        staff.COMMANDS["cases"].usage).partition(": ")[2]
    await boss.send_text(f"/staff remove {NEWCOMER}")
    assert names(newcomer) == RELATIVE_COMMANDS
