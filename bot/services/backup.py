"""Sealed backups taken while the bot runs, a daily job with rotation, and checked restores.

Backup (`python -m bot backup --output FILE`, and the daily job):

1. SQLite's online backup API copies one consistent snapshot of the live database into a
   temporary file in BOT_DATA_DIR (mode 0600, named `.backup-*.tmp`), while the bot keeps
   answering relatives. The copy is checked with PRAGMA integrity_check.
2. The copy is sealed to the organisation's public key (see `bot.services.sealedfile`) into
   FILE, written under a temporary name and renamed when complete.
3. The temporary copy is deleted at once, also when anything fails. It lives next to the live
   database, on the same disk, for the seconds the sealing takes, and holds nothing the live
   database does not (case answers in it are sealed already; drafts are encrypted with the
   server's draft key).

The sealed file also carries the server's draft key, so that drafts in progress can be read
again after a restore on a new server; only the organisation's private key opens it.

Restore (`python -m bot restore --input FILE`, with the bot stopped) opens the file with the
private key into a temporary file, runs PRAGMA integrity_check and checks schema_migrations,
and refuses before touching anything if either fails. Otherwise it moves the current database
aside as `bot.sqlite3.before-restore-<timestamp>` (with its -wal/-shm files) and puts the
restored one in its place. Migrations run at the next start, so an older backup is upgraded.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
import os
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from datetime import time as dtime
from pathlib import Path
from typing import Any

from nacl.public import PrivateKey, PublicKey
from telegram.ext import ContextTypes

from bot.config import Settings
from bot.services import erasures
from bot.services.crypto import DRAFT_NAME
from bot.services.sealedfile import SealedFileError, open_to_file, seal_file
from bot.storage import snapshot

log = logging.getLogger(__name__)

BACKUP_KIND = "backup"
DAILY_PATTERN = re.compile(r"^atazhurt-\d{8}-\d{6}\.sqlite3\.sealed$")


class BackupError(Exception):
    """A backup or restore could not be done; str() is one line, without personal data."""


@dataclass(frozen=True, slots=True)
class BackupResult:
    """What a backup wrote."""

    path: Path
    size: int
    schema_version: int
    cases: int


@dataclass(frozen=True, slots=True)
class RestoreResult:
    """What a restore did."""

    schema_version: int
    cases: int
    moved_aside: list[Path]
    created_at: str | None


def _now() -> datetime:
    return datetime.now(UTC)


def _private_temp(folder: Path, prefix: str) -> Path:
    """Create an empty 0600 file in `folder` for a plain database copy; returns its path."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f".{prefix}-{secrets.token_hex(8)}.sqlite3.tmp"
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    return path


def _discard(path: Path) -> None:
    snapshot.remove_side_files(path)
    path.unlink(missing_ok=True)


def _draft_key(data_dir: Path) -> str | None:
    path = data_dir / "keys" / DRAFT_NAME
    try:
        return path.read_text("ascii").strip() or None
    except (OSError, UnicodeDecodeError):
        return None


def backup_to(settings: Settings, public: PublicKey, output: Path) -> BackupResult:
    """Copy the live database consistently and seal it to `public` into `output` (blocking)."""
    db_path = settings.db_path
    if not db_path.exists():
        raise BackupError(f"no database at {db_path}: nothing to back up")
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = _private_temp(settings.data_dir, "backup")
    try:
        try:
            snapshot.copy_database(db_path, tmp)
        except Exception as exc:
            raise BackupError(f"could not copy the database ({type(exc).__name__})") from exc
        problem = snapshot.check_database(tmp)
        if problem is not None:
            raise BackupError(f"the copy of the database is not sound: {problem}")
        version = snapshot.schema_version(tmp)
        cases = snapshot.count_rows(tmp, "cases")
        meta: dict[str, Any] = {
            "kind": BACKUP_KIND,
            "format": "sqlite3",
            "created_at": _now().isoformat(timespec="seconds"),
            "schema_version": version,
            "draft_key": _draft_key(settings.data_dir),
        }
        try:
            seal_file(tmp, output, public, meta)
        except OSError as exc:
            raise BackupError(f"cannot write {output}: {exc.strerror}") from exc
    finally:
        _discard(tmp)
    return BackupResult(output, output.stat().st_size, version, cases)


async def take_backup(settings: Settings, public: PublicKey, output: Path) -> BackupResult:
    """`backup_to` in a worker thread, so the bot keeps serving while it runs."""
    return await asyncio.to_thread(backup_to, settings, public, output)


