"""Submitted cases and their history (events)."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiosqlite

from bot.storage.db import Codec, Database, identity

# Called inside the submit transaction with (connection, case number, case id).
InTransaction = Callable[[aiosqlite.Connection, str, int], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class NewCase:
    user_id: int
    language: str
    persons_count: int
    prefecture: str | None
    attachments_count: int
    consent_share: str | None
    consent_publish: str | None
    notice_version: int
    form_version: int
    data: bytes  # JSON of every answer
    urgent: bool = False  # someone is in danger now: the staff alert says so


@dataclass(frozen=True, slots=True)
class CaseSummary:
    case_id: int
    number: str
    status: str
    persons_count: int
    submitted_at: str
    language: str


class CaseRepository:
    def __init__(self, db: Database, seal: Codec = identity, unseal: Codec = identity) -> None:
        self._db = db
        self._seal = seal
        self._unseal = unseal

    async def submit(self, case: NewCase, now: str, new_number: Callable[[], str], *,
                     in_transaction: InTransaction | None = None) -> str:
        """Store the case, record the event and drop the draft, all in one transaction.

        `in_transaction(conn, number, case_id)` runs inside that transaction, after the case is
        written: what it writes (the confirmation in the outbox) commits with the case or not
        at all.
        """
        async with self._db.transaction() as conn:
            for _ in range(20):
                number = new_number()
                try:
                    cur = await conn.execute(
                        "INSERT INTO cases (number, user_id, language, persons_count, prefecture,"
                        " attachments_count, consent_share, consent_publish, notice_version,"
                        " form_version, data, submitted_at, updated_at, urgent)"
                        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        (number, case.user_id, case.language, case.persons_count,
                         case.prefecture, case.attachments_count, case.consent_share,
                         case.consent_publish, case.notice_version, case.form_version,
                         self._seal(case.data), now, now, int(case.urgent)),
                    )
                    break
                except sqlite3.IntegrityError:
                    continue  # the random number is taken: draw another
            else:
                raise RuntimeError("could not draw a free case number")
            case_id = cur.lastrowid
            await conn.execute(
                "INSERT INTO case_events (case_id, at, kind) VALUES (?, ?, 'submitted')",
                (case_id, now),
            )
            await conn.executemany(
                "INSERT INTO case_persons (case_id, person, updated_at) VALUES (?, ?, ?)",
                [(case_id, i, now) for i in range(1, case.persons_count + 1)])
            await conn.execute("DELETE FROM drafts WHERE user_id = ?", (case.user_id,))
            if in_transaction is not None:
                assert case_id is not None
                await in_transaction(conn, number, case_id)
        # The WAL still holds every earlier version of the draft: truncate it (H2).
        await self._db.checkpoint()
        return number

    async def for_user(self, user_id: int) -> list[CaseSummary]:
        rows = await self._db.fetchall(
            "SELECT case_id, number, status, persons_count, submitted_at, language FROM cases "
            "WHERE user_id = ? ORDER BY submitted_at, case_id",
            (user_id,),
        )
        return [CaseSummary(*row) for row in rows]

    async def data(self, number: str) -> dict[str, Any] | None:
        row = await self._db.fetchone("SELECT data FROM cases WHERE number = ?", (number,))
        if row is None:
            return None
        result: dict[str, Any] = json.loads(self._unseal(bytes(row[0])))
        return result

    async def count(self) -> int:
        row = await self._db.fetchone("SELECT count(*) FROM cases")
        return int(row[0]) if row else 0
