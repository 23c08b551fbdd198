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
import hashlib
import json
import logging
import os
import random
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from nacl.public import PrivateKey, PublicKey

from bot.services.sealedfile import CHUNK, SealedReader, SealedWriter, sealed_output
from bot.storage.evidence import EvidenceRepository, VaultRow

log = logging.getLogger(__name__)

CLOUD_LIMIT = 20 * 1024 * 1024
LOCAL_LIMIT = 2000 * 1024 * 1024
FIRST_BACKOFF = 2.0
MAX_BACKOFF = 600.0
GIVE_UP_AFTER = timedelta(days=14)  # of failing to reach Telegram: recorded as unreachable
GONE_ATTEMPTS = 6  # "temporarily unavailable" this often in a row: the file is gone
POLL_SECONDS = 15.0
CONCURRENCY = 2
DRAFT_GRACE = timedelta(hours=1)
BLOCK = 1 << 20  # plaintext sealed and hashed per hand-off to a worker thread
_DEFAULT_MIME = {"photo": "image/jpeg", "voice": "audio/ogg", "video": "video/mp4",
                 "video_note": "video/mp4", "audio": "audio/mpeg"}


class FetchError(Exception):
    """A file could not be fetched this time; `permanent` when trying again will not help."""

    def __init__(self, reason: str, *, permanent: bool = False, gone: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.permanent = permanent
        self.gone = gone


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


def download_limit(api_base_url: str, limit_mb: int = 0) -> int:
    """Bytes a bot may download: set, or 20 MB on Telegram's cloud and 2 GB self-hosted."""
    if limit_mb > 0:
        return limit_mb * 1024 * 1024
    cloud = api_base_url.rstrip("/") in ("https://api.telegram.org", "http://api.telegram.org")
    return CLOUD_LIMIT if cloud else LOCAL_LIMIT


def backoff(attempts: int) -> float:
    base: float = min(FIRST_BACKOFF * 2.0 ** min(attempts, 20), MAX_BACKOFF)
    return base * random.uniform(0.8, 1.2)


def vault_dir(data_dir: Path) -> Path:
    return data_dir / "files"


def clean_partials(folder: Path) -> int:
    """Remove what a crash left half-written (sealed temporary files: ciphertext only)."""
    n = 0
    if folder.is_dir():
        for stale in folder.glob(".*.part"):
            stale.unlink(missing_ok=True)
            n += 1
    return n


class Telegram:
    """getFile and the download, over one HTTP client; never logs the URL (it holds the token)."""

    def __init__(self, api_base_url: str, token: str, limit: int,
                 client: httpx.AsyncClient | None = None) -> None:
        self.base = api_base_url.rstrip("/")
        self.token = token
        self.limit = limit
        self.http = client or httpx.AsyncClient(
            timeout=httpx.Timeout(60.0, connect=15.0), follow_redirects=False)

    async def aclose(self) -> None:
        await self.http.aclose()

    async def locate(self, file_id: str, known_size: int | None) -> tuple[str, int | None]:
        if known_size is not None and known_size > self.limit:
            raise FetchError("too_big", permanent=True)
        try:
            answer = await self.http.post(f"{self.base}/bot{self.token}/getFile",
                                          data={"file_id": file_id})
            body = answer.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise FetchError(f"getFile: {type(exc).__name__}") from None
        if not isinstance(body, dict):
            raise FetchError(f"getFile answered {answer.status_code}")
        if not body.get("ok"):
            text = str(body.get("description") or "").lower()
            code = body.get("error_code") or answer.status_code
            if code == 400 and "too big" in text:
                raise FetchError("too_big", permanent=True)
            if code == 400 and ("file_id" in text or "unavailable" in text):
                raise FetchError("gone", gone=True)
            raise FetchError(f"getFile answered {code}")
        result = body.get("result") or {}
        path = result.get("file_path")
        size = result.get("file_size")
        if not isinstance(path, str) or not path:
            raise FetchError("gone", gone=True)
        if isinstance(size, int) and size > self.limit:
            raise FetchError("too_big", permanent=True)
        return path, size if isinstance(size, int) else None

    @contextlib.asynccontextmanager
    async def open(self, path: str) -> AsyncIterator[tuple[AsyncIterator[bytes], str | None]]:
        """The file's bytes, and the MIME type the server gave (None for a local file)."""
        if path.startswith("/"):  # a self-hosted server in --local mode: the file is on disk
            local = Path(path)
            if not await asyncio.to_thread(local.is_file):
                raise FetchError("gone", gone=True)
            yield _read_local(local), None
            return
        try:
            async with self.http.stream("GET", f"{self.base}/file/bot{self.token}/{path}") as r:
                if r.status_code == 404:
                    raise FetchError("gone", gone=True)
                if r.status_code != 200:
                    raise FetchError(f"download answered {r.status_code}")
                yield r.aiter_bytes(BLOCK), r.headers.get("content-type")
        except httpx.HTTPError as exc:
            raise FetchError(f"download: {type(exc).__name__}") from None


async def _read_local(path: Path) -> AsyncIterator[bytes]:
    with path.open("rb") as fh:
        while block := await asyncio.to_thread(fh.read, BLOCK):
            yield block


def _absorb(writer: SealedWriter, digest: Any, block: bytes) -> None:
    digest.update(block)
    writer.write(block)


async def seal_stream(blocks: AsyncIterator[bytes], dst: Path, public: PublicKey,
                      meta: dict[str, Any], *, max_size: int | None = None,
                      keep_going: Callable[[], bool] = lambda: True) -> tuple[str, int]:
    """Seal what `blocks` yields into `dst`; returns (SHA-256 of the plaintext, size).

    Plaintext exists only in memory, one block at a time. An error or a stop removes the
    temporary file (sealed_output) and leaves `dst` as it was.
    """
    digest = hashlib.sha256()
    size = 0
    pending = bytearray()
    with sealed_output(dst, public, meta) as writer:
        async for block in blocks:
            if not keep_going():
                raise FetchError("stopped")
            size += len(block)
            if max_size is not None and size > max_size:
                raise FetchError("too_big", permanent=True)
            if not pending and len(block) >= BLOCK:  # a whole block: no copy
                await asyncio.to_thread(_absorb, writer, digest, block)
                continue
            pending += block
            if len(pending) >= BLOCK:
                await asyncio.to_thread(_absorb, writer, digest, bytes(pending))
                pending.clear()
        if pending:
            await asyncio.to_thread(_absorb, writer, digest, bytes(pending))
    return digest.hexdigest(), size


def read_vault_file(path: Path, private: PrivateKey) -> Iterator[bytes]:
    """The plaintext of a sealed vault file, chunk by chunk (checked: altered files raise)."""
    with path.open("rb") as fh:
        yield from SealedReader(fh, private).chunks()


def extract(path: Path, dst: Path, private: PrivateKey) -> tuple[str, int]:
    """Decrypt a vault file into `dst` (0600, temporary name until complete): (sha256, size)."""
    digest = hashlib.sha256()
    size = 0
    tmp = dst.with_name(f".{dst.name}.part")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "wb", buffering=1 << 20) as out:
            for chunk in read_vault_file(path, private):
                digest.update(chunk)
                size += len(chunk)
                out.write(chunk)
        os.replace(tmp, dst)
    finally:
        tmp.unlink(missing_ok=True)
    return digest.hexdigest(), size


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
                wait = self.poll_seconds if nxt is None else max(0.05, nxt - self.clock())
                await self._sleep(min(wait, self.poll_seconds), tasks)
        finally:
            for task in tasks:
                task.cancel()
            with contextlib.suppress(Exception):
                await asyncio.gather(*tasks, return_exceptions=True)

    async def _sleep(self, seconds: float, tasks: set[asyncio.Task[None]]) -> None:
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


__all__ = ["CHUNK", "Custody", "FetchError", "Telegram", "VaultWorker", "download_limit",
           "extract", "read_vault_file", "seal_stream", "vault_dir"]
