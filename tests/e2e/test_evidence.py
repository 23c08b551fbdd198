"""The evidence vault end to end: a relative's files are fetched at once, sealed, and kept."""

from __future__ import annotations

import asyncio
import hashlib
import json
from pathlib import Path

import pytest

from bot.evidence.vault import Custody, read_vault_file
from bot.sandbox.emulator import Emulator
from bot.sandbox.simusers import OGG_BYTES, SimUser
from tests.e2e.conftest import BotRunner
from tests.e2e.evidence_journey import (
    disk_files,
    report_until_files,
    report_with_files,
    wait_count,
    wait_vault,
)
from tests.journeys import start

PHOTO = b"\xff\xd8\xff\xe0 PHOTO-OF-ERLAN " + bytes(range(256)) * 40
PDF = b"%PDF-1.4 PASSPORT-OF-ERLAN " + b"x" * 300_000


async def send_photo(user: SimUser) -> None:
    await user.send_photo(PHOTO)


async def send_pdf(user: SimUser) -> None:
    await user.send_document(PDF, file_name="паспорт.pdf", mime_type="application/pdf")


async def custody_of(bot: BotRunner) -> list[tuple[str, str, Custody | None]]:
    rows = await bot.d.db.fetchall(
        "SELECT vault_name, state, custody FROM evidence_files ORDER BY file_row")
    return [(r[0], r[1], Custody.from_bytes(bot.d.keys.unseal(bytes(r[2]))) if r[2] else None)
            for r in rows]


async def test_files_are_fetched_sealed_and_recorded(emulator: Emulator, bot: BotRunner) -> None:
    user = emulator.user(5001)
    number = await report_with_files(user, [send_photo, send_pdf])
    assert await wait_vault(bot.d.db) == [("stored", None)] * 3
    case_id = (await bot.d.db.fetchone("SELECT case_id FROM cases WHERE number = ?",
                                       (number,)))[0]
    attached = await bot.d.db.fetchall("SELECT DISTINCT case_id FROM evidence_files")
    assert [r[0] for r in attached] == [case_id]
    records = await custody_of(bot)
    expected = {"voice": (OGG_BYTES, "audio/ogg"), "photo": (PHOTO, "image/jpeg"),
                "document": (PDF, "application/pdf")}
    folder = bot.data_dir / "files"
    on_disk = disk_files(folder)
    assert set(on_disk) == {name for name, _, _ in records}
    private = bot.d.keys.private
    assert private is not None
    for name, _state, custody in records:
        assert custody is not None
        data, mime = expected[custody.kind]
        assert custody.sha256 == hashlib.sha256(data).hexdigest()
        assert custody.size == len(data) and custody.mime == mime
        assert custody.file_unique_id.startswith("U") and custody.received_at
        assert custody.fetched_at >= custody.received_at[:10]
        assert b"".join(read_vault_file(folder / name, private)) == data
        # Sealed at rest: no piece of the content is on disk in the clear.
        assert data[:40] not in on_disk[name] and data[-40:] not in on_disk[name]
    assert records[0][2] is not None and records[0][2].duration == 75
    assert (folder.stat().st_mode & 0o777) == 0o700
    # The database holds no hash, file_id or name in the clear either.
    raw = b"".join(p.read_bytes() for p in bot.data_dir.glob("bot.sqlite3*"))
    for custody in (c for _, _, c in records if c is not None):
        assert custody.sha256.encode() not in raw
    assert "паспорт".encode() not in raw


async def test_outage_and_restart_lose_no_file(emulator: Emulator, bot: BotRunner) -> None:
    emulator.file_outage = True  # Telegram's file servers answer 502
    user = emulator.user(5002)
    await report_with_files(user, [send_photo])
    rows = await bot.d.db.fetchall("SELECT state, attempts FROM evidence_files")
    assert [r[0] for r in rows] == ["pending", "pending"]
    await bot.restart()  # the jobs outlive the process
    assert [r[0] for r in await bot.d.db.fetchall("SELECT state FROM evidence_files")] == [
        "pending", "pending"]
    emulator.file_outage = False
    await bot.d.db.execute("UPDATE evidence_files SET next_attempt_at = 0")
    from bot.evidence.intake import wake_vault

    wake_vault(bot.app)
    assert await wait_vault(bot.d.db) == [("stored", None)] * 2
    assert emulator.stats["download_outages"] >= 2


