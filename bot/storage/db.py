"""One SQLite connection for the whole bot: set-up, migrations and serialised transactions."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from importlib import resources
from pathlib import Path
from typing import Any

import aiosqlite

log = logging.getLogger(__name__)

Params = Sequence[Any] | dict[str, Any]
#: Seals or unseals a stored blob (bot/services/crypto.py); `identity` stores it as it is.
Codec = Callable[[bytes], bytes]


def identity(data: bytes) -> bytes:
    """The codec that changes nothing: blobs stored in the clear (tests, plain exports)."""
    return data


def migrations() -> list[tuple[int, str, str]]:
    """(version, name, sql) of every numbered migration, in order."""
    out = []
    for entry in resources.files("bot.storage").joinpath("migrations").iterdir():
        name = entry.name
        if name.endswith(".sql") and name[:4].isdigit():
            out.append((int(name[:4]), name, entry.read_text(encoding="utf-8")))
    return sorted(out)


def latest_version() -> int:
    """The schema version this code expects: its last migration's number."""
    return max((version for version, _, _ in migrations()), default=0)


class SchemaNotCurrent(Exception):
    """The database is missing or its schema is not this code's (behind: run migrate)."""

    def __init__(self, path: Path, current: int | None, latest: int) -> None:
        self.path, self.current, self.latest = path, current, latest
        if current is None:
            text = f"there is no database at {path} yet: run migrate (or start the bot) first"
        elif current < latest:
            text = (f"the database schema is at version {current}, this bot needs {latest}: "
                    "run migrate first (with the bot stopped, or restart the bot)")
        else:
            text = (f"the database schema is at version {current}, newer than this bot's "
                    f"{latest}: upgrade the bot")
        super().__init__(text)


