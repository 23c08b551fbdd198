"""`python -m bot backup --files DIR`: an incremental copy of the evidence vault.

The vault's files are already sealed to the organisation's public key, so the backup copies
them as they are: only the files DIR does not have yet (a file in the vault never changes once
it has its name), each under a temporary name, fsynced and renamed. Files erased from the vault
(/delete, purged drafts) are removed from DIR too, so an erasure reaches the backup. DIR then
holds `files/<vault_name>` and `SHA256SUMS`, the SHA-256 of every sealed file, in the format
`sha256sum -c SHA256SUMS` checks (run it inside DIR): a copy damaged in transit or on the
backup disk is found without the private key.

Restore (the bot stopped): restore the database backup (`python -m bot restore`), then copy
DIR/files/ back into BOT_DATA_DIR/files/ (`cp -a DIR/files/. BOT_DATA_DIR/files/` or
rsync). Vault files the restored database does not know are ignored; rows whose file is
missing are shown to staff as not in the vault.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from bot.evidence.vault import vault_dir

MANIFEST = "SHA256SUMS"


@dataclass
class FilesBackup:
    copied: int = 0
    copied_bytes: int = 0
    kept: int = 0
    removed: int = 0
    total_bytes: int = 0


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def _read_manifest(path: Path) -> dict[str, str]:
    out: dict[str, str] = {}
    if path.exists():
        for line in path.read_text(encoding="utf-8").splitlines():
            sha, _, name = line.partition("  ")
            if sha and name.startswith("files/"):
                out[name[len("files/"):]] = sha
    return out


def _copy(src: Path, dst: Path) -> None:
    tmp = dst.with_name(f".{dst.name}.part")
    shutil.copyfile(src, tmp)  # sendfile/copy_file_range: no file in memory
    fd = os.open(tmp, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    os.chmod(tmp, 0o600)
    os.replace(tmp, dst)


def backup_files(data_dir: Path, dest: Path) -> FilesBackup:
    """Bring DIR up to date with the vault; returns what was copied, kept and removed."""
    source = vault_dir(data_dir)
    target = dest / "files"
    target.mkdir(parents=True, exist_ok=True, mode=0o700)
    for stale in target.glob(".*.part"):
        stale.unlink(missing_ok=True)
    known = _read_manifest(dest / MANIFEST)
    result = FilesBackup()
    names = sorted(p.name for p in source.iterdir()
                   if p.is_file() and not p.name.startswith(".")) if source.is_dir() else []
    sums: dict[str, str] = {}
    for name in names:
        src, dst = source / name, target / name
        size = src.stat().st_size
        result.total_bytes += size
        if dst.exists() and dst.stat().st_size == size and name in known:
            sums[name] = known[name]
            result.kept += 1
            continue
        _copy(src, dst)
        sums[name] = _sha256(dst)
        result.copied += 1
        result.copied_bytes += size
    present = set(names)
    for old in target.iterdir():
        if old.is_file() and old.name not in present:
            old.unlink()
            result.removed += 1
    tmp = dest / f".{MANIFEST}.part"
    tmp.write_text("".join(f"{sums[n]}  files/{n}\n" for n in names), encoding="utf-8")
    os.replace(tmp, dest / MANIFEST)
    return result