async def test_cloud_limit_and_gone_files_are_recorded_for_staff(emulator: Emulator,
                                                                  bot: BotRunner) -> None:
    emulator.api.max_download = 200_000  # a small cloud limit keeps the test fast
    user = emulator.user(5003)
    number = await report_with_files(user, [send_pdf, send_photo])
    states = await wait_vault(bot.d.db)
    assert ("failed", "too_big") in states
    assert states.count(("stored", None)) == 2
    records = await custody_of(bot)
    failed = [c for _, s, c in records if s == "failed"]
    assert failed and failed[0] is not None and failed[0].size == len(PDF)
    assert failed[0].sha256 == ""
    assert number


async def test_self_hosted_server_allows_big_files(tmp_path: Path) -> None:
    big = b"BIG-VIDEO " + bytes(range(256)) * (90_000)  # 23 MB: over the cloud's 20 MB
    async with Emulator(self_hosted=True) as emu:
        runner = BotRunner(emu, tmp_path / "data")
        await runner.start()
        try:
            user = emu.user(5004)

            async def send_big(u: SimUser) -> None:
                await u.send_document(big, file_name="appeal.mp4", mime_type="video/mp4")

            await report_with_files(user, [send_big], story_voice=False)
            assert await wait_vault(runner.d.db, timeout=60) == [("stored", None)]
            (custody,) = [c for _, _, c in await custody_of(runner)]
            assert custody is not None and custody.size == len(big)
            assert custody.sha256 == hashlib.sha256(big).hexdigest()
        finally:
            await runner.stop()


def test_custody_round_trips() -> None:
    c = Custody(sha256="ab", size=1, mime="x/y", received_at="t", fetched_at="u",
                file_unique_id="U1", kind="photo")
    assert Custody.from_bytes(c.to_bytes()) == c
    assert json.loads(c.to_bytes())["file_unique_id"] == "U1"


STAFF = 7101


async def test_card_shows_the_vault_and_sends_files_from_it(emulator: Emulator,
                                                           tmp_path: Path) -> None:
    emulator.api.max_download = 200_000
    runner = BotRunner(emulator, tmp_path / "data", staff_ids=frozenset({STAFF}))
    await runner.start()
    try:
        relative = emulator.user(5005)
        number = await report_with_files(relative, [send_photo, send_pdf])
        await wait_vault(runner.d.db)
        staff = emulator.user(STAFF)
        before = len(staff.messages)
        await staff.send_text(f"/case {number}")
        card = staff.messages[before:]
        text = "\n".join(m.plain for m in card)
        assert "Evidence vault" in text and "Verification" in text
        assert "Missing person 1: reported" in text
        photo_sha = hashlib.sha256(PHOTO).hexdigest()[:16]
        assert f"SHA-256 {photo_sha}…" in text
        assert "not in the vault (over the download limit)" in text  # the 300 KB PDF
        # The limit is raised (a self-hosted server, say): staff fetch it again.
        emulator.api.max_download = 20 * 1024 * 1024
        await staff.press("🔁 Fetch the missing files again", card[-1])
        assert await wait_vault(runner.d.db) == [("stored", None)] * 3

        # Verification by button, then by command; shown on the card and in the history.
        await staff.press("🔎 Person 1: mark corroborated", card[-1])
        await staff.send_text(f"/verify {number} 1 documented")
        assert "missing person 1: documented" in staff.last.plain
        await staff.send_text(f"/verify {number} 2 documented")
        assert "has 1 missing persons" in staff.last.plain
        await staff.send_text(f"/verify {number} 1 sure")
        assert "reported, corroborated, documented" in staff.last.plain
        before = len(staff.messages)
        await staff.send_text(f"/case {number}")
        text = "\n".join(m.plain for m in staff.messages[before:])
        assert "Missing person 1: documented" in text
        assert text.count("changed a missing person's verification level") == 2
        assert "verification level (Missing person 1: documented)" in text

        # Telegram lost the photo (a new bot account, say): the button sends the vault's copy.
        photo = next(m for m in relative.all_messages if m.kind == "photo" and not m.from_bot)
        assert photo.file_id is not None
        emulator.world.files.forget(photo.file_id)
        card = staff.messages[before:]
        label = next(x for x in card[-1].button_labels if "photo" in x)
        await staff.press(label, card[-1])
        resent = await staff.wait_for(lambda m: m.kind == "photo" and m.from_bot)
        stored = emulator.world.files.get(resent.file_id or "")
        assert stored is not None and stored.data == PHOTO
        levels = await runner.d.db.fetchall("SELECT person_index, level FROM person_verification")
        assert [tuple(r) for r in levels] == [(1, "documented")]
    finally:
        await runner.stop()


