"""What every handler shares: its dependencies, callback-data codecs, keyboards, safe HTML."""

from __future__ import annotations

import html
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from telegram import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Message
from telegram.error import BadRequest
from telegram.ext import CallbackContext

from bot.config import Settings
from bot.context import AnyApp, bot_data
from bot.errors import NOT_MODIFIED, is_harmless
from bot.form.engine import Media
from bot.form.model import Form
from bot.services.crypto import Keyring
from bot.storage.cases import CaseRepository
from bot.storage.db import Database
from bot.storage.drafts import DraftRepository
from bot.storage.users import UserRepository

MAX_MESSAGE = 4096
CALLBACK_LIMIT = 64


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(slots=True)
class Deps:
    """Everything a handler needs, built once in app.py and kept in BotData (bot/context.py)."""

    settings: Settings
    db: Database
    keys: Keyring
    users: UserRepository
    drafts: DraftRepository
    cases: CaseRepository
    form: Form
    now: Callable[[], datetime] = utcnow

    def now_iso(self) -> str:
        """The time now as stored in the database (ISO 8601, UTC, whole seconds)."""
        return self.now().isoformat(timespec="seconds")


def deps(context: CallbackContext[Any, Any, Any, Any]) -> Deps:
    """The Deps of the application a handler runs in (typed: bot/context.py)."""
    return deps_of(context.application)


def deps_of(app: AnyApp) -> Deps:
    d = bot_data(app).deps
    assert d is not None, "build_application sets deps"
    return d


MEDIA_KINDS = ("voice", "audio", "video", "video_note", "document")


def media_of(message: Message) -> Media | None:
    """The file a message carries (of a photo, its largest size); None for anything else.

    A GIF (animation) also carries a document: it is not a file we take.
    """
    if message.animation is not None:
        return None
    for kind in MEDIA_KINDS:
        obj = getattr(message, kind)
        if obj is not None:
            duration = getattr(obj, "duration", None)
            if isinstance(duration, timedelta):
                duration = int(duration.total_seconds())
            return Media(kind=kind, file_id=obj.file_id, file_unique_id=obj.file_unique_id,
                         size=obj.file_size, duration=duration,
                         name=getattr(obj, "file_name", None),
                         mime=getattr(obj, "mime_type", None))
    if message.photo:
        best = message.photo[-1]
        return Media(kind="photo", file_id=best.file_id, file_unique_id=best.file_unique_id,
                     size=best.file_size)
    return None


def esc(text: Any) -> str:
    """Escape a user-provided value for HTML parse mode."""
    return html.escape(str(text), quote=False)


def shorten(text: str, limit: int) -> str:
    text = text.strip()
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


# ----------------------------------------------------------------------------- callback data
# Every button carries "<kind>:<fields>" in at most 64 bytes. Form buttons carry the draft's
# step counter, so a press on an old message can never be applied to the current question.

# The kinds, as the prefix of the data; bot/app.py routes each prefix to its handler.
LANGUAGE_PREFIX = "L:"  # L:<lang>, the language choice
FORM_PREFIX = "f:"  # f:<seq>:<action>[:<arg>], a questionnaire button
CANCEL_PREFIX = "x:"  # x:yes|no, discarding the report in progress
MENU_PREFIX = "m:"  # m:new|status|lang|help[:k], the relative's menu (k: under a text, kept)
MYDATA_PREFIX = "md:"  # md:file, /mydata's copy as a file
UPDATES_PREFIX = "u:"  # u:on|off, news from the organisation on or off
DELETE_PREFIX = "del:"  # del:yes|no, /delete's confirmation
CLEAN_CHAT_PREFIX = "cc:"  # cc:<first>:<last>, taking the answers off the chat after submission
STAFF_PREFIX = "s:"  # s:<action>:<case>:<arg>:<tag>, signed staff buttons (access.py)
BROADCAST_PREFIX = "bc:"  # bc:<nonce>:<action>[:<arg>], an admin's broadcast draft (admin.py)


async def edit_or_send(query: CallbackQuery, text: str,
                       markup: InlineKeyboardMarkup | None = None) -> None:
    """Put `text` in place of the pressed message, or send it when that message cannot be
    edited any more (deleted, too old, or pressed twice: then nothing is sent again)."""
    try:
        await query.edit_message_text(text, reply_markup=markup)
    except BadRequest as exc:
        if is_harmless(exc, (NOT_MODIFIED,)):
            return
        await query.get_bot().send_message(query.from_user.id, text, reply_markup=markup)


def form_data(seq: int, action: str, arg: str = "") -> str:
    data = f"{FORM_PREFIX}{seq}:{action}" + (f":{arg}" if arg else "")
    if len(data.encode()) > CALLBACK_LIMIT:
        raise ValueError("callback data over 64 bytes")
    return data


def parse_form_data(data: str) -> tuple[int, str, str] | None:
    parts = data.split(":", 3)
    # isdigit() alone lets "²" through, which int() refuses: only ASCII digits are a step.
    if len(parts) < 3 or f"{parts[0]}:" != FORM_PREFIX \
            or not (parts[1].isascii() and parts[1].isdigit()):
        return None
    return int(parts[1]), parts[2], parts[3] if len(parts) > 3 else ""


def button(text: str, data: str) -> InlineKeyboardButton:
    return InlineKeyboardButton(text, callback_data=data)


def keyboard(rows: Sequence[Sequence[InlineKeyboardButton]]) -> InlineKeyboardMarkup | None:
    rows = [list(r) for r in rows if r]
    return InlineKeyboardMarkup(rows) if rows else None


def rows_of(buttons: Sequence[InlineKeyboardButton], *, width: int
            ) -> list[list[InlineKeyboardButton]]:
    """Lay buttons out `width` to a row, one to a row when any label is long (small screens)."""
    if any(len(b.text) > 18 for b in buttons):
        width = 1
    return [list(buttons[i : i + width]) for i in range(0, len(buttons), width)]


# ----------------------------------------------------------------------------- long messages


def split_html(blocks: Sequence[str], limit: int = MAX_MESSAGE) -> list[str]:
    """Join blocks into messages under `limit`, never splitting inside a block.

    Each block must be balanced HTML on its own (every block we build is). A single block over
    the limit is cut at a line break, with its tags closed; callers keep blocks short.
    """
    messages: list[str] = []
    current = ""
    for block in blocks:
        for piece in _fit(block, limit):
            candidate = f"{current}\n\n{piece}" if current else piece
            if len(candidate) <= limit:
                current = candidate
            else:
                messages.append(current)
                current = piece
    if current:
        messages.append(current)
    return messages


def _fit(block: str, limit: int) -> list[str]:
    if len(block) <= limit:
        return [block]
    out, current = [], ""
    for line in block.split("\n"):
        while len(line) > limit:  # a single enormous line: only plain text gets this long
            out.append(line[:limit])
            line = line[limit:]
        if len(current) + len(line) + 1 > limit:
            out.append(current)
            current = line
        else:
            current = f"{current}\n{line}" if current else line
    if current:
        out.append(current)
    return out
