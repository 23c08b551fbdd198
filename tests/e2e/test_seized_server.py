"""A seized server (H2): what a copy of BOT_DATA_DIR, taken while the bot runs, gives away.

The attacker copies the data folder right after a relative submitted a case, then rebuilds
every committed snapshot from the write-ahead log (a copy of the database plus the WAL cut
after each commit frame, as the security review did) and reads every draft in them with
whatever draft key the copied folder holds. With the private key offline the folder holds
none (the draft key lives on tmpfs); in both key modes the WAL no longer holds any version of
the submitted case's draft, which the test checks with the real draft key too.
"""

from __future__ import annotations

import base64
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from nacl.secret import SecretBox

from bot.crypto.keyring import MAGIC, generate_keypair
from bot.sandbox.emulator import Emulator
from tests.e2e.conftest import BotRunner
from tests.journeys import CONSENT, MARKERS, REPORTER, fill, report, start

# What only the submitted case's missing persons hold (the reporter's answers are typed by the
# relative still in the middle of the questionnaire too).
REPORTER_WORDS = ("Гүлжан", "Тохтасын", "Алматы", "77011234567")
SUBMITTED = [m for m in MARKERS if m not in REPORTER_WORDS]
WAL_HEADER = 32
FRAME_HEADER = 24


def commit_ends(wal: bytes) -> list[int]:
    """Byte offsets just after each commit frame of a WAL file (frames of its current salt)."""
    if len(wal) < WAL_HEADER:
        return []
    page_size = int.from_bytes(wal[8:12], "big")
    salt = wal[16:24]
    ends, offset = [], WAL_HEADER
    while offset + FRAME_HEADER + page_size <= len(wal):
        header = wal[offset:offset + FRAME_HEADER]
        if header[8:16] != salt:
            break
        offset += FRAME_HEADER + page_size
        if int.from_bytes(header[4:8], "big"):  # database size after commit: a commit frame
            ends.append(offset)
    return ends


def drafts_in_every_snapshot(copy: Path, work: Path) -> list[bytes]:
    """Every draft state in every snapshot the copied database and WAL can be rebuilt to."""
    db = (copy / "bot.sqlite3").read_bytes()
    wal_path = copy / "bot.sqlite3-wal"
    wal = wal_path.read_bytes() if wal_path.exists() else b""
    states: list[bytes] = []
    for i, end in enumerate([0, *commit_ends(wal)]):
        snap = work / f"snap{i}.sqlite3"
        snap.write_bytes(db)
        if end:
            (work / f"snap{i}.sqlite3-wal").write_bytes(wal[:end])
        conn = sqlite3.connect(snap)
        try:
            states += [bytes(r[0]) for r in conn.execute("SELECT state FROM drafts")]
        finally:
            conn.close()
    return states


def names_in(states: list[bytes], key: bytes, markers: list[str]) -> list[str]:
    box = SecretBox(key)
    found = []
    for state in states:
        plain = box.decrypt(state[len(MAGIC):]).decode("utf-8")
        found += [m for m in markers if m in plain]
    return found


def read_key(path: Path) -> bytes:
    return base64.b64decode(path.read_bytes().strip())


@pytest.mark.parametrize("mode", ["key on the server", "key offline"])
async def test_a_copy_of_the_running_server_shows_no_submitted_case(
        emulator: Emulator, tmp_path: Path, mode: str) -> None:
    settings: dict[str, Any] = {}
    tmpfs = tmp_path / "run"  # stands for /run/atazhurt-bot (tmpfs): not part of the copy
    tmpfs.mkdir()
    if mode == "key offline":
        public, _private = generate_keypair(tmp_path / "usb")
        settings = {"public_key_file": public, "draft_key_file": tmpfs / "draft.key"}
    runner = BotRunner(emulator, tmp_path / "data", **settings)
    await runner.start()
    try:
        # Submitted: its names are in MARKERS.
        await report(emulator.user(3101, language_code="ru"), "ru")
        # Another relative is in the middle of the questionnaire (allowed to be readable
        # where the draft key is on the disk).
        other = emulator.user(3102, language_code="en")
        await start(other, "en")
        await fill(other, {**CONSENT, **REPORTER}, until="relation")
        copy = tmp_path / "seized"
        shutil.copytree(runner.data_dir, copy)  # while the bot runs
    finally:
        await runner.stop()

    work = tmp_path / "work"
    work.mkdir()
    states = drafts_in_every_snapshot(copy, work)
    assert states  # the draft in progress is there: the replay really reads drafts
    disk_key = copy / "keys" / "draft.key"
    if mode == "key offline":
        assert not disk_key.exists()  # nothing on the disk opens a draft
        assert not [p for p in copy.rglob("*") if p.is_file()
                    and p.read_bytes().strip() == (tmpfs / "draft.key").read_bytes().strip()]
        true_key = read_key(tmpfs / "draft.key")
    else:
        true_key = read_key(disk_key)
    # The replay works: the draft in progress opens with the real key...
    assert "Гүлжан" in names_in(states, true_key, list(REPORTER_WORDS))
    # ... and even with that key, no version of the submitted case's draft is left.
    assert names_in(states, true_key, SUBMITTED) == []


async def test_a_reboot_with_the_key_offline_drops_drafts_safely(
        emulator: Emulator, tmp_path: Path) -> None:
    """The draft key on tmpfs is gone after a reboot: drafts cannot be read by anyone, and the
    bot drops them and goes on instead of failing."""
    public, _private = generate_keypair(tmp_path / "usb")
    tmpfs = tmp_path / "run"
    tmpfs.mkdir()
    runner = BotRunner(emulator, tmp_path / "data", public_key_file=public,
                       draft_key_file=tmpfs / "draft.key")
    await runner.start()
    user = emulator.user(3201, language_code="en")
    try:
        await start(user, "en")
        await fill(user, CONSENT, until="reporter_name")
        await runner.restart()  # a restart keeps tmpfs: the draft is still there
        assert await runner.d.drafts.get(3201) is not None
        await runner.stop()
        (tmpfs / "draft.key").unlink()  # a reboot empties tmpfs
        await runner.start()
        assert (tmpfs / "draft.key").exists()  # a new key
        seen = len(user.messages)
        await user.send_text("Гүлжан")  # the answer to the question on screen
        assert len(user.messages) > seen  # answered, not failed
        assert await runner.d.drafts.count() == 0  # dropped: nobody can read it any more
        assert not (tmp_path / "data" / "keys" / "draft.key").exists()
    finally:
        await runner.stop()
