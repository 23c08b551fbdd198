"""The numbers of erased cases, kept outside the database so no restore brings a case back.

When a relative uses /delete, the numbers of their cases (nothing else: no name, no user id)
are appended to BOT_DATA_DIR/erased-cases.txt before the database is changed. A restore puts an
older database in place but never this file, and `reapply` erases every listed case again:
at the end of every restore and at every start-up.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path

from bot.storage.erasure import erase_cases

log = logging.getLogger(__name__)

ERASED_FILE = "erased-cases.txt"


def erased_path(data_dir: Path) -> Path:
    return data_dir / ERASED_FILE


def remember(data_dir: Path, numbers: Iterable[str]) -> None:
    """Append case numbers to the list (flushed to disk before the erasure itself)."""
    lines = "".join(f"{n}\n" for n in numbers if n)
    if not lines:
        return
    data_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(erased_path(data_dir), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        os.write(fd, lines.encode("ascii"))
        os.fsync(fd)
    finally:
        os.close(fd)


def erased_numbers(data_dir: Path) -> list[str]:
    try:
        text = erased_path(data_dir).read_text("ascii")
    except FileNotFoundError:
        return []
    return sorted({line.strip() for line in text.splitlines() if line.strip()})


def reapply(db_path: Path, data_dir: Path) -> list[str]:
    """Erase again every listed case that the database at `db_path` still holds."""
    numbers = erased_numbers(data_dir)
    if not numbers:
        return []
    now = datetime.now(UTC).isoformat(timespec="seconds")
    erased = erase_cases(db_path, numbers, now)
    if erased:
        log.warning("erased again %d case(s) that the relative had deleted", len(erased))
    return erased
