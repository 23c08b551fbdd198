"""Signed age backups taken while the bot runs, a daily job with rotation, and checked restores.

Backup (`python -m bot backup --output FILE`, and the daily job):

1. SQLite's online backup API copies one consistent snapshot of the live database into a
   temporary file in BOT_DATA_DIR (mode 0600, named `.backup-*.tmp`), while the bot keeps
   answering relatives. The copy is checked with PRAGMA integrity_check.
2. The copy goes, with `meta.json` (kind, date, schema version, the draft key), into a tar
   archive encrypted in the age format to the organisation's public key and any
   BOT_BACKUP_RECIPIENTS (see `bot.crypto.agefile`): `age -d -i org_private.key FILE | tar x`
   opens it. FILE.sig beside it is the server's Ed25519 signature (`bot.crypto.signing`).
3. The temporary copy is deleted at once, also when anything fails. It lives next to the live
   database, on the same disk, for the seconds the sealing takes, and holds nothing the live
   database does not (case answers in it are sealed already; drafts are encrypted with the
   draft key). Its blocks stay on the file system until reused: hence full-disk encryption.

Restore (`python -m bot restore --input FILE`, with the bot stopped) refuses, with one line and
nothing changed: a file whose signature is missing (unless allowed) or wrong, that the key
cannot open, that is damaged, whose database fails integrity_check, has unknown migrations, or
has a schema (tables, indexes, triggers, views) other than a freshly migrated database of the
same migrations. It then shows the staff list, the case count and their dates and asks to
confirm; only then it moves the current database aside as
`bot.sqlite3.before-restore-<timestamp>` (with its -wal/-shm files) and puts the restored one in
its place. The draft key inside is installed only from a signed file. Migrations run at the
next start, so an older backup is upgraded. Files of the older format (`AZSF`, sealed with
`bot.services.sealedfile`, never signed) are still read, with --allow-unsigned, for one release.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import io
import json
import logging
import os
import re
import secrets
import tarfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from datetime import time as dtime
from pathlib import Path
from typing import Any

from nacl.public import PrivateKey
from nacl.signing import VerifyKey
from telegram.ext import ContextTypes

from bot.config import Settings
from bot.crypto.agefile import AgeFileError, age_input, age_output, is_age_file
from bot.crypto.agekeys import PrivateKeys, identity_of
from bot.crypto.keyring import DRAFT_NAME
from bot.crypto.sealedfile import SealedFileError, is_sealed_stream, open_to_file
from bot.crypto.sealing import Sealer
from bot.crypto.signing import SignatureError, signature_path, verify_file
from bot.services import erasures
from bot.storage import snapshot

log = logging.getLogger(__name__)

BACKUP_KIND = "backup"
DAILY_PATTERN = re.compile(r"^atazhurt-\d{8}-\d{6}\.(sqlite3\.sealed|tar\.age)$")
META_NAME = "meta.json"
DB_NAME = "bot.sqlite3"


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
    signed: bool = False
    draft_key: str = "unchanged"  # installed, unchanged, not taken (unsigned), no place


@dataclass(frozen=True, slots=True)
class RestoreSummary:
    """What a backup holds, shown before anything is replaced."""

    source: Path
    created_at: str | None
    schema_version: int
    signed: bool
    staff: list[tuple[int, str]]
    cases: int
    first_case: str | None
    last_case: str | None

    def lines(self) -> list[str]:
        staff = ", ".join(f"{uid} (added {at[:10]})" for uid, at in self.staff) or "none"
        span = (f", submitted {self.first_case[:10]} to {self.last_case[:10]}"
                if self.first_case and self.last_case else "")
        sig = "signed by this organisation's signing key" if self.signed else "NOT SIGNED"
        return [f"Backup {self.source}: taken {self.created_at or '?'}, schema version "
                f"{self.schema_version}, {sig}",
                f"Staff in it: {staff}",
                f"Cases in it: {self.cases}{span}"]


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


def _tar_member(tar: tarfile.TarFile, name: str, size: int, data: Any) -> None:
    info = tarfile.TarInfo(name)
    info.size = size
    info.mode = 0o600
    info.mtime = int(_now().timestamp())
    tar.addfile(info, data)


def backup_to(settings: Settings, sealer: Sealer, output: Path) -> BackupResult:
    """Copy the live database consistently into a signed age file `output` (blocking)."""
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
            "draft_key": (base64.b64encode(sealer.draft_key).decode("ascii")
                          if sealer.draft_key else None),
        }
        body = json.dumps(meta).encode("utf-8")
        try:
            with age_output(output, sealer.recipients, sealer.signing, BACKUP_KIND) as out, \
                    tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
                _tar_member(tar, META_NAME, len(body), io.BytesIO(body))
                with tmp.open("rb") as fh:
                    _tar_member(tar, DB_NAME, tmp.stat().st_size, fh)
        except OSError as exc:
            raise BackupError(f"cannot write {output}: {exc.strerror}") from exc
        except AgeFileError as exc:
            raise BackupError(f"cannot write {output}: {exc}") from exc
    finally:
        _discard(tmp)
    return BackupResult(output, output.stat().st_size, version, cases)


async def take_backup(settings: Settings, sealer: Sealer, output: Path) -> BackupResult:
    """`backup_to` in a worker thread, so the bot keeps serving while it runs."""
    return await asyncio.to_thread(backup_to, settings, sealer, output)


def daily_name(now: datetime) -> str:
    """The file name of a scheduled backup taken at `now` (sorts by time)."""
    return f"atazhurt-{now.astimezone(UTC):%Y%m%d-%H%M%S}.tar.age"


def rotate(folder: Path, keep: int) -> list[Path]:
    """Delete the oldest scheduled backups in `folder` beyond the newest `keep`."""
    if keep < 1:
        raise ValueError("keep at least one backup")
    daily = sorted(p for p in folder.iterdir() if DAILY_PATTERN.match(p.name) and p.is_file())
    old = daily[:-keep]
    for path in old:
        path.unlink(missing_ok=True)
        signature_path(path).unlink(missing_ok=True)
    return old


async def run_daily_backup(settings: Settings, sealer: Sealer) -> tuple[BackupResult, int]:
    """One scheduled backup into BOT_BACKUP_DIR, then rotation; returns it and how many went."""
    folder = settings.backup_path
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    result = await take_backup(settings, sealer, folder / daily_name(_now()))
    removed = await asyncio.to_thread(rotate, folder, settings.backup_keep)
    return result, len(removed)


async def backup_job(context: ContextTypes.DEFAULT_TYPE) -> None:
    """The daily job: a sealed backup into BOT_BACKUP_DIR, keeping the newest BOT_BACKUP_KEEP."""
    from bot.crypto.sealing import sealer_of
    from bot.handlers.common import deps

    d = deps(context)
    try:
        result, removed = await run_daily_backup(d.settings, sealer_of(d.keys, d.settings))
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


def _write_draft_key(path: Path, value: str, suffix: str) -> bool:
    """Put the backup's draft key at `path` (the current one kept aside if different)."""
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return False
    if path.exists():
        try:
            if base64.b64decode(path.read_bytes().strip()) == raw:
                return False
        except (OSError, binascii.Error, ValueError):
            pass
        os.replace(path, path.with_name(path.name + suffix))
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(base64.b64encode(raw) + b"\n")
    return True


