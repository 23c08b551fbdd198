"""Staff follow-up: who is staff, the audit log, and each case's workflow and history.

Personal text that staff and relatives exchange about a case (notes, questions, answers) is
sealed to the organisation's key before it is written, like the case itself; workflow fields
(status, assignee, dates, counts) stay readable so staff can work when the key is offline.
The audit log holds ids, codes, counts and filters only, never what anybody wrote.
"""

from __future__ import annotations

import base64
import dataclasses
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiosqlite

from bot.casework.status import FINISHED, STATUSES
from bot.storage.db import Codec, Database, identity

__all__ = ["FINISHED", "STATUSES"]  # re-exported for the handlers that import them here

#: Event kinds whose detail is personal text, sealed.
SEALED_KINDS = frozenset({"note", "question", "answer", "message"})


@dataclass(frozen=True, slots=True)
class CaseInfo:
    """A case's workflow fields: nothing here identifies a person."""

    case_id: int
    number: str
    user_id: int | None
    language: str
    status: str
    persons_count: int
    prefecture: str | None
    attachments_count: int
    consent_share: str | None
    consent_publish: str | None
    submitted_at: str
    updated_at: str
    assignee_id: int | None
    urgent: bool = False  # a missing person is in danger now (the relative said so)


_CASE_COLUMNS = (
    "case_id, number, user_id, language, status, persons_count, prefecture, attachments_count,"
    " consent_share, consent_publish, submitted_at, updated_at, assignee_id, urgent"
)


@dataclass(frozen=True, slots=True)
class CaseEvent:
    event_id: int
    at: str
    actor_id: int | None  # None: the relative or the system
    kind: str  # submitted, status, assigned, note, question, answer, undelivered, withdrawn
    detail: str | None  # plain for workflow events; sealed (base64) for SEALED_KINDS


@dataclass(frozen=True, slots=True)
class StaffMember:
    user_id: int
    added_by: int
    added_at: str


@dataclass(frozen=True, slots=True)
class OpenQuestion:
    question_id: int
    case_id: int
    number: str
    asked_by: int
    message_id: int | None


@dataclass(frozen=True, slots=True)
class AuditEntry:
    at: str
    actor_id: int | None
    action: str
    detail: dict[str, Any]


# ----------------------------------------------------------------------------- staff members


class StaffRepository:
    """Staff added by admins in the bot (on top of BOT_STAFF_IDS and BOT_ADMIN_IDS)."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def contains(self, user_id: int) -> bool:
        row = await self._db.fetchone(
            "SELECT 1 FROM staff_members WHERE user_id = ?", (user_id,))
        return row is not None

    async def add(self, user_id: int, added_by: int, now: str) -> bool:
        """Add a staff member and audit it; False when they were already listed."""
        async with self._db.transaction() as conn:
            cur = await conn.execute(
                "INSERT INTO staff_members (user_id, added_by, added_at) VALUES (?, ?, ?)"
                " ON CONFLICT(user_id) DO NOTHING", (user_id, added_by, now))
            if cur.rowcount == 0:
                return False
            await _audit(conn, now, added_by, "staff_add", {"user_id": user_id})
        return True

    async def remove(self, user_id: int, removed_by: int, now: str) -> bool:
        async with self._db.transaction() as conn:
            cur = await conn.execute("DELETE FROM staff_members WHERE user_id = ?", (user_id,))
            if cur.rowcount == 0:
                return False
            await _audit(conn, now, removed_by, "staff_remove", {"user_id": user_id})
        return True

    async def all(self) -> list[StaffMember]:
        rows = await self._db.fetchall(
            "SELECT user_id, added_by, added_at FROM staff_members ORDER BY added_at, user_id")
        return [StaffMember(int(r[0]), int(r[1]), str(r[2])) for r in rows]


# ----------------------------------------------------------------------------- audit log


async def _audit(conn: aiosqlite.Connection, now: str, actor_id: int | None, action: str,
                 detail: dict[str, Any]) -> None:
    await conn.execute(
        "INSERT INTO audit_log (at, actor_id, action, detail) VALUES (?, ?, ?, ?)",
        (now, actor_id, action, json.dumps(detail, ensure_ascii=False, sort_keys=True)),
    )


class AuditLog:
    """Who did what and when; the detail holds ids, codes, counts and filters only."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def record(self, actor_id: int | None, action: str, detail: dict[str, Any],
                     now: str) -> None:
        async with self._db.transaction() as conn:
            await _audit(conn, now, actor_id, action, detail)

    async def recent(self, limit: int = 100) -> list[AuditEntry]:
        rows = await self._db.fetchall(
            "SELECT at, actor_id, action, detail FROM audit_log"
            " ORDER BY audit_id DESC LIMIT ?", (limit,))
        return [AuditEntry(str(r[0]), r[1], str(r[2]), json.loads(r[3] or "{}"))
                for r in reversed(rows)]


