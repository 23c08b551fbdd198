"""Backups while the bot writes, checked restores, sealed files, rotation and log repeats."""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import logging
import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from nacl.public import PrivateKey

from bot.config import Settings
from bot.crypto import sealedfile
from bot.crypto.keyring import Keyring, load_keyring
from bot.crypto.sealing import Sealer, sealer_for
from bot.crypto.signing import load_verify_key, sign_file, signature_path
from bot.logs import OneLineFormatter, RepeatFilter
from bot.services.backup import (
    BackupError,
    backup_to,
    daily_name,
    restore_from,
    rotate,
    run_daily_backup,
    take_backup,
)
from bot.storage.cases import CaseRepository, NewCase
from bot.storage.db import Database

MARKER = "PLAINMARKER-Гүлжан-7f3a"


def settings_for(data_dir: Path, **extra: object) -> Settings:
    return Settings(data_dir=data_dir, **extra)  # type: ignore[arg-type]


def sealer(keys: Keyring) -> Sealer:
    return sealer_for(keys.public, keys.signing, keys.draft_key)


def verify(data_dir: Path) -> object:
    return load_verify_key(data_dir / "keys" / "verify.key")


def new_case(i: int, text: str = "") -> NewCase:
    data = json.dumps({"persons": [{"full_name": f"{MARKER} {i}"}], "story": text},
                      ensure_ascii=False).encode()
    return NewCase(user_id=i, language="kk", persons_count=1, prefecture="ili",
                   attachments_count=0, consent_share="yes", consent_publish="no",
                   notice_version=1, form_version=1, data=data)


async def add_user(db: Database, user_id: int) -> None:
    await db.execute("INSERT OR IGNORE INTO users (user_id, language, created_at, last_seen_at)"
                     " VALUES (?, 'kk', '2024-01-01', '2024-01-01')", (user_id,))


def number_of(i: int) -> Callable[[], str]:
    return lambda: f"N{i:06d}"


def db_numbers(path: Path) -> list[str]:
    conn = sqlite3.connect(path)
    try:
        return [r[0] for r in conn.execute("SELECT number FROM cases ORDER BY case_id")]
    finally:
        conn.close()


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


