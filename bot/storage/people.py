"""Staff and admins' names as Telegram gives them (first name, @username), for showing people
by name instead of numeric ids. Only staff and admins are kept here, never relatives."""

from __future__ import annotations

from dataclasses import dataclass

from bot.storage.db import Database


@dataclass(frozen=True, slots=True)
class Profile:
    user_id: int
    first_name: str | None
    username: str | None


class PeopleRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def remember(self, user_id: int, first_name: str | None, username: str | None,
                       now: str) -> None:
        """Keep a staff member's names; a no-op when they are unchanged."""
        await self._db.execute(
            "INSERT INTO staff_profiles (user_id, first_name, username, updated_at)"
            " VALUES (?, ?, ?, ?) ON CONFLICT(user_id) DO UPDATE SET"
            " first_name = excluded.first_name, username = excluded.username,"
            " updated_at = excluded.updated_at"
            " WHERE first_name IS NOT excluded.first_name OR username IS NOT excluded.username",
            (user_id, first_name, username, now))

    async def get(self, user_id: int) -> Profile | None:
        row = await self._db.fetchone(
            "SELECT user_id, first_name, username FROM staff_profiles WHERE user_id = ?",
            (user_id,))
        return Profile(int(row[0]), row[1], row[2]) if row else None

    async def all(self) -> list[Profile]:
        rows = await self._db.fetchall(
            "SELECT user_id, first_name, username FROM staff_profiles")
        return [Profile(int(r[0]), r[1], r[2]) for r in rows]

    async def by_username(self, username: str) -> Profile | None:
        row = await self._db.fetchone(
            "SELECT user_id, first_name, username FROM staff_profiles"
            " WHERE lower(username) = lower(?)", (username.lstrip("@"),))
        return Profile(int(row[0]), row[1], row[2]) if row else None

    async def set_username_tag(self, user_id: int, tag: bytes | None) -> bool:
        """Keep the keyed hash of a user's @username (None: they have none), if they started
        the bot and never reported as a relative (for them it is cleared). False when they have
        not started the bot (no users row)."""
        return await self._db.execute(
            "UPDATE users SET username_tag = CASE WHEN EXISTS"
            " (SELECT 1 FROM cases WHERE cases.user_id = users.user_id) THEN NULL ELSE ? END"
            " WHERE user_id = ?", (tag, user_id)) > 0

    async def user_by_username_tag(self, tag: bytes) -> int | None:
        row = await self._db.fetchone(
            "SELECT user_id FROM users WHERE username_tag = ? AND active = 1"
            " AND NOT EXISTS (SELECT 1 FROM cases WHERE cases.user_id = users.user_id)",
            (tag,))
        return int(row[0]) if row else None

    async def username_tag_of(self, user_id: int) -> bytes | None:
        """/mydata: the keyed hash kept for this user, if any."""
        row = await self._db.fetchone("SELECT username_tag FROM users WHERE user_id = ?",
                                      (user_id,))
        return bytes(row[0]) if row is not None and row[0] is not None else None
