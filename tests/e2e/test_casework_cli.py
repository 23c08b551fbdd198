"""Offline duplicate matching as an operator runs it: the private key off the server, a sealed
export, then `python -m bot duplicates` on the offline computer."""

from __future__ import annotations

import asyncio
import csv
import functools
import json
import os
from pathlib import Path

import pytest

from bot.__main__ import main
from bot.form.validators import chinese_id_check_char
from bot.services.crypto import load_keyring
from bot.storage.cases import CaseRepository, NewCase
from bot.storage.db import Database

ID = "65402319750312002" + chinese_id_check_char("65402319750312002")
PERSONS = [  # (case, persons): the same man by ID; a likely match by name, year and place
    [{"full_name": "Нұрлан Асқар", "birth_date": "1975", "prefecture": "ili"},
     {"full_name": "Ерлан", "chinese_id": ID}],
    [{"full_name": "Nurlan Askar", "birth_date": "1976-02", "prefecture": "ili"}],
    [{"full_name": "Другой человек", "chinese_id": ID}],
    [{"full_name": "Nurlan Askar", "birth_date": "1990", "prefecture": "ili"}],
]


async def _seed(data_dir: Path) -> None:
    keys = load_keyring(data_dir, None, None)
    db = await Database.open(data_dir / "bot.sqlite3")
    cases = CaseRepository(db, keys.seal, keys.unseal)
    try:
        for i, persons in enumerate(PERSONS, 1):
            await db.execute("INSERT INTO users (user_id, language, created_at, last_seen_at) "
                             "VALUES (?, 'kk', '2024-01-01', '2024-01-01')", (i,))
            data = {"consent": {}, "reporter": {}, "persons": persons}
            await cases.submit(
                NewCase(i, "kk", len(persons), "ili", 0, "yes", "no", 1, 1,
                        json.dumps(data, ensure_ascii=False).encode()),
                f"2024-03-0{i}T10:00:00+00:00", functools.partial(str, f"4821-000{i}"))
    finally:
        await db.close()


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_duplicates_offline_from_a_sealed_export(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str],
                                                 fmt: str) -> None:
    for key in list(os.environ):
        if key.startswith("BOT_"):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)
    data = tmp_path / "data"
    asyncio.run(_seed(data))
    usb = tmp_path / "usb"
    usb.mkdir()
    (data / "keys" / "org_private.key").rename(usb / "org_private.key")
    # The verify key goes with it: the export's signature is checked as decrypt does.
    (usb / "verify.key").write_bytes((data / "keys" / "verify.key").read_bytes())
    monkeypatch.setenv("BOT_DATA_DIR", str(data))
    monkeypatch.setenv("BOT_PUBLIC_KEY_FILE", str(data / "keys" / "org_public.key"))
    assert main(["export", "--format", fmt, "--output", str(tmp_path / f"c.{fmt}")]) == 0
    sealed = tmp_path / f"c.{fmt}.sealed"
    assert b"Nurlan" not in sealed.read_bytes()

    report = usb / "report.csv"
    assert main(["duplicates", "--key", str(usb / "org_private.key"), "--input", str(sealed),
                 "--output", str(report)]) == 0
    assert "wrote 2 possible duplicates" in capsys.readouterr().out
    rows = list(csv.DictReader(report.open(encoding="utf-8")))
    assert [(r["case_number"], r["person"], r["possibly_same_as_case"],
             r["possibly_same_as_person"], r["certainty"]) for r in rows] == [
        ("4821-0002", "1", "4821-0001", "1", "likely"),
        ("4821-0003", "1", "4821-0001", "2", "certain")]
    text = report.read_text(encoding="utf-8")
    assert "Nurlan" not in text and "Нұрлан" not in text  # numbers only, never names

    assert main(["duplicates", "--key", str(usb / "org_private.key"), "--input",
                 str(tmp_path / "missing"), "--output", str(report)]) == 1


def test_sandbox_plays_every_role(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    """`python -m bot sandbox --as admin`: three people and the staff group, switched with /as."""
    for key in list(os.environ):
        if key.startswith("BOT_"):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("BOT_DATA_DIR", str(tmp_path / "data"))
    lines = iter(["/staff list", "/as relative", "/start", "/as staff", "/who",
                  "/group /staffhelp"])

    def fake_input(prompt: str = "") -> str:
        try:
            return next(lines)
        except StopIteration:
            raise EOFError from None

    monkeypatch.setattr("builtins.input", fake_input)
    assert main(["sandbox", "--as", "admin"]) == 0
    shown = capsys.readouterr().out
    assert "/as relative, /as staff, /as admin" in shown and "You are the admin now" in shown
    assert "Admins (BOT_ADMIN_IDS)*\n  Dana (@dana)" in shown  # /staff list, by name
    assert "You are the relative now (user 1)." in shown
    assert "Тілді таңдаңыз" in shown  # the relative's /start
    assert "You are the staff (user 2)." in shown
    # /staffhelp in the group, in BOT_STAFF_LANGUAGE (Russian by default).
    assert "[staff group] bot:" in shown and "/find ТЕКСТ" in shown
    assert shown.rstrip().endswith("bye")


def test_export_filters_on_consent_and_carries_person_keys(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from bot.storage.casework import CaseworkRepository

    for key in list(os.environ):
        if key.startswith("BOT_"):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)
    data = tmp_path / "data"
    asyncio.run(_seed(data))  # cases 1 and 2 agreed to sharing ("yes"), see _seed

    async def share_no_and_link() -> None:
        db = await Database.open(data / "bot.sqlite3")
        try:
            await db.execute("UPDATE cases SET consent_share = 'no' WHERE number = '4821-0002'")
            ids = {r[1]: int(r[0]) for r in await db.fetchall("SELECT case_id, number FROM cases")}
            await CaseworkRepository(db).add_links(
                [(ids["4821-0003"], 1, ids["4821-0001"], 2, "certain")], "2024-03-09T10:00:00")
        finally:
            await db.close()

    asyncio.run(share_no_and_link())
    monkeypatch.setenv("BOT_DATA_DIR", str(data))
    out = tmp_path / "share.csv"
    assert main(["export", "--format", "csv", "--consent", "share", "--output", str(out)]) == 0
    rows = list(csv.DictReader(out.open(encoding="utf-8-sig")))
    assert sorted({r["case_number"] for r in rows}) == ["4821-0001", "4821-0003", "4821-0004"]
    keys = {(r["case_number"], r["person_index"]): r["person_key"] for r in rows}
    assert keys[("4821-0001", "2")] == keys[("4821-0003", "1")] == "4821-0001/2"  # linked
    assert keys[("4821-0001", "1")] == "4821-0001/1"  # linked to nobody: its own
    out = tmp_path / "all.jsonl"
    assert main(["export", "--format", "jsonl", "--output", str(out)]) == 0
    first = json.loads(out.read_text(encoding="utf-8").splitlines()[0])
    assert first["person_keys"] == ["4821-0001/1", "4821-0001/2"]
    with pytest.raises(SystemExit):
        main(["export", "--format", "csv", "--consent", "everything", "--output", str(out)])
