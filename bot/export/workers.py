"""Where an export's encoding runs: a thread of this process, or worker processes.

A large export (:data:`PARALLEL_MIN_CASES` cases or more) is read and encoded by worker
processes, each taking key ranges with its own read-only connection, and the exporting process
writes their results in order; a smaller one is encoded batch by batch in a thread while the
next batch is read.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import functools
import gc
import multiprocessing
import os
import sqlite3
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import IO, Any, TypeVar

from bot.export.csv import _CsvEncoder, _CsvWriter
from bot.export.jsonl import _JsonlEncoder, _JsonlWriter
from bot.export.plan import (
    _WIDTH_SAMPLE_ROWS,
    Decode,
    ExportError,
    ExportFormat,
    ExportPlan,
    _Chunk,
    _Encoder,
    _Writer,
    identity,
)
from bot.export.xlsx import _XlsxEncoder, _XlsxWriter
from bot.form.model import Form
from bot.storage.db import Database
from bot.storage.export_queries import (
    CaseKey,
    CaseRow,
    fetch_case_range,
    iter_case_batches,
    iter_key_ranges,
    open_reader,
)

T = TypeVar("T")

#: zlib level of an XLSX export by default: files about a quarter smaller than at level 1, so
#: Telegram's 50 MB upload limit (/export) is reached later; the CLI may choose level 1.
DEFLATE_LEVEL = 6


def _encoder(fmt: ExportFormat, plan: ExportPlan) -> _Encoder:
    if fmt == "csv":
        return _CsvEncoder(plan)
    return _XlsxEncoder(plan) if fmt == "xlsx" else _JsonlEncoder(plan)


def _writer(fmt: ExportFormat, fh: IO[bytes], plan: ExportPlan,
            deflate_level: int = DEFLATE_LEVEL) -> _Writer:
    if fmt == "csv":
        return _CsvWriter(fh, plan)
    return _XlsxWriter(fh, plan, deflate_level) if fmt == "xlsx" else _JsonlWriter(fh, plan)


def _sample(cases_before: int) -> int:
    """How many of a batch's rows may fall within the rows that set the XLSX column widths
    (each case gives at least one row)."""
    return max(0, _WIDTH_SAMPLE_ROWS - cases_before)


# --------------------------------------------------------------------------- worker processes

#: Exports of fewer cases are encoded in a thread of the calling process: starting worker
#: processes (a new interpreter each, about a third of a second) would not pay off.
PARALLEL_MIN_CASES = 5_000
MAX_WORKERS = 4


def parallel_safe(decode: Decode) -> bool:
    """Whether ``decode`` may run in worker processes: :func:`identity`, or a callable that
    says so with a true ``parallel_safe`` attribute (it is pickled to each worker, so it must
    not depend on this process's state; see ``sealed_export.CaseOpener``)."""
    return decode is identity or getattr(decode, "parallel_safe", False) is True


def _cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def _worker_count(db: Database, decode: Decode, cases: int, batch: int,
                  workers: int | None) -> int:
    """How many worker processes to use (0: encode in this process)."""
    if workers is None:
        if cases < PARALLEL_MIN_CASES:
            return 0
        workers = min(_cpus(), MAX_WORKERS)
        if workers < 2:
            return 0
    if workers <= 0 or not parallel_safe(decode):
        return 0
    path = str(db.path)
    if path == ":memory:" or path.startswith("file:") or not os.path.isfile(path):
        return 0
    return max(1, min(workers, -(-cases // batch)))


class NoWorkerProcesses(RuntimeError):
    """Worker processes cannot be started here; the export is encoded in this process."""


#: Set in each worker process by :func:`_start_worker`: (encoder, connection, decode, filters).
_worker: tuple[_Encoder, sqlite3.Connection, Decode, dict[str, str | None]] | None = None


def _start_worker(db_path: str, fmt: ExportFormat, form: Form, decode: Decode,
                  filters: dict[str, str | None]) -> None:
    """The initializer of each worker process: its encoder and read-only connection."""
    global _worker
    # The work is acyclic (JSON in, bytes out): reference counting frees all of it, and the
    # cycle collector would only rescan the same young objects again and again.
    gc.disable()
    _worker = (_encoder(fmt, ExportPlan(form)), open_reader(Path(db_path)), decode, filters)


def _encode_range(after: CaseKey | None, upto: CaseKey | None, sample: int) -> _Chunk:
    """In a worker process: read the cases of one key range and encode them."""
    assert _worker is not None, "not started by _start_worker"
    encoder, conn, decode, filters = _worker
    try:
        cases = fetch_case_range(conn, after, upto, **filters)
        return encoder.encode(cases, decode, sample)
    except ExportError:
        raise
    except Exception as exc:  # only the class and text travel back, never the case
        raise ExportError(f"export worker: {type(exc).__name__}: {exc}") from None


async def _encode_in_workers(
    db: Database, form: Form, fmt: ExportFormat, writer: _Writer, decode: Decode,
    filters: dict[str, str | None], batch: int, workers: int,
    progress: Callable[[int], None] | None,
) -> tuple[int, int]:
    """Encode key ranges of ``batch`` cases in ``workers`` processes (each reads the database
    with its own connection) and write their results in order as they come back.

    The standard library's process pool (spawn: a fresh interpreter, nothing inherited from
    the bot's process) does the work; at most two ranges per worker are in flight, so memory
    stays bounded whatever the export's size.
    """
    loop = asyncio.get_running_loop()
    try:
        pool = ProcessPoolExecutor(
            max_workers=workers, mp_context=multiprocessing.get_context("spawn"),
            initializer=_start_worker, initargs=(str(db.path), fmt, form, decode, filters))
    except (OSError, ImportError, NotImplementedError) as exc:
        # No working semaphores (a sandbox without /dev/shm): nothing is written yet.
        raise NoWorkerProcesses(type(exc).__name__) from exc
    in_flight: collections.deque[asyncio.Future[_Chunk]] = collections.deque()
    rows = cases = 0

    async def write_oldest() -> None:
        nonlocal rows, cases
        try:
            chunk = await in_flight.popleft()
        except BrokenProcessPool:
            raise ExportError("an export worker process stopped unexpectedly") from None
        await _in_thread(writer.write, chunk)
        rows += chunk.rows
        cases += chunk.cases
        if progress is not None:
            progress(cases)

    try:
        k = 0
        async for after, upto in iter_key_ranges(db, batch=batch, **filters):
            in_flight.append(loop.run_in_executor(
                pool, _encode_range, after, upto, _sample(k * batch)))
            k += 1
            if len(in_flight) >= 2 * workers:
                await write_oldest()
        while in_flight:
            await write_oldest()
    finally:
        for future in in_flight:
            future.cancel()
        # On failure the ranges not started are dropped; the few running finish first.
        await _in_thread(functools.partial(pool.shutdown, wait=True, cancel_futures=True))
    return rows, cases


async def _encode_here(
    db: Database, plan: ExportPlan, fmt: ExportFormat, writer: _Writer, decode: Decode,
    filters: dict[str, str | None], batch: int, progress: Callable[[int], None] | None,
) -> tuple[int, int]:
    """Encode each batch in a worker thread of this process while the next one is read."""
    encoder = _encoder(fmt, plan)

    def encode_and_write(chunk: list[CaseRow], sample: int) -> int:
        encoded = encoder.encode(chunk, decode, sample)
        writer.write(encoded)
        return encoded.rows

    rows = cases = 0
    batches = iter_case_batches(db, batch=batch, **filters)
    async for chunk in _prefetched(batches):
        rows += await _in_thread(encode_and_write, chunk, _sample(cases))
        cases += len(chunk)
        if progress is not None:
            progress(cases)
    return rows, cases


async def _in_thread(fn: Callable[..., T], *args: Any) -> T:
    """Run ``fn`` in a worker thread; if cancelled, let it finish before passing the
    cancellation on, so the files it writes are not removed under its feet."""
    future = asyncio.get_running_loop().run_in_executor(None, functools.partial(fn, *args))
    try:
        return await asyncio.shield(future)
    except asyncio.CancelledError:
        with contextlib.suppress(BaseException):
            await asyncio.wait([future])
        raise


async def _prefetched(batches: AsyncIterator[list[CaseRow]]) -> AsyncIterator[list[CaseRow]]:
    """Yield the batches while the next one is already being read."""
    pending: asyncio.Future[list[CaseRow] | None] = asyncio.ensure_future(anext(batches, None))
    try:
        while (chunk := await pending) is not None:
            pending = asyncio.ensure_future(anext(batches, None))
            yield chunk
    finally:
        if not pending.done():
            pending.cancel()
            with contextlib.suppress(BaseException):
                await pending
