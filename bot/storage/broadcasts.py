"""Broadcast SQL: the durable queue (one row per recipient), its outcomes, and admins' drafts.

The sender's cycle is: `claim` a small batch (pending -> sending, in one transaction, which also
records the previous batch's outcomes), hand the messages to Telegram, and `record` what
happened (sending -> sent / blocked / failed / pending again for a retry). A row is only ever
'sending' while its message may be on its way, so after a crash exactly those rows are sent again
(`requeue_in_flight`) and every other recipient is either done or still pending: nobody is
skipped, and nobody but the few in flight can get the message twice.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from bot.casework.status import FINISHED
from bot.storage.db import Database

LANGUAGE_GROUPS = ("kk", "ru", "en")
#: Relatives who never chose a language get the Russian message: the bot's own default guess.
UNKNOWN_LANGUAGE = "ru"
#: Statuses of a case that is over; every other status counts as an open case.
CLOSED_STATUSES = FINISHED
#: States a recipient row ends in.
FINAL_STATES = ("sent", "blocked", "failed", "skipped", "cancelled")

AudienceKind = Literal["all", "lang", "open-cases", "status"]
RecipientState = Literal["pending", "sending", "sent", "blocked", "failed", "skipped",
                         "cancelled"]


@dataclass(frozen=True, slots=True)
class Audience:
    """Who receives a broadcast: everyone, one language, open cases, or one case status."""

    kind: AudienceKind
    value: str = ""

    @classmethod
    def parse(cls, text: str) -> Audience:
        """Read `all`, `lang:kk`, `open-cases` or `status:S`; ValueError for anything else."""
        text = text.strip()
        if text in ("all", "open-cases"):
            return cls(text)  # type: ignore[arg-type]
        kind, _, value = text.partition(":")
        if kind == "lang" and value in LANGUAGE_GROUPS:
            return cls("lang", value)
        if kind == "status" and value and value.replace("_", "").isalnum():
            return cls("status", value)
        raise ValueError(f"unknown audience {text!r}: use all, lang:kk|ru|en, open-cases "
                         "or status:CODE")

    @property
    def code(self) -> str:
        return f"{self.kind}:{self.value}" if self.value else self.kind

    def query(self, staff: Collection[int] = ()) -> tuple[str, list[Any]]:
        """SELECT user_id, lang of everyone in the audience who takes updates and is reachable.

        Staff are not relatives: those added in the bot and `staff` (the ids set in settings)
        are left out.
        """
        sql = ("SELECT u.user_id AS user_id, coalesce(u.language, ?) AS lang FROM users u"
               " WHERE u.active = 1 AND u.updates_enabled = 1"
               " AND u.user_id NOT IN (SELECT user_id FROM staff_members)")
        params: list[Any] = [UNKNOWN_LANGUAGE]
        if staff:
            sql += f" AND u.user_id NOT IN ({', '.join('?' for _ in staff)})"
            params.extend(sorted(staff))
        if self.kind == "lang":
            sql += " AND u.language = ?"
            params.append(self.value)
        elif self.kind == "open-cases":
            marks = ", ".join("?" for _ in CLOSED_STATUSES)
            sql += (" AND EXISTS (SELECT 1 FROM cases c WHERE c.user_id = u.user_id"
                    f" AND c.status NOT IN ({marks}))")
            params.extend(CLOSED_STATUSES)
        elif self.kind == "status":
            sql += (" AND EXISTS (SELECT 1 FROM cases c WHERE c.user_id = u.user_id"
                    " AND c.status = ?)")
            params.append(self.value)
        return sql, params


@dataclass(frozen=True, slots=True)
class NewBroadcast:
    audience: Audience
    texts: dict[str, str]  # language -> HTML, ready to send
    fallback: str  # the language whose text goes to languages without one
    photo_file_id: str | None = None
    photo: bytes | None = None  # raw bytes (command line); uploaded by the first send
    created_by: int | None = None
    notify_chat_id: int | None = None
    progress_message_id: int | None = None
    notify_language: str = "en"


@dataclass(frozen=True, slots=True)
class Broadcast:
    broadcast_id: int
    state: str
    audience: str
    texts: dict[str, str]
    fallback: str
    photo_file_id: str | None
    has_photo_bytes: bool
    created_by: int | None
    notify_chat_id: int | None
    progress_message_id: int | None
    notify_language: str
    total: int
    created_at: str
    started_at: str | None
    finished_at: str | None

    def text_for(self, language: str) -> str:
        """The HTML this language group receives: its own text, or the fallback's."""
        return self.texts.get(language) or self.texts[self.fallback]

    @property
    def has_photo(self) -> bool:
        return self.photo_file_id is not None or self.has_photo_bytes


