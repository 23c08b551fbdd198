"""SIGKILL while the vault downloads and seals: no acknowledged file is lost, no plaintext
ever reaches the disk.

Relatives send reports with files while Telegram's file servers are down (each file is
acknowledged: the bot answered with the next question, and the fetch is queued). Then the file
servers come back, slowly, and the bot (`python -m bot run`, a subprocess) is killed with
SIGKILL at random moments while it downloads and seals, and started again. After every kill,
with the bot dead, every file under the data folder (database, WAL, vault, temporary files) is
searched for pieces of every file's plaintext. At the end every acknowledged file is stored,
and its recorded SHA-256 matches what the relative sent; no temporary file is left.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import random
import time
from pathlib import Path
from typing import Any

import pytest

from bot.evidence.vault import Custody, read_vault_file
from bot.sandbox.emulator import Emulator
from bot.sandbox.simusers import SimUser
from bot.services.crypto import load_keyring
from bot.storage.db import Database
from tests.chaos.conftest import BotProcess, report, scale
from tests.e2e.evidence_journey import report_with_files

pytestmark = pytest.mark.chaos

RELATIVES = scale(2, 8)
KILLS = scale(4, 30)
FILE_SIZES = (900_000, 2_300_000)  # bytes; random content, so samples are unique
RATE = 1_500_000.0  # bytes a second the file server sends, per download


def samples(data: bytes) -> list[bytes]:
    """Pieces of the plaintext to look for (48 bytes at five places)."""
    step = max(1, (len(data) - 48) // 4)
    return [data[i:i + 48] for i in range(0, len(data) - 47, step)][:5]


def plaintext_on_disk(data_dir: Path, files: dict[str, bytes]) -> list[str]:
    found = []
    wanted = {unique: samples(data) for unique, data in files.items()}
    for root, _dirs, names in os.walk(data_dir):
        for name in names:
            path = Path(root) / name
            try:
                blob = path.read_bytes()
            except FileNotFoundError:
                continue
            for unique, pieces in wanted.items():
                if any(p in blob for p in pieces):
                    found.append(f"{unique} in {path.relative_to(data_dir)}")
    return found


async def vault_rows(data_dir: Path) -> list[tuple[str, str, str, bytes | None]]:
    db = await Database.open(data_dir / "bot.sqlite3", migrate=False)
    try:
        rows = await db.fetchall(
            "SELECT file_unique_id, state, vault_name, custody FROM evidence_files")
        return [(str(r[0]), str(r[1]), str(r[2]), bytes(r[3]) if r[3] else None) for r in rows]
    finally:
        await db.close()


@pytest.mark.timeout(1800 if KILLS > 10 else 300)
async def test_sigkill_during_downloads_and_sealing(emulator: Emulator, tmp_path: Path) -> None:
    rng = random.Random(20261203)
    data_dir = tmp_path / "data"
    bot = BotProcess(emulator, data_dir, tmp_path / "bot.log")
    started = time.monotonic()
    sent: dict[str, bytes] = {}  # file_unique_id -> content, for every acknowledged file
    emulator.file_outage = True
    await bot.start()
    await bot.wait_polling()

    def sender(data: bytes) -> Any:
        async def send(user: SimUser) -> None:
            message = await user.send_document(data, file_name="evidence.bin",
                                               mime_type="application/octet-stream")
            stored = emulator.world.files.get(message.file_id or "")
            assert stored is not None
            # Acknowledged: the bot answered (the next question is on screen).
            assert "Received: " in user.last.plain
            sent[stored.file_unique_id] = data
        return send

    await asyncio.gather(*(
        report_with_files(emulator.user(60_000 + i),
                          [sender(rng.randbytes(size)) for size in FILE_SIZES],
                          story_voice=False, name=f"Person {i}", pause=0.4)
        for i in range(RELATIVES)))
    await bot.kill()
    # The fetches were retried with back-off during the outage: make them due now.
    db = await Database.open(data_dir / "bot.sqlite3", migrate=False)
    await db.execute("UPDATE evidence_files SET next_attempt_at = 0")
    await db.close()
    emulator.file_outage = False
    emulator.download_rate = RATE
    problems: list[str] = []
    mid_download = 0
    mid_seal = 0
    # KILLS kills, or more (up to three times as many) until one has landed mid-seal.
    for _ in range(KILLS * 3):
        if bot.kills - 1 >= KILLS and mid_seal:
            break
        await bot.start()
        await bot.wait_polling()
        before = emulator.stats["downloads"]
        await asyncio.sleep(rng.uniform(0.1, 1.2))
        mid_download += emulator.stats["downloads"] > before
        await bot.kill()
        # A sealed temporary file left behind: this kill landed in the middle of a seal.
        mid_seal += bool(list((data_dir / "files").glob(".*.part")))
        problems += [f"after kill {bot.kills}: plaintext {p}"
                     for p in plaintext_on_disk(data_dir, sent)]
        states = {s for _, s, _, _ in await vault_rows(data_dir)}
        if states == {"stored"}:
            break
    await bot.start()
    await bot.wait_polling()
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        rows = await vault_rows(data_dir)
        if rows and all(s == "stored" for _, s, _, _ in rows):
            break
        await asyncio.sleep(0.5)
    rc = await bot.stop()
    rows = await vault_rows(data_dir)
    keys = load_keyring(data_dir, None, None, mode="check")
    assert keys.private is not None
    stored = {u: (name, Custody.from_bytes(keys.unseal(c))) for u, s, name, c in rows
              if s == "stored" and c is not None}
    lost = sorted(set(sent) - set(stored))
    for unique, data in sent.items():
        if unique in stored:
            name, custody = stored[unique]
            if custody.sha256 != hashlib.sha256(data).hexdigest():
                problems.append(f"{unique}: recorded SHA-256 differs")
            content = b"".join(read_vault_file(data_dir / "files" / name, keys.private))
            if content != data:
                problems.append(f"{unique}: the vault's copy differs")
    problems += [f"at the end: plaintext {p}" for p in plaintext_on_disk(data_dir, sent)]
    leftovers = [p.name for p in (data_dir / "files").glob(".*.part")]
    figures: dict[str, Any] = {
        "relatives": RELATIVES, "files": len(sent),
        "bytes": sum(len(d) for d in sent.values()), "kills": bot.kills - 1,
        "kills_while_downloading": mid_download, "kills_mid_seal": mid_seal,
        "downloads_started":
        emulator.stats["downloads"], "lost": lost, "temporary_files_left": leftovers,
        "seconds": round(time.monotonic() - started), "problems": problems[:20],
        "bot_log_errors": bot.log_problems()[:20], "graceful_stop_rc": rc,
    }
    report("vault_crash", figures)
    assert len(sent) == RELATIVES * len(FILE_SIZES)
    assert lost == []
    assert problems == []
    assert mid_download >= 1 and mid_seal >= 1
    assert rc == 0
