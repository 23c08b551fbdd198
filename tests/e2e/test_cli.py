"""The command line as an operator uses it: check, keys, migrate, export, and SIGTERM mid-journey.

Commands that talk to Telegram run as real subprocesses (`python -m bot ...`) against an
emulator served by the test's own event loop; the others run in-process through `main()`.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import re
import signal
import sqlite3
import sys
from pathlib import Path
from typing import Any

import openpyxl  # type: ignore[import-untyped]
import pytest

from bot.__main__ import main
from bot.config import Settings
from bot.sandbox.emulator import Emulator
from bot.sandbox.world import StoredFile
from bot.services.crypto import load_keyring
from bot.storage.cases import CaseRepository
from bot.storage.db import Database, _statements, migrations
from bot.storage.drafts import DraftRepository
from tests.e2e.clitools import NAMES, ROOT, STORY, cli_env, in_tmp, lines, run_cli, seed_cases
from tests.e2e.conftest import tr
from tests.journeys import UNKNOWN, do, fill, multi, opt, prompt, start, submit

__all__ = ["in_tmp"]  # the fixture, used by name

# ----------------------------------------------------------------------------- helpers


# ----------------------------------------------------------------------------- check


async def test_check(emulator: Emulator, tmp_path: Path) -> None:
    data = tmp_path / "data"
    good = cli_env(token=emulator.token, api_base_url=emulator.base_url, data_dir=str(data))
    rc, _out, _err = await run_cli("migrate", env=good, cwd=tmp_path)  # check never migrates
    assert rc == 0
    rc, out, err = await run_cli("check", env=good, cwd=tmp_path)
    assert (rc, err) == (0, ""), err
    assert out.startswith("ok: ") and "@sandbox_bot" in out and "schema version" in out
    assert "evidence vault: 0 files (0.0 MB), 0 being fetched, 0 could not be fetched" in out
    assert emulator.token not in out + err

    wrong = "999999:WRONG-token-value"
    rc, out, err = await run_cli("check", env={**good, "BOT_TOKEN": wrong}, cwd=tmp_path)
    assert rc == 2
    assert lines(err) == ["BOT_TOKEN: rejected by Telegram (401 Unauthorized)"]
    assert wrong not in out + err and "WRONG" not in out + err

    a_file = tmp_path / "file.txt"
    a_file.write_text("not a folder")
    unwritable = {**good, "BOT_DATA_DIR": str(a_file / "sub")}  # root ignores chmod
    rc, out, err = await run_cli("check", env=unwritable, cwd=tmp_path)
    assert rc == 2
    assert lines(err) == [f"BOT_DATA_DIR: {a_file / 'sub'} is not writable (Not a directory)"]

    both = {**unwritable, "BOT_TOKEN": wrong}
    rc, _out, err = await run_cli("check", env=both, cwd=tmp_path)
    assert rc == 2 and len(lines(err)) == 2

    # The staff chat: unknown to Telegram (the bot is not in it), a private chat, a group.
    rc, _out, err = await run_cli("check", env={**good, "BOT_STAFF_CHAT_ID": "-100555"},
                                  cwd=tmp_path)
    assert rc == 2
    assert lines(err)[0].startswith("BOT_STAFF_CHAT_ID: Telegram cannot reach chat -100555 "
                                    "(400 Bad Request: chat not found): add the bot")
    emulator.user(4242).chat.known = True
    rc, _out, err = await run_cli("check", env={**good, "BOT_STAFF_CHAT_ID": "4242"},
                                  cwd=tmp_path)
    assert rc == 2 and "is a private, not a group" in err
    emulator.group(-100555, "Volunteers").state.known = True
    rc, out, err = await run_cli("check", env={**good, "BOT_STAFF_CHAT_ID": "-100555"},
                                 cwd=tmp_path)
    assert (rc, err) == (0, "") and "staff chat: a group the bot can reach" in out


def test_check_reports_each_bad_setting_on_its_own_line(
        in_tmp: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("BOT_WEBHOOK_PORT", "eighty")
    monkeypatch.setenv("BOT_BACKUP_KEEP", "0")
    monkeypatch.setenv("BOT_TOKEN", "no-colon")
    assert main(["check"]) == 2
    err = lines(capsys.readouterr().err)
    assert len(err) == 3
    assert {e.split(":")[0] for e in err} == {"BOT_WEBHOOK_PORT", "BOT_BACKUP_KEEP", "BOT_TOKEN"}


def test_check_refuses_a_short_webhook_secret(
        in_tmp: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Security review L1: a webhook secret anyone could guess is refused before anything runs."""
    monkeypatch.setenv("BOT_TOKEN", "123456:abcdefghijklmnopqrstuvwxyzABCDEFGHI")
    monkeypatch.setenv("BOT_WEBHOOK_URL", "https://bot.example.org/telegram/hook")
    monkeypatch.setenv("BOT_WEBHOOK_SECRET", "a" * 31)
    assert main(["check"]) == 2
    assert lines(capsys.readouterr().err) == [
        "BOT_WEBHOOK_SECRET: must be 32-256 characters of A-Z, a-z, 0-9, _ and - "
        "(make one with: openssl rand -hex 32)"]
    assert main(["run"]) == 2
    assert "BOT_WEBHOOK_SECRET: must be 32-256" in capsys.readouterr().err