async def test_backup_while_writing_restores_every_committed_row(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    s = settings_for(data_dir)
    keys = load_keyring(data_dir, None, None)
    db = await Database.open(s.db_path)
    # Plain (unsealed) cases: the backup file itself must still not show them.
    repo = CaseRepository(db)
    filler = "x" * 4000
    for i in range(1, 401):  # ~2 MB, so the copy takes a moment
        await add_user(db, i)
        await repo.submit(new_case(i, filler), "2024-01-01T00:00:00", number_of(i))
    committed: list[str] = [f"N{i:06d}" for i in range(1, 401)]
    stop = asyncio.Event()

    async def writer() -> None:
        i = 1000
        while not stop.is_set():
            i += 1
            await add_user(db, i)
            await repo.submit(new_case(i), "2024-01-02T00:00:00", number_of(i))
            committed.append(f"N{i:06d}")  # acknowledged: the transaction committed
            await asyncio.sleep(0)

    task = asyncio.create_task(writer())
    await asyncio.sleep(0.05)
    before = list(committed)
    output = tmp_path / "out" / "b.sealed"
    result = await take_backup(s, sealer(keys), output)
    await asyncio.sleep(0.05)
    stop.set()
    await task
    assert len(committed) > len(before)  # the bot really was writing during the backup
    assert result.cases >= len(before)

    sealed = output.read_bytes()
    for needle in (MARKER.encode(), MARKER.encode("utf-16-le"), b"SQLite format 3",
                   b"PLAINMARKER"):
        assert needle not in sealed
    assert not [p for p in data_dir.iterdir() if ".tmp" in p.name]  # the plain copy is gone
    assert output.stat().st_mode & 0o077 == 0
    assert signature_path(output).exists()

    await db.close()
    assert keys.private is not None
    restored = restore_from(s, output, keys.private, verify_key=verify(data_dir))
    assert restored.signed
    assert restored.cases == result.cases
    numbers = db_numbers(s.db_path)
    assert set(before) <= set(numbers)  # every answer acknowledged before the backup
    assert numbers == committed[:len(numbers)]  # a consistent snapshot: no gaps, no extras
    conn = sqlite3.connect(s.db_path)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    conn.close()
    aside = restored.moved_aside[0]
    assert aside.name.startswith("bot.sqlite3.before-restore-")
    assert db_numbers(aside) == committed  # the previous database, whole, WAL included
    assert not s.db_path.with_name("bot.sqlite3-wal").exists()
    # The restored database works with the bot's own code (migrations, sealed drafts).
    db2 = await Database.open(s.db_path)
    assert await db2.integrity_check() == "ok"
    await db2.close()


async def test_refused_backups_leave_the_database_untouched(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    s = settings_for(data_dir)
    keys = load_keyring(data_dir, None, None)
    assert keys.private is not None
    db = await Database.open(s.db_path)
    await add_user(db, 1)
    await CaseRepository(db).submit(new_case(1), "2024-01-01", lambda: "N1")
    await db.checkpoint()
    await db.close()
    good = tmp_path / "good.age"
    backup_to(s, sealer(keys), good)
    before = digest(s.db_path)
    vk = verify(data_dir)

    other = PrivateKey.generate()
    foreign = tmp_path / "foreign.age"
    backup_to(s, sealer_for(other.public_key, keys.signing), foreign)
    corrupted = tmp_path / "corrupted.age"
    raw = bytearray(good.read_bytes())
    raw[len(raw) // 2] ^= 0x55
    corrupted.write_bytes(bytes(raw))
    signature_path(corrupted).write_bytes(signature_path(good).read_bytes())
    resigned = tmp_path / "resigned.age"  # damaged, then signed: age itself refuses it
    resigned.write_bytes(bytes(raw))
    assert keys.signing is not None
    sign_file(resigned, keys.signing, "backup")
    truncated = tmp_path / "truncated.age"
    truncated.write_bytes(good.read_bytes()[: len(raw) - 100])
    sign_file(truncated, keys.signing, "backup")
    unsigned = tmp_path / "unsigned.age"
    unsigned.write_bytes(good.read_bytes())
    not_db = tmp_path / "notdb.sealed"
    plain = tmp_path / "plain.bin"
    plain.write_bytes(b"this is not a database" * 1000)
    sealedfile.seal_file(plain, not_db, keys.public, {"kind": "backup"})
    no_schema = tmp_path / "noschema.sealed"
    other_db = tmp_path / "other.sqlite3"
    conn = sqlite3.connect(other_db)
    conn.execute("CREATE TABLE t (x)")
    conn.commit()
    conn.close()
    sealedfile.seal_file(other_db, no_schema, keys.public, {"kind": "backup"})
    newer = tmp_path / "newer.sealed"
    newer_db = tmp_path / "newer.sqlite3"
    conn = sqlite3.connect(newer_db)
    conn.execute("CREATE TABLE schema_migrations (version INTEGER, name TEXT, applied_at TEXT)")
    conn.execute("INSERT INTO schema_migrations VALUES (9999, 'x', 'now')")
    conn.commit()
    conn.close()
    sealedfile.seal_file(newer_db, newer, keys.public, {"kind": "backup"})
    export = tmp_path / "export.sealed"
    sealedfile.seal_file(other_db, export, keys.public, {"kind": "export"})
    unsealed = tmp_path / "unsealed.sqlite3"
    unsealed.write_bytes(s.db_path.read_bytes())
    extra_index = tmp_path / "index.sealed"
    indexed = tmp_path / "indexed.sqlite3"
    indexed.write_bytes(s.db_path.read_bytes())
    conn = sqlite3.connect(indexed)
    conn.execute("CREATE INDEX spy ON cases(number)")
    conn.commit()
    conn.close()
    sealedfile.seal_file(indexed, extra_index, keys.public, {"kind": "backup"})

    # (words in the one line, allow_unsigned)
    expected = {
        foreign: ("this key cannot open this file", False),
        corrupted: ("does not match its signature", False),
        resigned: ("damaged", False),
        truncated: ("damaged", False),
        unsigned: ("is not signed", False),
        not_db: ("not a database", True),
        no_schema: ("no schema_migrations", True),
        newer: ("newer version", True),
        export: ("not a backup", True),
        unsealed: ("not a backup written by this bot", True),
        extra_index: ("index 'spy' is not made by our migrations", True),
        tmp_path / "missing.sealed": ("does not exist", False),
    }
    for path, (words, allow) in expected.items():
        with pytest.raises(BackupError) as caught:
            restore_from(s, path, keys.private, verify_key=vk, allow_unsigned=allow)
        message = str(caught.value)
        assert words in message, (path.name, message)
        assert "\n" not in message
        assert digest(s.db_path) == before, path.name
        assert sorted(p.name for p in data_dir.iterdir()) == ["bot.sqlite3", "keys"], path.name
    # Refused when not confirmed, too.
    with pytest.raises(BackupError, match="not confirmed"):
        restore_from(s, good, keys.private, verify_key=vk, confirm=lambda summary: False)
    assert digest(s.db_path) == before
    shown: list[list[str]] = []
    restore_from(s, good, keys.private, verify_key=vk,  # and the good one still works
                 confirm=lambda summary: shown.append(summary.lines()) or True)
    assert "signed by this organisation's signing key" in shown[0][0]
    assert shown[0][1] == "Staff in it: none"
    assert shown[0][2] == "Cases in it: 1, submitted 2024-01-01 to 2024-01-01"


def test_restore_brings_back_the_draft_key_only_from_a_signed_file(tmp_path: Path) -> None:
    """Drafts are sealed with the server's draft key: a restore on a new server needs it, but
    only a signed backup may install it (H3)."""
    old = tmp_path / "old"
    s_old = settings_for(old)
    keys = load_keyring(old, None, None)
    asyncio.run(_make_db(s_old.db_path))
    out = tmp_path / "b.age"
    backup_to(s_old, sealer(keys), out)
    # The new server runs with the private key offline and its draft key on tmpfs.
    new = tmp_path / "new"
    run = tmp_path / "run"
    run.mkdir()
    s_new = settings_for(new, public_key_file=old / "keys" / "org_public.key",
                         draft_key_file=run / "draft.key")
    new_keys = load_keyring(new, s_new.public_key_file, None, s_new.draft_key_file)
    assert new_keys.draft_box._key != keys.draft_box._key
    assert keys.private is not None
    unsigned = tmp_path / "unsigned.age"
    unsigned.write_bytes(out.read_bytes())
    result = restore_from(s_new, unsigned, keys.private, allow_unsigned=True)
    assert not result.signed and result.draft_key == "not taken (unsigned file)"
    assert load_keyring(new, s_new.public_key_file, None, s_new.draft_key_file
                        ).draft_box._key == new_keys.draft_box._key
    result = restore_from(s_new, out, keys.private, verify_key=verify(old))
    assert result.signed and result.draft_key == "installed"
    again = load_keyring(new, s_new.public_key_file, None, s_new.draft_key_file)
    assert again.draft_box._key == keys.draft_box._key
    assert list(run.glob("draft.key.before-restore-*"))
    assert not (new / "keys" / "draft.key").exists()  # never on the data disk


async def _make_db(path: Path) -> None:
    db = await Database.open(path)
    await db.close()


def test_sealed_file_round_trip_and_tampering(tmp_path: Path) -> None:
    key = PrivateKey.generate()
    for size in (0, 1, sealedfile.CHUNK, sealedfile.CHUNK * 3 + 7):
        src = tmp_path / f"in{size}"
        payload = bytes((i * 7) % 251 for i in range(size))
        src.write_bytes(payload)
        dst = tmp_path / f"s{size}"
        sealedfile.seal_file(src, dst, key.public_key, {"kind": "test", "n": size})
        out = tmp_path / f"out{size}"
        assert sealedfile.open_to_file(dst, out, key) == {"kind": "test", "n": size}
        assert out.read_bytes() == payload
    # Records cannot be dropped or reordered without the reader noticing.
    dst = tmp_path / f"s{sealedfile.CHUNK * 3 + 7}"
    raw = dst.read_bytes()
    with pytest.raises(sealedfile.SealedFileError, match="after its end"):
        list(sealedfile.SealedReader(io.BytesIO(raw + b"\0\0\0\x20" + b"x" * 32),
                                     key).chunks())
    with pytest.raises(sealedfile.SealedFileError, match="truncated"):
        list(sealedfile.SealedReader(io.BytesIO(raw[:-(sealedfile.CHUNK // 2)]), key).chunks())


async def test_daily_backup_rotation(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    s = settings_for(data_dir, backup_keep=3)
    keys = load_keyring(data_dir, None, None)
    await _make_db(s.db_path)
    folder = s.backup_path
    folder.mkdir(parents=True)
    start = datetime(2024, 1, 1, tzinfo=UTC)
    names = [daily_name(start + timedelta(days=i)) for i in range(5)]
    for name in names:
        (folder / name).write_bytes(b"old")
    (folder / "keep-me.sealed").write_bytes(b"manual")
    for name in names[:2]:
        (folder / (name + ".sig")).write_bytes(b"sig")
    result, removed = await run_daily_backup(s, sealer(keys))
    assert removed == 3
    left = sorted(p.name for p in folder.iterdir())
    assert left == sorted([*names[3:], result.path.name, result.path.name + ".sig",
                           "keep-me.sealed"])
    assert rotate(folder, 1) == [folder / names[3], folder / names[4]]
    assert result.path.name.endswith(".tar.age")


def test_repeat_filter_counts_identical_errors() -> None:
    now = [0.0]
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(OneLineFormatter("%(levelname)s %(message)s"))
    handler.addFilter(RepeatFilter(60.0, clock=lambda: now[0]))
    log = logging.getLogger("test.repeats")
    log.propagate = False
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    try:
        for _ in range(50):
            log.error("network error: %s", "ConnectError")
            now[0] += 1
        log.info("info is never held back")
        log.info("info is never held back")
        log.error("another error")
        now[0] += 60
        log.error("network error: %s", "ConnectError")
        try:
            raise RuntimeError("boom")
        except RuntimeError:
            log.exception("with a traceback")
    finally:
        log.removeHandler(handler)
    lines = stream.getvalue().splitlines()
    assert lines[0] == "ERROR network error: ConnectError"
    assert lines.count("INFO info is never held back") == 2
    assert "ERROR network error: ConnectError (repeated 49 times in the last 110s)" in lines
    assert sum("network error" in line for line in lines) == 2
    assert lines[-1].startswith("ERROR with a traceback | Traceback")
    assert len(lines) == 6