# ----------------------------------------------------------------------------- workflow


def _case(row: Any) -> CaseInfo:
    values = list(row)
    urgent = bool(values.pop())  # the last column of _CASE_COLUMNS
    return dataclasses.replace(CaseInfo(*values), urgent=urgent)


class Workflow:
    """Status, assignee, notes and questions of cases, each change an event plus an audit entry.

    `seal`/`unseal` are the organisation's keyring functions; `unseal` raises NoPrivateKey when
    the private key is kept offline.
    """

    def __init__(self, db: Database, seal: Codec = identity, unseal: Codec = identity) -> None:
        self._db = db
        self._seal = seal
        self._unseal = unseal

    # -- reading --------------------------------------------------------------------------

    async def case(self, number: str) -> CaseInfo | None:
        row = await self._db.fetchone(
            f"SELECT {_CASE_COLUMNS} FROM cases WHERE number = ?", (number,))
        return _case(row) if row else None

    async def case_by_id(self, case_id: int) -> CaseInfo | None:
        row = await self._db.fetchone(
            f"SELECT {_CASE_COLUMNS} FROM cases WHERE case_id = ?", (case_id,))
        return _case(row) if row else None

    async def list_cases(self, *, status: str | None = None, assignee_id: int | None = None,
                         open_only: bool = False, offset: int = 0, limit: int = 10
                         ) -> tuple[list[CaseInfo], int]:
        """One page of cases, the longest waiting first, and how many match in all."""
        terms: list[str] = []
        params: list[Any] = []
        if status is not None:
            terms.append("status = ?")
            params.append(status)
        if assignee_id is not None:
            terms.append("assignee_id = ?")
            params.append(assignee_id)
        if open_only:
            terms.append(f"status NOT IN ({', '.join('?' for _ in FINISHED)})")
            params.extend(FINISHED)
        where = " AND ".join(terms) if terms else "1"
        total = await self._db.fetchone(f"SELECT count(*) FROM cases WHERE {where}", params)
        rows = await self._db.fetchall(
            f"SELECT {_CASE_COLUMNS} FROM cases WHERE {where}"
            " ORDER BY submitted_at, case_id LIMIT ? OFFSET ?", (*params, limit, offset))
        return [_case(r) for r in rows], int(total[0]) if total else 0

    async def events(self, case_id: int) -> list[CaseEvent]:
        rows = await self._db.fetchall(
            "SELECT event_id, at, actor_id, kind, detail FROM case_events"
            " WHERE case_id = ? ORDER BY event_id", (case_id,))
        return [CaseEvent(int(r[0]), str(r[1]), r[2], str(r[3]), r[4]) for r in rows]

    def reveal(self, event: CaseEvent) -> dict[str, Any] | None:
        """The personal content of a note, question or answer (None once erased).

        Raises NoPrivateKey when the private key is offline.
        """
        if event.kind not in SEALED_KINDS or not event.detail:
            return None
        payload: dict[str, Any] = json.loads(self._unseal(base64.b64decode(event.detail)))
        return payload

    def _sealed(self, payload: dict[str, Any]) -> str:
        data = json.dumps(payload, ensure_ascii=False).encode()
        return base64.b64encode(self._seal(data)).decode("ascii")

    # -- changing -------------------------------------------------------------------------

    async def set_status(
        self, case_id: int, status: str, actor_id: int, now: str, *,
        in_transaction: Callable[[aiosqlite.Connection, int], Awaitable[None]] | None = None,
    ) -> str | None:
        """Move the case to `status`; returns the old status, or None when nothing changed.

        `in_transaction(conn, event_id)` runs inside the change's transaction, after its
        event is written: what it writes (the relative's notice in the outbox) commits with
        the change or not at all.
        """
        if status not in STATUSES:
            raise ValueError(f"unknown status {status!r}")
        async with self._db.transaction() as conn:
            cur = await conn.execute(
                "SELECT number, status FROM cases WHERE case_id = ?", (case_id,))
            row = await cur.fetchone()
            if row is None or row[1] == status or row[1] == "withdrawn":
                return None
            number, old = str(row[0]), str(row[1])
            await conn.execute(
                "UPDATE cases SET status = ?, updated_at = ? WHERE case_id = ?",
                (status, now, case_id))
            await conn.execute(  # every person moves with the case (casework.py: one person)
                "UPDATE case_persons SET status = ?, updated_at = ? WHERE case_id = ?",
                (status, now, case_id))
            event = await conn.execute(
                "INSERT INTO case_events (case_id, at, actor_id, kind, detail)"
                " VALUES (?, ?, ?, 'status', ?)", (case_id, now, actor_id, f"{old}>{status}"))
            await _audit(conn, now, actor_id, "status",
                         {"case": number, "from": old, "to": status})
            if in_transaction is not None:
                assert event.lastrowid is not None
                await in_transaction(conn, event.lastrowid)
        return old

    async def assign(self, case_id: int, assignee_id: int | None, actor_id: int, now: str
                     ) -> bool:
        """Give the case to `assignee_id` (None: to nobody); False when nothing changed."""
        async with self._db.transaction() as conn:
            cur = await conn.execute(
                "SELECT number, assignee_id, status FROM cases WHERE case_id = ?", (case_id,))
            row = await cur.fetchone()
            if row is None or row[1] == assignee_id or row[2] == "withdrawn":
                return False
            await conn.execute(
                "UPDATE cases SET assignee_id = ?, updated_at = ? WHERE case_id = ?",
                (assignee_id, now, case_id))
            await conn.execute(
                "INSERT INTO case_events (case_id, at, actor_id, kind, detail)"
                " VALUES (?, ?, ?, 'assigned', ?)",
                (case_id, now, actor_id, "" if assignee_id is None else str(assignee_id)))
            await _audit(conn, now, actor_id, "assign",
                         {"case": str(row[0]), "from": row[1], "to": assignee_id})
        return True

    async def unassign_all(self, assignee_id: int, actor_id: int, now: str) -> list[str]:
        """Take every open case away from `assignee_id` (removed from staff), each change an
        event and an audit entry; returns the case numbers."""
        async with self._db.transaction() as conn:
            cur = await conn.execute(
                "SELECT case_id, number FROM cases WHERE assignee_id = ?"
                f" AND status NOT IN ({', '.join('?' for _ in FINISHED)}) ORDER BY case_id",
                (assignee_id, *FINISHED))
            rows = list(await cur.fetchall())
            for case_id, number in rows:
                await conn.execute(
                    "UPDATE cases SET assignee_id = NULL, updated_at = ? WHERE case_id = ?",
                    (now, case_id))
                await conn.execute(
                    "INSERT INTO case_events (case_id, at, actor_id, kind, detail)"
                    " VALUES (?, ?, ?, 'assigned', '')", (case_id, now, actor_id))
                await _audit(conn, now, actor_id, "assign",
                             {"case": str(number), "from": assignee_id, "to": None,
                              "why": "staff_remove"})
        return [str(r[1]) for r in rows]

    async def add_note(self, case_id: int, text: str, actor_id: int, now: str) -> None:
        """An internal note (sealed); relatives never see notes."""
        async with self._db.transaction() as conn:
            await conn.execute(
                "INSERT INTO case_events (case_id, at, actor_id, kind, detail)"
                " VALUES (?, ?, ?, 'note', ?)",
                (case_id, now, actor_id, self._sealed({"text": text})))
            await conn.execute("UPDATE cases SET updated_at = ? WHERE case_id = ?",
                               (now, case_id))
            number = await _number(conn, case_id)
            await _audit(conn, now, actor_id, "note", {"case": number})

    async def ask(self, case: CaseInfo, text: str, actor_id: int, now: str) -> int:
        """Record a question to the relative (sealed) before it is sent; returns its id."""
        assert case.user_id is not None
        async with self._db.transaction() as conn:
            cur = await conn.execute(
                "INSERT INTO case_questions (case_id, user_id, asked_by, asked_at)"
                " VALUES (?, ?, ?, ?)", (case.case_id, case.user_id, actor_id, now))
            question_id = int(cur.lastrowid or 0)
            await conn.execute(
                "INSERT INTO case_events (case_id, at, actor_id, kind, detail)"
                " VALUES (?, ?, ?, 'question', ?)",
                (case.case_id, now, actor_id,
                 self._sealed({"question": question_id, "text": text})))
            await conn.execute("UPDATE cases SET updated_at = ? WHERE case_id = ?",
                               (now, case.case_id))
            await _audit(conn, now, actor_id, "ask",
                         {"case": case.number, "question": question_id})
        return question_id

    async def question_sent(self, question_id: int, message_id: int) -> None:
        await self._db.execute(
            "UPDATE case_questions SET message_id = ? WHERE question_id = ?",
            (message_id, question_id))

    async def question_failed(self, question_id: int, now: str) -> None:
        """The question could not be delivered (the relative blocked the bot, or left)."""
        async with self._db.transaction() as conn:
            cur = await conn.execute(
                "UPDATE case_questions SET closed = 1 WHERE question_id = ?"
                " RETURNING case_id", (question_id,))
            row = await cur.fetchone()
            if row is not None:
                await conn.execute(
                    "INSERT INTO case_events (case_id, at, kind, detail)"
                    " VALUES (?, ?, 'undelivered', ?)", (row[0], now, str(question_id)))

    async def question_for_reply(self, user_id: int, message_id: int) -> OpenQuestion | None:
        """The question that the relative's message replies to, if it is one of ours."""
        row = await self._db.fetchone(
            "SELECT q.question_id, q.case_id, c.number, q.asked_by, q.message_id"
            " FROM case_questions q JOIN cases c USING (case_id)"
            " WHERE q.user_id = ? AND q.message_id = ? AND q.closed = 0",
            (user_id, message_id))
        return OpenQuestion(*row) if row else None

    async def waiting_question(self, user_id: int, asked_after: str, answered_after: str
                               ) -> OpenQuestion | None:
        """The latest question still waiting for this relative's answer.

        A question waits when it was asked after `asked_after` and not answered yet, or when
        its last answer came after `answered_after` (a reply often arrives in several messages:
        a text, then a photo).
        """
        row = await self._db.fetchone(
            "SELECT q.question_id, q.case_id, c.number, q.asked_by, q.message_id"
            " FROM case_questions q JOIN cases c USING (case_id)"
            " WHERE q.user_id = ? AND q.closed = 0 AND q.message_id IS NOT NULL"
            " AND ((q.last_answer_at IS NULL AND q.asked_at > ?) OR q.last_answer_at > ?)"
            " ORDER BY q.question_id DESC LIMIT 1",
            (user_id, asked_after, answered_after))
        return OpenQuestion(*row) if row else None

    async def record_answer(self, question: OpenQuestion, answer: dict[str, Any], now: str
                            ) -> None:
        """Store one message of the relative's answer (sealed) on the case."""
        async with self._db.transaction() as conn:
            await conn.execute(
                "INSERT INTO case_events (case_id, at, kind, detail)"
                " VALUES (?, ?, 'answer', ?)",
                (question.case_id, now,
                 self._sealed({"question": question.question_id, **answer})))
            await conn.execute(
                "UPDATE case_questions SET last_answer_at = ? WHERE question_id = ?",
                (now, question.question_id))
            await conn.execute("UPDATE cases SET updated_at = ? WHERE case_id = ?",
                               (now, question.case_id))


async def record_message(db: Database, seal: Codec, case_id: int, content: dict[str, Any],
                         now: str) -> None:
    """Store a message the relative wrote to the volunteers (sealed) on the case."""
    async with db.transaction() as conn:
        await conn.execute(
            "INSERT INTO case_events (case_id, at, kind, detail) VALUES (?, ?, 'message', ?)",
            (case_id, now, base64.b64encode(seal(json.dumps(content, ensure_ascii=False)
                                                 .encode())).decode("ascii")))
        await conn.execute("UPDATE cases SET updated_at = ? WHERE case_id = ?", (now, case_id))


async def _number(conn: aiosqlite.Connection, case_id: int) -> str:
    cur = await conn.execute("SELECT number FROM cases WHERE case_id = ?", (case_id,))
    row = await cur.fetchone()
    return str(row[0]) if row else ""
