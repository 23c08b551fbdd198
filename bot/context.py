"""The running bot's shared objects, typed: python-telegram-bot's ContextTypes pattern.

`BotData` replaces the string keys that used to live in `application.bot_data`: the
Application is built with `ContextTypes(context=Context, bot_data=BotData)` (bot/app.py), so
`app.bot_data` *is* a `BotData` and every field is checked by mypy and found by "go to
definition". build_application fills it once; the life cycle (bot/lifecycle.py) sets the two
senders while they run. Handlers read it through the thin accessors (`deps(context)`,
`outbox_sender(app)`, `sender_of(app)`), or through `Context.deps` in new code, as
python-telegram-bot's examples/contexttypesbot.py does.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from telegram.ext import Application, CallbackContext, ExtBot

from bot.errors import ErrorReport

if TYPE_CHECKING:
    from bot.casework.live import LiveIndex
    from bot.evidence.vault import VaultWorker
    from bot.handlers.common import Deps
    from bot.handlers.privacy import FloodGuard
    from bot.services.broadcast import ActivityMeter, BroadcastSender
    from bot.services.outbox import AppHook, OutboxSender

#: Any python-telegram-bot Application (the one alias of it in bot/).
AnyApp = Application[Any, Any, Any, Any, Any, Any]
#: Staff's announcement of a submitted case, given the case number (staff.announce_case).
CaseAnnouncer = Callable[[Any, str], Awaitable[None]]
#: Sets a person's "/" menu for their role and language (menus.set_personal_menu).
MenuSetter = Callable[..., Awaitable[None]]


@dataclass(slots=True)
class BotData:
    """Everything the handlers of one Application share; `app.bot_data` is one of these."""

    deps: Deps | None = None
    flood_guard: FloodGuard | None = None
    errors: ErrorReport = field(default_factory=ErrorReport)
    meter: ActivityMeter | None = None
    # Set by the life cycle while they run (bot/lifecycle.py).
    outbox: OutboxSender | None = None
    broadcasts: BroadcastSender | None = None
    vault: VaultWorker | None = None  # the evidence vault's fetcher (bot/evidence/intake.py)
    # What an outbox row's kind runs once its outcome is known (register_outbox_hook).
    outbox_hooks: dict[str, AppHook] = field(default_factory=dict)
    # Calls from the relative's journey into staff code, which it cannot import (staff.py
    # imports relative.py): wired in bot/app.py.
    announce_case: CaseAnnouncer | None = None
    personal_menu: MenuSetter | None = None
    # The in-memory person index for /find and duplicates (bot/casework/live.py).
    person_index: LiveIndex | None = None


class Context(CallbackContext[ExtBot[None], dict[Any, Any], dict[Any, Any], BotData]):
    """The `context` every handler gets, with typed shortcuts to the bot's shared objects."""

    @property
    def data(self) -> BotData:
        return self.bot_data

    @property
    def deps(self) -> Deps:
        d = self.bot_data.deps
        assert d is not None, "build_application sets deps"
        return d


def bot_data(app: AnyApp) -> BotData:
    """`app.bot_data`, checked: every Application of this bot is built with BotData."""
    data = app.bot_data
    if not isinstance(data, BotData):
        raise TypeError("the Application was not built by bot.app.build_application")
    return data


def data_of(context: CallbackContext[Any, Any, Any, Any]) -> BotData:
    """The BotData of the application a handler or job runs in."""
    return bot_data(context.application)
