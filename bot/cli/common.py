"""What every command shares: one error line on stderr, the progress line, key paths."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path


def _err(message: str) -> None:
    print(message, file=sys.stderr)


def _existing(path: Path | None, what: str) -> str | None:
    """Why an explicitly given file cannot be used (None when it exists)."""
    if path is not None and not path.is_file():
        return f"the {what} {path} does not exist"
    return None


def _verify_key_path(explicit: Path | None, *beside: Path | None) -> Path | None:
    """--verify-key, else verify.key beside the private key (or in the given folders)."""
    from bot.crypto.signing import VERIFY_NAME

    if explicit is not None:
        return explicit
    for folder in beside:
        if folder is not None and (folder / VERIFY_NAME).is_file():
            return folder / VERIFY_NAME
    return None



def _write_private(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.part")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.replace(tmp, path)



class _Progress:
    """A progress line on stderr: rewritten in place on a terminal, every 10 s otherwise."""

    def __init__(self, verb: str, total: int | None) -> None:
        self.verb = verb
        self.total = total
        self.tty = sys.stderr.isatty()
        self.last = time.monotonic()
        self.shown = False
        self.count = 0

    def __call__(self, done: int) -> None:
        self.count = done
        now = time.monotonic()
        if now - self.last < (0.5 if self.tty else 10.0):
            return
        self.last = now
        of = f"/{self.total}" if self.total else ""
        pct = f" ({100 * done // self.total}%)" if self.total else ""
        line = f"{self.verb}: {done}{of} cases{pct}"
        if self.tty:
            sys.stderr.write("\r" + line)
        else:
            sys.stderr.write(line + "\n")
        sys.stderr.flush()
        self.shown = True

    def done(self) -> None:
        if self.shown and self.tty:
            sys.stderr.write("\n")
            sys.stderr.flush()
