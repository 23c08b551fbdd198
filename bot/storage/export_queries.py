"""SQL for exports: cases in submission order, read in small batches (keyset pagination).

Each batch is one short ``SELECT ... LIMIT ?`` under the database lock, so an export of
100,000 cases never holds them all in memory and never holds the lock for long: the bot keeps
answering relatives between batches. The next batch starts after the last
``(submitted_at, case_id)`` seen, which the indexes ``cases_submitted`` and ``cases_status``
(both ending in the rowid, i.e. ``case_id``) serve without sorting.
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any, NamedTuple

from bot.storage.db import Database

_COLUMNS = (
    "case_id, number, status, language, submitted_at, updated_at, assignee_id, persons_count,"
    " prefecture, attachments_count, consent_share, consent_publish, notice_version, data,"
    # Each person's key, in person order ("" when linked to nobody): see person_keys().
    " (SELECT group_concat(coalesce(person_key, ''), ',') FROM (SELECT person_key"
    "  FROM case_persons p WHERE p.case_id = cases.case_id ORDER BY p.person)) AS person_keys,"
    # Each person's verification level (evidence/, migration 0051): "1:documented,2:...".
    " (SELECT group_concat(v.person_index || ':' || v.level) FROM person_verification v"
    "  WHERE v.case_id = cases.case_id) AS verification"
)


class CaseRow(NamedTuple):
    """One row of ``cases`` as an export reads it; ``data`` is still sealed (as stored)."""

    case_id: int
    number: str
    status: str
    language: str
    submitted_at: str
    updated_at: str
    assignee_id: int | None
    persons_count: int
    prefecture: str | None
    attachments_count: int
    consent_share: str | None
    consent_publish: str | None
    notice_version: int
    data: bytes
    person_keys: str | None = None  # comma-separated, in person order; "" for an unlinked one
    verification: str | None = None  # "person:level,..." for persons not merely reported

    def person_key(self, person: int) -> str:
        """The key an export gives person `person` (from 1): shared by persons linked as the
        same person, else the person's own "NUMBER/person"."""
        keys = (self.person_keys or "").split(",")
        key = keys[person - 1] if 0 < person <= len(keys) else ""
        return key or f"{self.number}/{person}"


def _day(value: str, name: str) -> date:
    """Parse a YYYY-MM-DD filter date, naming the parameter when it is not one."""
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{name} must be a date as YYYY-MM-DD") from None


#: ``consent`` filter values: what the relative agreed to (casework: consent enforced).
CONSENT_FILTERS: dict[str, tuple[str, tuple[str, ...]]] = {
    "share": ("consent_share", ("yes",)),
    "publish": ("consent_publish", ("by_name", "anonymous")),
}


def _filters(since: str | None, until: str | None, status: str | None,
             lang: str | None, consent: str | None = None) -> tuple[list[str], list[Any]]:
    """WHERE terms and their parameters for the export filters (all optional, all AND-ed).

    ``since`` and ``until`` are inclusive calendar dates compared with the date written at the
    start of ``submitted_at`` (ISO 8601 text with time and offset, as the bot recorded it):
    ``since`` keeps ``submitted_at >= since``, ``until`` keeps ``submitted_at < until + 1 day``.
    """
    terms: list[str] = []
    params: list[Any] = []
    if since is not None:
        terms.append("submitted_at >= ?")
        params.append(_day(since, "since").isoformat())
    if until is not None:
        terms.append("submitted_at < ?")
        params.append((_day(until, "until") + timedelta(days=1)).isoformat())
    if status is not None:
        terms.append("status = ?")
        params.append(status)
    if lang is not None:
        terms.append("language = ?")
        params.append(lang)
    if consent is not None:
        if consent not in CONSENT_FILTERS:
            raise ValueError(f"unknown consent {consent!r}; use share or publish")
        column, codes = CONSENT_FILTERS[consent]
        terms.append(f"{column} IN ({', '.join('?' for _ in codes)})")
        params.extend(codes)
    return terms, params


def _case_row(row: sqlite3.Row | tuple[Any, ...]) -> CaseRow:
    """Convert a database row; ``data`` becomes bytes whichever way it was bound."""
    data = row[13]
    if data.__class__ is bytes and row.__class__ is tuple:
        return CaseRow._make(row)
    if isinstance(data, str):
        data = data.encode("utf-8")
    return CaseRow(row[0], row[1], row[2], row[3], row[4], row[5], row[6], row[7], row[8],
                   row[9], row[10], row[11], row[12], bytes(data),
                   row[14] if len(row) > 14 else None, row[15] if len(row) > 15 else None)


