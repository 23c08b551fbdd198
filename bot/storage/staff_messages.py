"""What the bot sent to staff that holds case content, and which new cases were announced.

`StaffMessages` keeps (chat, message id, case, kind, time) of every card, answer, file and
export sent to a staff member, so they can be deleted after BOT_CARD_TTL_HOURS or when the
relative erases their data. `CaseAlerts` records how each new case was announced (alone or in
the hourly digest) and counts submissions for the per-relative daily limit.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import aiosqlite

from bot.storage.db import Database

CARD, ANSWER, FILE, EXPORT = "card", "answer", "file", "export"
ALERT, DIGEST_PENDING, DIGEST = "alert", "digest_pending", "digest"

Sent = tuple[int, int]  # (chat id, message id)


class StaffMessages:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def record(self, chat_id: int, message_ids: Iterable[int], case_id: int | None,
                     kind: str, at: float) -> None:
        rows = [(chat_id, m, case_id, kind, at) for m in message_ids]
        if not rows:
            return
        async with self._db.transaction() as conn:
            await conn.executemany(
                "INSERT OR REPLACE INTO staff_messages (chat_id, message_id, case_id, kind,"
                " sent_at) VALUES (?, ?, ?, ?, ?)", rows)

    async def sent_before(self, at: float, limit: int = 1000) -> list[Sent]:
        rows = await self._db.fetchall(
            "SELECT chat_id, message_id FROM staff_messages WHERE sent_at < ?"
            " ORDER BY sent_at LIMIT ?", (at, limit))
        return [(int(r[0]), int(r[1])) for r in rows]

    async def of_cases(self, numbers: Sequence[str]) -> list[Sent]:
        """Every message about these cases, and every export sent since the first of them was
        submitted (an export may hold any case submitted before it)."""
        if not numbers:
            return []
        marks = ", ".join("?" for _ in numbers)
        rows = await self._db.fetchall(
            "SELECT chat_id, message_id FROM staff_messages WHERE case_id IN"
            f" (SELECT case_id FROM cases WHERE number IN ({marks}))"
            " OR (kind = 'export' AND sent_at >= (SELECT coalesce(min(unixepoch(submitted_at)),"
            f" 0) FROM cases WHERE number IN ({marks})))", (*numbers, *numbers))
        return [(int(r[0]), int(r[1])) for r in rows]

    async def forget(self, sent: Sequence[Sent]) -> None:
        if not sent:
            return
        async with self._db.transaction() as conn:
            await conn.executemany(
                "DELETE FROM staff_messages WHERE chat_id = ? AND message_id = ?", list(sent))

    async def count(self) -> int:
        row = await self._db.fetchone("SELECT count(*) FROM staff_messages")
        return int(row[0]) if row else 0


class CaseAlerts:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def claim(self, conn: aiosqlite.Connection, case_id: int, how: str, at: float
                    ) -> bool:
        """Record how the case is announced (in the caller's transaction); False if it was."""
        cur = await conn.execute(
            "INSERT INTO case_alerts (case_id, at, how) VALUES (?, ?, ?)"
            " ON CONFLICT(case_id) DO NOTHING", (case_id, at, how))
        return cur.rowcount > 0

    async def alerts_since(self, at: float) -> int:
        row = await self._db.fetchone(
            "SELECT count(*) FROM case_alerts WHERE how = 'alert' AND at >= ?", (at,))
        return int(row[0]) if row else 0

    async def unannounced(self, limit: int = 100) -> list[str]:
        rows = await self._db.fetchall(
            "SELECT number FROM cases c WHERE NOT EXISTS"
            " (SELECT 1 FROM case_alerts a WHERE a.case_id = c.case_id)"
            " ORDER BY case_id LIMIT ?", (limit,))
        return [str(r[0]) for r in rows]

    async def take_digest(self, conn: aiosqlite.Connection) -> list[str]:
        """The numbers waiting for the digest, marked as digested (in the caller's transaction)."""
        cur = await conn.execute(
            "UPDATE case_alerts SET how = 'digest' WHERE how = 'digest_pending'"
            " RETURNING case_id")
        ids = [int(r[0]) for r in await cur.fetchall()]
        if not ids:
            return []
        marks = ", ".join("?" for _ in ids)
        cur = await conn.execute(
            f"SELECT number FROM cases WHERE case_id IN ({marks}) ORDER BY case_id", ids)
        return [str(r[0]) for r in await cur.fetchall()]

    async def submissions_since(self, user_id: int, since: str) -> int:
        """Cases this relative submitted at or after `since` (ISO time)."""
        row = await self._db.fetchone(
            "SELECT count(*) FROM cases WHERE user_id = ? AND submitted_at >= ?",
            (user_id, since))
        return int(row[0]) if row else 0
