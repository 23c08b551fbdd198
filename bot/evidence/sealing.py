"""Sealing a stream into the vault and reading it back (bot/services/sealedfile.py's format).

`seal_stream` hashes the plaintext (SHA-256) and seals it to the organisation's public key as
it passes, a block at a time, into a temporary file that is fsynced and renamed: nothing but
ciphertext reaches the disk, and an interrupted seal leaves at worst a sealed temporary file
(`clean_partials` removes those at the next start).
"""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

from nacl.public import PrivateKey, PublicKey

from bot.evidence.telegram_files import BLOCK, FetchError
from bot.services.sealedfile import SealedReader, SealedWriter, sealed_output


def clean_partials(folder: Path) -> int:
    """Remove what a crash left half-written (sealed temporary files: ciphertext only)."""
    n = 0
    if folder.is_dir():
        for stale in folder.glob(".*.part"):
            stale.unlink(missing_ok=True)
            n += 1
    return n


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
