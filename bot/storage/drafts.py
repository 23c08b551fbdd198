"""Drafts in progress: the engine's state for each relative, saved after every answer."""

from __future__ import annotations

from dataclasses import dataclass

from bot.storage.db import Codec, Database, identity


@dataclass(frozen=True, slots=True)
class DraftRow:
    state: bytes  # plain JSON, already opened
    seq: int
    shown_seq: int
    question_message_id: int | None
    updated_at: str
    sent_seq: int = -1  # the latest step whose question the bot began to send


class DraftRepository:
    def __init__(self, db: Database, seal: Codec = identity, unseal: Codec = identity) -> None:
        self._db = db
        self._seal = seal
        self._unseal = unseal

    async def get(self, user_id: int) -> DraftRow | None:
        row = await self._db.fetchone(
            "SELECT state, seq, shown_seq, question_message_id, updated_at, sent_seq "
            "FROM drafts WHERE user_id = ?",
            (user_id,),
        )
        if row is None:
            return None
        try:
            state = self._unseal(bytes(row[0]))
        except ValueError:
            # Sealed with a draft key that is gone (kept in memory while the private key is
            # offline, and lost at a reboot): the draft cannot be read by anyone; drop it.
            await self.delete(user_id)
            return None
        return DraftRow(state, row[1], row[2], row[3], row[4], row[5])

    async def save(self, user_id: int, state: bytes, seq: int, form_version: int,
                   now: str) -> None:
        """Write the whole draft in one statement (one transaction)."""
        await self._db.execute(
            "INSERT INTO drafts (user_id, form_version, state, seq, created_at, updated_at) "
            "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(user_id) DO UPDATE SET "
            "form_version = excluded.form_version, state = excluded.state, seq = excluded.seq, "
            "updated_at = excluded.updated_at",
            (user_id, form_version, self._seal(state), seq, now, now),
        )

    async def mark_shown(self, user_id: int, seq: int, message_id: int | None,
                         now: str) -> None:
        """Remember which step the relative has on screen and which message has its buttons."""
        await self._db.execute(
            "UPDATE drafts SET shown_seq = ?, question_message_id = ?, updated_at = ? "
            "WHERE user_id = ? AND seq = ?",
            (seq, message_id, now, user_id, seq),
        )

    async def mark_sending(self, user_id: int, seq: int) -> None:
        """Remember that the question of step `seq` is being sent: from now on it may be on
        screen, and what the relative types is an answer to it."""
        await self._db.execute(
            "UPDATE drafts SET sent_seq = ? WHERE user_id = ? AND seq = ? AND sent_seq != ?",
            (seq, user_id, seq, seq),
        )

    async def unseen_since(self, since: str) -> list[int]:
        """Relatives active since `since` whose current question may not be on screen."""
        rows = await self._db.fetchall(
            "SELECT user_id FROM drafts WHERE shown_seq != seq AND updated_at >= ? "
            "ORDER BY user_id", (since,))
        return [int(r[0]) for r in rows]

    async def delete(self, user_id: int) -> bool:
        """Drop a draft (cancelled, declined) and truncate the write-ahead log.

        Earlier versions of the draft stay in the WAL until it is checkpointed; truncating it
        now leaves a disk image nothing of them (secure_delete clears the database file).
        """
        gone = await self._db.execute("DELETE FROM drafts WHERE user_id = ?", (user_id,)) > 0
        if gone:
            await self._db.checkpoint()
        return gone

    async def count(self) -> int:
        row = await self._db.fetchone("SELECT count(*) FROM drafts")
        return int(row[0]) if row else 0