async def iter_case_batches(db: Database, *, since: str | None = None, until: str | None = None,
                            status: str | None = None, lang: str | None = None,
                            consent: str | None = None,
                            batch: int = 500) -> AsyncIterator[list[CaseRow]]:
    """Yield the matching cases in ``(submitted_at, case_id)`` order, ``batch`` at a time.

    Raises ValueError at the first step when ``since`` or ``until`` is not YYYY-MM-DD.
    """
    if batch < 1:
        raise ValueError("batch must be at least 1")
    terms, params = _filters(since, until, status, lang, consent)
    where = " AND ".join(terms) if terms else "1"
    first = f"SELECT {_COLUMNS} FROM cases WHERE {where} ORDER BY submitted_at, case_id LIMIT ?"
    after = (f"SELECT {_COLUMNS} FROM cases WHERE {where} AND (submitted_at, case_id) > (?, ?)"
             " ORDER BY submitted_at, case_id LIMIT ?")
    rows = await db.fetchall(first, (*params, batch))
    while rows:
        out = [_case_row(r) for r in rows]
        yield out
        if len(rows) < batch:
            return
        last = out[-1]
        rows = await db.fetchall(after, (*params, last.submitted_at, last.case_id, batch))


async def iter_cases(db: Database, *, since: str | None = None, until: str | None = None,
                     status: str | None = None, lang: str | None = None,
                     consent: str | None = None, batch: int = 500) -> AsyncIterator[CaseRow]:
    """Yield the matching cases one by one, reading them ``batch`` at a time (see above)."""
    async for rows in iter_case_batches(db, since=since, until=until, status=status, lang=lang,
                                        consent=consent, batch=batch):
        for row in rows:
            yield row


async def count_cases(db: Database, *, since: str | None = None, until: str | None = None,
                      status: str | None = None, lang: str | None = None,
                      consent: str | None = None) -> int:
    """How many cases the same filters select (for a progress line's total)."""
    terms, params = _filters(since, until, status, lang, consent)
    where = " AND ".join(terms) if terms else "1"
    row = await db.fetchone(f"SELECT count(*) FROM cases WHERE {where}", params)
    return int(row[0]) if row else 0


# --------------------------------------------------------------------------- worker processes

#: Where a case sits in the export order: ``(submitted_at, case_id)``.
CaseKey = tuple[str, int]


async def iter_key_ranges(db: Database, *, since: str | None = None, until: str | None = None,
                          status: str | None = None, lang: str | None = None,
                          consent: str | None = None, batch: int = 500
                          ) -> AsyncIterator[tuple[CaseKey | None, CaseKey | None]]:
    """Split the matching cases, in export order, into ranges of ``batch`` cases.

    Yields ``(after, upto)``: the range holds the cases after ``after`` (from the first when
    None) up to and including ``upto`` (to the last when None, for the final range). Each step
    is one short query on the index (``LIMIT 1 OFFSET batch - 1``), so worker processes can
    read the ranges themselves (:func:`fetch_case_range`) while this walks on. Raises
    ValueError at the first step when ``since`` or ``until`` is not YYYY-MM-DD.
    """
    if batch < 1:
        raise ValueError("batch must be at least 1")
    terms, params = _filters(since, until, status, lang, consent)
    where = " AND ".join(terms) if terms else "1"
    first = (f"SELECT submitted_at, case_id FROM cases WHERE {where}"
             " ORDER BY submitted_at, case_id LIMIT 1 OFFSET ?")
    after_sql = (f"SELECT submitted_at, case_id FROM cases WHERE {where}"
                 " AND (submitted_at, case_id) > (?, ?)"
                 " ORDER BY submitted_at, case_id LIMIT 1 OFFSET ?")
    after: CaseKey | None = None
    while True:
        if after is None:
            row = await db.fetchone(first, (*params, batch - 1))
        else:
            row = await db.fetchone(after_sql, (*params, *after, batch - 1))
        if row is None:
            yield after, None
            return
        upto: CaseKey = (str(row[0]), int(row[1]))
        yield after, upto
        after = upto


def open_reader(path: Path) -> sqlite3.Connection:
    """A read-only connection of its own to the database file (for an export worker)."""
    conn = sqlite3.connect(path, timeout=5.0, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA query_only=ON")
    return conn


def fetch_case_range(conn: sqlite3.Connection, after: CaseKey | None, upto: CaseKey | None, *,
                     since: str | None = None, until: str | None = None,
                     status: str | None = None, lang: str | None = None,
                     consent: str | None = None) -> list[CaseRow]:
    """The matching cases in one range of :func:`iter_key_ranges`, in export order."""
    terms, params = _filters(since, until, status, lang, consent)
    if after is not None:
        terms.append("(submitted_at, case_id) > (?, ?)")
        params += after
    if upto is not None:
        terms.append("(submitted_at, case_id) <= (?, ?)")
        params += upto
    where = " AND ".join(terms) if terms else "1"
    rows = conn.execute(f"SELECT {_COLUMNS} FROM cases WHERE {where}"
                        " ORDER BY submitted_at, case_id", params).fetchall()
    return [_case_row(r) for r in rows]
