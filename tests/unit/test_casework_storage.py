"""Case work storage against a real SQLite file: per-person statuses (and old cases' migration),
undo, links between persons and their shared keys, staff prompts, a relative's thread."""

from __future__ import annotations

from pathlib import Path

from bot.storage import db as dbmod
from bot.storage.cases import CaseRepository, NewCase
from bot.storage.casework import CaseworkRepository
from bot.storage.db import Database
from bot.storage.privacy import PrivacyRepository
from bot.storage.users import UserRepository

T0, T1 = "2026-11-26T12:00:00+00:00", "2026-11-26T12:10:00+00:00"


async def _case(db: Database, user: int, persons: int, number: str) -> int:
    await UserRepository(db).seen(user, T0)
    await CaseRepository(db).submit(NewCase(user, "ru", persons, "ili", 0, "no", "no", 1, 1,
                                            b"{}"), T0, lambda: number)
    row = await db.fetchone("SELECT case_id FROM cases WHERE number = ?", (number,))
    assert row is not None
    return int(row[0])


async def test_old_cases_get_one_status_per_person_from_the_case(tmp_path: Path,
                                                                 monkeypatch) -> None:
    every = dbmod.migrations()
    monkeypatch.setattr(dbmod, "migrations", lambda: [m for m in every if m[0] < 40])
    db = await Database.open(tmp_path / "old.sqlite3")
    await UserRepository(db).seen(1, T0)
    for number, persons, status in (("1111-1111", 2, "verified"), ("2222-2222", 1, "closed")):
        await db.execute(
            "INSERT INTO cases (number, user_id, language, status, persons_count, notice_version,"
            " form_version, data, submitted_at, updated_at) VALUES (?, 1, 'ru', ?, ?, 1, 1,"
            " X'', ?, ?)", (number, status, persons, T0, T0))
    monkeypatch.setattr(dbmod, "migrations", lambda: every)
    assert 40 in await db.migrate()
    rows = await db.fetchall("SELECT c.number, p.person, p.status FROM case_persons p"
                             " JOIN cases c USING (case_id) ORDER BY 1, 2")
    assert [tuple(r) for r in rows] == [("1111-1111", 1, "verified"), ("1111-1111", 2, "verified"),
                                        ("2222-2222", 1, "closed")]
    await db.close()


async def test_person_statuses_derive_the_case_and_undo_once(tmp_path: Path) -> None:
    db = await Database.open(tmp_path / "s.sqlite3")
    case_id = await _case(db, 1, 2, "1111-1111")
    repo = CaseworkRepository(db)
    assert await repo.person_statuses(case_id) == [(1, "new"), (2, "new")]

    change = await repo.set_person_status(case_id, [1], "located", 7, T1)
    assert change is not None and change.persons == ((1, "new", "located"),)
    assert (change.case_from, change.case_to) == ("new", "new")  # person 2 is still new
    both = await repo.set_person_status(case_id, None, "in_review", 7, T1)
    assert both is not None and both.persons == ((1, "located", "in_review"),
                                                 (2, "new", "in_review"))
    assert (both.case_from, both.case_to) == ("new", "in_review")
    assert await repo.set_person_status(case_id, None, "in_review", 7, T1) is None

    async def allow(conn: object) -> bool:
        return True

    async def refuse(conn: object) -> bool:
        return False

    assert await repo.undo(both.event_id, 7, T1, in_transaction=refuse) is None
    undone = await repo.undo(both.event_id, 7, T1, in_transaction=allow)
    assert undone is not None and undone.case_to == "new"
    assert await repo.person_statuses(case_id) == [(1, "located"), (2, "new")]
    assert await repo.undo(both.event_id, 7, T1, in_transaction=allow) is None  # only once
    status = await db.fetchone("SELECT status FROM cases WHERE case_id = ?", (case_id,))
    assert status is not None and status[0] == "new"
    await db.close()