def draft_key_place(settings: Settings) -> Path | None:
    """Where a restored draft key goes: BOT_DRAFT_KEY_FILE, or the data folder when the private
    key is on this server; None when the private key is offline and no tmpfs file is set."""
    if settings.draft_key_file is not None:
        return settings.draft_key_file
    offline = settings.public_key_file is not None and (
        settings.private_key_file is None or not settings.private_key_file.exists())
    return None if offline else settings.data_dir / "keys" / DRAFT_NAME


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _as_keys(key: PrivateKeys | PrivateKey) -> PrivateKeys:
    if isinstance(key, PrivateKeys):
        return key
    import pyrage

    return PrivateKeys([pyrage.x25519.Identity.from_str(identity_of(key))], key)


def _open_age_backup(source: Path, keys: PrivateKeys, tmp: Path) -> dict[str, Any]:
    """Unpack the age backup `source`: its database into `tmp`; returns meta.json."""
    meta: dict[str, Any] | None = None
    got_db = False
    try:
        with age_input(source, keys.identities) as plain, \
                tarfile.open(fileobj=plain, mode="r|") as tar:
            for member in tar:
                if member.name == META_NAME and meta is None and member.isfile():
                    fh = tar.extractfile(member)
                    assert fh is not None
                    loaded = json.loads(fh.read(1 << 20))
                    meta = loaded if isinstance(loaded, dict) else None
                elif member.name == DB_NAME and meta is not None and not got_db \
                        and member.isfile():
                    fh = tar.extractfile(member)
                    assert fh is not None
                    with tmp.open("wb") as out:
                        while block := fh.read(1 << 20):
                            out.write(block)
                    got_db = True
                else:
                    raise BackupError(f"{source} holds an unexpected entry; nothing was changed")
    except AgeFileError as exc:
        raise BackupError(f"{source}: {exc}; nothing was changed") from None
    except (tarfile.TarError, ValueError) as exc:
        raise BackupError(f"{source} is not a backup written by this bot "
                          f"({type(exc).__name__}); nothing was changed") from None
    if meta is None or not got_db:
        raise BackupError(f"{source} is not a backup written by this bot; nothing was changed")
    return meta


