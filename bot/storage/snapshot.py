"""Whole-database operations for backups and restores: online copy, checks, and the swap.

These use the standard sqlite3 module on their own connections (run them in a thread from async
code): SQLite's online backup API copies a consistent snapshot while the bot keeps writing
through its own connection (WAL mode lets readers and the writer work at the same time).
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from bot.storage.db import Database, _statements, migrations

SIDE_FILES = ("-wal", "-shm", "-journal")


def copy_database(src: Path, dst: Path) -> None:
    """Copy the live database `src` into the (empty) file `dst` as one consistent snapshot.

    The copy is made in a single backup step, which reads one snapshot of the database; the
    copy is then switched to rollback-journal mode so that it is one self-contained file.
    """
    if not src.exists():
        raise FileNotFoundError(f"no database at {src}")
    source = sqlite3.connect(src, timeout=30)
    try:
        source.execute("PRAGMA busy_timeout=30000")
        target = sqlite3.connect(dst)
        try:
            source.backup(target)  # pages=-1: everything in one step, one read snapshot
            target.execute("PRAGMA journal_mode=DELETE")
            target.commit()
        finally:
            target.close()
    finally:
        source.close()


def check_database(path: Path) -> str | None:
    """Why the database file at `path` cannot be used, or None when it is sound.

    Runs PRAGMA integrity_check and looks at schema_migrations: it must exist, and hold only
    migrations this version of the bot knows (a newer bot's database is refused).
    """
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        return f"not a database ({type(exc).__name__})"
    try:
        try:
            rows = [str(r[0]) for r in conn.execute("PRAGMA integrity_check").fetchall()]
        except sqlite3.DatabaseError as exc:
            return f"not a database ({exc})"
        if rows != ["ok"]:
            return f"integrity_check failed: {'; '.join(rows[:3])}"
        try:
            versions = {int(r[0]) for r in
                        conn.execute("SELECT version FROM schema_migrations").fetchall()}
        except sqlite3.DatabaseError:
            return "no schema_migrations table: not a database of this bot"
        if not versions:
            return "schema_migrations is empty: not a database of this bot"
        known = {v for v, _name, _sql in migrations()}
        unknown = sorted(versions - known)
        if unknown:
            return (f"made by a newer version of the bot (migration {unknown[-1]} is unknown "
                    "here): upgrade the bot first")
        return None
    finally:
        conn.close()


_MIGRATIONS_TABLE = ("CREATE TABLE IF NOT EXISTS schema_migrations ("
                     " version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)")


def _schema(conn: sqlite3.Connection) -> set[tuple[str, str, str, str]]:
    return {(str(t), str(n), str(tb), " ".join(str(sql or "").split()))
            for t, n, tb, sql in conn.execute(
                "SELECT type, name, tbl_name, sql FROM sqlite_master"
                " WHERE name NOT LIKE 'sqlite_stat%'")}


def fresh_schema(versions: Iterable[int]) -> set[tuple[str, str, str, str]]:
    """sqlite_master of a new database with exactly these migrations applied, in order."""
    wanted = set(versions)
    conn = sqlite3.connect(":memory:", isolation_level=None)
    try:
        conn.execute(_MIGRATIONS_TABLE)
        for version, _name, sql in migrations():
            if version in wanted:
                for statement in _statements(sql):
                    conn.execute(statement)
        return _schema(conn)
    finally:
        conn.close()


def schema_problem(path: Path) -> str | None:
    """Why the schema of the database at `path` is not what our migrations make, or None.

    Every table, index, trigger and view is compared with a freshly migrated database of the
    same migrations: anything extra, missing or changed (say, a trigger that copies drafts into
    the outbox) is refused.
    """
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        versions = [int(r[0]) for r in conn.execute("SELECT version FROM schema_migrations")]
        have = _schema(conn)
    finally:
        conn.close()
    want = fresh_schema(versions)
    extra = sorted(have - want)
    missing = sorted(want - have)
    if extra:
        kind, name = extra[0][0], extra[0][1]
        changed = any(m[0] == kind and m[1] == name for m in missing)
        return (f"its {kind} {name!r} is {'changed' if changed else 'not made by our migrations'}"
                f" ({len(extra)} difference(s) with a freshly migrated database)")
    if missing:
        return f"its {missing[0][0]} {missing[0][1]!r} is missing"
    return None


def staff_list(path: Path) -> list[tuple[int, str]]:
    """(user id, added at) of every staff member in the database at `path`."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return [(int(r[0]), str(r[1])) for r in conn.execute(
            "SELECT user_id, added_at FROM staff_members ORDER BY user_id")]
    except sqlite3.OperationalError:  # before the staff migration
        return []
    finally:
        conn.close()


