"""Where the server's draft key may live, so that a disk image never opens drafts needlessly.

Drafts (questionnaires in progress) must be read back by the bot, so they are encrypted with a
secret key the bot holds. Where that key lives follows the key mode:

- the private key on the server: the disk opens everything anyway, so the draft key sits in
  BOT_DATA_DIR/keys/draft.key (unless BOT_DRAFT_KEY_FILE says otherwise);
- the private key offline: the draft key must not be on the data disk. It lives in
  BOT_DRAFT_KEY_FILE, a file on tmpfs (memory: /run/...), created there at the first start and
  gone at a reboot, when drafts in progress become unreadable and are dropped: the safe
  failure. Without BOT_DRAFT_KEY_FILE the bot holds a fresh key in memory only, so drafts do
  not survive a restart either. A draft.key left on the data disk from an older release is
  moved to BOT_DRAFT_KEY_FILE (or into memory) and overwritten on the disk.

tmpfs can be written to swap: run the server without swap or with encrypted swap
(deploy/README.md).
"""

from __future__ import annotations

import base64
import os
from dataclasses import dataclass
from pathlib import Path

MEMORY_FS = frozenset({"tmpfs", "ramfs"})


@dataclass(frozen=True, slots=True)
class DraftKeyPlace:
    """Where the draft key is: 'file' (path), 'memory', or 'none' (a command found none)."""

    kind: str
    path: Path | None = None


def filesystem_of(path: Path) -> str | None:
    """The file-system type of the mount holding `path` (from /proc/self/mounts), or None."""
    try:
        mounts = Path("/proc/self/mounts").read_text()
    except OSError:
        return None
    target = os.path.realpath(path)
    best, fstype = "", None
    for line in mounts.splitlines():
        parts = line.split()
        if len(parts) < 3:
            continue
        point = parts[1].replace("\\040", " ")
        inside = target == point or target.startswith(point.rstrip("/") + "/")
        if inside and len(point) >= len(best):
            best, fstype = point, parts[2]
    return fstype


def in_memory(path: Path) -> bool:
    """Whether `path`'s folder is on a file system held in memory (tmpfs, ramfs)."""
    return filesystem_of(path.parent) in MEMORY_FS


def wipe(path: Path) -> None:
    """Overwrite a small key file with zeros, then delete it.

    On journaling file systems and SSDs the old blocks may survive all the same: that is why
    deploy/README.md asks for full-disk encryption.
    """
    try:
        size = path.stat().st_size
        fd = os.open(path, os.O_WRONLY)
        try:
            os.write(fd, b"\0" * size)
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError:
        pass
    path.unlink(missing_ok=True)


def encode(raw: bytes) -> bytes:
    return base64.b64encode(raw) + b"\n"


def problems(data_dir: Path, offline: bool, draft_key_file: Path | None,
             legacy: Path) -> list[str]:
    """What `check` says is wrong with where the draft key is (empty when all is well)."""
    out = []
    if draft_key_file is not None:
        folder = draft_key_file.parent
        data = os.path.realpath(data_dir)
        if os.path.realpath(draft_key_file).startswith(data.rstrip("/") + "/"):
            out.append(f"BOT_DRAFT_KEY_FILE: {draft_key_file} is inside BOT_DATA_DIR: put it on "
                       "tmpfs instead (systemd: /run/atazhurt-bot/draft.key; Docker: "
                       "/run/atazhurt/draft.key)")
        elif not folder.is_dir():
            out.append(f"BOT_DRAFT_KEY_FILE: the folder {folder} does not exist (systemd: "
                       "RuntimeDirectory=atazhurt-bot; Docker: the tmpfs in compose.yaml)")
        elif not os.access(folder, os.W_OK | os.X_OK):
            out.append(f"BOT_DRAFT_KEY_FILE: the folder {folder} is not writable")
        elif not in_memory(draft_key_file):
            out.append(f"BOT_DRAFT_KEY_FILE: {folder} is on {filesystem_of(folder) or 'a disk'}, "
                       "not tmpfs: a disk image would hold the draft key (use /run/...)")
    elif offline:
        out.append("BOT_DRAFT_KEY_FILE: not set while the private key is offline: the draft "
                   "key is kept in memory only, so questionnaires in progress are lost at every "
                   "restart; set it to a file on tmpfs (see deploy/README.md)")
    if offline and legacy.exists():
        out.append(f"BOT_DRAFT_KEY_FILE: {legacy} is on the data disk while the private key is "
                   "offline: start the bot once, it moves the key off the disk and erases it")
    return out
