"""Erasing cases by number again, in a database file: after a restore or at start-up.

A relative's /delete erases their cases in the live database (PrivacyRepository.erase_user).
An older backup still holds them, so the numbers of erased cases are also kept outside the
database (bot/services/erasures.py) and every case named there is erased again here: its
answers, the personal text of its history, its questions, and the relative's draft, account row
and pending messages once none of their cases is left. Synchronous (sqlite3), so the restore
command can run it on the file it just put in place.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from pathlib import Path


def erase_cases(db_path: Path, numbers: Sequence[str], now: str) -> list[str]:
    """Erase every case in `numbers` that still holds anything; returns the ones erased."""
    if not numbers or not db_path.exists():
        return []
    conn = sqlite3.connect(db_path, timeout=30, isolation_level=None)
    erased: list[str] = []
    try:
        conn.execute("PRAGMA secure_delete=ON")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute("BEGIN IMMEDIATE")
        users: set[int] = set()
        for start in range(0, len(numbers), 500):
            part = list(numbers[start:start + 500])
            marks = ", ".join("?" for _ in part)
            rows = conn.execute(
                f"SELECT case_id, number, user_id FROM cases WHERE number IN ({marks})"
                " AND (status != 'withdrawn' OR user_id IS NOT NULL OR length(data) > 0"
                "      OR EXISTS (SELECT 1 FROM case_events e WHERE e.case_id = cases.case_id"
                "                 AND e.detail IS NOT NULL))", part).fetchall()
            for case_id, number, user_id in rows:
                if user_id is not None:
                    users.add(int(user_id))
                conn.execute("UPDATE cases SET data = X'', status = 'withdrawn', user_id = NULL,"
                             " updated_at = ? WHERE case_id = ?", (now, case_id))
                conn.execute("UPDATE case_events SET detail = NULL WHERE case_id = ?",
                             (case_id,))
                conn.execute("DELETE FROM case_questions WHERE case_id = ?", (case_id,))
                if not conn.execute("SELECT 1 FROM case_events WHERE case_id = ?"
                                    " AND kind = 'withdrawn'", (case_id,)).fetchone():
                    conn.execute("INSERT INTO case_events (case_id, at, kind)"
                                 " VALUES (?, ?, 'withdrawn')", (case_id, now))
                erased.append(str(number))
        for user_id in users:
            # The relative erased everything they had sent: unless a case of theirs is left
            # (sent after the erasure), their account row goes too (drafts and pending
            # messages with it, by cascade and trigger).
            if not conn.execute("SELECT 1 FROM cases WHERE user_id = ?", (user_id,)).fetchone():
                conn.execute("DELETE FROM drafts WHERE user_id = ?", (user_id,))
                conn.execute("DELETE FROM users WHERE user_id = ?", (user_id,))
        if erased:
            conn.execute("INSERT INTO privacy_log (at, action, detail) VALUES (?, 'reerase', ?)",
                         (now, f"cases={','.join(erased)}"))
        conn.execute("COMMIT")
        if erased:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    finally:
        conn.close()
    return erased