async def test_export_with_files_reads_the_vault_after_the_token_is_revoked(
        emulator: Emulator, bot: BotRunner, tmp_path: Path) -> None:
    import shutil
    import subprocess

    from tests.e2e.test_cli import cli_env, run_cli

    user = emulator.user(5006)
    number = await report_with_files(user, [send_photo, send_pdf])
    await wait_vault(bot.d.db)
    await bot.stop()
    # The token is revoked and Telegram has nothing any more: the vault is all there is.
    for message in user.all_messages:
        if message.file_id:
            emulator.world.files.forget(message.file_id)
    env = cli_env(token="999:REVOKED", api_base_url=emulator.base_url,
                  data_dir=str(bot.data_dir))
    out, files = tmp_path / "cases.csv", tmp_path / "files"
    rc, stdout, err = await run_cli("export", "--format", "csv", "--output", str(out),
                                    "--with-files", str(files), env=env, cwd=tmp_path)
    assert rc == 0, err
    assert "attachments: 3 from the vault, 0 from Telegram, 0 not available" in stdout
    got = disk_files(files)
    manifest = got.pop("SHA256SUMS").decode()
    assert sorted(got.values()) == sorted([OGG_BYTES, PHOTO, PDF])
    assert all(name.startswith(f"{number}/") for name in got)
    assert len(manifest.splitlines()) == 3
    if shutil.which("sha256sum"):
        check = await asyncio.to_thread(
            subprocess.run, ["sha256sum", "-c", "SHA256SUMS"], cwd=files,
            capture_output=True, text=True, check=False)
        assert check.returncode == 0 and check.stdout.count(": OK") == 3, check.stdout
    await bot.start()


async def test_mydata_lists_files_and_delete_erases_them(emulator: Emulator,
                                                         bot: BotRunner) -> None:
    user = emulator.user(5007)
    number = await report_with_files(user, [send_photo])
    await wait_vault(bot.d.db)
    folder = bot.data_dir / "files"
    assert len(disk_files(folder)) == 2
    await user.send_text("/mydata")
    assert "Files you sent that our archive keeps: 2." in user.last.plain  # readable first
    await user.press("📄 Send it to me as a file")  # the file only on request
    sent = user.last
    assert sent.kind == "document"
    stored = emulator.world.files.get(sent.file_id or "")
    assert stored is not None
    copy = json.loads(stored.data)
    files = copy["files"]
    assert {f["kind"] for f in files} == {"voice", "photo"}
    assert {f["case"] for f in files} == {number}
    assert hashlib.sha256(PHOTO).hexdigest() in {f["sha256"] for f in files}

    await user.send_text("/delete")
    await user.press("Yes, delete everything")
    from bot.evidence.intake import wake_vault

    wake_vault(bot.app)
    await wait_count(bot.d.db, 0)
    assert disk_files(folder) == {}


