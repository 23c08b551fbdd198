"""Relatives and staff as Telegram users: language, whether they take updates, whether active."""

from __future__ import annotations

from dataclasses import dataclass
from typing import overload

from bot.storage.db import Database


@dataclass(frozen=True, slots=True)
class User:
    user_id: int
    language: str | None
    updates_enabled: bool
    active: bool


class UserRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def seen(self, user_id: int, now: str) -> User:
        """Record that the user wrote to us (they are active again) and return their row.

        last_seen_at is kept to the hour: most updates then cost one read instead of a write
        (a relative answering a question sends one every few seconds).
        """
        row = await self._db.fetchone(
            "SELECT user_id, language, updates_enabled, active, last_seen_at FROM users "
            "WHERE user_id = ?", (user_id,))
        if row is not None and row[3] and (row[4] or "")[:13] == now[:13]:
            return User(row[0], row[1], bool(row[2]), True)
        row = await self._db.fetchone(
            "INSERT INTO users (user_id, created_at, last_seen_at) VALUES (?, ?, ?) "
            "ON CONFLICT(user_id) DO UPDATE SET last_seen_at = excluded.last_seen_at, active = 1 "
            "RETURNING user_id, language, updates_enabled, active",
            (user_id, now, now),
        )
        assert row is not None
        return User(row[0], row[1], bool(row[2]), bool(row[3]))

    async def get(self, user_id: int) -> User | None:
        row = await self._db.fetchone(
            "SELECT user_id, language, updates_enabled, active FROM users WHERE user_id = ?",
            (user_id,),
        )
        return User(row[0], row[1], bool(row[2]), bool(row[3])) if row else None

    @overload
    async def language_of(self, user_id: int, fallback: str) -> str: ...
    @overload
    async def language_of(self, user_id: int, fallback: None = None) -> str | None: ...

    async def language_of(self, user_id: int, fallback: str | None = None) -> str | None:
        """The language the user chose in the bot, else `fallback`."""
        row = await self.get(user_id)
        return row.language if row is not None and row.language else fallback

    async def set_language(self, user_id: int, language: str) -> None:
        await self._db.execute(
            "UPDATE users SET language = ? WHERE user_id = ?", (language, user_id)
        )

    async def set_updates(self, user_id: int, enabled: bool) -> None:
        await self._db.execute(
            "UPDATE users SET updates_enabled = ? WHERE user_id = ?", (int(enabled), user_id)
        )

    async def mark_inactive(self, user_id: int) -> None:
        await self._db.execute("UPDATE users SET active = 0 WHERE user_id = ?", (user_id,))

    async def count(self) -> int:
        row = await self._db.fetchone("SELECT count(*) FROM users")
        return int(row[0]) if row else 0