def daily_name(now: datetime) -> str:
    """The file name of a scheduled backup taken at `now` (sorts by time)."""
    return f"atazhurt-{now.astimezone(UTC):%Y%m%d-%H%M%S}.sqlite3.sealed"


def rotate(folder: Path, keep: int) -> list[Path]:
    """Delete the oldest scheduled backups in `folder` beyond the newest `keep`."""
    if keep < 1:
        raise ValueError("keep at least one backup")
    daily = sorted(p for p in folder.iterdir() if DAILY_PATTERN.match(p.name) and p.is_file())
    old = daily[:-keep]
    for path in old:
        path.unlink(missing_ok=True)
    return old


async def run_daily_backup(settings: Settings, public: PublicKey) -> tuple[BackupResult, int]:
    """One scheduled backup into BOT_BACKUP_DIR, then rotation; returns it and how many went."""
    folder = settings.backup_path
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    result = await take_backup(settings, public, folder / daily_name(_now()))
    removed = await asyncio.to_thread(rotate, folder, settings.backup_keep)
    return result, len(removed)


async def backup_job(context: ContextTypes.DEFAULT_TYPE) -> None:
    """The daily job: a sealed backup into BOT_BACKUP_DIR, keeping the newest BOT_BACKUP_KEEP."""
    from bot.handlers.common import deps

    d = deps(context)
    try:
        result, removed = await run_daily_backup(d.settings, d.keys.public)
    except BackupError as exc:
        log.error("daily backup failed: %s", exc)
        return
    except Exception as exc:
        log.error("daily backup failed: %s", type(exc).__name__)
        return
    log.info("daily backup written: %s (%d bytes, %d cases); %d old backups removed",
             result.path.name, result.size, result.cases, removed)


def schedule_backups(app: Any, settings: Settings) -> None:
    """Run `backup_job` every day at BOT_BACKUP_TIME (UTC) on the application's job queue."""
    if app.job_queue is None:
        log.warning("no job queue: daily backups are not scheduled")
        return
    at = dtime.fromisoformat(settings.backup_time).replace(tzinfo=UTC)
    app.job_queue.run_daily(backup_job, time=at, name="backup")


# ----------------------------------------------------------------------------- restore


def _write_draft_key(data_dir: Path, value: str, suffix: str) -> bool:
    """Put the backup's draft key in place (the current one kept aside if different)."""
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return False
    keys_dir = data_dir / "keys"
    path = keys_dir / DRAFT_NAME
    current = _draft_key(data_dir)
    if current is not None:
        try:
            if base64.b64decode(current) == raw:
                return False
        except (binascii.Error, ValueError):
            pass
        os.replace(path, path.with_name(path.name + suffix))
    keys_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(base64.b64encode(raw) + b"\n")
    return True


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def restore_from(settings: Settings, source: Path, private: PrivateKey) -> RestoreResult:
    """Check the sealed backup `source`, then put it in place of the database (blocking).

    The bot must be stopped (the caller holds the data folder's lock). Nothing is changed
    unless the backup opens with `private`, passes integrity_check and has a known schema.
    """
    if not source.is_file():
        raise BackupError(f"{source} does not exist")
    tmp = _private_temp(settings.data_dir, "restore")
    try:
        try:
            meta = open_to_file(source, tmp, private)
        except SealedFileError as exc:
            raise BackupError(f"{source}: {exc}; nothing was changed") from None
        if meta.get("kind") != BACKUP_KIND:
            raise BackupError(f"{source} is a sealed {meta.get('kind', 'file')}, not a backup; "
                              "nothing was changed")
        problem = snapshot.check_database(tmp)
        if problem is not None:
            raise BackupError(f"the backup is not usable: {problem}; nothing was changed")
        version = snapshot.schema_version(tmp)
        cases = snapshot.count_rows(tmp, "cases")
        db_path = settings.db_path
        suffix = f".before-restore-{_now():%Y%m%d-%H%M%S}"
        snapshot.checkpoint(db_path)
        moved = snapshot.move_aside(db_path, suffix)
        os.replace(tmp, db_path)
        snapshot.remove_side_files(db_path)
        if isinstance(meta.get("draft_key"), str):
            _write_draft_key(settings.data_dir, meta["draft_key"], suffix)
        _fsync_dir(db_path.parent)
    finally:
        _discard(tmp)
    erasures.reapply(settings.db_path, settings.data_dir)  # erased cases stay erased
    created = meta.get("created_at")
    return RestoreResult(version, cases, moved, str(created) if created else None)
