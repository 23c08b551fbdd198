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
import importlib
import json
import os
import pickle
import struct
import subprocess
import sys
import threading
from collections.abc import AsyncIterator, Callable
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


try:  # Linux: bigger pipes from the worker processes
    _fcntl: Any = importlib.import_module("fcntl")
except ImportError:  # pragma: no cover - Windows
    _fcntl = None


def _encoder(fmt: ExportFormat, plan: ExportPlan) -> _Encoder:
    if fmt == "csv":
        return _CsvEncoder(plan)
    return _XlsxEncoder(plan) if fmt == "xlsx" else _JsonlEncoder(plan)


def _writer(fmt: ExportFormat, fh: IO[bytes], plan: ExportPlan) -> _Writer:
    if fmt == "csv":
        return _CsvWriter(fh, plan)
    return _XlsxWriter(fh, plan) if fmt == "xlsx" else _JsonlWriter(fh, plan)


def _sample(cases_before: int) -> int:
    """How many of a batch's rows may fall within the rows that set the XLSX column widths
    (each case gives at least one row)."""
    return max(0, _WIDTH_SAMPLE_ROWS - cases_before)


# --------------------------------------------------------------------------- worker processes

#: Exports of fewer cases are encoded in a thread of the calling process: starting worker
#: processes (a new interpreter each, about a third of a second) would not pay off.
PARALLEL_MIN_CASES = 5_000
MAX_WORKERS = 4
WORKER_MODULE = "bot.export.worker"
_FRAME = struct.Struct("<I")  # parent -> worker: a length, then the message
_RESULT = struct.Struct("<cIIII")  # worker -> parent: kind, rows, cases, widths and data sizes


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


def worker_main(stdin: IO[bytes] | None = None, stdout: IO[bytes] | None = None) -> int:
    """The loop of an export worker process (``python -m bot.export.worker``).

    Reads from ``stdin`` a pickled set-up (database path, format, form, decode, filters) from
    the process that started it, then key ranges as JSON; answers each range with its encoded
    cases (or an error) on ``stdout``, in order, until ``stdin`` closes.
    """
    stdin = stdin or sys.stdin.buffer
    stdout = stdout or sys.stdout.buffer
    setup = _read_frame(stdin)
    if setup is None:
        return 0
    # Written by the exporting process that started this one, over a pipe only they share.
    db_path, fmt, form, decode, filters = pickle.loads(setup)  # noqa: S301
    # The work is acyclic (JSON in, bytes out): reference counting frees all of it, and the
    # cycle collector would only rescan the same young objects again and again.
    gc.disable()
    encoder = _encoder(fmt, ExportPlan(form))
    conn = open_reader(Path(db_path))
    try:
        while (task := _read_frame(stdin)) is not None:
            after, upto, sample = json.loads(task)
            try:
                cases = fetch_case_range(conn, tuple(after) if after else None,
                                         tuple(upto) if upto else None, **filters)
                chunk = encoder.encode(cases, decode, sample)
            except Exception as exc:  # reported to the exporting process, which raises it
                message = str(exc) if isinstance(exc, ExportError) else \
                    f"export worker: {type(exc).__name__}: {exc}"
                stdout.write(_RESULT.pack(b"E", 0, 0, 0, len(message.encode())))
                stdout.write(message.encode())
                stdout.flush()
                return 1
            widths = json.dumps(chunk.widths).encode() if chunk.widths is not None else b""
            stdout.write(_RESULT.pack(b"R", chunk.rows, chunk.cases, len(widths),
                                      len(chunk.data)))
            stdout.write(widths)
            stdout.write(chunk.data)
            stdout.flush()
    finally:
        conn.close()
    return 0


def _read_frame(stream: IO[bytes]) -> bytes | None:
    head = stream.read(_FRAME.size)
    if len(head) < _FRAME.size:
        return None
    (size,) = _FRAME.unpack(head)
    return stream.read(size)


def _read_exactly(stream: IO[bytes], size: int) -> bytes:
    data = stream.read(size)
    if len(data) != size:
        raise EOFError
    return data


