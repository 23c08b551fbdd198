"""`run`'s siblings: `sandbox`, `migrate` and `check` (`run` itself is bot.runner.run_bot)."""

from __future__ import annotations

import asyncio
from typing import Any

from bot.cli.common import _err
from bot.config import Settings
from bot.runner import run_bot

#: The people of `sandbox --as`: (user id, first name, @username, language) per role.
SANDBOX_CAST = {"relative": (1, "Айгүл", None, "kk"), "staff": (2, "Arman", "arman", "ru"),
                "admin": (3, "Dana", "dana", "en")}
SANDBOX_GROUP = -1001


async def sandbox(settings: Settings, role: str | None = None) -> int:
    """Start the offline emulator, run the bot against it, and chat in this terminal.

    With `role` (relative, staff or admin) the sandbox has one person per role and a staff
    group, and the terminal can switch between them (/as) and write in the group (/group).
    """
    from bot.sandbox.emulator import Emulator
    from bot.sandbox.terminal import Cast, chat_in_terminal

    emulator = Emulator()
    await emulator.start()
    # Its own data folder, keys included: sandbox chats never mix with real cases.
    update: dict[str, Any] = {"token": emulator.token, "api_base_url": emulator.base_url,
                              "data_dir": settings.data_dir / "sandbox", "webhook_url": "",
                              "public_key_file": None, "private_key_file": None,
                              "draft_key_file": None}
    cast = None
    if role is not None:
        users = {r: emulator.user(uid, first_name=name, username=username, language_code=lang)
                 for r, (uid, name, username, lang) in SANDBOX_CAST.items()}
        group = emulator.group(SANDBOX_GROUP, title="Volunteers")
        group.state.known = True  # the bot was added to the staff group
        cast = Cast(users, group)
        update.update(admin_ids=frozenset({SANDBOX_CAST["admin"][0]}),
                      staff_ids=frozenset({SANDBOX_CAST["staff"][0]}),
                      staff_chat_id=SANDBOX_GROUP)
    local = settings.model_copy(update=update)
    stop = asyncio.Event()
    bot_task = asyncio.create_task(run_bot(local, webhook=False, stop=stop))
    print(f"Sandbox: a local Bot API emulator at {emulator.base_url}; data in "
          f"{local.data_dir}. Type /start. Numbers press buttons; /quit ends.")
    try:
        if cast is not None and role is not None:
            await chat_in_terminal(emulator, cast=cast, role=role)
        else:
            await chat_in_terminal(emulator)
    finally:
        stop.set()
        await bot_task
        await emulator.stop()
    return 0


async def migrate(settings: Settings) -> int:
    """Apply the database migrations not yet applied, and say which."""
    from bot.storage.db import Database

    db = await Database.open(settings.db_path, migrate=False)
    try:
        applied = await db.migrate()
        print(f"schema version {await db.schema_version()}; applied now: {applied or 'none'}")
    finally:
        await db.close()
    return 0


async def check(settings: Settings) -> int:
    """Validate the set-up; exit 0 only when all is well, else one line per problem."""
    from bot.checks import run_checks

    report = await run_checks(settings)
    if report.ok:
        print("ok: " + "; ".join(report.facts))
        return 0
    for problem in report.problems:
        _err(problem)
    return 2
