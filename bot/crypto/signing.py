"""Detached Ed25519 signatures of backups and sealed exports (FILE.sig beside FILE).

Anyone with the organisation's public key can encrypt a file to it, so encryption alone does
not say who made a backup. The server therefore signs what it writes with a signing key kept
in BOT_DATA_DIR/keys/signing.key; the matching verify key (verify.key) is kept with the
private key, offline, and `restore` and `decrypt` check the signature with it.

A signature file is short text, readable by a person:

    atazhurt-signature/1
    kind: backup
    size: 123456
    sha256: <hex of the whole file>
    created_at: 2026-12-03T18:09:13+00:00
    signature: <base64 Ed25519 signature of every line above, newlines included>

`sha256sum FILE` shows the same digest, so a copy can also be compared by hand.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from nacl.exceptions import BadSignatureError
from nacl.signing import SigningKey, VerifyKey

SIGNING_NAME = "signing.key"
VERIFY_NAME = "verify.key"
SIG_SUFFIX = ".sig"
_HEAD = "atazhurt-signature/1"
_FIELDS = ("kind", "size", "sha256", "created_at")


class SignatureError(ValueError):
    """A signature is missing, malformed or wrong; str() is one line saying which."""


def _write_new(path: Path, data: bytes, mode: int) -> None:
    """Write a key file whole or not at all, never replacing an existing one."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        os.link(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def generate_signing_pair(folder: Path) -> tuple[Path, Path]:
    """Write signing.key (secret, 0600) and verify.key (0644) into `folder`; never overwrites."""
    signing_path, verify_path = folder / SIGNING_NAME, folder / VERIFY_NAME
    if signing_path.exists() or verify_path.exists():
        raise FileExistsError(f"a signing key already exists in {folder}")
    key = SigningKey.generate()
    _write_new(signing_path, base64.b64encode(bytes(key)) + b"\n", 0o600)
    _write_new(verify_path, base64.b64encode(bytes(key.verify_key)) + b"\n", 0o644)
    return signing_path, verify_path


def ensure_signing_key(folder: Path) -> SigningKey:
    """The server's signing key in `folder`, made (with its verify key) when there is none."""
    path = folder / SIGNING_NAME
    if not path.exists():
        if (folder / VERIFY_NAME).exists():  # a crash between the two files: start again
            (folder / VERIFY_NAME).unlink()
        generate_signing_pair(folder)
    return load_signing_key(path)


def _raw(path: Path, what: str) -> bytes:
    try:
        raw = base64.b64decode(path.read_bytes().strip(), validate=True)
    except OSError as exc:
        raise SignatureError(f"cannot read the {what} {path}: {exc.strerror}") from None
    except (binascii.Error, ValueError):
        raise SignatureError(f"{path} is not a {what} written by this bot") from None
    if len(raw) != 32:
        raise SignatureError(f"{path} is not a {what} written by this bot")
    return raw


def load_signing_key(path: Path) -> SigningKey:
    return SigningKey(_raw(path, "signing key"))


def load_verify_key(path: Path) -> VerifyKey:
    return VerifyKey(_raw(path, "verify key"))


def signature_path(path: Path) -> Path:
    return path.with_name(path.name + SIG_SUFFIX)


def _digest(path: Path) -> tuple[int, str]:
    h = hashlib.sha256()
    size = 0
    with path.open("rb") as fh:
        while block := fh.read(1 << 20):
            h.update(block)
            size += len(block)
    return size, h.hexdigest()


def sign_file(path: Path, key: SigningKey, kind: str) -> Path:
    """Write the detached signature of `path` (as `kind`) to `path.sig`; returns that path."""
    size, digest = _digest(path)
    created = datetime.now(UTC).isoformat(timespec="seconds")
    body = (f"{_HEAD}\nkind: {kind}\nsize: {size}\nsha256: {digest}\n"
            f"created_at: {created}\n").encode("ascii")
    signature = base64.b64encode(key.sign(body).signature).decode("ascii")
    out = signature_path(path)
    tmp = out.with_name(f".{out.name}.{secrets.token_hex(6)}.part")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(body + f"signature: {signature}\n".encode("ascii"))
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    return out


@dataclass(frozen=True, slots=True)
class Signed:
    """What a valid signature says about its file."""

    kind: str
    created_at: str


def verify_file(path: Path, key: VerifyKey, kind: str | None) -> Signed:
    """Check `path.sig` against `path` and `key` (and its kind, unless None); SignatureError
    (one line) when it fails."""
    sig = signature_path(path)
    try:
        text = sig.read_text("ascii")
    except FileNotFoundError:
        raise SignatureError(f"{path} is not signed (no {sig.name} beside it)") from None
    except (OSError, UnicodeDecodeError):
        raise SignatureError(f"{sig} cannot be read") from None
    body, sep, last = text.rpartition("signature: ")
    lines = body.splitlines()
    if not sep or not lines or lines[0] != _HEAD:
        raise SignatureError(f"{sig} is not a signature written by this bot")
    try:
        key.verify(body.encode("ascii"), base64.b64decode(last.strip(), validate=True))
    except (BadSignatureError, binascii.Error, ValueError):
        raise SignatureError(f"{path}: the signature is wrong (not made with the signing key "
                             "that matches this verify key)") from None
    fields = dict(ln.split(": ", 1) for ln in lines[1:] if ": " in ln)
    if any(name not in fields for name in _FIELDS):
        raise SignatureError(f"{sig} is not a signature written by this bot")
    if kind is not None and fields["kind"] != kind:
        raise SignatureError(f"{path} is signed as a file of kind {fields['kind']!r}, "
                             f"not {kind!r}")
    size, digest = _digest(path)
    if str(size) != fields["size"] or digest != fields["sha256"]:
        raise SignatureError(f"{path} does not match its signature (altered, cut short or "
                             "another file)")
    return Signed(fields["kind"], fields["created_at"])