async def test_links_keys_counts_and_erasure(tmp_path: Path) -> None:
    db = await Database.open(tmp_path / "l.sqlite3")
    a = await _case(db, 1, 2, "1111-1111")
    b = await _case(db, 2, 1, "2222-2222")
    c = await _case(db, 3, 1, "3333-3333")
    repo = CaseworkRepository(db)
    await repo.add_links([(b, 1, a, 2, "certain"), (c, 1, a, 1, "likely")], T1)
    await repo.add_links([(b, 1, a, 2, "certain")], T1)  # found again: one link
    links = await repo.links_of(a)
    assert [(x.number, x.person, x.other_number, x.other_person) for x in links] == [
        ("2222-2222", 1, "1111-1111", 2), ("3333-3333", 1, "1111-1111", 1)]
    keys = await repo.person_keys()
    assert keys == {(a, 2): "1111-1111/2", (b, 1): "1111-1111/2"}  # likely: not yet
    assert await repo.persons_count() == (4, 3)
    from bot.storage.export_queries import iter_cases

    rows = {c.number: c async for c in iter_cases(db)}  # what exports read
    assert rows["1111-1111"].person_key(1) == "1111-1111/1"  # linked to nobody (yet)
    assert rows["1111-1111"].person_key(2) == rows["2222-2222"].person_key(1) == "1111-1111/2"
    likely = links[1]
    assert await repo.decide_link(likely.link_id, "confirmed", 7, T1)
    assert not await repo.decide_link(likely.link_id, "confirmed", 7, T1)
    assert (await repo.person_keys())[(c, 1)] == "1111-1111/1"
    assert await repo.decide_link(links[0].link_id, "rejected", 7, T1)
    assert [x.link_id for x in await repo.links_of(a)] == [likely.link_id]

    await PrivacyRepository(db).erase_user(3, T1)  # case c withdrawn: its links go
    assert await repo.links_of(a) == []
    assert await repo.person_statuses(c) == [(1, "withdrawn")]
    await db.close()


async def test_prompts_and_threads(tmp_path: Path) -> None:
    db = await Database.open(tmp_path / "p.sqlite3")
    case_id = await _case(db, 1, 1, "1111-1111")
    repo = CaseworkRepository(db, lambda b: b[::-1], lambda b: b[::-1])
    await repo.put_prompt(-5, 10, 7, "needs_info", case_id, [1, 2], T0)
    prompt = await repo.take_prompt(-5, 10)
    assert prompt is not None and (prompt.kind, prompt.persons) == ("needs_info", (1, 2))
    assert await repo.take_prompt(-5, 10) is None
    await repo.set_thread(1, T0, message_id=5, content={"kind": "text", "text": "Привет"})
    raw = await db.fetchone("SELECT content FROM relative_threads")
    assert raw is not None and "Привет".encode() not in bytes(raw[0])
    thread = await repo.thread(1)
    assert thread is not None and thread.content == {"kind": "text", "text": "Привет"}
    await repo.clear_thread(1)
    assert await repo.thread(1) is None
    await db.close()


async def test_exports_filter_on_consent(tmp_path: Path) -> None:
    import pytest

    from bot.storage.export_queries import count_cases, iter_cases

    db = await Database.open(tmp_path / "e.sqlite3")
    for i, (share, publish) in enumerate((("yes", "anonymous"), ("no", "by_name"),
                                          ("yes", "no"), ("no", "no")), start=1):
        await UserRepository(db).seen(i, T0)
        await CaseRepository(db).submit(NewCase(i, "ru", 1, "ili", 0, share, publish, 1, 1,
                                                b"{}"), T0, lambda i=i: f"1111-000{i}")
    assert await count_cases(db) == 4
    assert await count_cases(db, consent="share") == 2
    assert await count_cases(db, consent="publish") == 2
    assert [c.number async for c in iter_cases(db, consent="share")] == ["1111-0001",
                                                                          "1111-0003"]
    with pytest.raises(ValueError, match="share or publish"):
        await count_cases(db, consent="everything")
    await db.close()
