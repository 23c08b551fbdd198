"""Counts for /stats: cases by status, language and prefecture, and new cases per week.

Only counts over indexed columns; nothing sealed is opened and nothing personal is read.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from bot.storage.db import Database


@dataclass(frozen=True, slots=True)
class CaseStats:
    total: int
    by_status: list[tuple[str, int]]
    by_language: list[tuple[str, int]]
    by_prefecture: list[tuple[str | None, int]]
    per_week: list[tuple[date, int]]  # Monday of each week, oldest first, zeros included


def week_start(day: date) -> date:
    return day - timedelta(days=day.weekday())


async def persons_by_status(db: Database) -> list[tuple[str, int]]:
    """Missing persons per workflow status (each person has their own)."""
    rows = await db.fetchall(
        "SELECT status, count(*) AS n FROM case_persons GROUP BY status ORDER BY n DESC, status")
    return [(str(r[0]), int(r[1])) for r in rows]


class StatsRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def case_stats(self, today: date, weeks: int = 12) -> CaseStats:
        """Counts of every case (withdrawn ones included), and `weeks` weeks up to `today`."""
        async def grouped(column: str) -> list[tuple[str | None, int]]:
            rows = await self._db.fetchall(
                f"SELECT {column}, count(*) AS n FROM cases GROUP BY {column}"
                f" ORDER BY n DESC, {column}")
            return [(r[0], int(r[1])) for r in rows]

        by_status = [(str(k), n) for k, n in await grouped("status")]
        by_language = [(str(k), n) for k, n in await grouped("language")]
        by_prefecture = await grouped("prefecture")
        first = week_start(today) - timedelta(weeks=weeks - 1)
        # date(x, 'weekday 0', '-6 days') is the Monday of x's week (SQLite reads the offset).
        rows = await self._db.fetchall(
            "SELECT date(submitted_at, 'weekday 0', '-6 days') AS week, count(*) FROM cases"
            " WHERE submitted_at >= ? GROUP BY week", (first.isoformat(),))
        counted = {date.fromisoformat(str(r[0])): int(r[1]) for r in rows if r[0]}
        per_week = [(first + timedelta(weeks=i), counted.get(first + timedelta(weeks=i), 0))
                    for i in range(weeks)]
        return CaseStats(
            total=sum(n for _, n in by_status), by_status=by_status, by_language=by_language,
            by_prefecture=by_prefecture, per_week=per_week)
