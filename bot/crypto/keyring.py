"""Sealing what identifies people: cases to the organisation's public key, drafts to a draft key.

Cases are sealed with libsodium sealed boxes (PyNaCl) to the organisation's public key, so that
whoever holds only the server's disk cannot read them once the private key is kept offline.
Drafts must be read back by the bot for the review, so they use a secret draft key held by the
server; where it may live depends on the key mode (see `bot.crypto.draftkey`: never on the data
disk while the private key is offline). Drafts live only until submitted, cancelled or purged.

Key files are written in age's format (`bot.crypto.agekeys`), so the same key pair opens
backups and offline exports with the standard `age` tool; older base64 key files still load.
The server also keeps the signing key of its backups and exports (`bot.crypto.signing`).
"""

from __future__ import annotations

import base64
import contextlib
import logging
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pyrage
from nacl.exceptions import CryptoError
from nacl.public import PrivateKey, PublicKey, SealedBox
from nacl.secret import SecretBox
from nacl.signing import SigningKey
from nacl.utils import random

from bot.crypto import draftkey
from bot.crypto.agekeys import (
    identity_file_text,
    read_private_keys,
    read_public_key,
    recipient_of,
)
from bot.crypto.signing import ensure_signing_key, generate_signing_pair

log = logging.getLogger(__name__)

PUBLIC_NAME = "org_public.key"
PRIVATE_NAME = "org_private.key"
DRAFT_NAME = "draft.key"
MAGIC = b"S1"  # marks sealed values, so a plain value is never mistaken for a sealed one


class DraftKeyLost(ValueError):
    """A draft (or queued message) was sealed with a draft key this server no longer has."""


class NoPrivateKey(Exception):
    """The private key is kept offline: sealed data cannot be opened on this server."""


def _write_secret(path: Path, data: bytes, *, raw: bool = False) -> None:
    """Write a key file whole or not at all, never replacing an existing one.

    The key goes to a temporary file first and is linked into place once complete, so a crash
    (even SIGKILL) during the first start never leaves an empty or half-written key behind.
    """
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    for stale in path.parent.glob(f".{path.name}.*.tmp"):  # from a crash mid-write
        stale.unlink(missing_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data if raw else base64.b64encode(data) + b"\n")
            f.flush()
            os.fsync(f.fileno())
        os.link(tmp, path)  # FileExistsError if the key exists, as O_EXCL did
    finally:
        tmp.unlink(missing_ok=True)


def _read_key(path: Path) -> bytes:
    return base64.b64decode(path.read_bytes().strip())


def generate_keypair(out: Path, passphrase: str | None = None) -> tuple[Path, Path]:
    """Write a new organisation key pair, and a signing pair, into `out`; never overwrites.

    org_public.key holds the age recipient (age1...), org_private.key the age identity, as
    age-keygen writes it, encrypted with `passphrase` (age's scrypt) when one is given.
    signing.key (goes to the server) and verify.key (stays with the private key) sign backups.
    """
    private = PrivateKey.generate()
    pub_path, priv_path = out / PUBLIC_NAME, out / PRIVATE_NAME
    if pub_path.exists() or priv_path.exists():
        raise FileExistsError(f"keys already exist in {out}")
    created = datetime.now(UTC).isoformat(timespec="seconds")
    text = identity_file_text(private, created).encode("ascii")
    if passphrase:
        text = pyrage.passphrase.encrypt(text, passphrase)
    _write_secret(priv_path, text, raw=True)
    _write_secret(pub_path, (recipient_of(private.public_key) + "\n").encode("ascii"), raw=True)
    pub_path.chmod(0o644)
    with contextlib.suppress(FileExistsError):
        generate_signing_pair(out)
    return pub_path, priv_path


@dataclass
class Keyring:
    public: PublicKey
    private: PrivateKey | None
    draft_box: SecretBox
    # Where the draft key is (file, memory, or none when a command found none to carry).
    draft_place: draftkey.DraftKeyPlace = field(
        default_factory=lambda: draftkey.DraftKeyPlace("memory"))
    signing: SigningKey | None = None

    @property
    def offline(self) -> bool:
        return self.private is None

    @property
    def button_secret(self) -> bytes:
        """A server secret for tagging staff buttons, kept across reboots when possible."""
        if self.signing is not None:
            return bytes(self.signing)[:32]
        return bytes(self.draft_box)[:32]

    @property
    def draft_key(self) -> bytes | None:
        """The draft key to carry in a backup, or None when this process has no real one."""
        return None if self.draft_place.kind == "none" else bytes(self.draft_box)

    def seal(self, data: bytes) -> bytes:
        return MAGIC + SealedBox(self.public).encrypt(data)

    def unseal(self, data: bytes) -> bytes:
        if not data.startswith(MAGIC):
            raise ValueError("not a sealed value")
        if self.private is None:
            raise NoPrivateKey
        return SealedBox(self.private).decrypt(data[len(MAGIC):])

    def seal_draft(self, data: bytes) -> bytes:
        return MAGIC + self.draft_box.encrypt(data)

    def unseal_draft(self, data: bytes) -> bytes:
        if not data.startswith(MAGIC):
            raise ValueError("not a sealed draft")
        try:
            return self.draft_box.decrypt(data[len(MAGIC):])
        except CryptoError:
            raise DraftKeyLost("sealed with a draft key this server no longer has") from None