async def test_files_of_purged_drafts_are_erased(emulator: Emulator, bot: BotRunner) -> None:
    from datetime import timedelta

    from bot.evidence.intake import wake_vault
    from bot.storage.privacy import PrivacyRepository
    from tests.journeys import fill, opt

    user = emulator.user(5008)
    await start(user, "en")
    await fill(user, {"consent_store": opt("agree"), "consent_share": opt("yes"),
                      "consent_reveal": opt("no"), "consent_publish": opt("anonymous"),
                      "reporter_name": "Gulzhan T"}, until="reporter_country")
    # A photo where no file is asked is refused (nothing kept); the vault holds only answers.
    await user.send_photo(PHOTO)
    assert await wait_vault(bot.d.db) == []
    # A submitted relative's next draft with a file, abandoned and purged after 30 days.
    other = emulator.user(5009)
    await report_with_files(other, [send_photo])
    await wait_vault(bot.d.db)
    stored = len(disk_files(bot.data_dir / "files"))
    await other.send_text("/new")
    await report_until_files(other)
    await other.send_photo(PHOTO + b"second")
    await wait_vault(bot.d.db)
    assert len(disk_files(bot.data_dir / "files")) == stored + 2
    real_now = bot.d.now
    later = real_now() + timedelta(days=40)
    bot.d.now = lambda: later
    try:
        cutoff = (later - timedelta(days=30)).isoformat(timespec="seconds")
        assert await PrivacyRepository(bot.d.db).purge_drafts(cutoff, bot.d.now_iso()) == 2
        wake_vault(bot.app)
        await wait_count(bot.d.db, 2)
        rows = await wait_vault(bot.d.db)
        assert rows == [("stored", None)] * 2  # the submitted case's files stay
        assert len(disk_files(bot.data_dir / "files")) == stored
    finally:
        bot.d.now = real_now


async def test_incremental_files_backup_and_restore(emulator: Emulator, bot: BotRunner,
                                                    tmp_path: Path) -> None:
    import shutil
    import subprocess

    from tests.e2e.test_cli import cli_env, run_cli

    first = emulator.user(5010)
    await report_with_files(first, [send_photo])
    await wait_vault(bot.d.db)
    env = cli_env(token=emulator.token, api_base_url=emulator.base_url,
                  data_dir=str(bot.data_dir))
    dest = tmp_path / "offsite"
    rc, out, err = await run_cli("backup", "--files", str(dest), env=env, cwd=tmp_path)
    assert rc == 0, err
    assert "2 new" in out and "0 already there" in out
    # Incremental: the next run copies only the new files.
    second = emulator.user(5011)
    await report_with_files(second, [send_pdf])
    await wait_vault(bot.d.db)
    rc, out, err = await run_cli("backup", "--output", str(tmp_path / "db.sealed"),
                                 "--files", str(dest), env=env, cwd=tmp_path)
    assert rc == 0, err
    assert "2 new" in out and "2 already there" in out
    backed = disk_files(dest)
    assert set(backed) - {"SHA256SUMS"} == {f"files/{n}" for n in
                                            disk_files(bot.data_dir / "files")}
    if shutil.which("sha256sum"):
        check = await asyncio.to_thread(subprocess.run, ["sha256sum", "-c", "SHA256SUMS"],
                                        cwd=dest, capture_output=True, text=True, check=False)
        assert check.returncode == 0 and check.stdout.count(": OK") == 4, check.stdout

    # Restore on a new server: the database backup, then the vault's files copied back.
    await bot.stop()
    new_data = tmp_path / "restored"
    (new_data / "keys").mkdir(parents=True)
    for key in (bot.data_dir / "keys").iterdir():
        shutil.copy(key, new_data / "keys" / key.name)
    env_new = cli_env(token="999:REVOKED", api_base_url=emulator.base_url,
                      data_dir=str(new_data))
    rc, out, err = await run_cli("restore", "--input", str(tmp_path / "db.sealed"), "--yes",
                                 env=env_new, cwd=tmp_path)
    assert rc == 0, err
    shutil.copytree(dest / "files", new_data / "files", dirs_exist_ok=True)
    rc, out, err = await run_cli("export", "--format", "csv", "--output",
                                 str(tmp_path / "c.csv"), "--with-files",
                                 str(tmp_path / "out"), env=env_new, cwd=tmp_path)
    assert rc == 0, err
    assert "attachments: 4 from the vault, 0 from Telegram, 0 not available" in out
    await bot.start()

    # An erasure reaches the backup at its next run.
    await first.send_text("/delete")
    await first.press("Yes, delete everything")
    from bot.evidence.intake import wake_vault

    wake_vault(bot.app)
    await wait_count(bot.d.db, 2)
    rc, out, err = await run_cli("backup", "--files", str(dest), env=env, cwd=tmp_path)
    assert rc == 0, err
    assert "2 erased from the vault removed" in out
    assert len(disk_files(dest)) == 3


