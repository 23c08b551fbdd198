"""Case work storage: each person's status, links between persons reported twice, what the
bot waits for a staff member to type, and a relative's message waiting for its case.

A status change is one transaction: the persons' rows, the case's derived status, a
`person_status` event (and a `status` event when the case's status moved), the audit entry,
and whatever the caller writes with it (the relative's notice, queued in the outbox after the
undo window). Undoing restores the persons' previous statuses from that event.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import aiosqlite

from bot.casework.status import STATUSES, derive_case_status
from bot.storage.db import Database
from bot.storage.staff import _audit

Codec = Callable[[bytes], bytes]


def _identity(data: bytes) -> bytes:
    return data


@dataclass(frozen=True, slots=True)
class StatusChange:
    """One change of one or more persons' status; `event_id` identifies it (for undo)."""

    event_id: int
    case_id: int
    number: str
    case_from: str
    case_to: str
    persons: tuple[tuple[int, str, str], ...]  # (person, from, to)


@dataclass(frozen=True, slots=True)
class PersonLink:
    link_id: int
    case_id: int
    number: str
    person: int
    other_case_id: int
    other_number: str
    other_person: int
    certainty: str  # certain, likely
    state: str  # suggested, confirmed, rejected


@dataclass(frozen=True, slots=True)
class StaffPrompt:
    staff_id: int
    kind: str  # needs_info, ask
    case_id: int
    persons: tuple[int, ...]
    created_at: str


@dataclass(frozen=True, slots=True)
class RelativeThread:
    user_id: int
    case_id: int | None
    message_id: int | None
    content: dict[str, Any] | None
    updated_at: str


def _detail(persons: Sequence[tuple[int, str, str]]) -> str:
    return ",".join(f"{p}:{old}>{new}" for p, old, new in persons)


def _parse(detail: str | None) -> tuple[tuple[int, str, str], ...]:
    out = []
    for part in (detail or "").split(","):
        person, _, move = part.partition(":")
        old, _, new = move.partition(">")
        if person.isdigit() and old and new:
            out.append((int(person), old, new))
    return tuple(out)


_LINK_SELECT = (
    "SELECT l.link_id, l.case_id, a.number, l.person, l.other_case_id, b.number,"
    " l.other_person, l.certainty, l.state FROM person_links l"
    " JOIN cases a ON a.case_id = l.case_id JOIN cases b ON b.case_id = l.other_case_id")


