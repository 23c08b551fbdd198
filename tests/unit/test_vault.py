"""The vault's pieces without the bot: sealing streams, Telegram's answers, retries, erasure."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from nacl.public import PrivateKey

from bot.evidence.vault import (
    CLOUD_LIMIT,
    LOCAL_LIMIT,
    Custody,
    Telegram,
    VaultWorker,
    clean_partials,
    download_limit,
    read_vault_file,
    seal_stream,
)
from bot.sandbox.emulator import Emulator
from bot.services.sealedfile import SealedFileError
from bot.storage.db import Database
from bot.storage.evidence import EvidenceRepository

KEY = PrivateKey.generate()


async def pieces(parts: list[bytes]) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


@settings(max_examples=40, deadline=None)
@given(st.lists(st.binary(max_size=300_000), max_size=8))
def test_sealed_stream_round_trips_with_the_plaintext_hash(parts: list[bytes]) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        dst = Path(tmp) / "f.sealed"
        sha, size = asyncio.run(seal_stream(pieces(parts), dst, KEY.public_key, {"k": 1}))
        data = b"".join(parts)
        assert (sha, size) == (hashlib.sha256(data).hexdigest(), len(data))
        assert b"".join(read_vault_file(dst, KEY)) == data
        if len(data) >= 32:
            assert data[:32] not in dst.read_bytes()
        assert list(Path(tmp).iterdir()) == [dst]  # no temporary file left


async def test_an_altered_or_cut_vault_file_is_refused(tmp_path: Path) -> None:
    dst = tmp_path / "f.sealed"
    await seal_stream(pieces([b"x" * 200_000]), dst, KEY.public_key, {})
    raw = bytearray(dst.read_bytes())
    raw[-100] ^= 1
    (tmp_path / "bad").write_bytes(bytes(raw))
    with pytest.raises(SealedFileError):
        b"".join(read_vault_file(tmp_path / "bad", KEY))
    (tmp_path / "cut").write_bytes(bytes(dst.read_bytes()[:-70_000]))
    with pytest.raises(SealedFileError):
        b"".join(read_vault_file(tmp_path / "cut", KEY))


async def test_a_failed_stream_leaves_nothing(tmp_path: Path) -> None:
    async def broken() -> AsyncIterator[bytes]:
        yield b"a" * 2_000_000
        raise ConnectionResetError

    with pytest.raises(ConnectionResetError):
        await seal_stream(broken(), tmp_path / "f.sealed", KEY.public_key, {})
    assert os.listdir(tmp_path) == []
    await asyncio.to_thread((tmp_path / ".x.sealed.1.part").write_bytes, b"left by a kill")
    assert clean_partials(tmp_path) == 1 and os.listdir(tmp_path) == []


def test_download_limits() -> None:
    assert download_limit("https://api.telegram.org") == CLOUD_LIMIT == 20 * 1024 * 1024
    assert download_limit("http://127.0.0.1:8081") == LOCAL_LIMIT
    assert download_limit("https://api.telegram.org", 5) == 5 * 1024 * 1024


async def test_telegram_answers_become_reasons(tmp_path: Path) -> None:
    async with Emulator() as emu:
        tg = Telegram(emu.base_url, emu.token, 1000)
        small = emu.world.files.add("document", b"x" * 10)
        big = emu.world.files.add("document", b"x" * 2000)
        try:
            path, size = await tg.locate(small.file_id, None)
            assert size == 10
            async with tg.open(path) as (blocks, mime):
                assert b"".join([b async for b in blocks]) == small.data
                assert mime == "application/octet-stream"
            with pytest.raises(Exception) as too_big:
                await tg.locate(big.file_id, None)  # our limit: over it by getFile's size
            assert getattr(too_big.value, "reason", "") == "too_big"
            with pytest.raises(Exception) as gone:
                await tg.locate("nonsense", None)
            assert getattr(gone.value, "gone", False)
            emu.file_outage = True
            with pytest.raises(Exception) as outage:
                async with tg.open(path) as _:
                    pass
            assert not getattr(outage.value, "permanent", True)
            bad = Telegram(emu.base_url, "1:REVOKED", 1000)
            with pytest.raises(Exception) as revoked:
                await bad.locate(small.file_id, None)
            assert not getattr(revoked.value, "permanent", True)  # retried: token may return
            await bad.aclose()
        finally:
            await tg.aclose()


async def test_worker_retries_then_records_gone_and_erases(tmp_path: Path) -> None:
    async with Emulator() as emu:
        db = await Database.open(tmp_path / "db.sqlite3")
        repo = EvidenceRepository(db)
        stored = emu.world.files.add("photo", b"PHOTO" * 100)
        now = datetime.now(UTC).isoformat(timespec="seconds")
        for unique, file_id in (("U1", stored.file_id), ("U2", "lost-file")):
            ref = json.dumps({"file_id": file_id, "kind": "photo"}).encode()
            assert await repo.enqueue(7, unique, ref, now, 0)
        assert not await repo.enqueue(7, "U1", b"{}", now, 0)  # one row per file per draft
        tg = Telegram(emu.base_url, emu.token, 10_000)
        worker = VaultWorker(repo, tg, tmp_path / "files", KEY.public_key,
                             open_ref=lambda b: b, seal_custody=lambda b: b)
        (tmp_path / "files").mkdir()
        emu.file_outage = True
        outcomes = [await worker.fetch(r) for r in await repo.due(time.time(), 10)]
        assert outcomes == ["retry", "retry"]
        emu.file_outage = False
        for _ in range(10):
            await db.execute("UPDATE evidence_files SET next_attempt_at = 0")
            for row in await repo.due(time.time(), 10):
                await worker.fetch(row)
        rows = {r[0]: (r[1], r[2]) for r in await db.fetchall(
            "SELECT file_unique_id, state, reason FROM evidence_files")}
        assert rows == {"U1": ("stored", None), "U2": ("failed", "gone")}
        custody = Custody.from_bytes(bytes((await db.fetchone(
            "SELECT custody FROM evidence_files WHERE file_unique_id = 'U1'"))[0]))
        assert custody.sha256 == hashlib.sha256(stored.data).hexdigest()
        assert custody.mime == "image/jpeg" and custody.kind == "photo"
        # The sender has no draft: after the grace period their files are swept and erased.
        worker.now = lambda: datetime.now(UTC) + timedelta(hours=2)
        assert await worker.sweep() == 2
        assert await worker.erase_marked() == 2
        assert await repo.names() == set() and list((tmp_path / "files").iterdir()) == []
        await tg.aclose()
        await db.close()


def test_names_are_transliterated_and_kept_in_their_script() -> None:
    from bot.evidence.dossier import transliterate

    assert transliterate("Ерлан Тохтасын") == "Erlan Tokhtasyn"
    assert transliterate("Әлия Нұрланқызы") == "Äliya Nurlanqyzy"
    assert transliterate("ئابدۇللا") == "Abdulla"
    assert transliterate("王小明") == "Wang Xiaoming" and transliterate("Aliya") is None


async def test_worker_does_not_poll_while_a_long_download_runs(tmp_path: Path) -> None:
    async with Emulator() as emu:
        emu.download_rate = 100_000.0  # 300 KB: about 3 s
        db = await Database.open(tmp_path / "db.sqlite3")
        repo = EvidenceRepository(db)
        stored = emu.world.files.add("document", b"x" * 300_000)
        ref = json.dumps({"file_id": stored.file_id, "kind": "document"}).encode()
        await repo.enqueue(7, stored.file_unique_id, ref,
                           datetime.now(UTC).isoformat(timespec="seconds"), 0)
        calls = 0
        due = repo.due

        async def counted(now: float, limit: int) -> list:  # type: ignore[type-arg]
            nonlocal calls
            calls += 1
            return await due(now, limit)

        repo.due = counted  # type: ignore[method-assign]
        tg = Telegram(emu.base_url, emu.token, 10_000_000)
        worker = VaultWorker(repo, tg, tmp_path / "files", KEY.public_key,
                             open_ref=lambda b: b, seal_custody=lambda b: b)
        task = asyncio.create_task(worker.run())
        await asyncio.sleep(1.5)
        assert calls <= 3, calls  # not a query every 50 ms while the download runs
        for _ in range(150):  # the download ends, the row is stored
            if (await repo.by_state()).get("stored") == 1:
                break
            await asyncio.sleep(0.1)
        worker.stop()
        await task
        await tg.aclose()
        assert (await repo.by_state()).get("stored") == 1
        await db.close()
