"""Erasure on request, copies of one's own data, and purging abandoned drafts."""

from __future__ import annotations

from dataclasses import dataclass

from bot.storage.db import Database


@dataclass(frozen=True, slots=True)
class Erased:
    drafts: int
    withdrawn_cases: list[str]


class PrivacyRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def erase_user(self, user_id: int, now: str) -> Erased:
        """Delete everything a relative sent; their cases stay as numbered, empty 'withdrawn' rows.

        One transaction: the draft, every case's sealed answers, every message in case
        histories that came from or went to them, and the user row itself. secure_delete is on,
        so the freed bytes are overwritten; the caller checkpoints the write-ahead log after.
        """
        async with self._db.transaction() as conn:
            cur = await conn.execute(
                "SELECT case_id, number FROM cases WHERE user_id = ?", (user_id,))
            cases = list(await cur.fetchall())
            ids = [row[0] for row in cases]
            drafts = (await conn.execute(
                "DELETE FROM drafts WHERE user_id = ?", (user_id,))).rowcount
            for case_id in ids:
                await conn.execute(
                    "UPDATE cases SET data = X'', status = 'withdrawn', user_id = NULL,"
                    " updated_at = ? WHERE case_id = ?", (now, case_id))
                await conn.execute(
                    "UPDATE case_events SET detail = NULL WHERE case_id = ?", (case_id,))
                await conn.execute(
                    "INSERT INTO case_events (case_id, at, kind) VALUES (?, ?, 'withdrawn')",
                    (case_id, now))
            await conn.execute("DELETE FROM users WHERE user_id = ?", (user_id,))
            await conn.execute(
                "INSERT INTO privacy_log (at, action, detail) VALUES (?, 'erase', ?)",
                (now, f"drafts={drafts} cases={','.join(r[1] for r in cases) or '-'}"))
        await self._db.checkpoint()
        return Erased(drafts, [row[1] for row in cases])

    async def purge_drafts(self, older_than: str, now: str) -> int:
        """Delete drafts not touched since `older_than` (abandoned questionnaires)."""
        async with self._db.transaction() as conn:
            n = (await conn.execute(
                "DELETE FROM drafts WHERE updated_at < ?", (older_than,))).rowcount
            await conn.execute(
                "INSERT INTO privacy_log (at, action, detail) VALUES (?, 'purge_drafts', ?)",
                (now, f"drafts={n}"))
        if n:
            await self._db.checkpoint()
        return n

    async def set_first_message(self, user_id: int, message_id: int) -> None:
        await self._db.execute(
            "UPDATE drafts SET first_message_id = ? WHERE user_id = ?", (message_id, user_id))

    async def first_message(self, user_id: int) -> int | None:
        row = await self._db.fetchone(
            "SELECT first_message_id FROM drafts WHERE user_id = ?", (user_id,))
        return int(row[0]) if row and row[0] is not None else None

    async def log(self, action: str, detail: str, now: str) -> None:
        await self._db.execute(
            "INSERT INTO privacy_log (at, action, detail) VALUES (?, ?, ?)", (now, action, detail))
