"""The evidence vault's rows (evidence_files) and the verification level of each person."""

from __future__ import annotations

import secrets
from collections import Counter
from dataclasses import dataclass
from typing import Any

from bot.storage.db import Database

PENDING, STORED, FAILED, ERASE = "pending", "stored", "failed", "erase"
LEVELS = ("reported", "corroborated", "documented")


@dataclass(frozen=True, slots=True)
class VaultRow:
    file_row: int
    user_id: int | None
    case_id: int | None
    file_unique_id: str
    ref: bytes
    custody: bytes | None
    vault_name: str
    state: str
    reason: str | None
    size: int | None
    attempts: int
    received_at: str


_COLS = ("file_row, user_id, case_id, file_unique_id, ref, custody, vault_name, state, reason,"
         " size, attempts, received_at")


def _row(r: Any) -> VaultRow:
    return VaultRow(int(r[0]), r[1], r[2], str(r[3]), bytes(r[4] or b""),
                    bytes(r[5]) if r[5] is not None else None, str(r[6]), str(r[7]), r[8],
                    r[9], int(r[10]), str(r[11]))


def new_vault_name() -> str:
    """A random name: nothing about the file or the person can be read from it."""
    return secrets.token_hex(16) + ".sealed"


class EvidenceRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def enqueue(self, user_id: int, file_unique_id: str, ref: bytes, now: str,
                      due: float) -> bool:
        """A file just received in a draft: fetch it. False when the draft already has it."""
        n = await self._db.execute(
            "INSERT OR IGNORE INTO evidence_files (user_id, file_unique_id, ref, vault_name,"
            " next_attempt_at, received_at) VALUES (?, ?, ?, ?, ?, ?)",
            (user_id, file_unique_id, ref, new_vault_name(), due, now))
        return n > 0

    async def enqueue_for_case(self, user_id: int, case_id: int, file_unique_id: str,
                               ref: bytes, now: str, due: float) -> bool:
        """A file sent after submission (an answer to a staff question): the case's at once."""
        async with self._db.transaction() as conn:
            cur = await conn.execute(
                "SELECT 1 FROM evidence_files WHERE case_id = ? AND file_unique_id = ?"
                " AND state != 'erase'", (case_id, file_unique_id))
            if await cur.fetchone() is not None:
                return False
            await conn.execute(
                "INSERT INTO evidence_files (user_id, case_id, file_unique_id, ref, vault_name,"
                " next_attempt_at, received_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (user_id, case_id, file_unique_id, ref, new_vault_name(), due, now))
        return True

    @staticmethod
    async def attach(conn: Any, user_id: int, case_id: int,
                     files: list[tuple[str, bytes]], now: str, due: float) -> int:
        """In the case's transaction: the draft's files become the case's.

        `files` are (file_unique_id, sealed ref) of every file in the case's answers; a file
        with no row yet (a crash between the answer and its job) gets one now. Returns how
        many rows were created.
        """
        created = 0
        for unique, ref in files:
            cur = await conn.execute(
                "UPDATE evidence_files SET case_id = ? WHERE user_id = ? AND case_id IS NULL"
                " AND state != 'erase' AND file_unique_id = ?", (case_id, user_id, unique))
            if cur.rowcount == 0:
                await conn.execute(
                    "INSERT INTO evidence_files (user_id, case_id, file_unique_id, ref,"
                    " vault_name, next_attempt_at, received_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (user_id, case_id, unique, ref, new_vault_name(), due, now))
                created += 1
        return created

    async def due(self, now: float, limit: int) -> list[VaultRow]:
        rows = await self._db.fetchall(
            f"SELECT {_COLS} FROM evidence_files WHERE state = 'pending'"
            " AND next_attempt_at <= ? ORDER BY next_attempt_at LIMIT ?", (now, limit))
        return [_row(r) for r in rows]

    async def next_due(self) -> float | None:
        row = await self._db.fetchone(
            "SELECT min(next_attempt_at) FROM evidence_files WHERE state = 'pending'")
        return float(row[0]) if row and row[0] is not None else None

    async def mark_stored(self, file_row: int, custody: bytes, size: int, now: str) -> bool:
        """Record the sealed file; False if the row was erased meanwhile (delete the file)."""
        n = await self._db.execute(
            "UPDATE evidence_files SET state = 'stored', custody = ?, size = ?, stored_at = ?,"
            " reason = NULL, attempts = attempts + 1 WHERE file_row = ? AND state = 'pending'",
            (custody, size, now, file_row))
        return n > 0

    async def mark_failed(self, file_row: int, reason: str, custody: bytes | None) -> None:
        await self._db.execute(
            "UPDATE evidence_files SET state = 'failed', reason = ?, custody = ?,"
            " attempts = attempts + 1 WHERE file_row = ? AND state = 'pending'",
            (reason, custody, file_row))

    async def retry_later(self, file_row: int, due: float, reason: str) -> None:
        await self._db.execute(
            "UPDATE evidence_files SET attempts = attempts + 1, next_attempt_at = ?, reason = ?"
            " WHERE file_row = ? AND state = 'pending'", (due, reason, file_row))

    async def retry_failed(self, case_id: int, due: float) -> int:
        """Staff asked to try the failed files of a case again."""
        return await self._db.execute(
            "UPDATE evidence_files SET state = 'pending', next_attempt_at = ?, attempts = 0"
            " WHERE case_id = ? AND state = 'failed'", (due, case_id))

    async def sweep_drafts(self, cutoff: str) -> int:
        """Files of drafts that are gone (purged, cancelled, replaced): marked for erasure.

        A file in no case whose sender has no draft that was started before it arrived, and
        older than `cutoff` (files arriving while a draft is being saved are not swept).
        """
        return await self._db.execute(
            "UPDATE evidence_files SET state = 'erase', ref = X'', custody = NULL"
            " WHERE case_id IS NULL AND state != 'erase' AND received_at < ? AND NOT EXISTS"
            " (SELECT 1 FROM drafts d WHERE d.user_id = evidence_files.user_id"
            "  AND d.created_at <= evidence_files.received_at)", (cutoff,))

    async def to_erase(self, limit: int = 500) -> list[tuple[int, str]]:
        rows = await self._db.fetchall(
            "SELECT file_row, vault_name FROM evidence_files WHERE state = 'erase' LIMIT ?",
            (limit,))
        return [(int(r[0]), str(r[1])) for r in rows]

    async def forget(self, file_rows: list[int]) -> None:
        async with self._db.transaction() as conn:
            for file_row in file_rows:
                await conn.execute("DELETE FROM evidence_files WHERE file_row = ?"
                                   " AND state = 'erase'", (file_row,))

    async def names(self) -> set[str]:
        rows = await self._db.fetchall("SELECT vault_name FROM evidence_files")
        return {str(r[0]) for r in rows}

    async def for_case(self, case_id: int) -> list[VaultRow]:
        rows = await self._db.fetchall(
            f"SELECT {_COLS} FROM evidence_files WHERE case_id = ? AND state != 'erase'"
            " ORDER BY file_row", (case_id,))
        return [_row(r) for r in rows]

    async def for_user_drafts(self, user_id: int) -> list[VaultRow]:
        rows = await self._db.fetchall(
            f"SELECT {_COLS} FROM evidence_files WHERE user_id = ? AND case_id IS NULL"
            " AND state != 'erase' ORDER BY file_row", (user_id,))
        return [_row(r) for r in rows]

    async def by_state(self) -> Counter[str]:
        rows = await self._db.fetchall(
            "SELECT state, count(*) FROM evidence_files GROUP BY state")
        return Counter({str(r[0]): int(r[1]) for r in rows})

    async def stored_bytes(self) -> int:
        row = await self._db.fetchone(
            "SELECT coalesce(sum(size), 0) FROM evidence_files WHERE state = 'stored'")
        return int(row[0]) if row else 0


class VerificationRepository:
    """Per person: reported (the default, no row), corroborated, documented."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def levels(self, case_id: int) -> dict[int, str]:
        rows = await self._db.fetchall(
            "SELECT person_index, level FROM person_verification WHERE case_id = ?", (case_id,))
        return {int(r[0]): str(r[1]) for r in rows}

    async def set(self, case_id: int, person: int, level: str, actor: int | None,
                  now: str) -> None:
        if level not in LEVELS:
            raise ValueError(f"unknown level {level!r}")
        async with self._db.transaction() as conn:
            await conn.execute(
                "INSERT INTO person_verification (case_id, person_index, level, set_by, set_at)"
                " VALUES (?, ?, ?, ?, ?) ON CONFLICT(case_id, person_index) DO UPDATE SET"
                " level = excluded.level, set_by = excluded.set_by, set_at = excluded.set_at",
                (case_id, person, level, actor, now))
            await conn.execute(
                "INSERT INTO case_events (case_id, at, actor_id, kind, detail)"
                " VALUES (?, ?, ?, 'verification', ?)",
                (case_id, now, actor, f"{person}:{level}"))

    async def all_levels(self) -> dict[int, dict[int, str]]:
        rows = await self._db.fetchall(
            "SELECT case_id, person_index, level FROM person_verification")
        out: dict[int, dict[int, str]] = {}
        for r in rows:
            out.setdefault(int(r[0]), {})[int(r[1])] = str(r[2])
        return out

    async def counts(self) -> Counter[str]:
        """Missing persons per level, over every case that is not withdrawn."""
        row = await self._db.fetchone(
            "SELECT coalesce(sum(persons_count), 0) FROM cases WHERE status != 'withdrawn'")
        total = int(row[0]) if row else 0
        rows = await self._db.fetchall(
            "SELECT v.level, count(*) FROM person_verification v JOIN cases c"
            " ON c.case_id = v.case_id WHERE c.status != 'withdrawn'"
            " AND v.person_index <= c.persons_count GROUP BY v.level")
        out: Counter[str] = Counter({str(r[0]): int(r[1]) for r in rows})
        out["reported"] = total - out["corroborated"] - out["documented"]
        return out
