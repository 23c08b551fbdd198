"""What a broadcast says: the message each language group receives (with how to opt out), its
visible length as Telegram counts it, and the admin's progress and final report.

Pure text (no sending): bot/services/broadcast.py sends, bot/handlers/admin.py and
bot/services/broadcast_cli.py compose. Re-exported by bot.services.broadcast.
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta

from babel.dates import format_timedelta
from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from bot.i18n import N_, Translator, translator

FOOTER = N_("To stop receiving news from us, press the button below.")
STOP_NEWS_BUTTON = N_("Stop receiving news")
CANCEL_BUTTON = N_("Stop sending")


# ----------------------------------------------------------------------------- messages


def message_html(texts: Mapping[str, str], fallback: str, language: str) -> str:
    """The message a language group receives: its text (or the fallback's) and how to opt out."""
    body = texts.get(language) or texts[fallback]
    return f"{body}\n\n<i>{translator(language)._(FOOTER)}</i>"


_TAG = re.compile(r"<[^>]+>")


def visible_text(text_html: str) -> str:
    """An HTML message as Telegram shows it, without its formatting."""
    return html.unescape(_TAG.sub("", text_html))


def visible_length(text_html: str) -> int:
    """Length of an HTML message as Telegram counts it (UTF-16 units, tags removed)."""
    return len(visible_text(text_html).encode("utf-16-le")) // 2


# ----------------------------------------------------------------------------- progress


@dataclass(frozen=True, slots=True)
class Tally:
    """Recipients of one broadcast by what became of them."""

    sent: int = 0
    blocked: int = 0
    failed: int = 0
    skipped: int = 0
    cancelled: int = 0
    remaining: int = 0

    @classmethod
    def of(cls, counts: Mapping[str, int]) -> Tally:
        return cls(sent=counts.get("sent", 0), blocked=counts.get("blocked", 0),
                   failed=counts.get("failed", 0), skipped=counts.get("skipped", 0),
                   cancelled=counts.get("cancelled", 0),
                   remaining=counts.get("pending", 0) + counts.get("sending", 0))

    @property
    def done(self) -> int:
        return self.sent + self.blocked + self.failed + self.skipped


def _duration(t: Translator, seconds: float) -> str:
    return format_timedelta(timedelta(seconds=max(1, round(seconds))), locale=t.locale,
                            threshold=1.1)


def progress_text(t: Translator, broadcast_id: int, tally: Tally, eta: float | None) -> str:
    n = t.format_number
    lines = [
        t._("📣 <b>Broadcast #%(id)s</b>: sending") % {"id": broadcast_id},
        t._("Sent: %(n)s") % {"n": n(tally.sent)},
        t._("Blocked the bot: %(n)s") % {"n": n(tally.blocked)},
        t._("Failed: %(n)s") % {"n": n(tally.failed)},
        t._("Remaining: %(n)s") % {"n": n(tally.remaining)},
    ]
    if eta is not None and tally.remaining:
        lines.append(t._("Time left: about %(time)s") % {"time": _duration(t, eta)})
    return "\n".join(lines)


def report_text(t: Translator, broadcast_id: int, tally: Tally, seconds: float,
                cancelled: bool, reasons: list[tuple[str, int]]) -> str:
    n = t.format_number
    head = (t._("📣 <b>Broadcast #%(id)s was stopped</b> after %(time)s.") if cancelled
            else t._("📣 <b>Broadcast #%(id)s is finished</b> after %(time)s."))
    lines = [
        head % {"id": broadcast_id, "time": _duration(t, seconds)},
        t._("Sent: %(n)s") % {"n": n(tally.sent)},
        t._("Blocked the bot: %(n)s (marked inactive, they will not be sent news again)")
        % {"n": n(tally.blocked)},
        t._("Failed: %(n)s") % {"n": n(tally.failed)},
    ]
    if tally.skipped:
        lines.append(t._("Turned updates off meanwhile: %(n)s") % {"n": n(tally.skipped)})
    if cancelled:
        lines.append(t._("Not sent because of the stop: %(n)s")
                     % {"n": n(tally.cancelled + tally.remaining)})
    if reasons:
        lines.append(t._("Why sending failed:"))
        lines.extend(f"• <code>{html.escape(reason, quote=False)}</code>: {n(count)}"
                     for reason, count in reasons)
    return "\n".join(lines)


def stop_keyboard(t: Translator, broadcast_id: int) -> InlineKeyboardMarkup:
    label = "⏹ " + t._(CANCEL_BUTTON)
    return InlineKeyboardMarkup(
        [[InlineKeyboardButton(label, callback_data=f"bc:-:stop:{broadcast_id}")]])
