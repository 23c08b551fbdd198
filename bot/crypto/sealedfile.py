"""Sealed files (backups, offline exports): streamed, authenticated, opened only by the private key.

A sealed box holds one message in memory, which does not suit a database of a few hundred MB.
So a file gets a fresh random key, sealed with a libsodium sealed box to the organisation's
public key, and its content is encrypted in 64 KiB chunks with that key using
crypto_secretstream_xchacha20poly1305, which authenticates every chunk, their order and the
end of the stream (a truncated, reordered or altered file is refused). Layout:

    MAGIC (5 bytes) | sealed file key (80) | secretstream header (24)
    then records: length (4 bytes, big-endian) | ciphertext
    record 1: metadata (JSON: kind, created_at, ...); records 2..n: content; last: TAG_FINAL

The first record is bound to the header as associated data. Nothing here writes plaintext to
disk: writers take bytes, readers yield bytes.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from nacl import bindings as sodium
from nacl.exceptions import CryptoError
from nacl.public import PrivateKey, PublicKey, SealedBox
from nacl.utils import random

MAGIC = b"AZSF\x01"
CHUNK = 64 * 1024
_KEYBYTES = sodium.crypto_secretstream_xchacha20poly1305_KEYBYTES
_HEADERBYTES = sodium.crypto_secretstream_xchacha20poly1305_HEADERBYTES
_ABYTES = sodium.crypto_secretstream_xchacha20poly1305_ABYTES
_SEALED_KEY = _KEYBYTES + 48  # a sealed box adds an ephemeral public key and a MAC
_TAG_MESSAGE = sodium.crypto_secretstream_xchacha20poly1305_TAG_MESSAGE
_TAG_FINAL = sodium.crypto_secretstream_xchacha20poly1305_TAG_FINAL
_MAX_RECORD = 16 * 1024 * 1024


class SealedFileError(ValueError):
    """The file cannot be opened; str() is one line saying why (never the content)."""


def load_private_key(path: Path) -> PrivateKey:
    """Read an organisation private key file (age identity, or base64 as older releases wrote).

    A passphrase-protected file asks for its passphrase on the terminal.
    """
    from bot.crypto.agekeys import AgeKeyError, read_private_keys

    try:
        private = read_private_keys(path).private
    except AgeKeyError as exc:
        raise SealedFileError(str(exc)) from None
    if private is None:
        raise SealedFileError(f"{path} is not a key file written by this bot")
    return private


def load_public_key(path: Path) -> PublicKey:
    """Read an organisation public key file (age recipient, or base64)."""
    from bot.crypto.agekeys import AgeKeyError, read_public_key

    try:
        return read_public_key(path)
    except AgeKeyError as exc:
        raise SealedFileError(str(exc)) from None


def is_sealed_stream(path: Path) -> bool:
    """Whether the file starts like a sealed file of this format."""
    try:
        with path.open("rb") as fh:
            return fh.read(len(MAGIC)) == MAGIC
    except OSError:
        return False


class SealedWriter:
    """Encrypts what is written to it into `fh`, chunk by chunk; `close()` ends the stream."""

    def __init__(self, fh: IO[bytes], public: PublicKey, meta: dict[str, Any]) -> None:
        self._fh = fh
        key = random(_KEYBYTES)
        self._state = sodium.crypto_secretstream_xchacha20poly1305_state()
        header = sodium.crypto_secretstream_xchacha20poly1305_init_push(self._state, key)
        prefix = MAGIC + SealedBox(public).encrypt(key) + header
        fh.write(prefix)
        self._buf = bytearray()
        self._closed = False
        self._record(json.dumps(meta, ensure_ascii=False).encode("utf-8"), _TAG_MESSAGE,
                     ad=prefix)

    def _record(self, data: bytes, tag: int, ad: bytes | None = None) -> None:
        ct = sodium.crypto_secretstream_xchacha20poly1305_push(self._state, data, ad, tag)
        self._fh.write(struct.pack(">I", len(ct)))
        self._fh.write(ct)

    def write(self, data: bytes) -> None:
        """Add plaintext; full chunks are encrypted and written at once."""
        if self._closed:
            raise ValueError("the sealed stream is closed")
        self._buf += data
        while len(self._buf) > CHUNK:
            self._record(bytes(self._buf[:CHUNK]), _TAG_MESSAGE)
            del self._buf[:CHUNK]

    def close(self) -> None:
        """Write the last chunk with the final tag (a reader refuses a stream without it)."""
        if self._closed:
            return
        self._record(bytes(self._buf), _TAG_FINAL)
        self._buf.clear()
        self._closed = True


@contextlib.contextmanager
def sealed_output(dst: Path, public: PublicKey, meta: dict[str, Any]) -> Iterator[SealedWriter]:
    """Write a sealed file to `dst`: under a temporary name (0600), renamed when complete."""
    tmp = dst.with_name(f".{dst.name}.{secrets.token_hex(6)}.part")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    done = False
    try:
        with os.fdopen(fd, "wb", buffering=1 << 20) as fh:
            writer = SealedWriter(fh, public, meta)
            yield writer
            writer.close()
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, dst)
        done = True
    finally:
        if not done:
            tmp.unlink(missing_ok=True)


def seal_file(src: Path, dst: Path, public: PublicKey, meta: dict[str, Any]) -> None:
    """Seal the file `src` into `dst`, streaming (memory stays at one chunk)."""
    with sealed_output(dst, public, meta) as writer, src.open("rb") as fh:
        while block := fh.read(CHUNK):
            writer.write(block)


class SealedReader:
    """Opens a sealed file: `meta` at once, then the content chunk by chunk via `chunks()`."""

    def __init__(self, fh: IO[bytes], private: PrivateKey) -> None:
        self._fh = fh
        prefix = fh.read(len(MAGIC) + _SEALED_KEY + _HEADERBYTES)
        if not prefix.startswith(MAGIC):
            raise SealedFileError("this is not a sealed file written by this bot")
        if len(prefix) < len(MAGIC) + _SEALED_KEY + _HEADERBYTES:
            raise SealedFileError("the sealed file is damaged or truncated")
        sealed_key = prefix[len(MAGIC):len(MAGIC) + _SEALED_KEY]
        try:
            key = SealedBox(private).decrypt(sealed_key)
        except CryptoError:
            raise SealedFileError(
                "this key cannot open this file (it was sealed to another public key)") from None
        self._state = sodium.crypto_secretstream_xchacha20poly1305_state()
        sodium.crypto_secretstream_xchacha20poly1305_init_pull(
            self._state, prefix[-_HEADERBYTES:], key)
        first, tag = self._next(ad=prefix)
        if first is None or tag != _TAG_MESSAGE:
            raise SealedFileError("the sealed file is damaged or truncated")
        try:
            meta = json.loads(first)
        except ValueError:
            raise SealedFileError("the sealed file is damaged") from None
        if not isinstance(meta, dict):
            raise SealedFileError("the sealed file is damaged")
        self.meta: dict[str, Any] = meta
        self._done = False

    def _next(self, ad: bytes | None = None) -> tuple[bytes | None, int]:
        head = self._fh.read(4)
        if not head:
            return None, -1
        if len(head) < 4:
            raise SealedFileError("the sealed file is damaged or truncated")
        (length,) = struct.unpack(">I", head)
        if length < _ABYTES or length > _MAX_RECORD:
            raise SealedFileError("the sealed file is damaged")
        ct = self._fh.read(length)
        if len(ct) < length:
            raise SealedFileError("the sealed file is damaged or truncated")
        try:
            data, tag = sodium.crypto_secretstream_xchacha20poly1305_pull(self._state, ct, ad)
        except (CryptoError, RuntimeError, ValueError):
            raise SealedFileError("the sealed file is damaged or was altered") from None
        return bytes(data), int(tag)

    def chunks(self) -> Iterator[bytes]:
        """The content, in order; raises SealedFileError if it is cut short or altered."""
        while not self._done:
            data, tag = self._next()
            if data is None:
                raise SealedFileError("the sealed file is truncated (its end is missing)")
            if tag == _TAG_FINAL:
                if self._fh.read(1):
                    raise SealedFileError("the sealed file has data after its end")
                self._done = True
            if data:
                yield data

    def lines(self) -> Iterator[bytes]:
        """The content split into lines (without their b"\\n")."""
        rest = b""
        for chunk in self.chunks():
            rest += chunk
            *whole, rest = rest.split(b"\n")
            yield from whole
        if rest:
            yield rest


def read_meta(path: Path, private: PrivateKey) -> dict[str, Any]:
    """The metadata of a sealed file (checks the key, reads no content)."""
    with path.open("rb") as fh:
        return SealedReader(fh, private).meta


def open_to_file(src: Path, dst: Path, private: PrivateKey) -> dict[str, Any]:
    """Decrypt `src` into `dst` (0600, written under a temporary name); returns the metadata."""
    tmp = dst.with_name(f".{dst.name}.{secrets.token_hex(6)}.part")
    done = False
    try:
        with src.open("rb") as fin:
            reader = SealedReader(fin, private)
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb", buffering=1 << 20) as fout:
                for chunk in reader.chunks():
                    fout.write(chunk)
                fout.flush()
                os.fsync(fout.fileno())
        os.replace(tmp, dst)
        done = True
        return reader.meta
    finally:
        if not done:
            tmp.unlink(missing_ok=True)