def _authenticate(source: Path, verify_key: VerifyKey | None, allow_unsigned: bool) -> bool:
    """True when `source` carries a good signature; raises BackupError when it must be refused.

    A wrong signature is always refused. A missing one (or no verify key to check it with) is
    refused unless `allow_unsigned`.
    """
    sig = signature_path(source)
    if sig.exists() and verify_key is not None:
        try:
            verify_file(source, verify_key, BACKUP_KIND)
        except SignatureError as exc:
            raise BackupError(f"{exc}; nothing was changed") from None
        return True
    if allow_unsigned:
        return False
    if not sig.exists():
        why = ("an older backup format, never signed" if is_sealed_stream(source)
               else f"no {sig.name} beside it")
        raise BackupError(f"{source} is not signed ({why}): if you are sure it is yours, "
                          "restore it with --allow-unsigned; nothing was changed")
    raise BackupError(f"{source} is signed but there is no verify key to check it: pass "
                      "--verify-key FILE (kept with the private key); nothing was changed")


def restore_from(settings: Settings, source: Path, key: PrivateKeys | PrivateKey, *,
                 verify_key: VerifyKey | None = None, allow_unsigned: bool = False,
                 confirm: Callable[[RestoreSummary], bool] | None = None) -> RestoreResult:
    """Check the backup `source`, then put it in place of the database (blocking).

    The bot must be stopped (the caller holds the data folder's lock). Nothing is changed
    unless the signature holds (or `allow_unsigned` and there is none), the file opens with
    `key`, the database passes integrity_check, its migrations are known, its schema is that
    of a freshly migrated database, and `confirm(summary)` (when given) says yes.
    """
    if not source.is_file():
        raise BackupError(f"{source} does not exist")
    keys = _as_keys(key)
    signed = _authenticate(source, verify_key, allow_unsigned)
    tmp = _private_temp(settings.data_dir, "restore")
    try:
        if is_age_file(source):
            meta = _open_age_backup(source, keys, tmp)
        elif is_sealed_stream(source):
            if keys.private is None:
                raise BackupError(f"{source} is in the older format: it needs the "
                                  "organisation's private key; nothing was changed")
            try:
                meta = open_to_file(source, tmp, keys.private)
            except SealedFileError as exc:
                raise BackupError(f"{source}: {exc}; nothing was changed") from None
        else:
            raise BackupError(f"{source} is not a backup written by this bot; nothing was "
                              "changed")
        if meta.get("kind") != BACKUP_KIND:
            raise BackupError(f"{source} is a sealed {meta.get('kind', 'file')}, not a backup; "
                              "nothing was changed")
        problem = snapshot.check_database(tmp) or snapshot.schema_problem(tmp)
        if problem is not None:
            raise BackupError(f"the backup is not usable: {problem}; nothing was changed")
        version = snapshot.schema_version(tmp)
        cases = snapshot.count_rows(tmp, "cases")
        created = meta.get("created_at")
        summary = RestoreSummary(source, str(created) if created else None, version, signed,
                                 snapshot.staff_list(tmp), cases, *snapshot.case_span(tmp))
        if confirm is not None and not confirm(summary):
            raise BackupError("not confirmed; nothing was changed")
        db_path = settings.db_path
        suffix = f".before-restore-{_now():%Y%m%d-%H%M%S}"
        snapshot.checkpoint(db_path)
        moved = snapshot.move_aside(db_path, suffix)
        os.replace(tmp, db_path)
        snapshot.remove_side_files(db_path)
        draft_state = _restore_draft_key(settings, meta, signed, suffix)
        _fsync_dir(db_path.parent)
    finally:
        _discard(tmp)
    erasures.reapply(settings.db_path, settings.data_dir)  # erased cases stay erased
    return RestoreResult(version, cases, moved, summary.created_at, signed, draft_state)


def _restore_draft_key(settings: Settings, meta: dict[str, Any], signed: bool,
                       suffix: str) -> str:
    """Install the backup's draft key, only from a signed file (H3); what happened."""
    value = meta.get("draft_key")
    if not isinstance(value, str):
        return "unchanged"
    if not signed:
        return "not taken (unsigned file)"
    place = draft_key_place(settings)
    if place is None:
        return "no place (private key offline and BOT_DRAFT_KEY_FILE not set)"
    return "installed" if _write_draft_key(place, value, suffix) else "unchanged"
