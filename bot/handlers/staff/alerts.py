"""New-case alerts: through the outbox, at most BOT_ALERTS_PER_HOUR, then an hourly digest.

An alert carries no names (only the number, language, counts and prefecture). It is queued in
the outbox together with a record that the case was announced (case_alerts), so it is sent
until Telegram takes it, across restarts; a case the bot had no time to announce (a crash right
after the submit) is announced at the next start. When the staff chat refuses it (the bot was
removed, the id is wrong), each staff member gets it privately instead, and `python -m bot
check` says what is wrong with BOT_STAFF_CHAT_ID. Past BOT_ALERTS_PER_HOUR alerts in the last
hour (a flood of reports), cases wait for one digest an hour listing their numbers.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from telegram import InlineKeyboardMarkup
from telegram.ext import ContextTypes

from bot.handlers import access
from bot.handlers.common import Deps, esc
from bot.handlers.staff.base import _wf, notice_targets, staff_language
from bot.i18n import Translator, translator
from bot.services.outbox import (
    AnyApp,
    outbox_repository,
    register_outbox_hook,
    send_outbox_now,
    wake_outbox,
)
from bot.storage.outbox import BLOCKED, FAILED, OutboxRow
from bot.storage.staff import CaseInfo
from bot.storage.staff_messages import ALERT, DIGEST_PENDING, CaseAlerts

log = logging.getLogger(__name__)

ALERT_KIND = "case_alert"
DIGEST_KIND = "case_digest"
DIGEST_SECONDS = 3600.0
DIGEST_LISTED = 200  # numbers listed in one digest; the rest are counted

AlertText = Callable[[Deps, CaseInfo, Translator], Awaitable[tuple[str, InlineKeyboardMarkup]]]


def _deps(app: AnyApp) -> Deps:
    d: Deps = app.bot_data["deps"]
    return d


async def announce(app: AnyApp, number: str, text: AlertText) -> None:
    """Queue the alert of case `number` (once), or leave it for the digest past the limit."""
    d = _deps(app)
    case = await _wf(d).case(number)
    if case is None:
        return
    alerts = CaseAlerts(d.db)
    now = time.time()
    over = await alerts.alerts_since(now - DIGEST_SECONDS) >= d.settings.alerts_per_hour
    messages = []
    if not over:
        for chat_id, lang in await notice_targets(d):
            body, kb = await text(d, case, translator(lang))
            messages.append((chat_id, body, kb))
    outbox = outbox_repository(d)
    queued: list[int] = []
    meta = json.dumps({"case": number})
    async with d.db.transaction() as conn:
        if not await alerts.claim(conn, case.case_id, DIGEST_PENDING if over else ALERT, now):
            return  # already announced
        for chat_id, body, kb in messages:
            outbox_id = await outbox.enqueue(
                conn, chat_id, body, "HTML", kb.to_json(), kind=ALERT_KIND,
                dedup_key=f"case:{case.case_id}:alert:{chat_id}", meta=meta)
            if outbox_id is not None:
                queued.append(outbox_id)
    if over:
        log.info("new-case alerts over the hourly limit: the case waits for the digest")
    for outbox_id in queued:
        await send_outbox_now(app, outbox_id)


async def announce_missed(app: AnyApp, text: AlertText) -> None:
    """Announce every case that has no alert yet (the bot stopped right after its submit)."""
    d = _deps(app)
    for number in await CaseAlerts(d.db).unannounced():
        await announce(app, number, text)


async def send_digest(app: AnyApp) -> int:
    """One message listing the cases left out of alerts in the last hour; returns how many."""
    d = _deps(app)
    targets = await notice_targets(d)
    outbox = outbox_repository(d)
    queued: list[int] = []
    async with d.db.transaction() as conn:
        numbers = await CaseAlerts(d.db).take_digest(conn)
        if not numbers:
            return 0
        for chat_id, lang in targets:
            t = translator(lang)
            listed = ", ".join(f"<code>{esc(n)}</code>" for n in numbers[:DIGEST_LISTED])
            if len(numbers) > DIGEST_LISTED:
                listed += ", …"
            body = "🗂 " + t.ngettext(
                "<b>%(count)s new case</b> while alerts were paused (more than %(limit)s an "
                "hour):", "<b>%(count)s new cases</b> while alerts were paused (more than "
                "%(limit)s an hour):", len(numbers)) % {
                    "count": len(numbers), "limit": d.settings.alerts_per_hour}
            body += "\n" + listed + "\n" + esc(t._("Send /cases new to see the new cases, the "
                                                   "oldest first."))
            outbox_id = await outbox.enqueue(
                conn, chat_id, body, "HTML", kind=DIGEST_KIND,
                dedup_key=f"digest:{numbers[0]}:{len(numbers)}:{chat_id}")
            if outbox_id is not None:
                queued.append(outbox_id)
    for outbox_id in queued:
        await send_outbox_now(app, outbox_id)
    return len(numbers)


async def _alert_refused(app: AnyApp, row: OutboxRow, outcome: str,
                         message_id: int | None) -> None:
    """Outbox hook: the staff chat refused an alert; each staff member gets it privately."""
    d = _deps(app)
    if outcome not in (BLOCKED, FAILED) or row.chat_id != d.settings.staff_chat_id:
        return
    log.error("the staff chat (BOT_STAFF_CHAT_ID) refused a new-case alert; sending it to "
              "staff privately (python -m bot check tells what is wrong)")
    text: AlertText = app.bot_data["alert_text"]
    number = str(json.loads(row.meta or "{}").get("case", ""))
    case = await _wf(d).case(number)
    if case is None:
        return
    outbox = outbox_repository(d)
    for uid in await access.staff_ids(d):
        body, kb = await text(d, case, translator(await staff_language(d, uid)))
        await outbox.enqueue(d.db, uid, body, "HTML", kb.to_json(), kind=ALERT_KIND,
                             dedup_key=f"case:{case.case_id}:alert:{uid}")
    wake_outbox(app)


async def _digest_job(context: ContextTypes.DEFAULT_TYPE) -> None:
    await send_digest(context.application)


async def _missed_job(context: ContextTypes.DEFAULT_TYPE) -> None:
    await announce_missed(context.application, context.application.bot_data["alert_text"])


def install(app: Any, text: AlertText) -> None:
    app.bot_data["alert_text"] = text
    register_outbox_hook(app, ALERT_KIND, _alert_refused)
    if app.job_queue is not None:
        app.job_queue.run_repeating(_digest_job, interval=DIGEST_SECONDS, first=DIGEST_SECONDS,
                                    name="case-digest")
        app.job_queue.run_once(_missed_job, when=2.0, name="case-alerts-missed")