@dataclass(frozen=True, slots=True)
class Recipient:
    user_id: int
    language: str
    attempts: int


@dataclass(frozen=True, slots=True)
class Outcome:
    """What became of one send: the row's new state and what to remember about it."""

    user_id: int
    state: RecipientState
    attempts: int = 0
    not_before: float = 0.0
    message_id: int | None = None
    error: str | None = None


@dataclass(slots=True)
class Claim:
    recipients: list[Recipient] = field(default_factory=list)
    skipped: int = 0
    cancelled: bool = False


_BROADCAST_COLUMNS = (
    "broadcast_id, state, audience, texts, fallback, photo_file_id, photo IS NOT NULL,"
    " created_by, notify_chat_id, progress_message_id, notify_language, total, created_at,"
    " started_at, finished_at"
)


def _broadcast(row: sqlite3.Row) -> Broadcast:
    return Broadcast(
        broadcast_id=row[0], state=row[1], audience=row[2], texts=json.loads(row[3]),
        fallback=row[4], photo_file_id=row[5], has_photo_bytes=bool(row[6]),
        created_by=row[7], notify_chat_id=row[8], progress_message_id=row[9],
        notify_language=row[10], total=row[11], created_at=row[12], started_at=row[13],
        finished_at=row[14],
    )


class BroadcastRepository:
    """Every SQL statement about broadcasts, their recipients and admins' drafts."""

    def __init__(self, db: Database, staff: Collection[int] = ()) -> None:
        """`staff`: the staff and admin ids set in settings, left out of every audience."""
        self._db = db
        self._staff = staff

    # ------------------------------------------------------------------------- composing

    async def audience_sizes(self, audience: Audience) -> dict[str, int]:
        """How many recipients each language group would have right now."""
        sql, params = audience.query(self._staff)
        rows = await self._db.fetchall(
            f"SELECT lang, count(*) FROM ({sql}) GROUP BY lang", params)
        return {str(r[0]): int(r[1]) for r in rows}

    async def get_draft(self, admin_id: int) -> dict[str, Any] | None:
        row = await self._db.fetchone(
            "SELECT data FROM broadcast_drafts WHERE admin_id = ?", (admin_id,))
        return dict(json.loads(row[0])) if row else None

    async def save_draft(self, admin_id: int, data: dict[str, Any], now: str) -> None:
        await self._db.execute(
            "INSERT INTO broadcast_drafts (admin_id, data, updated_at) VALUES (?, ?, ?)"
            " ON CONFLICT(admin_id) DO UPDATE SET data = excluded.data,"
            " updated_at = excluded.updated_at",
            (admin_id, json.dumps(data, ensure_ascii=False), now))

    async def delete_draft(self, admin_id: int) -> bool:
        return await self._db.execute(
            "DELETE FROM broadcast_drafts WHERE admin_id = ?", (admin_id,)) > 0

    # ------------------------------------------------------------------------- queueing

    async def queue(self, new: NewBroadcast, now: str, *,
                    draft: tuple[int, str] | None = None) -> tuple[int, int] | None:
        """Store the broadcast and one row per recipient in one transaction.

        With `draft=(admin_id, nonce)` the admin's draft is consumed in the same transaction,
        and nothing is queued (None) when that draft is gone: a second press of Send.
        Returns (broadcast_id, number of recipients).
        """
        async with self._db.transaction() as conn:
            if draft is not None:
                cur = await conn.execute(
                    "SELECT data FROM broadcast_drafts WHERE admin_id = ?", (draft[0],))
                row = await cur.fetchone()
                if row is None or json.loads(row[0]).get("nonce") != draft[1]:
                    return None
                await conn.execute("DELETE FROM broadcast_drafts WHERE admin_id = ?",
                                   (draft[0],))
            cur = await conn.execute(
                "INSERT INTO broadcasts (audience, texts, fallback, photo_file_id, photo,"
                " created_by, notify_chat_id, progress_message_id, notify_language, total,"
                " created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?)",
                (new.audience.code, json.dumps(new.texts, ensure_ascii=False), new.fallback,
                 new.photo_file_id, new.photo, new.created_by, new.notify_chat_id,
                 new.progress_message_id, new.notify_language, now))
            broadcast_id = cur.lastrowid
            assert broadcast_id is not None
            sql, params = new.audience.query(self._staff)
            cur = await conn.execute(
                "INSERT INTO broadcast_recipients (broadcast_id, user_id, language)"
                f" SELECT ?, user_id, lang FROM ({sql})", (broadcast_id, *params))
            total = cur.rowcount
            await conn.execute("UPDATE broadcasts SET total = ? WHERE broadcast_id = ?",
                               (total, broadcast_id))
        return broadcast_id, total

    async def set_progress_message(self, broadcast_id: int, chat_id: int,
                                   message_id: int) -> None:
        await self._db.execute(
            "UPDATE broadcasts SET notify_chat_id = ?, progress_message_id = ?"
            " WHERE broadcast_id = ?", (chat_id, message_id, broadcast_id))

    # ------------------------------------------------------------------------- reading

    async def get(self, broadcast_id: int) -> Broadcast | None:
        row = await self._db.fetchone(
            f"SELECT {_BROADCAST_COLUMNS} FROM broadcasts WHERE broadcast_id = ?",
            (broadcast_id,))
        return _broadcast(row) if row else None

    async def active(self) -> list[Broadcast]:
        """Broadcasts queued or being sent, oldest first (they are sent in this order)."""
        rows = await self._db.fetchall(
            f"SELECT {_BROADCAST_COLUMNS} FROM broadcasts WHERE state IN ('queued', 'sending')"
            " ORDER BY broadcast_id")
        return [_broadcast(r) for r in rows]

    async def photo_bytes(self, broadcast_id: int) -> bytes | None:
        row = await self._db.fetchone(
            "SELECT photo FROM broadcasts WHERE broadcast_id = ?", (broadcast_id,))
        return bytes(row[0]) if row and row[0] is not None else None

    async def counts(self, broadcast_id: int) -> dict[str, int]:
        """Recipients by state."""
        rows = await self._db.fetchall(
            "SELECT state, count(*) FROM broadcast_recipients WHERE broadcast_id = ?"
            " GROUP BY state", (broadcast_id,))
        return {str(r[0]): int(r[1]) for r in rows}

    async def failure_reasons(self, broadcast_id: int, limit: int = 3) -> list[tuple[str, int]]:
        rows = await self._db.fetchall(
            "SELECT error, count(*) AS n FROM broadcast_recipients"
            " WHERE broadcast_id = ? AND state = 'failed' GROUP BY error ORDER BY n DESC"
            " LIMIT ?", (broadcast_id, limit))
        return [(str(r[0] or "?"), int(r[1])) for r in rows]

    async def states_of(self, broadcast_id: int) -> dict[int, str]:
        """Each recipient's state (tests and the command line's summary)."""
        rows = await self._db.fetchall(
            "SELECT user_id, state FROM broadcast_recipients WHERE broadcast_id = ?",
            (broadcast_id,))
        return {int(r[0]): str(r[1]) for r in rows}

    # ------------------------------------------------------------------------- sending

    async def requeue_in_flight(self) -> int:
        """At start-up: rows left 'sending' by a crash go out again (they may arrive twice).

        For a broadcast cancelled meanwhile they are closed as cancelled instead.
        """
        async with self._db.transaction() as conn:
            cur = await conn.execute(
                "UPDATE broadcast_recipients SET state = 'pending' WHERE state = 'sending'"
                " AND broadcast_id IN (SELECT broadcast_id FROM broadcasts"
                " WHERE state IN ('queued', 'sending'))")
            resent = cur.rowcount
            await conn.execute(
                "UPDATE broadcast_recipients SET state = 'cancelled' WHERE state = 'sending'")
        return resent

    async def start(self, broadcast_id: int, now: str) -> None:
        await self._db.execute(
            "UPDATE broadcasts SET state = 'sending', started_at = coalesce(started_at, ?)"
            " WHERE broadcast_id = ? AND state = 'queued'", (now, broadcast_id))

    async def claim(self, broadcast_id: int, outcomes: Sequence[Outcome], limit: int,
                    now_ts: float) -> Claim:
        """Record `outcomes`, then move up to `limit` due recipients to 'sending'.

        Recipients who turned updates off (or were found unreachable) since the broadcast was
        queued are closed as 'skipped' instead. Nothing is claimed once the broadcast is
        cancelled.
        """
        claim = Claim()
        async with self._db.transaction() as conn:
            await _record(conn, broadcast_id, outcomes)
            cur = await conn.execute(
                "SELECT state FROM broadcasts WHERE broadcast_id = ?", (broadcast_id,))
            row = await cur.fetchone()
            if row is None or row[0] not in ("queued", "sending"):
                claim.cancelled = True
                return claim
            cur = await conn.execute(
                "SELECT r.user_id, r.language, r.attempts, u.updates_enabled, u.active"
                " FROM broadcast_recipients r JOIN users u ON u.user_id = r.user_id"
                " WHERE r.broadcast_id = ? AND r.state = 'pending' AND r.not_before <= ?"
                " ORDER BY r.not_before LIMIT ?", (broadcast_id, now_ts, limit))
            rows = list(await cur.fetchall())
            skipped = [(broadcast_id, r[0]) for r in rows if not (r[3] and r[4])]
            claim.recipients = [Recipient(r[0], r[1], r[2]) for r in rows if r[3] and r[4]]
            claim.skipped = len(skipped)
            if skipped:
                await conn.executemany(
                    "UPDATE broadcast_recipients SET state = 'skipped'"
                    " WHERE broadcast_id = ? AND user_id = ?", skipped)
            if claim.recipients:
                await conn.executemany(
                    "UPDATE broadcast_recipients SET state = 'sending'"
                    " WHERE broadcast_id = ? AND user_id = ?",
                    [(broadcast_id, r.user_id) for r in claim.recipients])
        return claim

    async def record(self, broadcast_id: int, outcomes: Sequence[Outcome]) -> None:
        """Write outcomes of sends (and blocked relatives' users.active = 0) in one go."""
        if outcomes:
            async with self._db.transaction() as conn:
                await _record(conn, broadcast_id, outcomes)

    async def next_due(self, broadcast_id: int) -> float | None:
        """When the earliest pending recipient may be tried (None: nobody is pending)."""
        row = await self._db.fetchone(
            "SELECT min(not_before) FROM broadcast_recipients"
            " WHERE broadcast_id = ? AND state = 'pending'", (broadcast_id,))
        return float(row[0]) if row and row[0] is not None else None

    async def set_photo_file_id(self, broadcast_id: int, file_id: str) -> None:
        """Telegram has the photo now: keep its id and drop our copy of the bytes."""
        await self._db.execute(
            "UPDATE broadcasts SET photo_file_id = ?, photo = NULL WHERE broadcast_id = ?",
            (file_id, broadcast_id))

    async def finish(self, broadcast_id: int, now: str) -> None:
        await self._db.execute(
            "UPDATE broadcasts SET state = 'done', finished_at = ?"
            " WHERE broadcast_id = ? AND state IN ('queued', 'sending')", (now, broadcast_id))

    async def cancel(self, broadcast_id: int, now: str) -> bool:
        """Stop a queued or running broadcast; recipients still pending will not get it."""
        async with self._db.transaction() as conn:
            cur = await conn.execute(
                "UPDATE broadcasts SET state = 'cancelled', finished_at = ?"
                " WHERE broadcast_id = ? AND state IN ('queued', 'sending')",
                (now, broadcast_id))
            if cur.rowcount == 0:
                return False
            await conn.execute(
                "UPDATE broadcast_recipients SET state = 'cancelled'"
                " WHERE broadcast_id = ? AND state = 'pending'", (broadcast_id,))
        return True


async def _record(conn: Any, broadcast_id: int, outcomes: Sequence[Outcome]) -> None:
    if not outcomes:
        return
    await conn.executemany(
        "UPDATE broadcast_recipients SET state = ?, attempts = ?, not_before = ?,"
        " message_id = coalesce(?, message_id), error = ?"
        " WHERE broadcast_id = ? AND user_id = ? AND state = 'sending'",
        [(o.state, o.attempts, o.not_before, o.message_id, o.error, broadcast_id, o.user_id)
         for o in outcomes])
    blocked = [(o.user_id,) for o in outcomes if o.state == "blocked"]
    if blocked:
        await conn.executemany("UPDATE users SET active = 0 WHERE user_id = ?", blocked)
