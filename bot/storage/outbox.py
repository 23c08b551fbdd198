"""The outbox: outgoing messages that matter, stored before they are sent.

`enqueue` works inside someone else's transaction (pass the connection that
`Database.transaction()` yields), so a message exists if and only if what it announces does:
a case confirmation is committed together with the case. The sender (bot/services/outbox.py)
reads due rows, sends them and marks each 'sent' only after Telegram accepted it.

Texts are sealed with the server's draft key (staff questions carry personal data) and emptied
once sent.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import aiosqlite

from bot.storage.db import Codec, Database, identity

_COLUMNS = ("o.outbox_id, o.kind, o.dedup_key, o.chat_id, o.text, o.parse_mode, o.reply_markup,"
            " o.attempts, o.next_attempt_at, o.meta")
PENDING, SENT, BLOCKED, FAILED = "pending", "sent", "blocked", "failed"
STATES = (PENDING, SENT, BLOCKED, FAILED)


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass(frozen=True, slots=True)
class OutboxRow:
    outbox_id: int
    kind: str
    dedup_key: str | None
    chat_id: int
    text: str
    parse_mode: str | None
    reply_markup: str | None  # JSON
    attempts: int
    next_attempt_at: float
    meta: str | None = None  # JSON of ids and codes for what follows delivery, never text


async def _insert(conn: aiosqlite.Connection, sql: str, params: tuple[object, ...]) -> int | None:
    cur = await conn.execute(sql, params)
    row = await cur.fetchone()
    await cur.close()  # finishes the statement: nothing of it stays open past the commit
    return int(row[0]) if row is not None else None


class OutboxRepository:
    def __init__(self, db: Database, seal: Codec = identity, unseal: Codec = identity,
                 clock: Callable[[], float] = time.time) -> None:
        self._db = db
        self._seal = seal
        self._unseal = unseal
        self._clock = clock

    async def enqueue(self, conn_or_db: aiosqlite.Connection | Database, chat_id: int,
                      text: str, parse_mode: str | None = None,
                      reply_markup_json: str | None = None, kind: str = "message",
                      dedup_key: str | None = None, meta: str | None = None,
                      delay: float = 0.0) -> int | None:
        """Queue one message; returns its id, or None when `dedup_key` is already queued.

        With a connection (inside `Database.transaction()`), the row commits or rolls back with
        the caller's transaction. With the Database, it is a transaction of its own. `meta`
        (JSON of ids and codes, stored readable) is for the sender's hook of this `kind`.
        `delay` holds the message back that many seconds (a status notice's undo window);
        later messages to the same chat wait behind it, so the order is kept.
        """
        params = (kind, dedup_key, chat_id, self._seal(text.encode()), parse_mode,
                  reply_markup_json, self._clock() + delay, _now_iso(), meta)
        sql = ("INSERT INTO outbox (kind, dedup_key, chat_id, text, parse_mode, reply_markup,"
               " next_attempt_at, created_at, meta) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
               " ON CONFLICT(dedup_key) DO NOTHING RETURNING outbox_id")
        if isinstance(conn_or_db, Database):
            async with conn_or_db.transaction() as conn:
                return await _insert(conn, sql, params)
        return await _insert(conn_or_db, sql, params)

    async def withdraw(self, conn: aiosqlite.Connection, dedup_key: str) -> bool | None:
        """Delete a held-back message before it is due (undo): True; False when it is due,
        being sent or sent (a second's margin: the sender may be picking it up); None when
        there is no such message."""
        cur = await conn.execute(
            "SELECT state, attempts, next_attempt_at FROM outbox WHERE dedup_key = ?",
            (dedup_key,))
        row = await cur.fetchone()
        if row is None:
            return None
        if row[0] != "pending" or row[1] > 0 or float(row[2]) <= self._clock() + 1.0:
            return False
        await conn.execute("DELETE FROM outbox WHERE dedup_key = ?", (dedup_key,))
        return True

    async def due(self, now: float, limit: int = 50) -> list[OutboxRow]:
        """Due rows, at most one per chat: the oldest pending row of each chat (order kept)."""
        rows = await self._db.fetchall(
            f"SELECT {_COLUMNS} FROM outbox o"
            " WHERE o.state = 'pending' AND o.next_attempt_at <= ?"
            " AND NOT EXISTS (SELECT 1 FROM outbox p WHERE p.state = 'pending'"
            "                 AND p.chat_id = o.chat_id AND p.outbox_id < o.outbox_id)"
            " ORDER BY o.next_attempt_at, o.outbox_id LIMIT ?",
            (now, limit),
        )
        out = []
        for r in rows:
            row = await self._open(r)
            if row is not None:
                out.append(row)
        return out

    def _row(self, r: sqlite3.Row) -> OutboxRow:
        return OutboxRow(r[0], r[1], r[2], r[3], self._unseal(bytes(r[4])).decode(), r[5], r[6],
                         r[7], r[8], r[9])

    async def _open(self, r: sqlite3.Row) -> OutboxRow | None:
        """The row opened, or None (and the row failed) when its key is gone.

        With the private key offline the draft key lives in memory (tmpfs) and is lost at a
        reboot: what was queued with it cannot be read any more, by design.
        """
        try:
            return self._row(r)
        except ValueError:
            await self.give_up(int(r[0]), FAILED, "sealed with a draft key that was lost")
            return None

    async def head_row(self, outbox_id: int) -> OutboxRow | None:
        """The row if it is pending and the oldest pending row of its chat, due or not."""
        rows = await self._db.fetchall(
            f"SELECT {_COLUMNS} FROM outbox o WHERE o.outbox_id = ? AND o.state = 'pending'"
            " AND NOT EXISTS (SELECT 1 FROM outbox p WHERE p.state = 'pending'"
            "                 AND p.chat_id = o.chat_id AND p.outbox_id < o.outbox_id)",
            (outbox_id,),
        )
        return await self._open(rows[0]) if rows else None

    async def next_due_at(self) -> float | None:
        row = await self._db.fetchone(
            "SELECT min(next_attempt_at) FROM outbox WHERE state = 'pending'")
        return float(row[0]) if row is not None and row[0] is not None else None

    async def mark_sent(self, outbox_id: int, message_id: int | None) -> None:
        await self._db.execute(
            "UPDATE outbox SET state = 'sent', sent_at = ?, message_id = ?, text = X'',"
            " attempts = attempts + 1, last_error = NULL WHERE outbox_id = ?",
            (_now_iso(), message_id, outbox_id),
        )

    async def retry_later(self, outbox_id: int, at: float, error: str) -> None:
        await self._db.execute(
            "UPDATE outbox SET attempts = attempts + 1, next_attempt_at = ?, last_error = ?"
            " WHERE outbox_id = ? AND state = 'pending'",
            (at, error[:300], outbox_id),
        )

    async def give_up(self, outbox_id: int, state: str, error: str) -> None:
        """Stop trying: 'blocked' (the relative blocked the bot) or 'failed' (Telegram said no)."""
        if state not in (BLOCKED, FAILED):
            raise ValueError(f"give_up takes blocked or failed, not {state!r}")
        await self._db.execute(
            "UPDATE outbox SET state = ?, attempts = attempts + 1, last_error = ?"
            " WHERE outbox_id = ? AND state = 'pending'",
            (state, error[:300], outbox_id),
        )

    async def move_chat(self, outbox_id: int, new_chat_id: int) -> None:
        """A group became a supergroup: the message goes to its new id."""
        await self._db.execute(
            "UPDATE outbox SET chat_id = ? WHERE outbox_id = ? AND state = 'pending'",
            (new_chat_id, outbox_id),
        )

    async def state_of(self, dedup_key: str) -> str | None:
        row = await self._db.fetchone("SELECT state FROM outbox WHERE dedup_key = ?",
                                      (dedup_key,))
        return str(row[0]) if row is not None else None

    async def counts(self) -> dict[str, int]:
        rows = await self._db.fetchall("SELECT state, count(*) FROM outbox GROUP BY state")
        found = {str(r[0]): int(r[1]) for r in rows}
        return {state: found.get(state, 0) for state in STATES}