async def test_dossier_per_person_from_the_offline_key(emulator: Emulator, tmp_path: Path
                                                       ) -> None:
    """The bot runs with the public key only; dossiers are written with --key offline."""

    import docx

    from bot.services.crypto import generate_keypair
    from tests.e2e.test_cli import cli_env, run_cli

    public, private = generate_keypair(tmp_path / "offline")
    runner = BotRunner(emulator, tmp_path / "data", public_key_file=public,
                       staff_ids=frozenset({STAFF}))
    await runner.start()
    try:
        user = emulator.user(5012)
        number = await report_with_files(user, [send_photo, send_pdf], name="Ерлан Тохтасын")
        other = emulator.user(5013)
        declined = await report_with_files(other, [send_photo], share="no", name="Aliya")
        await wait_vault(runner.d.db)
        staff = emulator.user(STAFF)
        await staff.send_text(f"/verify {number} 1 corroborated")
    finally:
        await runner.stop()
    env = cli_env(token="999:REVOKED", api_base_url=emulator.base_url,
                  data_dir=str(tmp_path / "data"), public_key_file=str(public))
    out = tmp_path / "dossier.docx"
    rc, stdout, err = await run_cli("dossier", "--case", number, "--output", str(out),
                                    env=env, cwd=tmp_path)
    assert rc == 1 and "private key" in err  # the key is offline
    rc, stdout, err = await run_cli("dossier", "--case", number, "--person", "1", "--output",
                                    str(out), "--key", str(private), env=env, cwd=tmp_path)
    assert rc == 0, err
    doc = docx.Document(str(out))
    text = "\n".join(p.text for p in doc.paragraphs)
    cells = "\n".join(c.text for t in doc.tables for r in t.rows for c in r.cells)
    everything = text + "\n" + cells
    for heading in ("1. Identity of the disappeared person",
                    "2. Date and place of the disappearance", "3. Who is believed responsible",
                    "4. Steps taken and their results", "5. Source of the information",
                    "Testimony", "Evidence list"):
        assert heading in text, heading
    assert "Erlan Tokhtasyn (original script: Ерлан Тохтасын)" in cells
    assert "叶尔兰" in cells and "Police" in cells and "Ili" in everything
    # Shared with the UN, so the reporter is named for the UN; not to be named to China.
    assert "Gulzhan T" in cells
    assert "CONFIDENTIAL: the source's identity must not be revealed to the Government of " \
        "China" in cells
    assert "verification level: corroborated" in text
    assert hashlib.sha256(PHOTO).hexdigest() in cells
    assert hashlib.sha256(PDF).hexdigest() in cells
    assert hashlib.sha256(OGG_BYTES).hexdigest() in text  # the voice testimony, 1:15
    assert "duration 1:15" in text
    assert "Required elements still missing" in cells
    assert "Identity: an identity document number (Chinese resident ID)" in cells
    assert "Results of the steps taken" in cells

    folder = tmp_path / "dossiers"
    rc, stdout, err = await run_cli("dossier", "--all", "--consent", "share", "--output",
                                    str(folder), "--key", str(private), env=env, cwd=tmp_path)
    assert rc == 0, err
    assert sorted(p.name for p in folder.iterdir()) == [f"{number}-1.docx"]
    assert declined not in stdout

    # The export's consent filter applies to the files too: the declined case's stay out.
    files = tmp_path / "shared-files"
    rc, stdout, err = await run_cli("export", "--format", "csv", "--consent", "share",
                                    "--output", str(tmp_path / "shared.csv"), "--with-files",
                                    str(files), cwd=tmp_path,
                                    env={**env, "BOT_PRIVATE_KEY_FILE": str(private)})
    assert rc == 0, err
    assert "attachments: 3 from the vault" in stdout
    got = disk_files(files)
    got.pop("SHA256SUMS")
    assert got and all(name.startswith(f"{number}/") for name in got)


