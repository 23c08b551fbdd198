"""Key files in age's format, signatures, and where the draft key may live."""

from __future__ import annotations

import base64
import tempfile
from pathlib import Path

import pyrage
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from nacl.public import PrivateKey

from bot.crypto import draftkey
from bot.crypto.agekeys import (
    AgeKeyError,
    bech32_decode,
    bech32_encode,
    identity_of,
    parse_recipients,
    private_keys_from_text,
    read_private_keys,
    read_public_key,
    recipient_of,
)
from bot.crypto.keyring import generate_keypair, load_keyring
from bot.crypto.signing import (
    SignatureError,
    generate_signing_pair,
    load_signing_key,
    load_verify_key,
    sign_file,
    verify_file,
)


def test_our_keys_are_the_keys_age_makes() -> None:
    for _ in range(20):
        identity = pyrage.x25519.Identity.generate()
        keys = private_keys_from_text(f"# a comment\n{identity}\n", "x")
        assert keys.private is not None
        assert identity_of(keys.private) == str(identity)
        assert recipient_of(keys.private.public_key) == str(identity.to_public())


@settings(max_examples=50)
@given(st.binary(min_size=1, max_size=64))
def test_bech32_round_trip(data: bytes) -> None:
    assert bech32_decode(bech32_encode("age", data)) == ("age", data)


def test_bad_recipients_and_checksums_are_refused() -> None:
    good = str(pyrage.x25519.Identity.generate().to_public())
    assert len(parse_recipients(f"{good}, {good}\n# comment")) == 2
    broken = good[:-1] + ("q" if good[-1] != "q" else "p")
    for text in (broken, "age1xyz", "ssh-ed25519 AAAA"):
        with pytest.raises(AgeKeyError):
            parse_recipients(text)


def test_key_files_old_and_new(tmp_path: Path) -> None:
    pub, priv = generate_keypair(tmp_path / "new")
    assert pub.read_text().startswith("age1")
    assert "AGE-SECRET-KEY-1" in priv.read_text()
    assert sorted(p.name for p in (tmp_path / "new").iterdir()) == [
        "org_private.key", "org_public.key", "signing.key", "verify.key"]
    assert (tmp_path / "new" / "signing.key").stat().st_mode & 0o077 == 0
    private = read_private_keys(priv).private
    assert private is not None and bytes(private.public_key) == bytes(read_public_key(pub))
    # Files from before this release: raw keys in base64.
    old = PrivateKey.generate()
    (tmp_path / "old.key").write_bytes(base64.b64encode(bytes(old)) + b"\n")
    (tmp_path / "old.pub").write_bytes(base64.b64encode(bytes(old.public_key)) + b"\n")
    assert read_private_keys(tmp_path / "old.key").private == old
    assert read_public_key(tmp_path / "old.pub") == old.public_key


def test_passphrase_protected_key(tmp_path: Path) -> None:
    _pub, priv = generate_keypair(tmp_path / "k", passphrase="a long passphrase")
    assert priv.read_bytes().startswith(b"age-encryption.org/v1")
    with pytest.raises(AgeKeyError, match="wrong passphrase"):
        read_private_keys(priv, lambda path: "nope")
    assert read_private_keys(priv, lambda path: "a long passphrase").private is not None


def test_signatures(tmp_path: Path) -> None:
    generate_signing_pair(tmp_path / "k")
    signing = load_signing_key(tmp_path / "k" / "signing.key")
    verify = load_verify_key(tmp_path / "k" / "verify.key")
    f = tmp_path / "f"
    f.write_bytes(b"content" * 1000)
    sign_file(f, signing, "backup")
    assert verify_file(f, verify, "backup").kind == "backup"
    with pytest.raises(SignatureError, match="kind 'backup', not 'export'"):
        verify_file(f, verify, "export")
    f.write_bytes(b"content" * 999)
    with pytest.raises(SignatureError, match="does not match its signature"):
        verify_file(f, verify, "backup")
    sig = tmp_path / "f.sig"
    sig.write_text(sig.read_text().replace("kind: backup", "kind: export"))
    with pytest.raises(SignatureError, match="signature is wrong"):
        verify_file(f, verify, "export")


def test_where_the_draft_key_may_live(tmp_path: Path) -> None:
    data = tmp_path / "data"
    legacy = data / "keys" / "draft.key"
    assert draftkey.problems(data, False, None, legacy) == []
    [line] = draftkey.problems(data, True, None, legacy)
    assert line.startswith("BOT_DRAFT_KEY_FILE: not set while the private key is offline")
    disk = tmp_path / "run" / "draft.key"
    disk.parent.mkdir()
    [line] = draftkey.problems(data, True, disk, legacy)
    assert "not tmpfs" in line
    [line] = draftkey.problems(data, True, data / "draft.key", legacy)
    assert "inside BOT_DATA_DIR" in line
    [line] = draftkey.problems(data, True, tmp_path / "nowhere" / "draft.key", legacy)
    assert "does not exist" in line
    if draftkey.filesystem_of(Path("/dev/shm")) == "tmpfs":
        with tempfile.TemporaryDirectory(dir="/dev/shm") as shm:
            assert draftkey.problems(data, True, Path(shm) / "draft.key", legacy) == []
            legacy.parent.mkdir(parents=True)
            legacy.write_text("x")
            [line] = draftkey.problems(data, True, Path(shm) / "draft.key", legacy)
            assert "is on the data disk while the private key is offline" in line


def test_an_old_draft_key_leaves_the_data_disk_when_the_key_is_offline(tmp_path: Path) -> None:
    data = tmp_path / "data"
    online = load_keyring(data, None, None)  # an older release: draft.key on the data disk
    legacy = data / "keys" / "draft.key"
    assert legacy.exists()
    usb = tmp_path / "usb"
    usb.mkdir()
    (data / "keys" / "org_private.key").rename(usb / "org_private.key")
    public = data / "keys" / "org_public.key"
    run = tmp_path / "run"
    run.mkdir()
    # A command (backup, check) moves nothing.
    load_keyring(data, public, None, run / "draft.key", mode="cli")
    assert legacy.exists() and not (run / "draft.key").exists()
    # The bot moves it to BOT_DRAFT_KEY_FILE and erases it on the disk.
    moved = load_keyring(data, public, None, run / "draft.key")
    assert moved.offline and not legacy.exists()
    assert moved.draft_box._key == online.draft_box._key
    assert moved.draft_place == draftkey.DraftKeyPlace("file", run / "draft.key")
    # Without BOT_DRAFT_KEY_FILE: a key in memory, a new one at every start.
    first = load_keyring(tmp_path / "d2", public, None)
    again = load_keyring(tmp_path / "d2", public, None)
    assert first.draft_place.kind == "memory" and first.draft_box._key != again.draft_box._key
    # Staff buttons are tagged with a secret that outlives the draft key.
    assert first.button_secret == again.button_secret
    assert not (tmp_path / "d2" / "keys" / "draft.key").exists()
