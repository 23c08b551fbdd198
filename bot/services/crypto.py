"""Sealing what identifies people: cases to the organisation's public key, drafts to a server key.

Cases are sealed with libsodium sealed boxes (PyNaCl) to the organisation's public key, so that
whoever holds only the server's disk cannot read them once the private key is kept offline.
Drafts must be read back by the bot for the review, so they use a secret key kept on the server
(BOT_DATA_DIR/keys/draft.key); they live only until submitted, cancelled or purged.
"""

from __future__ import annotations

import base64
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from nacl.exceptions import CryptoError
from nacl.public import PrivateKey, PublicKey, SealedBox
from nacl.secret import SecretBox
from nacl.utils import random

log = logging.getLogger(__name__)

PUBLIC_NAME = "org_public.key"
PRIVATE_NAME = "org_private.key"
DRAFT_NAME = "draft.key"
MAGIC = b"S1"  # marks sealed values, so a plain value is never mistaken for a sealed one


class NoPrivateKey(Exception):
    """The private key is kept offline: sealed data cannot be opened on this server."""


def _write_secret(path: Path, data: bytes) -> None:
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
            f.write(base64.b64encode(data) + b"\n")
            f.flush()
            os.fsync(f.fileno())
        os.link(tmp, path)  # FileExistsError if the key exists, as O_EXCL did
    finally:
        tmp.unlink(missing_ok=True)


def _read_key(path: Path) -> bytes:
    return base64.b64decode(path.read_bytes().strip())


def generate_keypair(out: Path) -> tuple[Path, Path]:
    """Write a new organisation key pair into `out`; refuses to overwrite existing keys."""
    private = PrivateKey.generate()
    pub_path, priv_path = out / PUBLIC_NAME, out / PRIVATE_NAME
    if pub_path.exists() or priv_path.exists():
        raise FileExistsError(f"keys already exist in {out}")
    _write_secret(priv_path, bytes(private))
    _write_secret(pub_path, bytes(private.public_key))
    pub_path.chmod(0o644)
    return pub_path, priv_path


@dataclass
class Keyring:
    public: PublicKey
    private: PrivateKey | None
    draft_box: SecretBox

    @property
    def offline(self) -> bool:
        return self.private is None

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
        return self.draft_box.decrypt(data[len(MAGIC):])


def load_keyring(data_dir: Path, public_file: Path | None, private_file: Path | None
                 ) -> Keyring:
    """Load the keys, generating them in data_dir/keys on the first start when none are set."""
    keys_dir = data_dir / "keys"
    if public_file is None and private_file is None:
        public_file, private_file = keys_dir / PUBLIC_NAME, keys_dir / PRIVATE_NAME
        if not public_file.exists() and private_file.exists():
            # A crash between writing the two halves of the pair: the public half follows.
            recovered = PrivateKey(_read_key(private_file)).public_key
            _write_secret(public_file, bytes(recovered))
            public_file.chmod(0o644)
        if not public_file.exists():
            generate_keypair(keys_dir)
            log.warning(
                "generated the organisation key pair in %s. The private key (%s) is on this "
                "server: to protect cases if the server is seized, copy it to an offline "
                "computer, delete it here, and set BOT_PUBLIC_KEY_FILE to %s "
                "(staff will then see only non-identifying fields in Telegram).",
                keys_dir, PRIVATE_NAME, public_file)
    if public_file is None:
        raise FileNotFoundError("BOT_PUBLIC_KEY_FILE is required when BOT_PRIVATE_KEY_FILE is set")
    public = PublicKey(_read_key(public_file))
    private = None
    if private_file is not None and private_file.exists():
        private = PrivateKey(_read_key(private_file))
        if bytes(private.public_key) != bytes(public):
            raise ValueError("the private key does not belong to the public key")
    draft_path = keys_dir / DRAFT_NAME
    if not draft_path.exists():
        _write_secret(draft_path, random(SecretBox.KEY_SIZE))
    return Keyring(public, private, SecretBox(_read_key(draft_path)))


def open_sealed_file(private_file: Path, data: bytes) -> bytes:
    """Open a sealed export or backup with the offline private key."""
    private = PrivateKey(_read_key(private_file))
    if not data.startswith(MAGIC):
        raise ValueError("this file is not sealed by this bot")
    try:
        return SealedBox(private).decrypt(data[len(MAGIC):])
    except CryptoError:
        raise ValueError("this key cannot open this file") from None