class _Worker:
    """One worker process, seen from the exporting process.

    A thread reads its results as soon as they come (so it never waits, with a full pipe,
    for the results of other workers to be written first) and hands each to the future of
    the range it answers, in order.
    """

    def __init__(self, setup: bytes, loop: asyncio.AbstractEventLoop) -> None:
        env = dict(os.environ)
        # The worker imports this package from wherever this process does.
        env["PYTHONPATH"] = os.pathsep.join(os.path.abspath(p or os.curdir) for p in sys.path)
        self.proc = subprocess.Popen(  # noqa: S603  # this interpreter, a fixed module
            [sys.executable, "-m", WORKER_MODULE], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, env=env, bufsize=1 << 20)
        if self.proc.stdout is not None and hasattr(_fcntl, "F_SETPIPE_SZ"):
            # A 1 MiB pipe instead of 64 KiB: a batch crosses in a few system calls.
            with contextlib.suppress(OSError):
                _fcntl.fcntl(self.proc.stdout.fileno(), _fcntl.F_SETPIPE_SZ, 1 << 20)
        self._loop = loop
        self._waiting: collections.deque[asyncio.Future[_Chunk]] = collections.deque()
        self._failed: BaseException | None = None
        self._send(setup)
        self._reader = threading.Thread(target=self._read_results, daemon=True,
                                        name="export-worker-reader")
        self._reader.start()

    def _send(self, message: bytes) -> None:
        stdin = self.proc.stdin
        assert stdin is not None
        stdin.write(_FRAME.pack(len(message)) + message)
        stdin.flush()

    def submit(self, after: CaseKey | None, upto: CaseKey | None,
               sample: int) -> asyncio.Future[_Chunk]:
        """Send a key range; the future gets its encoded cases."""
        future: asyncio.Future[_Chunk] = self._loop.create_future()
        if self._failed is not None:
            future.set_exception(self._failed)
            return future
        self._waiting.append(future)
        self._send(json.dumps([after, upto, sample]).encode())
        return future

    def _result(self) -> _Chunk:
        """The next result, in the order the ranges were sent (blocking)."""
        stdout = self.proc.stdout
        assert stdout is not None
        try:
            kind, rows, cases, widths_size, size = _RESULT.unpack(
                _read_exactly(stdout, _RESULT.size))
            widths = _read_exactly(stdout, widths_size) if widths_size else b""
            data = _read_exactly(stdout, size)
        except (EOFError, OSError, ValueError, struct.error):
            code = self.proc.poll()
            raise ExportError("an export worker process stopped unexpectedly"
                              + (f" (exit status {code})" if code is not None else "")) from None
        if kind != b"R":
            raise ExportError(data.decode("utf-8", "replace"))
        return _Chunk(data, rows, cases, json.loads(widths) if widths else None)

    def _read_results(self) -> None:  # the reader thread
        while True:
            try:
                chunk = self._result()
            except ExportError as exc:
                self._call(self._deliver, None, exc)
                return
            self._call(self._deliver, chunk, None)

    def _call(self, fn: Callable[..., None], *args: Any) -> None:
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody is waiting
            self._loop.call_soon_threadsafe(fn, *args)

    def _deliver(self, chunk: _Chunk | None, exc: ExportError | None) -> None:
        if exc is not None:
            self._failed = exc
            while self._waiting:
                future = self._waiting.popleft()
                if not future.done():
                    future.set_exception(exc)
            return
        if self._waiting:
            future = self._waiting.popleft()
            if not future.done():
                future.set_result(chunk)  # type: ignore[arg-type]

    def finish(self) -> None:
        """Let the worker end (it stops at the end of its input), or stop it if it does not
        (blocking)."""
        with contextlib.suppress(OSError):
            if self.proc.stdin is not None:
                self.proc.stdin.close()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:  # pragma: no cover - a stuck worker
            self.proc.kill()
            self.proc.wait()
        self._reader.join()
        if self.proc.stdout is not None:
            self.proc.stdout.close()

    def kill(self) -> None:
        with contextlib.suppress(OSError):
            self.proc.kill()


async def _encode_in_workers(
    db: Database, form: Form, fmt: ExportFormat, writer: _Writer, decode: Decode,
    filters: dict[str, str | None], batch: int, workers: int,
    progress: Callable[[int], None] | None,
) -> tuple[int, int]:
    """Encode key ranges of ``batch`` cases in ``workers`` processes (each reads the database
    with its own connection) and write their results in order as they come back.

    Range k goes to worker k mod n, which answers its ranges in order. At most two ranges per
    worker are in flight: memory stays bounded whatever the export's size.
    """
    setup = pickle.dumps((str(db.path), fmt, form, decode, filters))
    loop = asyncio.get_running_loop()
    pool: list[_Worker] = []
    in_flight: collections.deque[asyncio.Future[_Chunk]] = collections.deque()
    rows = cases = 0
    ok = False

    async def write_oldest() -> None:
        nonlocal rows, cases
        chunk = await in_flight.popleft()
        await _in_thread(writer.write, chunk)
        rows += chunk.rows
        cases += chunk.cases
        if progress is not None:
            progress(cases)

    try:
        for _ in range(workers):
            pool.append(_Worker(setup, loop))
        k = 0
        async for after, upto in iter_key_ranges(db, batch=batch, **filters):
            in_flight.append(pool[k % workers].submit(after, upto, _sample(k * batch)))
            k += 1
            if len(in_flight) >= 2 * workers:
                await write_oldest()
        while in_flight:
            await write_oldest()
        ok = True
    finally:
        if not ok:
            for worker in pool:
                worker.kill()
        for worker in pool:
            await _in_thread(worker.finish)
        for future in in_flight:
            if future.done() and not future.cancelled():
                future.exception()  # retrieved: no "never retrieved" warning
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
