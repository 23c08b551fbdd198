"""Backups and offline exports as age files (https://age-encryption.org/v1), signed beside.

age encrypts a stream to one or more X25519 recipients (the organisation's key, a second key
custodian's...) in authenticated 64 KiB chunks, so the standard `age` tool (or `rage`) opens
these files without this codebase: `age -d -i org_private.key FILE`. pyrage does the work; it
runs in a thread that reads from (or writes to) a pipe, so plaintext never touches the disk on
its way in or out.

What is inside:

- a backup: a tar archive with `meta.json` (kind, created_at, schema_version, the draft key)
  and `bot.sqlite3`;  `age -d -i KEY FILE | tar x` unpacks it;
- a sealed export: JSON lines, the first one the export's metadata, then one per case (its
  answers still sealed to the organisation's key).

Every file written here gets a detached signature, FILE.sig (see `bot.crypto.signing`).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, Any

import pyrage
from nacl.signing import SigningKey

from bot.crypto.signing import sign_file

AGE_MAGIC = b"age-encryption.org/v1"


class AgeFileError(ValueError):
    """An age file cannot be written or opened; str() is one line, never the content."""


def is_age_file(path: Path) -> bool:
    """Whether the file starts like an age file (binary; armored files are not written here)."""
    try:
        with path.open("rb") as fh:
            return fh.read(len(AGE_MAGIC)) == AGE_MAGIC
    except OSError:
        return False


class _Worker(threading.Thread):
    def __init__(self, target: Any, *args: Any) -> None:
        super().__init__(daemon=True)
        self._call = (target, args)
        self.error: BaseException | None = None

    def run(self) -> None:
        target, args = self._call
        try:
            target(*args)
        except BaseException as exc:  # handed to the caller's thread
            self.error = exc
        finally:
            for arg in args:
                if isinstance(arg, _PipeEnd):
                    arg.close()


class _PipeEnd:
    """One end of an os.pipe as a binary file, closed once."""

    def __init__(self, fd: int, mode: str) -> None:
        self.file: IO[bytes] = os.fdopen(fd, mode)

    def read(self, n: int = -1) -> bytes:
        return self.file.read(n)

    def readinto(self, b: Any) -> int:
        return self.file.readinto(b)  # type: ignore[attr-defined,no-any-return]

    def readable(self) -> bool:
        return True

    def write(self, data: bytes) -> int:
        return self.file.write(data)

    def writable(self) -> bool:
        return True

    def flush(self) -> None:
        self.file.flush()

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.file.close()


@contextlib.contextmanager
def age_output(dst: Path, recipients: Sequence[pyrage.x25519.Recipient],
               signer: SigningKey | None, kind: str) -> Iterator[IO[bytes]]:
    """Write an age file to `dst` (0600, under a temporary name, renamed when complete).

    What is written to the yielded file is encrypted to `recipients`; when the block ends the
    file is fsynced, put in place, and signed as `kind` into `dst.sig` (unless signer is None).
    """
    if not recipients:
        raise AgeFileError("no recipient to encrypt to")
    tmp = dst.with_name(f".{dst.name}.{secrets.token_hex(6)}.part")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    out = os.fdopen(fd, "wb")
    done = False
    read_fd, write_fd = os.pipe()
    source = _PipeEnd(read_fd, "rb")
    sink = os.fdopen(write_fd, "wb", buffering=1 << 16)
    worker = _Worker(pyrage.encrypt_io, source, out, list(recipients))
    worker.start()
    try:
        try:
            yield sink
        finally:
            with contextlib.suppress(OSError):
                sink.close()  # end of input (or abort: a broken pipe in the worker)
            worker.join()
        if worker.error is not None:
            raise AgeFileError(f"could not encrypt ({type(worker.error).__name__})")
        out.flush()
        os.fsync(out.fileno())
        out.close()
        os.replace(tmp, dst)
        done = True
    finally:
        out.close()
        if not done:
            tmp.unlink(missing_ok=True)
    if signer is not None:
        sign_file(dst, signer, kind)


@contextlib.contextmanager
def age_input(src: Path, identities: Sequence[pyrage.x25519.Identity]) -> Iterator[IO[bytes]]:
    """Read the decrypted content of the age file `src` from the yielded file.

    The content is authenticated chunk by chunk; a cut, altered or wrongly keyed file raises
    AgeFileError when the block ends, so whatever was read counts only if it ends cleanly.
    """
    read_fd, write_fd = os.pipe()
    source = src.open("rb")
    reader = os.fdopen(read_fd, "rb", buffering=1 << 16)
    sink = _PipeEnd(write_fd, "wb")
    worker = _Worker(pyrage.decrypt_io, source, sink, list(identities))
    worker.start()
    try:
        yield reader
        while reader.read(1 << 16):  # to the end, so the last chunk is authenticated too
            pass
    finally:
        reader.close()  # a worker still writing gets a broken pipe and stops
        worker.join()
        source.close()
        # A failed decryption is the real cause of whatever the reader then tripped on.
        if worker.error is not None and not _broken_pipe(worker.error):
            raise AgeFileError(_why(worker.error))


def _broken_pipe(exc: BaseException) -> bool:
    return isinstance(exc, BrokenPipeError) or (
        isinstance(exc, OSError) and "broken pipe" in str(exc).lower())


def _why(exc: BaseException) -> str:
    text = str(exc).lower()
    if "no matching keys" in text or "no identity" in text:
        return "this key cannot open this file (it was encrypted to other recipients)"
    if isinstance(exc, pyrage.DecryptError | OSError):
        return "the file is damaged, cut short or altered"
    return f"the file cannot be opened ({type(exc).__name__})"
