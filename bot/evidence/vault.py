"""The vault worker: fetch every queued file from Telegram, seal it as it streams, record it.

A row of evidence_files is written when a relative sends a file (intake.py). `VaultWorker`,
one per bot process, takes due rows and for each:

1. asks Telegram where the file is (getFile). Files over the download limit (20 MB on
   Telegram's cloud Bot API, 2 GB on a self-hosted Bot API server, BOT_FILE_DOWNLOAD_LIMIT_MB)
   and files Telegram no longer has are recorded as failed, with the reason, for staff;
2. streams the download into a sealed file (bot/services/sealedfile.py: a fresh key sealed to
   the organisation's public key, content in authenticated 64 KiB chunks), hashing the
   plaintext as it passes. Nothing but ciphertext ever reaches the disk: the sealed file is
   written under a temporary name, fsynced and renamed into BOT_DATA_DIR/files/<vault_name>;
   a self-hosted server's local file (its --local mode gives a path on disk) is read in place;
3. records the chain of custody, sealed to the organisation's key: SHA-256 of the plaintext,
   size, MIME type, when the relative sent it and when it was fetched, file_unique_id.

Network errors, 5xx, 429 and an unreachable Telegram are retried with back-off (2 s doubling
to 10 min) across restarts; the row is marked stored only after the sealed file is on disk.
A kill at any moment leaves at worst a sealed temporary file, removed at the next start, and
the row still pending. Rows marked 'erase' (/delete, withdrawn cases, drafts that are gone)
have their sealed file removed, then the row.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from nacl.public import PublicKey

from bot.evidence.sealing import clean_partials, extract, read_vault_file, seal_stream
from bot.evidence.telegram_files import (
    BLOCK,
    CLOUD_LIMIT,
    LOCAL_LIMIT,
    FetchError,
    Telegram,
    download_limit,
)
from bot.storage.evidence import EvidenceRepository, VaultRow

log = logging.getLogger(__name__)

FIRST_BACKOFF = 2.0
MAX_BACKOFF = 600.0
GIVE_UP_AFTER = timedelta(days=14)  # of failing to reach Telegram: recorded as unreachable
GONE_ATTEMPTS = 6  # "temporarily unavailable" this often in a row: the file is gone
POLL_SECONDS = 15.0
CONCURRENCY = 2
DRAFT_GRACE = timedelta(hours=1)
_DEFAULT_MIME = {"photo": "image/jpeg", "voice": "audio/ogg", "video": "video/mp4",
                 "video_note": "video/mp4", "audio": "audio/mpeg"}


@dataclass(frozen=True, slots=True)
class Custody:
    """The chain of custody of one file (sealed to the organisation's key in the database)."""

    sha256: str
    size: int
    mime: str
    received_at: str  # when the relative sent it (Telegram's message date)
    fetched_at: str
    file_unique_id: str
    kind: str
    duration: int | None = None
    name: str | None = None

    def to_bytes(self) -> bytes:
        return json.dumps(asdict(self), ensure_ascii=False).encode()

    @classmethod
    def from_bytes(cls, raw: bytes) -> Custody:
        data = json.loads(raw)
        return cls(**{k: data.get(k) for k in cls.__dataclass_fields__})


def backoff(attempts: int) -> float:
    base: float = min(FIRST_BACKOFF * 2.0 ** min(attempts, 20), MAX_BACKOFF)
    return base * random.uniform(0.8, 1.2)


def vault_dir(data_dir: Path) -> Path:
    return data_dir / "files"


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds")


class VaultWorker:
    """One per bot process: fetches due files, erases what is marked for erasure."""

    def __init__(self, repo: EvidenceRepository, telegram: Telegram, folder: Path,
                 public: PublicKey, *, open_ref: Callable[[bytes], bytes],
                 seal_custody: Callable[[bytes], bytes],
                 is_running: Callable[[], bool] = lambda: True,
                 clock: Callable[[], float] = time.time,
                 now: Callable[[], datetime] = lambda: datetime.now(UTC),
                 concurrency: int = CONCURRENCY, poll_seconds: float = POLL_SECONDS) -> None:
        self.repo = repo
        self.telegram = telegram
        self.folder = folder
        self.public = public
        self.open_ref = open_ref
        self.seal_custody = seal_custody
        self.is_running = is_running
        self.clock = clock
        self.now = now
        self.concurrency = concurrency
        self.poll_seconds = poll_seconds
        self.stats: Counter[str] = Counter()
        self._wake = asyncio.Event()
        self._stop = False
        self._in_flight: set[int] = set()

    def wake(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        self._stop = True
        self._wake.set()

    def _running(self) -> bool:
        return not self._stop and self.is_running()

    async def run(self) -> None:
        """The loop: erase, sweep, fetch what is due; sleep until woken or the next due row."""
        await asyncio.to_thread(self.folder.mkdir, parents=True, exist_ok=True, mode=0o700)
        removed = await asyncio.to_thread(clean_partials, self.folder)
        if removed:
            log.info("vault: removed %d sealed temporary files left by a stop", removed)
        tasks: set[asyncio.Task[None]] = set()
        try:
            while self._running():
                self._wake.clear()
                try:
                    await self.erase_marked()
                    await self.sweep()
                    free = self.concurrency - len(tasks)
                    if free > 0:
                        for row in await self.repo.due(self.clock(), free + len(tasks)):
                            if row.file_row in self._in_flight or len(tasks) >= self.concurrency:
                                continue
                            self._in_flight.add(row.file_row)
                            task = asyncio.create_task(self._fetch_guarded(row))
                            tasks.add(task)
                            task.add_done_callback(tasks.discard)
                    nxt = await self.repo.next_due()
                except Exception as exc:  # the database is closing, or a bug: try later
                    log.warning("vault: pass failed (%s)", type(exc).__name__)
                    nxt = None
                # A row already due is in flight, or waits for a free slot: a finished fetch
                # wakes the loop. Polling for it meanwhile would query in a tight loop for
                # as long as a large download lasts.
                due_later = nxt is not None and nxt > self.clock()
                wait = nxt - self.clock() if due_later and nxt is not None else self.poll_seconds
                await self._sleep(min(max(wait, 0.05), self.poll_seconds))
        finally:
            for task in tasks:
                task.cancel()
            with contextlib.suppress(Exception):
                await asyncio.gather(*tasks, return_exceptions=True)

    async def _sleep(self, seconds: float) -> None:
        """Wait for a wake-up, a finished fetch or the time, checking for a stop often."""
        deadline = time.monotonic() + seconds
        while self._running() and time.monotonic() < deadline:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(min(0.25, deadline - time.monotonic())):
                    await self._wake.wait()
                    return

    async def _fetch_guarded(self, row: VaultRow) -> None:
        try:
            await self.fetch(row)
        except Exception as exc:
            log.warning("vault: fetching a file failed unexpectedly (%s)", type(exc).__name__)
            with contextlib.suppress(Exception):
                await self.repo.retry_later(row.file_row, self.clock() + backoff(row.attempts),
                                            type(exc).__name__)
        finally:
            self._in_flight.discard(row.file_row)
            self._wake.set()

    async def fetch(self, row: VaultRow) -> str:
        """Fetch, seal and record one file; returns the outcome (stored, failed, retry...)."""
        try:
            ref = json.loads(self.open_ref(row.ref))
        except Exception:
            await self.repo.mark_failed(row.file_row, "unreadable", None)
            return "failed"
        kind = str(ref.get("kind") or "document")
        meta = {"kind": "evidence", "file_unique_id": row.file_unique_id, "media": kind,
                "received_at": ref.get("date") or row.received_at}
        dst = self.folder / row.vault_name
        try:
            path, _size = await self.telegram.locate(str(ref["file_id"]), ref.get("size"))
            async with self.telegram.open(path) as (blocks, served_mime):
                sha, plain_size = await seal_stream(
                    blocks, dst, self.public, meta, max_size=self.telegram.limit,
                    keep_going=self._running)
        except FetchError as exc:
            return await self._failed(row, ref, exc)
        mime = str(ref.get("mime") or _DEFAULT_MIME.get(kind) or served_mime
                   or "application/octet-stream").split(";")[0]
        custody = Custody(sha256=sha, size=plain_size, mime=mime,
                          received_at=str(ref.get("date") or row.received_at),
                          fetched_at=self.now().isoformat(timespec="seconds"),
                          file_unique_id=row.file_unique_id, kind=kind,
                          duration=ref.get("duration"), name=ref.get("name"))
        sealed_size = (await asyncio.to_thread(dst.stat)).st_size
        if not await self.repo.mark_stored(row.file_row, self.seal_custody(custody.to_bytes()),
                                           sealed_size, _iso(self.clock())):
            dst.unlink(missing_ok=True)  # erased while it was being fetched
            return "erased"
        self.stats["stored"] += 1
        self.stats["bytes"] += plain_size
        log.info("vault: stored a %s file (%d KiB)", kind, plain_size // 1024)
        return "stored"

    async def _failed(self, row: VaultRow, ref: dict[str, Any], exc: FetchError) -> str:
        if exc.reason == "stopped":
            return "stopped"
        received = _parse(row.received_at)
        too_old = received is not None and self.now() - received > GIVE_UP_AFTER
        if exc.permanent or (exc.gone and row.attempts + 1 >= GONE_ATTEMPTS) or too_old:
            reason = exc.reason if (exc.permanent or exc.gone) else "unreachable"
            custody = Custody(sha256="", size=int(ref.get("size") or 0),
                              mime=str(ref.get("mime") or ""),
                              received_at=str(ref.get("date") or row.received_at),
                              fetched_at="", file_unique_id=row.file_unique_id,
                              kind=str(ref.get("kind") or ""), duration=ref.get("duration"),
                              name=ref.get("name"))
            await self.repo.mark_failed(row.file_row, reason,
                                        self.seal_custody(custody.to_bytes()))
            self.stats[f"failed_{reason}"] += 1
            log.warning("vault: a file could not be fetched: %s", reason)
            return "failed"
        await self.repo.retry_later(row.file_row, self.clock() + backoff(row.attempts),
                                    exc.reason[:120])
        self.stats["retried"] += 1
        log.info("vault: fetching a file failed (%s); will retry", exc.reason[:80])
        return "retry"

    async def erase_marked(self) -> int:
        """Remove the sealed files of rows marked for erasure, then the rows."""
        rows = await self.repo.to_erase()
        done = []
        for file_row, name in rows:
            if file_row in self._in_flight:
                continue
            await asyncio.to_thread((self.folder / name).unlink, missing_ok=True)
            done.append(file_row)
        if done:
            await self.repo.forget(done)
            self.stats["erased"] += len(done)
            log.info("vault: erased %d files", len(done))
        return len(done)

    async def sweep(self) -> int:
        """Mark the files of drafts that are gone (purged, cancelled) for erasure."""
        cutoff = (self.now() - DRAFT_GRACE).isoformat(timespec="seconds")
        return await self.repo.sweep_drafts(cutoff)


def _parse(value: str) -> datetime | None:
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


__all__ = ["BLOCK", "CLOUD_LIMIT", "LOCAL_LIMIT", "Custody", "FetchError", "Telegram",
           "VaultWorker", "clean_partials", "download_limit", "extract", "read_vault_file",
           "seal_stream", "vault_dir"]
