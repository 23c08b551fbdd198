"""Restore takes only what we made (H3, I2, issue 16): forged, unsigned and foreign backups are
refused with one line and nothing changed; age files open with the standard tool; several
recipients and passphrase-protected identities; a missing --key is an error."""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import logging
import shutil
import sqlite3
import subprocess
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pyrage
import pytest

from bot.__main__ import main
from bot.crypto import agekeys
from bot.crypto.agekeys import recipient_of
from bot.crypto.keyring import load_keyring
from bot.crypto.sealedfile import load_private_key, load_public_key, seal_file
from bot.crypto.signing import generate_signing_pair, load_signing_key, sign_file
from bot.storage.db import Database
from tests.e2e.clitools import in_tmp, lines, seed_cases

__all__ = ["in_tmp"]  # the fixture, used by name


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def drop_cli_log_handlers() -> None:
    """main() logs to the stderr of the test that ran it: not to a later test's closed one."""
    root = logging.getLogger()
    for handler in [h for h in root.handlers if getattr(h, "_bot_handler", False)]:
        root.removeHandler(handler)


@pytest.fixture
def server(in_tmp: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A server with three cases, its private key moved to a USB stick with the verify key."""
    drop_cli_log_handlers()
    data = in_tmp / "data"
    asyncio.run(seed_cases(data, []))
    load_keyring(data, None, None)  # the signing pair, as the bot's first start makes it
    usb = in_tmp / "usb"
    usb.mkdir()
    shutil.move(data / "keys" / "org_private.key", usb / "org_private.key")
    shutil.copy(data / "keys" / "verify.key", usb / "verify.key")
    monkeypatch.setenv("BOT_DATA_DIR", str(data))
    monkeypatch.setenv("BOT_PUBLIC_KEY_FILE", str(data / "keys" / "org_public.key"))
    yield data
    drop_cli_log_handlers()


async def forge_database(path: Path, trigger: bool) -> None:
    """The review's forged backup: a migrated database, a staff member of the attacker's, and a
    trigger that sends every draft in plain text to the attacker."""
    db = await Database.open(path)
    await db.execute("INSERT INTO staff_members VALUES (6666, 1, '2026-01-01')")
    if trigger:
        await db.execute(
            "CREATE TRIGGER spy AFTER UPDATE ON drafts BEGIN INSERT INTO outbox"
            "(kind, chat_id, text, next_attempt_at, created_at) VALUES "
            "('case_confirmation', 6666, NEW.state, 0, datetime('now')); END")
    await db.checkpoint()
    await db.close()


def age_backup(db_file: Path, out: Path, recipient: str, draft_key: str | None = None) -> None:
    """A backup in the new layout, made with nothing but the public key."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        meta = (b'{"kind": "backup", "created_at": "2026-12-01T00:00:00+00:00", '
                b'"draft_key": ' + (f'"{draft_key}"'.encode() if draft_key else b"null") + b"}")
        info = tarfile.TarInfo("meta.json")
        info.size = len(meta)
        tar.addfile(info, io.BytesIO(meta))
        tar.add(db_file, "bot.sqlite3")
    out.write_bytes(pyrage.encrypt(buf.getvalue(),
                                   [pyrage.x25519.Recipient.from_str(recipient)]))