def _load_pair(keys_dir: Path, public_file: Path | None, private_file: Path | None,
               write: bool) -> tuple[PublicKey, PrivateKey | None]:
    if public_file is None and private_file is None:
        public_file, private_file = keys_dir / PUBLIC_NAME, keys_dir / PRIVATE_NAME
        if write and not public_file.exists() and private_file.exists():
            # A crash between writing the two halves of the pair: the public half follows.
            recovered = read_private_keys(private_file).private
            assert recovered is not None
            _write_secret(public_file, (recipient_of(recovered.public_key) + "\n").encode(),
                          raw=True)
            public_file.chmod(0o644)
        if write and not public_file.exists():
            generate_keypair(keys_dir)
            log.warning(
                "generated the organisation key pair in %s. The private key (%s) is on this "
                "server: to protect cases if the server is seized, copy it to an offline "
                "computer, delete it here, and set BOT_PUBLIC_KEY_FILE to %s "
                "(staff will then see only non-identifying fields in Telegram).",
                keys_dir, PRIVATE_NAME, public_file)
    if public_file is None:
        raise FileNotFoundError("BOT_PUBLIC_KEY_FILE is required when BOT_PRIVATE_KEY_FILE is set")
    if not public_file.exists():
        raise FileNotFoundError(2, "No such file", str(public_file))
    public = read_public_key(public_file)
    private = None
    if private_file is not None and private_file.exists():
        private = read_private_keys(private_file).private
        if private is None or bytes(private.public_key) != bytes(public):
            raise ValueError("the private key does not belong to the public key")
    return public, private


def _draft_key(keys_dir: Path, offline: bool, draft_key_file: Path | None, mode: str
               ) -> tuple[bytes, draftkey.DraftKeyPlace]:
    """The draft key and where it is; in 'run' mode it is created or moved as needed."""
    legacy = keys_dir / DRAFT_NAME
    run = mode == "run"
    if draft_key_file is not None:
        if not draft_key_file.exists() and run:
            if legacy.exists():  # from an older release: moved off the data disk
                _write_secret(draft_key_file, legacy.read_bytes(), raw=True)
                log.warning("moved the draft key from %s to BOT_DRAFT_KEY_FILE", legacy)
            else:
                _write_secret(draft_key_file, random(SecretBox.KEY_SIZE))
        if run and legacy.exists() and offline:
            draftkey.wipe(legacy)
        if draft_key_file.exists():
            return _read_key(draft_key_file), draftkey.DraftKeyPlace("file", draft_key_file)
        return random(SecretBox.KEY_SIZE), draftkey.DraftKeyPlace("none")
    if not offline:
        if not legacy.exists() and run:
            _write_secret(legacy, random(SecretBox.KEY_SIZE))
        if legacy.exists():
            return _read_key(legacy), draftkey.DraftKeyPlace("file", legacy)
        return random(SecretBox.KEY_SIZE), draftkey.DraftKeyPlace("none")
    if legacy.exists():
        raw = _read_key(legacy)
        if not run:
            return raw, draftkey.DraftKeyPlace("file", legacy)
        draftkey.wipe(legacy)
        log.warning("the private key is offline, so the draft key may not stay on the data "
                    "disk: it was erased there and is now held in memory only (drafts are lost "
                    "at the next restart); set BOT_DRAFT_KEY_FILE to a file on tmpfs")
        return raw, draftkey.DraftKeyPlace("memory")
    if run:
        log.warning("the private key is offline and BOT_DRAFT_KEY_FILE is not set: the draft "
                    "key is held in memory only, so questionnaires in progress are lost at "
                    "every restart; set BOT_DRAFT_KEY_FILE to a file on tmpfs")
        return random(SecretBox.KEY_SIZE), draftkey.DraftKeyPlace("memory")
    return random(SecretBox.KEY_SIZE), draftkey.DraftKeyPlace("none")


def load_keyring(data_dir: Path, public_file: Path | None, private_file: Path | None,
                 draft_key_file: Path | None = None, *, mode: str = "run") -> Keyring:
    """Load the keys, generating them in data_dir/keys on the first start when none are set.

    `mode`: "run" (the bot: creates the pair, the signing key and the draft key, and moves a
    draft key off the data disk when the private key is offline), "cli" (a command: may create
    the pair and the signing key, never touches the draft key), "check" (writes nothing).
    """
    keys_dir = data_dir / "keys"
    write = mode != "check"
    public, private = _load_pair(keys_dir, public_file, private_file, write)
    raw, place = _draft_key(keys_dir, private is None, draft_key_file, mode)
    signing = None
    if write:
        signing = ensure_signing_key(keys_dir)
    elif (keys_dir / "signing.key").exists():
        from bot.crypto.signing import load_signing_key

        signing = load_signing_key(keys_dir / "signing.key")
    return Keyring(public, private, SecretBox(raw), place, signing)


def open_sealed_file(private_file: Path, data: bytes) -> bytes:
    """Open a sealed export or backup with the offline private key."""
    private = read_private_keys(private_file).private
    assert private is not None
    if not data.startswith(MAGIC):
        raise ValueError("this file is not sealed by this bot")
    try:
        return SealedBox(private).decrypt(data[len(MAGIC):])
    except CryptoError:
        raise ValueError("this key cannot open this file") from None