async def test_verification_in_exports_and_stats(emulator: Emulator, tmp_path: Path) -> None:
    import csv
    import io

    from tests.e2e.test_cli import cli_env, run_cli

    runner = BotRunner(emulator, tmp_path / "data", staff_ids=frozenset({STAFF}))
    await runner.start()
    try:
        first = await report_with_files(emulator.user(5014), [send_photo])
        second = await report_with_files(emulator.user(5015), [], story_voice=False)
        await wait_vault(runner.d.db)
        staff = emulator.user(STAFF)
        await staff.send_text(f"/verify {first} 1 documented")
        await staff.send_text("/stats")
        text = "\n".join(m.plain for m in staff.messages[-3:])
        assert "Missing persons by verification level" in text
        assert "• reported: 1" in text and "• documented: 1" in text
        assert "• corroborated: 0" in text
        assert "stored: 2 files" in text and "could not be fetched: 0" in text
    finally:
        await runner.stop()
    env = cli_env(token=emulator.token, api_base_url=emulator.base_url,
                  data_dir=str(tmp_path / "data"))
    out = tmp_path / "cases.csv"
    rc, _stdout, err = await run_cli("export", "--format", "csv", "--output", str(out),
                                     env=env, cwd=tmp_path)
    assert rc == 0, err
    rows = list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8-sig"))))
    assert {r["case_number"]: r["person_verification"] for r in rows} == {
        first: "documented", second: "reported"}
    rc, _stdout, err = await run_cli("export", "--format", "jsonl", "--output",
                                     str(tmp_path / "c.jsonl"), env=env, cwd=tmp_path)
    assert rc == 0, err
    lines = [json.loads(x) for x in (tmp_path / "c.jsonl").read_text().splitlines()]
    assert {c["case_number"]: c["person_verification"] for c in lines} == {
        first: ["documented"], second: ["reported"]}


async def test_a_file_sent_in_answer_to_a_question_is_kept_with_the_case(
        emulator: Emulator, tmp_path: Path) -> None:
    from tests.e2e.test_cli import cli_env, run_cli

    runner = BotRunner(emulator, tmp_path / "data", staff_ids=frozenset({STAFF}))
    await runner.start()
    try:
        relative = emulator.user(5016)
        number = await report_with_files(relative, [], story_voice=False)
        staff = emulator.user(STAFF)
        await staff.send_text(f"/ask {number} Do you have his passport?")
        await relative.wait_for("Do you have his passport")
        later = b"%PDF-1.4 PASSPORT SENT LATER " + b"y" * 5000
        await relative.send_document(later, file_name="later.pdf", mime_type="application/pdf")
        await staff.wait_for(lambda m: m.kind == "document")
        assert await wait_vault(runner.d.db) == [("stored", None)]
        case_ids = await runner.d.db.fetchall("SELECT case_id FROM evidence_files")
        assert case_ids[0][0] is not None
    finally:
        await runner.stop()
    env = cli_env(token="999:REVOKED", api_base_url=emulator.base_url,
                  data_dir=str(tmp_path / "data"))
    rc, stdout, err = await run_cli("export", "--format", "csv", "--output",
                                    str(tmp_path / "c.csv"), "--with-files",
                                    str(tmp_path / "files"), env=env, cwd=tmp_path)
    assert rc == 0, err
    assert "attachments: 1 from the vault" in stdout
    got = disk_files(tmp_path / "files")
    assert later in got.values()
    assert f"{hashlib.sha256(later).hexdigest()}  {number}/document-" in got["SHA256SUMS"].decode()