# ----------------------------------------------------------------------------- keys, migrate


def test_keys_generate(in_tmp: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = in_tmp / "offline-keys"
    assert main(["keys", "generate", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "org_public.key" in printed and "org_private.key" in printed
    assert (out / "org_private.key").stat().st_mode & 0o077 == 0
    settings = Settings(data_dir=in_tmp / "d", public_key_file=out / "org_public.key",
                        private_key_file=out / "org_private.key")
    keys = load_keyring(settings.data_dir, settings.public_key_file, settings.private_key_file)
    assert keys.unseal(keys.seal(b"x")) == b"x"
    before = (out / "org_private.key").read_bytes()
    assert main(["keys", "generate", "--out", str(out)]) == 1
    assert "refusing to overwrite" in capsys.readouterr().err
    assert (out / "org_private.key").read_bytes() == before


def test_migrate_upgrades_a_first_schema_database(
        in_tmp: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    data = in_tmp / "data"
    data.mkdir()
    path = data / "bot.sqlite3"
    version, name, sql = migrations()[0]
    assert version == 1
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, "
                 "name TEXT NOT NULL, applied_at TEXT NOT NULL)")
    for statement in _statements(sql):
        conn.execute(statement)
    conn.execute("INSERT INTO schema_migrations VALUES (1, ?, '2024-01-01')", (name,))
    conn.execute("INSERT INTO users (user_id, language, created_at, last_seen_at)"
                 " VALUES (7, 'kk', '2024-01-01', '2024-01-02')")
    conn.execute("INSERT INTO drafts (user_id, form_version, state, seq, created_at, updated_at)"
                 " VALUES (7, 1, X'00FF', 3, '2024-01-01', '2024-01-02')")
    conn.execute("INSERT INTO cases (case_id, number, user_id, language, persons_count, "
                 "notice_version, form_version, data, submitted_at, updated_at) VALUES "
                 "(1, '4821-0736', 7, 'kk', 2, 1, 1, X'53310102', '2024-01-03', '2024-01-03')")
    conn.execute("INSERT INTO case_events (case_id, at, kind) VALUES (1, '2024-01-03', "
                 "'submitted')")
    conn.commit()
    tables = ("users", "drafts", "cases", "case_events")
    before = {t: conn.execute(f"SELECT * FROM {t}").fetchall() for t in tables}
    conn.close()

    monkeypatch.setenv("BOT_DATA_DIR", str(data))
    assert main(["migrate"]) == 0
    latest = migrations()[-1][0]
    assert f"schema version {latest}" in capsys.readouterr().out
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    for table, rows in before.items():
        cols = len(rows[0])
        after = [r[:cols] for r in conn.execute(f"SELECT * FROM {table}").fetchall()]
        assert after == rows, table  # new columns may follow; old values are intact
    versions = [r[0] for r in conn.execute("SELECT version FROM schema_migrations")]
    assert versions == [v for v, _n, _s in migrations()]
    conn.close()
    assert main(["migrate"]) == 0
    assert "applied now: none" in capsys.readouterr().out


def test_env_example_lists_every_setting() -> None:
    text = (ROOT / "deploy" / ".env.example").read_text(encoding="utf-8")
    documented = set(re.findall(r"^#?\s*(BOT_[A-Z_]+)=", text, flags=re.M))
    expected = {f"BOT_{name.upper()}" for name in Settings.model_fields}
    assert expected <= documented, sorted(expected - documented)


def test_readme_settings_table_lists_every_setting() -> None:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    table = text.split("\n## Settings\n", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in table.splitlines() if line.startswith("| `BOT_")]
    documented = {name for row in rows for name in
                  re.findall(r"`(BOT_[A-Z_]+)`", row.split(" | ", 1)[0])}
    expected = {f"BOT_{name.upper()}" for name in Settings.model_fields}
    assert expected <= documented, sorted(expected - documented)


# ----------------------------------------------------------------------------- exports


def media(stored: StoredFile, kind: str, name: str | None = None) -> dict[str, Any]:
    item: dict[str, Any] = {"kind": kind, "file_id": stored.file_id,
                            "file_unique_id": stored.file_unique_id, "size": stored.size}
    if name:
        item["name"] = name
    return item


async def test_export_with_files(emulator: Emulator, tmp_path: Path) -> None:
    photo = emulator.world.files.add("photo", b"\xff\xd8 a photo")
    doc = emulator.world.files.add("document", b"%PDF-1.4 passport", file_name="паспорт.pdf",
                                   mime_type="application/pdf")
    # Security review L5: what a double click would run is saved as .bin.
    exe = emulator.world.files.add("document", b"MZ not a passport", file_name="паспорт.pdf.exe")
    hta = emulator.world.files.add("document", b"<script>", file_name="letter.HTA")
    attachments = [media(photo, "photo"), media(doc, "document", "паспорт.pdf"),
                   media(exe, "document", "паспорт.pdf.exe"), media(hta, "document", "letter.HTA"),
                   {"kind": "photo", "file_id": "GONE", "file_unique_id": "Ugone"}]
    data = tmp_path / "data"
    await seed_cases(data, attachments)
    env = cli_env(token=emulator.token, api_base_url=emulator.base_url, data_dir=str(data))
    out, files = tmp_path / "cases.csv", tmp_path / "files"
    rc, stdout, err = await run_cli("export", "--format", "csv", "--output", str(out),
                                    "--status", "new", "--with-files", str(files),
                                    env=env, cwd=tmp_path)
    assert rc == 0, err
    assert "exported 6 rows (3 cases)" in stdout
    # Cases from before the evidence vault: fetched from Telegram while the token works.
    assert "attachments: 0 from the vault, 4 from Telegram, 1 not available" in stdout
    assert lines(err) == ["  not available: 4821-0001 photo:Ugone: not in the vault; "
                          "Telegram: Telegram: Bad Request: wrong file_id or the file is "
                          "temporarily unavailable"]
    assert emulator.token not in stdout + err
    rows = list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8-sig"))))
    assert [r["person_full_name"] for r in rows] == [n for name in NAMES
                                                     for n in (name, f"{name} 2")]
    assert rows[0]["person_story"] == STORY.strip() or rows[0]["person_story"] == STORY
    got = {p.relative_to(files).as_posix(): p.read_bytes() for p in files.rglob("*")
           if p.is_file()}
    sums = got.pop("SHA256SUMS").decode()
    assert got == {f"4821-0001/photo-{photo.file_unique_id}.jpg": photo.data,
                   f"4821-0001/document-{doc.file_unique_id}.pdf": doc.data,
                   f"4821-0001/document-{exe.file_unique_id}.bin": exe.data,
                   f"4821-0001/document-{hta.file_unique_id}.bin": hta.data}
    assert sums.count("\n") == 4 and f"  4821-0001/photo-{photo.file_unique_id}.jpg" in sums
    conn = sqlite3.connect(data / "bot.sqlite3")
    audit = conn.execute("SELECT action, detail FROM audit_log").fetchall()
    conn.close()
    assert audit and audit[-1][0] == "export"
    detail = json.loads(audit[-1][1])
    assert detail["via"] == "cli" and detail["cases"] == 3 and detail["files"] == 4
    assert "Әлия" not in audit[-1][1]


def test_offline_key_export_is_sealed_and_decrypts_to_the_same_rows(
        in_tmp: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    data = in_tmp / "data"
    asyncio.run(seed_cases(data, []))
    monkeypatch.setenv("BOT_DATA_DIR", str(data))
    server = in_tmp / "server"
    server.mkdir()
    for fmt in ("csv", "jsonl", "xlsx"):
        assert main(["export", "--format", fmt, "--output", str(server / f"cases.{fmt}")]) == 0
    # The private key leaves the server.
    offline = in_tmp / "usb"
    offline.mkdir()
    (data / "keys" / "org_private.key").rename(offline / "org_private.key")
    # The verify key goes with it: decrypt checks the exports' signatures with it.
    (offline / "verify.key").write_bytes((data / "keys" / "verify.key").read_bytes())
    monkeypatch.setenv("BOT_PUBLIC_KEY_FILE", str(data / "keys" / "org_public.key"))
    sealed_dir = in_tmp / "sealed"
    sealed_dir.mkdir()
    for fmt in ("csv", "jsonl", "xlsx"):
        assert main(["export", "--format", fmt, "--output", str(sealed_dir / f"c.{fmt}")]) == 0
    printed = capsys.readouterr().out
    assert "the private key is offline" in printed and "python -m bot decrypt" in printed
    names = sorted(p.name for p in sealed_dir.iterdir())
    assert names == ["c.csv.sealed", "c.csv.sealed.sig", "c.jsonl.sealed",  # nothing else
                     "c.jsonl.sealed.sig", "c.xlsx.sealed", "c.xlsx.sealed.sig"]
    for path in sealed_dir.glob("*.sealed"):
        assert path.read_bytes().startswith(b"age-encryption.org/v1\n")
    for path in sealed_dir.iterdir():
        blob = path.read_bytes()
        for needle in (*NAMES, "Reporter 1", "4821-0001", "sister"):
            assert needle.encode() not in blob
    assert main(["export", "--format", "csv", "--output", str(sealed_dir / "x.csv"),
                 "--with-files", str(in_tmp / "f")]) == 1
    assert "--with-files needs the private key" in capsys.readouterr().err

    # On the offline computer: the same files as the key-on-server export.
    plain = in_tmp / "plain"
    plain.mkdir()
    key = str(offline / "org_private.key")
    for fmt in ("csv", "jsonl", "xlsx"):
        target = plain / f"cases.{fmt}"
        assert main(["decrypt", "--key", key, "--input", str(sealed_dir / f"c.{fmt}.sealed"),
                     "--output", str(target)]) == 0
    assert (plain / "cases.csv").read_bytes() == (server / "cases.csv").read_bytes()
    assert (plain / "cases.jsonl").read_bytes() == (server / "cases.jsonl").read_bytes()
    assert xlsx_rows(plain / "cases.xlsx") == xlsx_rows(server / "cases.xlsx")
    assert sorted(p.name for p in plain.iterdir()) == ["cases.csv", "cases.jsonl", "cases.xlsx"]
    assert "withdrawn" in (plain / "cases.csv").read_text(encoding="utf-8-sig")

    # A wrong key, and a file that is not sealed, each get one line.
    other = in_tmp / "other"
    assert main(["keys", "generate", "--out", str(other)]) == 0
    assert main(["decrypt", "--key", str(other / "org_private.key"), "--verify-key",
                 str(offline / "verify.key"), "--input", str(sealed_dir / "c.csv.sealed"),
                 "--output", str(plain / "x")]) == 1
    assert main(["decrypt", "--key", key, "--input", str(plain / "cases.csv"),
                 "--output", str(plain / "y")]) == 1
    err = lines(capsys.readouterr().err)
    assert len(err) == 2
    assert "this key cannot open this file" in err[0] and "not a sealed file" in err[1]


def xlsx_rows(path: Path) -> list[tuple[Any, ...]]:
    wb = openpyxl.load_workbook(path, read_only=True)
    try:
        return [tuple(row) for ws in wb.worksheets for row in ws.iter_rows(values_only=True)]
    finally:
        wb.close()


# ----------------------------------------------------------------------------- SIGTERM


async def start_bot(env: dict[str, str], cwd: Path) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "run", cwd=cwd, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)


async def sigterm(proc: asyncio.subprocess.Process) -> str:
    proc.send_signal(signal.SIGTERM)
    try:
        _out, err = await asyncio.wait_for(proc.communicate(), 30)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    log = err.decode()
    assert proc.returncode == 0, log
    return log


async def answer_person(user: Any) -> None:
    """One missing person, the short way: required answers, and a passport photo sent at the
    name question (kept with her files)."""
    await fill(user, {"relation": opt("sister"),
                      "full_name": [do(lambda u: u.send_photo()), "Әлия Нұрланқызы"],
                      "prefecture": opt("ili"), "what_happened": multi("no_contact"),
                      "happened_date": UNKNOWN, "taken_from": opt("home"),
                      "in_danger": opt("no"), "more_details": opt("no")})


async def draft_state(data_dir: Path, user_id: int) -> str:
    keys = load_keyring(data_dir, None, None)
    db = await Database.open(data_dir / "bot.sqlite3")
    try:
        row = await DraftRepository(db, keys.seal_draft, keys.unseal_draft).get(user_id)
    finally:
        await db.close()
    assert row is not None
    return row.state.decode("utf-8")


async def test_sigterm_mid_journey_loses_nothing(emulator: Emulator, tmp_path: Path) -> None:
    data = tmp_path / "data"
    env = cli_env(token=emulator.token, api_base_url=emulator.base_url, data_dir=str(data),
                  log_level="DEBUG")
    lang = "kk"
    emulator.world.settle = 0.3  # a person's pace: the bot's flood control stays quiet
    user = emulator.user(3001, language_code="kk")
    proc = await start_bot(env, tmp_path)
    try:
        user.timeout = 20  # the first answer waits for the process to start
        await start(user, lang)
        user.timeout = 10
        await fill(user, {"reporter_name": "Гүлжан Тохтасын", "reporter_country": opt("kz"),
                          "reporter_more": opt("yes")}, until="reporter_city")
        assert prompt(lang, "reporter_city") in user.last.plain
        # SIGTERM right behind an answer that is still on its way.
        await user.send_text("Алматы", wait=False)
        await asyncio.sleep(0.05)
    finally:
        log = await sigterm(proc)
    for secret in ("Гүлжан", "Алматы", emulator.token):
        assert secret not in log
    state = await draft_state(data, user.id)
    assert "Гүлжан Тохтасын" in state and '"kz"' in state  # every acknowledged answer

    proc = await start_bot(env, tmp_path)
    try:
        # Saved whole and the next question shown, or not taken at all and delivered again.
        await user.wait_for(prompt(lang, "reporter_citizenship"), timeout=20)
        assert "Алматы" in await draft_state(data, user.id)  # read beside the running bot
        await fill(user, {"reporter_phone": "8 701 123 45 67"}, until="relation")
        await answer_person(user)
        found = [await submit(user)]
    finally:
        log = await sigterm(proc)
    assert "Әлия" not in log and "Гүлжан" not in log
    keys = load_keyring(data, None, None)
    db = await Database.open(data / "bot.sqlite3")
    try:
        stored = await CaseRepository(db, keys.seal, keys.unseal).data(found[0])
    finally:
        await db.close()
    assert stored is not None
    assert stored["reporter"]["reporter_name"] == "Гүлжан Тохтасын"
    assert stored["reporter"]["reporter_city"] == "Алматы"
    assert stored["persons"][0]["full_name"] == "Әлия Нұрланқызы"
    assert [a["kind"] for a in stored["persons"][0]["attachments"]] == ["photo"]
    assert tr(lang, "Welcome back. We continue where you stopped:") not in user.last.plain



# ----------------------------------------------------------------------------- mistakes


def _first_schema(path: Path) -> None:
    """A database at schema version 1 (what an old bot left), with one user."""
    path.parent.mkdir(parents=True, exist_ok=True)
    _version, name, sql = migrations()[0]
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, "
                 "name TEXT NOT NULL, applied_at TEXT NOT NULL)")
    for statement in _statements(sql):
        conn.execute(statement)
    conn.execute("INSERT INTO schema_migrations VALUES (1, ?, '2024-01-01')", (name,))
    conn.execute("INSERT INTO users (user_id, language, created_at, last_seen_at)"
                 " VALUES (7, 'kk', '2024-01-01', '2024-01-02')")
    conn.commit()
    conn.close()


def _schema_version(path: Path) -> int:
    conn = sqlite3.connect(path)
    try:
        return int(conn.execute("SELECT max(version) FROM schema_migrations").fetchone()[0])
    finally:
        conn.close()


async def test_check_export_and_broadcast_never_migrate(emulator: Emulator,
                                                        tmp_path: Path) -> None:
    """Issue 16: run beside the bot, they must not change its schema; they say "run migrate"
    and exit 2. `check` opens the database read-only (Docker's health check runs it)."""
    data = tmp_path / "data"
    env = cli_env(token=emulator.token, api_base_url=emulator.base_url, data_dir=str(data))
    db_path = data / "bot.sqlite3"
    latest = migrations()[-1][0]

    # No database yet: nothing is created.
    rc, _out, err = await run_cli("check", env=env, cwd=tmp_path)
    assert rc == 2 and lines(err) == [
        f"BOT_DATA_DIR: there is no database at {db_path} yet: run migrate (or start the bot) "
        "first"]
    assert not db_path.exists()

    _first_schema(db_path)
    behind = (f"the database schema is at version 1, this bot needs {latest}: run migrate "
              "first (with the bot stopped, or restart the bot)")
    rc, _out, err = await run_cli("check", env=env, cwd=tmp_path)
    assert (rc, lines(err)) == (2, [f"BOT_DATA_DIR: {behind}"])
    rc, _out, err = await run_cli("export", "--format", "csv", "--output",
                                  str(tmp_path / "cases.csv"), env=env, cwd=tmp_path)
    assert (rc, lines(err)) == (2, [f"export: {behind}"])
    assert not (tmp_path / "cases.csv").exists()
    rc, _out, err = await run_cli("broadcast", "--text", "en=News", "--yes", "--no-wait",
                                  env=env, cwd=tmp_path)
    assert (rc, lines(err)) == (2, [f"broadcast: {behind}"])
    assert _schema_version(db_path) == 1
    assert not (data / "bot.sqlite3-wal").exists()

    rc, out, err = await run_cli("migrate", env=env, cwd=tmp_path)
    assert rc == 0 and f"schema version {latest}" in out
    rc, out, err = await run_cli("check", env=env, cwd=tmp_path)
    assert (rc, err) == (0, ""), err
    assert f"database schema version {latest}" in out


@pytest.mark.parametrize(("args", "error"), [
    (["--status", "nwe"], "argument --status: invalid choice: 'nwe' (choose from 'new', "
     "'in_review', 'needs_info', 'verified', 'referred', 'located', 'closed', 'withdrawn')"),
    (["--lang", "de"], "argument --lang: invalid choice: 'de' (choose from 'kk', 'ru', 'en')"),
    (["--since", "2024-03-05", "--until", "2024-03-01"],
     "argument --since: 2024-03-05 is after --until 2024-03-01; --since must be on or before "
     "--until"),
    (["--since", "2024-3-5"], "argument --since: '2024-3-5' is not a date as YYYY-MM-DD"),
])
def test_export_refuses_filters_that_can_only_be_mistakes(
        in_tmp: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        args: list[str], error: str) -> None:
    """Issue 16: these used to export 0 rows with exit 0."""
    data = in_tmp / "data"
    asyncio.run(seed_cases(data, []))
    monkeypatch.setenv("BOT_DATA_DIR", str(data))
    out = in_tmp / "cases.csv"
    with pytest.raises(SystemExit) as stopped:
        main(["export", "--format", "csv", "--output", str(out), *args])
    assert stopped.value.code == 2
    err = lines(capsys.readouterr().err)
    assert err[-1].endswith(f"export: error: {error}"), err
    assert any(e.startswith("usage: ") for e in err) and not out.exists()


def test_export_errors_name_the_real_output_path(
        in_tmp: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    data = in_tmp / "data"
    asyncio.run(seed_cases(data, []))
    monkeypatch.setenv("BOT_DATA_DIR", str(data))
    missing = in_tmp / "no-such-folder" / "cases.csv"
    assert main(["export", "--format", "csv", "--output", str(missing)]) == 2
    # (Only our lines: a handler an earlier in-process test left may add "Logging error"s.)
    assert [e for e in lines(capsys.readouterr().err) if e.startswith("export")] == [
        f"export: cannot write {missing}: the folder {missing.parent} does not exist"]
    taken = in_tmp / "cases.xlsx"
    (taken / "inside").mkdir(parents=True)  # a folder where the file should go
    assert main(["export", "--format", "xlsx", "--output", str(taken)]) == 1
    err = capsys.readouterr().err
    assert f"export: cannot write {taken}: " in err and ".part" not in err
    assert sorted(p.name for p in in_tmp.iterdir()) == ["cases.xlsx", "data"]


def test_every_command_and_option_explains_itself(
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    import argparse

    from bot.__main__ import _parser

    def walk(parser: argparse.ArgumentParser, name: str) -> None:
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for sub_name, sub in action.choices.items():
                    if sub_name == "broadcast" and not sub.description:
                        continue  # its parser is built only when it runs (checked below)
                    assert sub.description, f"{name} {sub_name}: no description"
                    walk(sub, f"{name} {sub_name}")
            elif action.option_strings and "-h" not in action.option_strings:
                assert action.help, f"{name} {action.option_strings}: no help"

    walk(_parser(["run"])[0], "bot")
    walk(_parser(["broadcast"])[0], "bot")
    monkeypatch.setattr(sys, "argv", ["atazhurt-bot"])
    with pytest.raises(SystemExit) as stopped:
        main(["--version"])
    assert stopped.value.code == 0
    assert re.fullmatch(r"atazhurt-bot \S+\n", capsys.readouterr().out)
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "Exit codes: 0 done; 1" in capsys.readouterr().out