def test_restore_refuses_forged_and_unsigned_backups(
        server: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data, usb = server, server.parent / "usb"
    key = str(usb / "org_private.key")
    before = digest(data / "bot.sqlite3")
    public = load_public_key(data / "keys" / "org_public.key")
    forged_db = server.parent / "forged.sqlite3"
    asyncio.run(forge_database(forged_db, trigger=True))
    forged = server.parent / "forged.tar.age"
    age_backup(forged_db, forged, recipient_of(public), draft_key="A" * 44)

    def refused(*args: str) -> str:
        capsys.readouterr()
        assert main(["restore", *args]) == 1
        captured = capsys.readouterr()
        err = lines(captured.err)
        assert len(err) == 1, err
        assert digest(data / "bot.sqlite3") == before  # nothing changed
        assert sorted(p.name for p in data.iterdir() if p.name != "bot.lock") == [
            "bot.sqlite3", "keys"]
        return err[0]

    # Sealed with the public key only: no signature.
    line = refused("--input", str(forged), "--key", key, "--yes")
    assert line == (f"restore refused: {forged} is not signed (no forged.tar.age.sig beside "
                    "it): if you are sure it is yours, restore it with --allow-unsigned; "
                    "nothing was changed")
    # With a signature made by the attacker's own signing key.
    attacker = server.parent / "attacker"
    generate_signing_pair(attacker)
    sign_file(forged, load_signing_key(attacker / "signing.key"), "backup")
    line = refused("--input", str(forged), "--key", key, "--yes")
    assert line == (f"restore refused: {forged}: the signature is wrong (not made with the "
                    "signing key that matches this verify key); nothing was changed")
    # A wrong signature is refused even when unsigned files are allowed.
    refused("--input", str(forged), "--key", key, "--yes", "--allow-unsigned")
    (forged.with_name(forged.name + ".sig")).unlink()
    # Allowed unsigned, the schema check still finds the trigger.
    line = refused("--input", str(forged), "--key", key, "--yes", "--allow-unsigned")
    assert line == ("restore refused: the backup is not usable: its trigger 'spy' is not made "
                    "by our migrations (1 difference(s) with a freshly migrated database); "
                    "nothing was changed")
    # The same forgery in the older format.
    legacy = server.parent / "forged.sealed"
    seal_file(forged_db, legacy, public, {"kind": "backup", "draft_key": "A" * 44})
    line = refused("--input", str(legacy), "--key", key, "--yes")
    assert "is not signed (an older backup format, never signed)" in line
    line = refused("--input", str(legacy), "--key", key, "--yes", "--allow-unsigned")
    assert "trigger 'spy'" in line
    # An explicit key that does not exist (it used to fall back to the server's key).
    line = refused("--input", str(forged), "--key", str(usb / "missing.key"), "--yes")
    assert line == (f"restore refused: the key file {usb / 'missing.key'} does not exist; "
                    "nothing was changed")
    line = refused("--input", str(forged), "--key", key, "--verify-key",
                   str(usb / "missing.key"))
    assert "the verify key" in line and "does not exist" in line


def test_unsigned_restore_shows_what_it_holds_and_needs_a_yes(
        server: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    data, usb = server, server.parent / "usb"
    key = str(usb / "org_private.key")
    before = digest(data / "bot.sqlite3")
    draft_key = (data / "keys" / "draft.key").read_bytes()
    extra_staff = server.parent / "staff.sqlite3"
    asyncio.run(forge_database(extra_staff, trigger=False))
    public = load_public_key(data / "keys" / "org_public.key")
    unsigned = server.parent / "unsigned.tar.age"
    age_backup(extra_staff, unsigned, recipient_of(public), draft_key="A" * 44)
    monkeypatch.setattr("sys.stdin", io.StringIO(""))  # no terminal
    assert main(["restore", "--input", str(unsigned), "--key", key, "--allow-unsigned"]) == 1
    out, err = capsys.readouterr()
    assert "NOT SIGNED" in out and "Staff in it: 6666 (added 2026-01-01)" in out
    assert "Cases in it: 0" in out
    assert lines(err) == ["restore refused: no terminal to confirm in: add --yes to restore "
                          "from a script; nothing was changed"]
    assert digest(data / "bot.sqlite3") == before
    # A person at a terminal who says no.
    monkeypatch.setattr("sys.stdin.isatty", lambda: True, raising=False)
    monkeypatch.setattr("builtins.input", lambda prompt: "n")
    assert main(["restore", "--input", str(unsigned), "--key", key, "--allow-unsigned"]) == 1
    assert "not confirmed; nothing was changed" in capsys.readouterr().err
    assert digest(data / "bot.sqlite3") == before
    # Restored with --yes: the draft key inside an unsigned file is not taken.
    assert main(["restore", "--input", str(unsigned), "--key", key, "--allow-unsigned",
                 "--yes"]) == 0
    out = capsys.readouterr().out
    assert "UNSIGNED; draft key: not taken (unsigned file)" in out
    assert (data / "keys" / "draft.key").read_bytes() == draft_key
    assert not list((data / "keys").glob("draft.key.*"))


def test_signed_backup_round_trip_with_age_two_custodians_and_a_passphrase(
        server: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    usb = server.parent / "usb"
    custodian = pyrage.x25519.Identity.generate()
    monkeypatch.setenv("BOT_BACKUP_RECIPIENTS", str(custodian.to_public()))
    backup = server.parent / "b.tar.age"
    assert main(["backup", "--output", str(backup)]) == 0
    assert "and 1 more recipient(s)" in capsys.readouterr().out
    assert backup.read_bytes().startswith(b"age-encryption.org/v1\n")
    # The second custodian's identity file, protected by a passphrase (age's scrypt).
    protected = server.parent / "custodian.age"
    protected.write_bytes(pyrage.passphrase.encrypt(f"{custodian}\n".encode(), "correct horse"))
    monkeypatch.setattr(agekeys, "ask_passphrase", lambda path: "wrong")
    assert main(["restore", "--input", str(backup), "--key", str(protected), "--verify-key",
                 str(usb / "verify.key"), "--yes"]) == 1
    assert "wrong passphrase" in capsys.readouterr().err
    monkeypatch.setattr(agekeys, "ask_passphrase", lambda path: "correct horse")
    assert main(["restore", "--input", str(backup), "--key", str(protected), "--verify-key",
                 str(usb / "verify.key"), "--yes"]) == 0
    out = capsys.readouterr().out
    assert "signed by this organisation's signing key" in out and "Cases in it: 4" in out
    assert "signed; draft key:" in out
    # The organisation's key opens it with decrypt (signature checked with verify.key beside).
    plain = server.parent / "plain.sqlite3"
    assert main(["decrypt", "--key", str(usb / "org_private.key"), "--input", str(backup),
                 "--output", str(plain)]) == 0
    conn = sqlite3.connect(plain)
    assert conn.execute("SELECT count(*) FROM cases").fetchone()[0] == 4
    conn.close()
    # Unsigned, decrypt refuses too.
    backup.with_name(backup.name + ".sig").unlink()
    assert main(["decrypt", "--key", str(usb / "org_private.key"), "--input", str(backup),
                 "--output", str(plain)]) == 1
    assert "is not signed" in capsys.readouterr().err


@pytest.mark.skipif(shutil.which("age") is None, reason="the age tool is not installed")
def test_the_standard_age_tool_opens_backups(server: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    usb = server.parent / "usb"
    backup = server.parent / "b.tar.age"
    assert main(["backup", "--output", str(backup)]) == 0
    plain = subprocess.run(["age", "-d", "-i", str(usb / "org_private.key"), str(backup)],
                           capture_output=True, check=True).stdout
    with tarfile.open(fileobj=io.BytesIO(plain)) as tar:
        assert tar.getnames() == ["meta.json", "bot.sqlite3"]
        db = tar.extractfile("bot.sqlite3")
        assert db is not None and db.read(16) == b"SQLite format 3\0"
    # And sha256sum agrees with the signature.
    sig = backup.with_name(backup.name + ".sig").read_text()
    assert f"sha256: {hashlib.sha256(backup.read_bytes()).hexdigest()}" in sig
    # An offline export too: JSON lines, the metadata first, the answers still sealed.
    assert main(["export", "--format", "csv", "--output", str(server.parent / "c.csv")]) == 0
    sealed = server.parent / "c.csv.sealed"
    plain = subprocess.run(["age", "-d", "-i", str(usb / "org_private.key"), str(sealed)],
                           capture_output=True, check=True).stdout
    first, *rows = plain.splitlines()
    assert json.loads(first)["kind"] == "export" and len(rows) == 4
    assert "4821-0001" in rows[0].decode() and "Әлия".encode() not in plain


def test_check_says_where_the_draft_key_must_go(
        server: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    # `server` is offline; its draft.key from the first start is still on the data disk.
    assert main(["check"]) == 2
    err = lines(capsys.readouterr().err)
    assert ("BOT_DRAFT_KEY_FILE: not set while the private key is offline: the draft key is "
            "kept in memory only, so questionnaires in progress are lost at every restart; "
            "set it to a file on tmpfs (see deploy/README.md)") in err
    assert any("draft.key is on the data disk while the private key is offline" in e
               for e in err)
    on_disk = server.parent / "run"
    on_disk.mkdir()
    monkeypatch.setenv("BOT_DRAFT_KEY_FILE", str(on_disk / "draft.key"))
    assert main(["check"]) == 2
    err = lines(capsys.readouterr().err)
    assert any(e.startswith(f"BOT_DRAFT_KEY_FILE: {on_disk} is on ") and "not tmpfs" in e
               for e in err), err
    assert (server / "keys" / "draft.key").exists()  # check changes nothing


def test_older_format_still_opens_with_allow_unsigned(
        server: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Backups of the previous release (AZSF, never signed) are read for one more release."""
    data, usb = server, server.parent / "usb"
    public = load_public_key(data / "keys" / "org_public.key")
    legacy = server.parent / "old.sqlite3.sealed"
    seal_file(data / "bot.sqlite3", legacy, public,
              {"kind": "backup", "created_at": "2026-11-01T02:30:00+00:00"})
    out = server.parent / "old.sqlite3"
    key = str(usb / "org_private.key")
    assert main(["decrypt", "--key", key, "--input", str(legacy), "--output", str(out)]) == 1
    assert lines(capsys.readouterr().err) == [
        f"{legacy} is not signed (an older format, never signed): if you are sure it is yours, "
        "add --allow-unsigned"]
    assert main(["decrypt", "--key", key, "--input", str(legacy), "--output", str(out),
                 "--allow-unsigned"]) == 0
    assert out.read_bytes()[:16] == b"SQLite format 3\0"
    assert main(["restore", "--input", str(legacy), "--key", key, "--allow-unsigned",
                 "--yes"]) == 0
    assert "Cases in it: 4" in capsys.readouterr().out


def test_a_bad_recipient_is_a_setting_error(
        in_tmp: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("BOT_BACKUP_RECIPIENTS", "age1notarecipient")
    assert main(["backup", "--output", "b.tar.age"]) == 2
    assert lines(capsys.readouterr().err) == [
        "Bad setting: BOT_BACKUP_RECIPIENTS: age1notareci... is not an age recipient (age1...)"]


def test_decrypt_refuses_a_forged_sealed_export(
        server: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """I2: an offline export re-encrypted by someone who has only the public key (a row
    changed) is refused by decrypt, unsigned, with its old signature and with the forger's own;
    the genuine file opens."""
    data, usb = server, server.parent / "usb"
    sealed = server.parent / "cases.jsonl"
    assert main(["export", "--format", "jsonl", "--output", str(sealed)]) == 0
    real = Path(f"{sealed}.sealed")
    sig = Path(f"{real}.sig")
    assert real.exists() and sig.exists()
    identity = pyrage.x25519.Identity.from_str(
        agekeys.identity_of(load_private_key(usb / "org_private.key")))
    plain = pyrage.decrypt(real.read_bytes(), [identity])
    assert plain.count(b"\n") >= 2  # the metadata line, then the cases
    forged = server.parent / "forged.jsonl.sealed"
    tampered = plain.replace(b"new", b"closed", 1)
    assert tampered != plain
    public = load_public_key(data / "keys" / "org_public.key")
    forged.write_bytes(pyrage.encrypt(
        tampered, [pyrage.x25519.Recipient.from_str(recipient_of(public))]))
    key, out = str(usb / "org_private.key"), server.parent / "out.jsonl"
    capsys.readouterr()

    assert main(["decrypt", "--key", key, "--input", str(forged), "--output", str(out)]) == 1
    assert "is not signed" in capsys.readouterr().err
    shutil.copy(sig, f"{forged}.sig")  # the genuine file's signature beside the forgery
    assert main(["decrypt", "--key", key, "--input", str(forged), "--output", str(out)]) == 1
    assert "does not match its signature" in capsys.readouterr().err
    attacker = server.parent / "attacker"
    attacker.mkdir()
    signing, _ = generate_signing_pair(attacker)
    Path(f"{forged}.sig").unlink()
    sign_file(forged, load_signing_key(signing), "export")
    assert main(["decrypt", "--key", key, "--input", str(forged), "--output", str(out)]) == 1
    assert "signature is wrong" in capsys.readouterr().err
    assert not out.exists()  # nothing written from a refused file
    assert main(["decrypt", "--key", key, "--input", str(real), "--output", str(out)]) == 0
    assert out.exists()
