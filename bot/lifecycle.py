"""The one start/stop sequence of a running bot: `async with running(app, settings, updates):`.

`python -m bot run` (bot/runner.py, which the sandbox and the crash tests run too) and the
end-to-end harness (tests/e2e/conftest.py) all start and stop the bot through it.

Start: initialize (getMe), the command menus, the daily jobs (backup, purge of abandoned
drafts) and the one-off re-sending of questions relatives may not have on screen,
`app.start()` (handlers and job queue), the outbox sender (it sends what a previous run left
pending), the broadcast sender, and last the updates (`updates`: long polling or a webhook),
so that no update is handled before everything it may call runs.

Stop, in this order (each step best-effort): no new updates; the broadcast sender finishes the
messages in flight while the bot can still call Telegram; `app.stop()` lets the updates in hand
finish; the outbox sends what they queued; `app.shutdown()`. The caller closes the database
after that.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import time as dtime
from typing import Any

from telegram.ext import Updater

from bot.app import set_command_menus
from bot.config import Settings
from bot.context import AnyApp
from bot.evidence.intake import start_vault, stop_vault
from bot.handlers import privacy, relative, staff
from bot.services import takeback
from bot.services.backup import schedule_backups
from bot.services.broadcast import start_background, stop_background
from bot.services.outbox import start_outbox, stop_outbox

log = logging.getLogger(__name__)

#: Starts taking updates: long polling or a webhook (bot/runner.py), or a test's polling. What
#: it returns, when callable, is awaited first on the way out: it stops a webhook server.
StartUpdates = Callable[[Updater], Awaitable[Any]]

PURGE_AT = dtime(3, 30)  # abandoned drafts are purged daily at this time (UTC)


@contextlib.asynccontextmanager
async def running(app: AnyApp, settings: Settings, updates: StartUpdates
                  ) -> AsyncIterator[AnyApp]:
    """Start `app` and everything around it; stop them in order when the block ends.

    An exception while starting (an invalid token, Telegram out of reach, a port in use)
    propagates after what had started is stopped again.
    """
    started = False
    stop_updates: Any = None
    try:
        await app.initialize()
        await set_command_menus(app)
        schedule_jobs(app, settings)
        await app.start()
        started = True
        await start_outbox(app)
        await start_vault(app)  # fetches every file relatives send into the evidence vault
        await start_background(app)
        assert app.updater is not None
        stop_updates = await updates(app.updater)
        yield app
    finally:
        await _stop(app, started, stop_updates if callable(stop_updates) else None)


def schedule_jobs(app: AnyApp, settings: Settings) -> None:
    """The daily jobs (the sealed backup at BOT_BACKUP_TIME, the purge of old drafts), the
    hourly digest of new cases, and the deletion of what staff were sent."""
    schedule_backups(app, settings)
    if app.job_queue is not None:
        app.job_queue.run_daily(privacy.purge_job, time=PURGE_AT, name="purge-drafts")
        # Once, just after start: questions that may not have reached relatives mid-answer.
        app.job_queue.run_once(relative.resend_unseen_job, 0.5, name="resend-unseen")
    staff.alerts.schedule_jobs(app)  # the hourly digest of new cases, missed alerts
    takeback.schedule(app, settings.card_ttl_hours)  # what staff were sent, deleted


async def _stop(app: AnyApp, started: bool,
                stop_updates: Callable[[], Awaitable[Any]] | None = None) -> None:
    if stop_updates is not None:
        try:
            await stop_updates()
        except Exception as exc:
            log.warning("stopping the webhook server failed: %s", type(exc).__name__)
    if app.updater is not None and app.updater.running:
        try:
            await app.updater.stop()
        except Exception as exc:
            log.warning("stopping the updater failed: %s", type(exc).__name__)
    if started:
        try:
            await stop_background(app)
        except Exception as exc:
            log.warning("stopping the broadcast sender failed: %s", type(exc).__name__)
    if started:
        with contextlib.suppress(Exception):
            await stop_vault(app)  # a download in flight is cut short, retried at the start
    if started and app.running:
        await app.stop()  # waits for the updates being processed
    if started:
        try:
            await stop_outbox(app)
        except Exception as exc:
            log.warning("stopping the outbox failed: %s", type(exc).__name__)
    with contextlib.suppress(Exception):
        await app.shutdown()