async def test_self_hosted_local_mode_reads_the_servers_disk(tmp_path: Path) -> None:
    """telegram-bot-api --local: getFile gives a path on disk, read in place (no download)."""
    async with Emulator(self_hosted=True, local_dir=tmp_path / "bot-api") as emu:
        runner = BotRunner(emu, tmp_path / "data")
        await runner.start()
        try:
            await report_with_files(emu.user(5017), [send_pdf])
            assert await wait_vault(runner.d.db) == [("stored", None)] * 2
            assert emu.stats["downloads"] == 0
            (custody,) = [c for _, _, c in await custody_of(runner)
                          if c is not None and c.kind == "document"]
            assert custody.sha256 == hashlib.sha256(PDF).hexdigest()
        finally:
            await runner.stop()


async def test_dossier_converts_with_libreoffice_headless(tmp_path: Path) -> None:
    """Where LibreOffice is installed, the dossier converts to PDF (skipped otherwise)."""
    import shutil
    import subprocess

    from bot.evidence.dossier import CaseFacts, EvidenceItem, build_dossier
    from bot.form.model import load_form

    exe = shutil.which("libreoffice") or shutil.which("soffice")
    if exe is None:
        pytest.skip("libreoffice is not installed")
    data = {"consent": {"consent_share": "yes", "consent_publish": "no"},
            "reporter": {"reporter_name": "R"},
            "persons": [{"full_name": "Ерлан Тохтасын", "chinese_name": "叶尔兰",
                         "story": "He was taken at night."}]}
    item = EvidenceItem("Photo 1", "stored", None, Custody(
        sha256="ab" * 32, size=10, mime="image/jpeg", received_at="2026-12-01T10:00:00+00:00",
        fetched_at="2026-12-01T10:00:01+00:00", file_unique_id="U1", kind="photo"))
    doc = build_dossier(load_form(), CaseFacts("4821-0001", "2026-12-01", "new"), data, 0,
                        [item], "reported")
    out = tmp_path / "dossier.docx"
    doc.save(str(out))
    done = await asyncio.to_thread(
        subprocess.run, [exe, "--headless", "--convert-to", "pdf", "--outdir",
                         str(tmp_path / "pdf"), str(out)],
        capture_output=True, timeout=180, check=False)
    assert done.returncode == 0 and (tmp_path / "pdf" / "dossier.pdf").stat().st_size > 1000


async def test_files_of_a_cancelled_draft_are_erased(emulator: Emulator, bot: BotRunner) -> None:
    from datetime import timedelta

    from bot.evidence.intake import wake_vault

    user = emulator.user(5018)
    await start(user, "en")
    await report_until_files(user)
    await user.send_photo(PHOTO)
    assert await wait_vault(bot.d.db) == [("stored", None)] * 2  # the voice story, the photo
    assert len(disk_files(bot.data_dir / "files")) == 2
    await user.send_text("/cancel")
    await user.press("Yes, discard it")
    assert await bot.d.drafts.get(user.id) is None
    # Kept for an hour (a file may arrive while its draft is being saved), then erased.
    wake_vault(bot.app)
    await wait_vault(bot.d.db)
    assert len(disk_files(bot.data_dir / "files")) == 2
    real_now = bot.d.now
    later = real_now() + timedelta(hours=2)
    bot.d.now = lambda: later
    try:
        wake_vault(bot.app)
        await wait_count(bot.d.db, 0)
        assert disk_files(bot.data_dir / "files") == {}
    finally:
        bot.d.now = real_now
