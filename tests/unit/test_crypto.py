"""Sealing cases and drafts: round trips, offline mode, wrong keys, files on disk."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.services.crypto import (
    PRIVATE_NAME,
    PUBLIC_NAME,
    NoPrivateKey,
    generate_keypair,
    load_keyring,
    open_sealed_file,
)


def test_first_start_generates_keys_and_round_trips(tmp_path: Path) -> None:
    keys = load_keyring(tmp_path, None, None)
    assert (tmp_path / "keys" / PUBLIC_NAME).exists()
    assert oct((tmp_path / "keys" / PRIVATE_NAME).stat().st_mode & 0o777) == "0o600"
    secret = "Әлия 王小明".encode()
    sealed = keys.seal(secret)
    assert secret not in sealed
    assert keys.unseal(sealed) == secret
    assert keys.unseal_draft(keys.seal_draft(secret)) == secret
    again = load_keyring(tmp_path, None, None)  # the same keys on the next start
    assert again.unseal(sealed) == secret and again.unseal_draft(keys.seal_draft(b"x")) == b"x"


def test_offline_private_key(tmp_path: Path) -> None:
    pub, priv = generate_keypair(tmp_path / "org")
    server = load_keyring(tmp_path / "data", pub, None)
    assert server.offline
    sealed = server.seal(b"name")
    with pytest.raises(NoPrivateKey):
        server.unseal(sealed)
    assert open_sealed_file(priv, sealed) == b"name"
    _other_pub, other_priv = generate_keypair(tmp_path / "other")
    with pytest.raises(ValueError, match="cannot open"):
        open_sealed_file(other_priv, sealed)
    with pytest.raises(ValueError, match="does not belong"):
        load_keyring(tmp_path / "data", pub, other_priv)


def test_generate_refuses_to_overwrite(tmp_path: Path) -> None:
    generate_keypair(tmp_path)
    with pytest.raises(FileExistsError):
        generate_keypair(tmp_path)