class CaseworkRepository:
    def __init__(self, db: Database, seal: Codec = _identity, unseal: Codec = _identity) -> None:
        """`seal`/`unseal` are the server key's (a relative's message waiting for its case)."""
        self._db = db
        self._seal = seal
        self._unseal = unseal

    # -- per-person status ----------------------------------------------------------------

    async def person_statuses(self, case_id: int) -> list[tuple[int, str]]:
        rows = await self._db.fetchall(
            "SELECT person, status FROM case_persons WHERE case_id = ? ORDER BY person",
            (case_id,))
        return [(int(r[0]), str(r[1])) for r in rows]

    async def set_person_status(
        self, case_id: int, persons: Sequence[int] | None, status: str, actor_id: int,
        now: str, *,
        in_transaction: Callable[[aiosqlite.Connection, StatusChange], Awaitable[None]]
        | None = None,
    ) -> StatusChange | None:
        """Move `persons` (None: every person) to `status`; None when nothing changed."""
        if status not in STATUSES:
            raise ValueError(f"unknown status {status!r}")
        async with self._db.transaction() as conn:
            cur = await conn.execute(
                "SELECT number, status FROM cases WHERE case_id = ?", (case_id,))
            row = await cur.fetchone()
            if row is None or row[1] == "withdrawn":
                return None
            number, case_from = str(row[0]), str(row[1])
            cur = await conn.execute(
                "SELECT person, status FROM case_persons WHERE case_id = ? ORDER BY person",
                (case_id,))
            current = {int(r[0]): str(r[1]) for r in await cur.fetchall()}
            chosen = list(current) if persons is None else [p for p in persons if p in current]
            moves = tuple((p, current[p], status) for p in chosen if current[p] != status)
            if not moves:
                return None
            return await self._apply(conn, case_id, number, case_from, current, moves,
                                     actor_id, now, "status", in_transaction)

    async def _apply(self, conn: aiosqlite.Connection, case_id: int, number: str,
                     case_from: str, current: dict[int, str],
                     moves: tuple[tuple[int, str, str], ...], actor_id: int, now: str,
                     action: str,
                     in_transaction: Callable[[aiosqlite.Connection, StatusChange],
                                              Awaitable[None]] | None) -> StatusChange:
        await conn.executemany(
            "UPDATE case_persons SET status = ?, updated_at = ? WHERE case_id = ? AND person = ?",
            [(new, now, case_id, p) for p, _, new in moves])
        after = dict(current)
        after.update({p: new for p, _, new in moves})
        case_to = derive_case_status(after.values())
        await conn.execute("UPDATE cases SET status = ?, updated_at = ? WHERE case_id = ?",
                           (case_to, now, case_id))
        kind = "person_status" if action == "status" else "status_undone"
        cur = await conn.execute(
            "INSERT INTO case_events (case_id, at, actor_id, kind, detail) VALUES (?, ?, ?, ?, ?)",
            (case_id, now, actor_id, kind, _detail(moves)))
        event_id = int(cur.lastrowid or 0)
        if case_to != case_from:
            await conn.execute(
                "INSERT INTO case_events (case_id, at, actor_id, kind, detail)"
                " VALUES (?, ?, ?, 'status', ?)", (case_id, now, actor_id,
                                                   f"{case_from}>{case_to}"))
        await _audit(conn, now, actor_id, action,
                     {"case": number, "persons": [[p, o, n] for p, o, n in moves],
                      "from": case_from, "to": case_to})
        change = StatusChange(event_id, case_id, number, case_from, case_to, moves)
        if in_transaction is not None:
            await in_transaction(conn, change)
        return change

    async def change(self, event_id: int) -> tuple[StatusChange, str] | None:
        """A person_status change by its event id, and when it was made."""
        row = await self._db.fetchone(
            "SELECT e.case_id, c.number, e.detail, e.at FROM case_events e"
            " JOIN cases c USING (case_id) WHERE e.event_id = ? AND e.kind = 'person_status'",
            (event_id,))
        if row is None:
            return None
        moves = _parse(row[2])
        return StatusChange(event_id, int(row[0]), str(row[1]), "", "", moves), str(row[3])

    async def undo(self, event_id: int, actor_id: int, now: str, *,
                   in_transaction: Callable[[aiosqlite.Connection], Awaitable[bool]]
                   ) -> StatusChange | None:
        """Put back the persons a change moved (those still where it left them).

        `in_transaction(conn)` runs first and decides: it withdraws the relative's notice
        and returns False when the notice has already gone out (then nothing is undone).
        """
        async with self._db.transaction() as conn:
            cur = await conn.execute(
                "SELECT e.case_id, c.number, c.status, e.detail FROM case_events e"
                " JOIN cases c USING (case_id) WHERE e.event_id = ? AND e.kind = 'person_status'",
                (event_id,))
            row = await cur.fetchone()
            if row is None or row[2] == "withdrawn":
                return None
            if not await in_transaction(conn):
                return None
            case_id, number, case_from = int(row[0]), str(row[1]), str(row[2])
            cur = await conn.execute(
                "SELECT person, status FROM case_persons WHERE case_id = ?", (case_id,))
            current = {int(r[0]): str(r[1]) for r in await cur.fetchall()}
            moves = tuple((p, new, old) for p, old, new in _parse(row[3])
                          if current.get(p) == new)
            if not moves:
                return None
            # The change itself is marked undone: it can be undone once.
            await conn.execute(
                "UPDATE case_events SET kind = 'person_status_undone' WHERE event_id = ?",
                (event_id,))
            return await self._apply(conn, case_id, number, case_from, current, moves,
                                     actor_id, now, "status_undo", None)

    # -- duplicates -----------------------------------------------------------------------

    async def add_links(self, links: Sequence[tuple[int, int, int, int, str]], now: str
                        ) -> None:
        """(case_id, person, other_case_id, other_person, certainty) suggestions."""
        if not links:
            return
        async with self._db.transaction() as conn:
            await conn.executemany(
                "INSERT INTO person_links (case_id, person, other_case_id, other_person,"
                " certainty, found_at) VALUES (?, ?, ?, ?, ?, ?)"
                " ON CONFLICT DO NOTHING", [(*link, now) for link in links])
            await _refresh_keys(conn)

    async def links_of(self, case_id: int) -> list[PersonLink]:
        """Links from or to the case's persons, rejected ones left out."""
        rows = await self._db.fetchall(
            f"{_LINK_SELECT} WHERE (l.case_id = ? OR l.other_case_id = ?)"
            " AND l.state != 'rejected' ORDER BY l.link_id", (case_id, case_id))
        return [PersonLink(*r) for r in rows]

    async def link(self, link_id: int) -> PersonLink | None:
        row = await self._db.fetchone(f"{_LINK_SELECT} WHERE l.link_id = ?", (link_id,))
        return PersonLink(*row) if row else None

    async def decide_link(self, link_id: int, state: str, actor_id: int, now: str) -> bool:
        """Confirm or reject a suggested link; False when it was already decided so."""
        if state not in ("confirmed", "rejected"):
            raise ValueError(state)
        async with self._db.transaction() as conn:
            cur = await conn.execute(
                "UPDATE person_links SET state = ?, decided_by = ?, decided_at = ?"
                " WHERE link_id = ? AND state != ? RETURNING case_id, person, other_case_id,"
                " other_person", (state, actor_id, now, link_id, state))
            row = await cur.fetchone()
            if row is None:
                return False
            await _audit(conn, now, actor_id, f"link_{state}",
                         {"link": link_id, "persons": [list(row[:2]), list(row[2:])]})
            await _refresh_keys(conn)
        return True

    async def person_keys(self) -> dict[tuple[int, int], str]:
        """(case_id, person) → the key shared by persons linked as the same person (only
        persons with links; see _refresh_keys)."""
        rows = await self._db.fetchall(
            "SELECT case_id, person, person_key FROM case_persons WHERE person_key IS NOT NULL")
        return {(int(r[0]), int(r[1])): str(r[2]) for r in rows}

    async def persons_count(self) -> tuple[int, int]:
        """(persons in cases not withdrawn, distinct persons once linked ones count once)."""
        row = await self._db.fetchone(
            "SELECT count(*) FROM case_persons WHERE status != 'withdrawn'")
        total = int(row[0]) if row else 0
        keys = await self.person_keys()
        merged = len(keys) - len(set(keys.values()))
        return total, total - merged

    # -- what a staff member is asked to type ---------------------------------------------

    async def put_prompt(self, chat_id: int, message_id: int, staff_id: int, kind: str,
                         case_id: int | None, persons: Sequence[int], now: str) -> None:
        await self._db.execute(
            "INSERT OR REPLACE INTO staff_prompts (chat_id, message_id, staff_id, kind, case_id,"
            " persons, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (chat_id, message_id, staff_id, kind, case_id, ",".join(map(str, persons)), now))

    async def take_prompt(self, chat_id: int, message_id: int) -> StaffPrompt | None:
        async with self._db.transaction() as conn:
            cur = await conn.execute(
                "DELETE FROM staff_prompts WHERE chat_id = ? AND message_id = ?"
                " RETURNING staff_id, kind, case_id, persons, created_at", (chat_id, message_id))
            row = await cur.fetchone()
        if row is None:
            return None
        persons = tuple(int(p) for p in str(row[3]).split(",") if p)
        return StaffPrompt(int(row[0]), str(row[1]), int(row[2] or 0), persons, str(row[4]))

    async def take_latest_prompt(self, staff_id: int, kind: str) -> StaffPrompt | None:
        """The staff member's latest prompt of `kind` (a reply that is not a reply: a user
        picked or a message forwarded after /staff add), removed as it is taken."""
        async with self._db.transaction() as conn:
            cur = await conn.execute(
                "DELETE FROM staff_prompts WHERE (chat_id, message_id) IN (SELECT chat_id,"
                " message_id FROM staff_prompts WHERE staff_id = ? AND kind = ?"
                " ORDER BY created_at DESC LIMIT 1)"
                " RETURNING staff_id, kind, case_id, persons, created_at", (staff_id, kind))
            row = await cur.fetchone()
        if row is None:
            return None
        return StaffPrompt(int(row[0]), str(row[1]), int(row[2] or 0), (), str(row[4]))

    # -- a relative writing to the volunteers ---------------------------------------------

    async def set_thread(self, user_id: int, now: str, *, case_id: int | None = None,
                         message_id: int | None = None,
                         content: dict[str, Any] | None = None) -> None:
        blob = (self._seal(json.dumps(content, ensure_ascii=False).encode())
                if content is not None else None)
        await self._db.execute(
            "INSERT OR REPLACE INTO relative_threads (user_id, case_id, message_id, content,"
            " updated_at) VALUES (?, ?, ?, ?, ?)", (user_id, case_id, message_id, blob, now))

    async def thread(self, user_id: int) -> RelativeThread | None:
        row = await self._db.fetchone(
            "SELECT case_id, message_id, content, updated_at FROM relative_threads"
            " WHERE user_id = ?", (user_id,))
        if row is None:
            return None
        content = json.loads(self._unseal(bytes(row[2]))) if row[2] is not None else None
        return RelativeThread(user_id, row[0], row[1], content, str(row[3]))

    async def clear_thread(self, user_id: int) -> None:
        await self._db.execute("DELETE FROM relative_threads WHERE user_id = ?", (user_id,))


async def case_data_batches(db: Database, batch: int = 2000
                            ) -> AsyncIterator[list[tuple[int, str, bytes]]]:
    """(case_id, number, sealed data) of every case not withdrawn, in batches (index build)."""
    last = 0
    while True:
        rows = await db.fetchall(
            "SELECT case_id, number, data FROM cases WHERE case_id > ? AND status != 'withdrawn'"
            " ORDER BY case_id LIMIT ?", (last, batch))
        if not rows:
            return
        last = int(rows[-1][0])
        yield [(int(r[0]), str(r[1]), bytes(r[2])) for r in rows]


async def _refresh_keys(conn: aiosqlite.Connection) -> None:
    """Recompute every person's key from the links (a few thousand rows at most).

    Certain links (the same Chinese ID) and links staff confirmed join persons; the key of a
    group is its smallest "NUMBER/person". Persons without such links get NULL.
    """
    cur = await conn.execute(
        "SELECT l.case_id, a.number, l.person, l.other_case_id, b.number, l.other_person"
        " FROM person_links l JOIN cases a ON a.case_id = l.case_id"
        " JOIN cases b ON b.case_id = l.other_case_id"
        " WHERE l.state = 'confirmed' OR (l.state = 'suggested' AND l.certainty = 'certain')")
    parent: dict[tuple[int, int], tuple[int, int]] = {}
    label: dict[tuple[int, int], str] = {}

    def find(x: tuple[int, int]) -> tuple[int, int]:
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for case_a, number_a, person_a, case_b, number_b, person_b in await cur.fetchall():
        a, b = (int(case_a), int(person_a)), (int(case_b), int(person_b))
        label[a], label[b] = f"{number_a}/{person_a}", f"{number_b}/{person_b}"
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb, key=label.__getitem__)] = min(ra, rb, key=label.__getitem__)
    await conn.execute("UPDATE case_persons SET person_key = NULL WHERE person_key IS NOT NULL")
    await conn.executemany(
        "UPDATE case_persons SET person_key = ? WHERE case_id = ? AND person = ?",
        [(label[find(x)], x[0], x[1]) for x in parent])
