"""The wiring in bot/app.py: one ordered handler table, one gate, a typed application context."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from telegram.ext import CallbackQueryHandler, CommandHandler, TypeHandler

from bot import app as wiring
from bot.config import Settings
from bot.context import BotData, Context
from bot.handlers import common
from bot.handlers.access import Gate, gate_of
from bot.services.broadcast import ActivityMeter

PREFIXES = [common.LANGUAGE_PREFIX, common.FORM_PREFIX, common.CANCEL_PREFIX,
            common.MENU_PREFIX, common.DELETE_PREFIX, common.CLEAN_CHAT_PREFIX,
            common.STAFF_PREFIX, common.BROADCAST_PREFIX]


async def test_the_table_routes_every_command_and_prefix_once(tmp_path: Path) -> None:
    settings = Settings(token="1:x", data_dir=tmp_path, staff_chat_id=-100,
                        admin_ids=frozenset({1}))
    d = await wiring.open_deps(settings)
    try:
        gate = wiring.build_gate()
        table = wiring.handler_table(d, gate, ActivityMeter())
    finally:
        await d.db.close()
    groups = [group for group, _ in table]
    assert groups == sorted(groups)  # the table reads in the order the groups run
    assert groups[0] == wiring.METER_GROUP and groups[-1] == wiring.AFTER_GROUP
    gates = [h for g, h in table if isinstance(h, TypeHandler) and isinstance(h.callback, Gate)]
    assert [g for g, h in table if h in gates] == [wiring.GATE_GROUP]  # one gate
    commands = Counter(name for _, h in table if isinstance(h, CommandHandler)
                       for name in h.commands)
    assert all(n == 1 for n in commands.values()), commands
    assert set(gate.commands) <= set(commands)  # every gated command has its handler
    patterns = Counter(h.pattern.pattern for _, h in table  # type: ignore[union-attr]
                       if isinstance(h, CallbackQueryHandler) and h.pattern is not None)
    assert all(patterns[f"^{prefix}"] == 1 for prefix in PREFIXES), patterns
    assert len(set(PREFIXES)) == len(PREFIXES)
    # No prefix is the start of another: a button is routed by the first that matches.
    assert not [(a, b) for a in PREFIXES for b in PREFIXES if a != b and b.startswith(a)]
    assert set(gate.buttons) == {common.STAFF_PREFIX, common.BROADCAST_PREFIX}


async def test_the_application_context_is_typed(tmp_path: Path) -> None:
    d = await wiring.open_deps(Settings(token="1:x", data_dir=tmp_path))
    try:
        app = wiring.build_application(d, rate_limit=False)
        assert isinstance(app.bot_data, BotData) and app.bot_data.deps is d
        assert app.context_types.context is Context
        assert app.bot_data.flood_guard is not None and app.bot_data.meter is not None
        assert app.bot_data.outbox is None and app.bot_data.broadcasts is None  # not running
        assert gate_of(app) is not None and common.deps_of(app) is d
    finally:
        await d.db.close()
