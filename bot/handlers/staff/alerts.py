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

from telegram import InlineKeyboardMarkup
from telegram.ext import ContextTypes

from bot.context import AnyApp
from bot.handlers import access
from bot.handlers.access import button_data
from bot.handlers.common import Deps, button, deps_of, esc
from bot.handlers.staff.base import _wf, notice_targets, staff_language
from bot.handlers.staff_view import announcement
from bot.i18n import Translator, translator
from bot.services.outbox import (
    outbox_repository,
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

#: Announcements carry no names: they stay in every staff member's chat list and notifications.
#: A constant, not a setting, until the organisation decides otherwise.
SHOW_NAMES_IN_ANNOUNCEMENTS = False


async def alert_text(d: Deps, case: CaseInfo, t: Translator
                     ) -> tuple[str, InlineKeyboardMarkup]:
    """The alert of a new case (numbers and places only), with Open and Take buttons."""
    names: list[str] = []
    if SHOW_NAMES_IN_ANNOUNCEMENTS and not d.keys.offline:
        data = await d.cases.data(case.number) or {}
        names = [str(p.get("full_name", "")) for p in data.get("persons") or []]
    from bot.handlers.casework import link_lines  # possible duplicates, by number only

    kb = InlineKeyboardMarkup([[
        button("📂 " + t._("Open"), button_data(d, "open", case.case_id)),
        button("✋ " + t._("Take"), button_data(d, "take", case.case_id))]])
    return announcement(t, d.form, case, names) + await link_lines(d, t, case), kb


async def announce(app: AnyApp, number: str) -> None:
    """Queue the alert of case `number` (once), or leave it for the digest past the limit."""
    d = deps_of(app)
    case = await _wf(d).case(number)
    if case is None:
        return
    alerts = CaseAlerts(d.db)
    now = time.time()
    over = await alerts.alerts_since(now - DIGEST_SECONDS) >= d.settings.alerts_per_hour
    messages = []
    if not over:
        for chat_id, lang in await notice_targets(d):
            body, kb = await alert_text(d, case, translator(lang))
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


async def announce_missed(app: AnyApp) -> None:
    """Announce every case that has no alert yet (the bot stopped right after its submit)."""
    d = deps_of(app)
    for number in await CaseAlerts(d.db).unannounced():
        await announce(app, number)


async def send_digest(app: AnyApp) -> int:
    """One message listing the cases left out of alerts in the last hour; returns how many."""
    d = deps_of(app)
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


async def alert_refused(app: AnyApp, row: OutboxRow, outcome: str,
                         message_id: int | None) -> None:
    """Outbox hook: the staff chat refused an alert; each staff member gets it privately."""
    d = deps_of(app)
    if outcome not in (BLOCKED, FAILED) or row.chat_id != d.settings.staff_chat_id:
        return
    log.error("the staff chat (BOT_STAFF_CHAT_ID) refused a new-case alert; sending it to "
              "staff privately (python -m bot check tells what is wrong)")
    number = str(json.loads(row.meta or "{}").get("case", ""))
    case = await _wf(d).case(number)
    if case is None:
        return
    outbox = outbox_repository(d)
    for uid in await access.staff_ids(d):
        body, kb = await alert_text(d, case, translator(await staff_language(d, uid)))
        await outbox.enqueue(d.db, uid, body, "HTML", kb.to_json(), kind=ALERT_KIND,
                             dedup_key=f"case:{case.case_id}:alert:{uid}")
    wake_outbox(app)


async def _digest_job(context: ContextTypes.DEFAULT_TYPE) -> None:
    await send_digest(context.application)


async def _missed_job(context: ContextTypes.DEFAULT_TYPE) -> None:
    await announce_missed(context.application)


def schedule_jobs(app: AnyApp) -> None:
    """The hourly digest, and (once, just after the start) the alerts a stop cut short."""
    if app.job_queue is not None:
        app.job_queue.run_repeating(_digest_job, interval=DIGEST_SECONDS, first=DIGEST_SECONDS,
                                    name="case-digest")
        app.job_queue.run_once(_missed_job, when=2.0, name="case-alerts-missed")