class Database:
    """A single aiosqlite connection with an asyncio lock around every transaction.

    SQLite allows one writer at a time; one connection plus a lock gives every handler a
    real transaction (BEGIN IMMEDIATE ... COMMIT) without interleaving statements of
    different coroutines inside each other's transactions.
    """

    def __init__(self, conn: aiosqlite.Connection, path: Path) -> None:
        self._conn = conn
        self._lock = asyncio.Lock()
        self.path = path

    @classmethod
    async def open(cls, path: Path, *, migrate: bool = True) -> Database:
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = await aiosqlite.connect(path, isolation_level=None)
        conn.row_factory = aiosqlite.Row
        for pragma in (
            "PRAGMA journal_mode=WAL",
            "PRAGMA synchronous=NORMAL",  # WAL + NORMAL: durable across process crashes
            "PRAGMA foreign_keys=ON",
            "PRAGMA secure_delete=ON",  # erased bytes are overwritten, not left in free pages
            "PRAGMA busy_timeout=5000",
        ):
            await conn.execute(pragma)
        db = cls(conn, path)
        if migrate:
            await db.migrate()
        return db

    @classmethod
    async def open_current(cls, path: Path, *, read_only: bool = False) -> Database:
        """Open without migrating; SchemaNotCurrent when the database is missing or its schema
        is not this code's. For commands run beside the bot (check, export, broadcast), which
        must not change the schema under it. ``read_only``: nothing can be written at all."""
        latest = latest_version()
        if not await asyncio.to_thread(path.is_file):
            raise SchemaNotCurrent(path, None, latest)
        if read_only:
            uri = (await asyncio.to_thread(path.resolve)).as_uri()
            conn = await aiosqlite.connect(f"{uri}?mode=ro", uri=True, isolation_level=None)
            conn.row_factory = aiosqlite.Row
            for pragma in ("PRAGMA query_only=ON", "PRAGMA busy_timeout=5000"):
                await conn.execute(pragma)
            db = cls(conn, path)
        else:
            db = await cls.open(path, migrate=False)
        try:
            known = await db.fetchone("SELECT 1 FROM sqlite_master WHERE type = 'table'"
                                      " AND name = 'schema_migrations'")
            current = await db.schema_version() if known else 0
        except BaseException:
            await db.close()
            raise
        if current != latest:
            await db.close()
            raise SchemaNotCurrent(path, current, latest)
        return db

    async def close(self) -> None:
        async with self._lock:
            await self._conn.close()

    async def migrate(self) -> list[int]:
        """Apply every migration not yet applied, each in its own transaction."""
        async with self._lock:
            await self._conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                " version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)"
            )
            cur = await self._conn.execute("SELECT version FROM schema_migrations")
            done = {row[0] for row in await cur.fetchall()}
            applied = []
            for version, name, sql in migrations():
                if version in done:
                    continue
                await self._conn.execute("BEGIN IMMEDIATE")
                try:
                    for statement in _statements(sql):
                        await self._conn.execute(statement)
                    await self._conn.execute(
                        "INSERT INTO schema_migrations VALUES (?, ?, datetime('now'))",
                        (version, name),
                    )
                    await self._conn.execute("COMMIT")
                except BaseException:
                    await self._conn.execute("ROLLBACK")
                    raise
                log.info("applied migration %s", name)
                applied.append(version)
            return applied

    async def schema_version(self) -> int:
        row = await self.fetchone("SELECT max(version) FROM schema_migrations")
        return int(row[0] or 0) if row else 0

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        async with self._lock:
            await self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                await self._conn.execute("ROLLBACK")
                raise
            await self._conn.execute("COMMIT")

    async def execute(self, sql: str, params: Params = ()) -> int:
        """Run one statement in its own transaction; returns the affected row count."""
        async with self._lock:
            cur = await self._conn.execute(sql, params)
            return cur.rowcount

    async def fetchone(self, sql: str, params: Params = ()) -> sqlite3.Row | None:
        """The first row, for statements that return at most one (a key, count(), LIMIT 1)."""
        # One trip to aiosqlite's thread instead of two (execute, then fetch): each trip is a
        # thread hand-off, and a busy bot pays for it on every update.
        async with self._lock:
            rows = await self._conn.execute_fetchall(sql, params)
        for row in rows:
            return row
        return None

    async def fetchall(self, sql: str, params: Params = ()) -> list[sqlite3.Row]:
        async with self._lock:
            return list(await self._conn.execute_fetchall(sql, params))

    async def iterate(self, sql: str, params: Params = (), batch: int = 500
                      ) -> AsyncIterator[list[sqlite3.Row]]:
        """Yield rows in batches, taking the lock per batch so others are not starved."""
        last = None
        # Keyset pagination on rowid: streaming without holding a cursor open across awaits.
        while True:
            async with self._lock:
                cur = await self._conn.execute(
                    f"SELECT * FROM ({sql}) WHERE _rowid > ? ORDER BY _rowid LIMIT ?",
                    (*_as_seq(params), -1 if last is None else last, batch),
                )
                rows = list(await cur.fetchall())
            if not rows:
                return
            last = rows[-1]["_rowid"]
            yield rows

    async def checkpoint(self) -> bool:
        """Fold the WAL into the database and truncate it to zero bytes; False if a reader
        (a backup, an export) kept it from finishing (the next checkpoint finishes it)."""
        async with self._lock:
            rows = await self._conn.execute_fetchall("PRAGMA wal_checkpoint(TRUNCATE)")
        busy = next(iter(rows))[0] if rows else 0
        if busy:
            log.warning("the write-ahead log could not be truncated (a reader was busy)")
        return not busy

    async def integrity_check(self) -> str:
        row = await self.fetchone("PRAGMA integrity_check")
        return str(row[0]) if row else "no answer"


def _as_seq(params: Params) -> Sequence[Any]:
    if isinstance(params, dict):
        raise TypeError("iterate() takes positional parameters")
    return params


def _statements(sql: str) -> Iterable[str]:
    """Split a migration into statements (sqlite3.complete_statement knows about quotes)."""
    buf = ""
    for line in sql.splitlines(keepends=True):
        buf += line
        if sqlite3.complete_statement(buf):
            stmt = buf.strip()
            if stmt and not all(ln.strip().startswith("--") for ln in stmt.splitlines()):
                yield stmt
            buf = ""
    if buf.strip() and not all(ln.strip().startswith("--") or not ln.strip()
                               for ln in buf.splitlines()):
        yield buf.strip()