def case_span(path: Path) -> tuple[str | None, str | None]:
    """The first and last submission time of the cases in the database at `path`."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        row = conn.execute("SELECT min(submitted_at), max(submitted_at) FROM cases").fetchone()
        return (row[0], row[1]) if row else (None, None)
    finally:
        conn.close()


def schema_version(path: Path) -> int:
    """The highest migration applied to the database file at `path` (0 when none)."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        row = conn.execute("SELECT max(version) FROM schema_migrations").fetchone()
        return int(row[0] or 0)
    finally:
        conn.close()


def count_rows(path: Path, table: str) -> int:
    """Rows in one table of the database file at `path` (for reports, not for content)."""
    if not table.isidentifier():
        raise ValueError("bad table name")
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        row = conn.execute(f"SELECT count(*) FROM {table}").fetchone()
        return int(row[0])
    finally:
        conn.close()


def checkpoint(path: Path) -> None:
    """Fold the write-ahead log into the database file (no-op when there is none)."""
    if not path.exists():
        return
    conn = sqlite3.connect(path, timeout=30)
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()


def move_aside(path: Path, suffix: str) -> list[Path]:
    """Rename the database and its -wal/-shm files to `<name><suffix>[-wal|-shm]`."""
    moved = []
    for side in ("", *SIDE_FILES):
        old = path.with_name(path.name + side)
        if old.exists():
            new = path.with_name(path.name + suffix + side)
            os.replace(old, new)
            moved.append(new)
    return moved


def remove_side_files(path: Path) -> None:
    """Delete a database's -wal, -shm and -journal files."""
    for side in SIDE_FILES:
        path.with_name(path.name + side).unlink(missing_ok=True)


async def load_case_rows(db: Database, rows: Iterable[Mapping[str, Any]]) -> int:
    """Insert exported case rows (column name -> value) into an empty working database.

    Used by `python -m bot decrypt` to rebuild the cases of a sealed export on the offline
    computer, so that the very same export code writes the spreadsheet.
    """
    n = 0
    async with db.transaction() as conn:
        for row in rows:
            values = dict(row)
            values.setdefault("form_version", 0)
            # Each person's key (case work: duplicates) lives beside the case, not in it.
            keys = values.pop("person_keys", None)
            levels = values.pop("verification", None)  # person_verification rows, below
            names = list(values)
            if not all(name.isidentifier() for name in names):
                raise ValueError("bad column name in a sealed export")
            cur = await conn.execute(
                f"INSERT INTO cases ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})",
                [values[k] for k in names],
            )
            if isinstance(keys, str):
                await conn.executemany(
                    "INSERT INTO case_persons (case_id, person, updated_at, person_key)"
                    " VALUES (?, ?, '', ?)",
                    [(cur.lastrowid, i, key or None)
                     for i, key in enumerate(keys.split(","), start=1)])
            for item in str(levels or "").split(","):
                person, _, level = item.partition(":")
                if person.isdigit() and level and values.get("case_id") is not None:
                    await conn.execute(
                        "INSERT OR REPLACE INTO person_verification"
                        " (case_id, person_index, level, set_at) VALUES (?, ?, ?, '')",
                        (values["case_id"], int(person), level))
            n += 1
    return n
