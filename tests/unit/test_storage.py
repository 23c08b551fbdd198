"""Storage against a real SQLite file: migrations, drafts, cases, case numbers."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.services.case_numbers import damm_digit, new_case_number, parse_case_number
from bot.storage.cases import CaseRepository, NewCase
from bot.storage.db import Database, migrations
from bot.storage.drafts import DraftRepository
from bot.storage.users import UserRepository

NOW = "2026-11-26T12:00:00+00:00"


async def test_migrations_apply_once_and_set_pragmas(tmp_path: Path) -> None:
    db = await Database.open(tmp_path / "a.sqlite3")
    assert await db.schema_version() == max(v for v, _, _ in migrations())
    assert await db.migrate() == []
    row = await db.fetchone("PRAGMA journal_mode")
    assert row is not None and row[0] == "wal"
    row = await db.fetchone("PRAGMA foreign_keys")
    assert row is not None and row[0] == 1
    row = await db.fetchone("PRAGMA secure_delete")
    assert row is not None and row[0] == 1
    assert await db.integrity_check() == "ok"
    await db.close()


async def test_draft_save_resume_and_submit(tmp_path: Path) -> None:
    path = tmp_path / "b.sqlite3"
    db = await Database.open(path)
    users, drafts, cases = UserRepository(db), DraftRepository(db), CaseRepository(db)
    user = await users.seen(42, NOW)
    assert user.language is None and user.active
    await users.set_language(42, "kk")
    await drafts.save(42, b'{"x": 1}', 3, 1, NOW)
    await drafts.mark_shown(42, 3, 99, NOW)
    await drafts.mark_shown(42, 2, 100, NOW)  # an older step never overwrites a newer one
    await db.close()

    db = await Database.open(path)  # as after a restart
    users, drafts, cases = UserRepository(db), DraftRepository(db), CaseRepository(db)
    assert (await users.get(42)).language == "kk"  # type: ignore[union-attr]
    row = await drafts.get(42)
    assert row is not None and row.state == b'{"x": 1}' and row.seq == 3
    assert row.shown_seq == 3 and row.question_message_id == 99
    data = {"persons": [{"full_name": "Әлия «Ş» 王 \"q\""}]}
    number = await cases.submit(
        NewCase(42, "kk", 1, "ili", 2, "yes", "no", 1, 1, json.dumps(data).encode()),
        NOW, new_case_number)
    assert parse_case_number(number) == number
    assert await drafts.get(42) is None
    [summary] = await cases.for_user(42)
    assert summary.number == number and summary.status == "new"
    assert await cases.data(number) == data
    await db.close()


async def test_seen_writes_at_most_hourly_but_always_reactivates(tmp_path: Path) -> None:
    db = await Database.open(tmp_path / "seen.sqlite3")
    users = UserRepository(db)

    async def stored() -> tuple[str, int]:
        row = await db.fetchone("SELECT last_seen_at, active FROM users WHERE user_id = 7")
        assert row is not None
        return row[0], row[1]

    await users.seen(7, "2026-11-26T10:05:00+00:00")
    await users.seen(7, "2026-11-26T10:59:59+00:00")  # same hour: a read, nothing written
    assert await stored() == ("2026-11-26T10:05:00+00:00", 1)
    await users.seen(7, "2026-11-26T11:00:00+00:00")
    assert await stored() == ("2026-11-26T11:00:00+00:00", 1)
    await users.mark_inactive(7)  # e.g. they had blocked the bot during a broadcast
    user = await users.seen(7, "2026-11-26T11:30:00+00:00")  # same hour, but inactive
    assert user.active and await stored() == ("2026-11-26T11:30:00+00:00", 1)
    await db.close()


async def test_language_of_falls_back_until_one_is_chosen(tmp_path: Path) -> None:
    db = await Database.open(tmp_path / "lang.sqlite3")
    users = UserRepository(db)
    assert await users.language_of(8) is None  # never seen
    assert await users.language_of(8, "ru") == "ru"
    await users.seen(8, "2026-11-26T10:05:00+00:00")
    assert await users.language_of(8, "en") == "en"  # seen, no language chosen yet
    await users.set_language(8, "kk")
    assert await users.language_of(8, "en") == "kk" and await users.language_of(8) == "kk"
    await db.close()


async def test_case_number_collision_draws_again(tmp_path: Path) -> None:
    db = await Database.open(tmp_path / "c.sqlite3")
    users, cases = UserRepository(db), CaseRepository(db)
    await users.seen(1, NOW)
    numbers = iter(["1234-5678", "1234-5678", "2222-3333"])
    case = NewCase(1, "ru", 1, None, 0, None, None, 1, 1, b"{}")
    assert await cases.submit(case, NOW, lambda: next(numbers)) == "1234-5678"
    assert await cases.submit(case, NOW, lambda: next(numbers)) == "2222-3333"
    await db.close()


async def test_failed_transaction_leaves_nothing(tmp_path: Path) -> None:
    db = await Database.open(tmp_path / "d.sqlite3")
    with pytest.raises(sqlite3.IntegrityError):
        async with db.transaction() as conn:
            insert = "INSERT INTO users (user_id, created_at, last_seen_at) VALUES (1, 'a', 'a')"
            await conn.execute(insert)
            await conn.execute(insert)
    assert await UserRepository(db).count() == 0
    await db.close()


@given(st.integers(min_value=0, max_value=9_999_999))
def test_case_numbers_catch_single_digit_errors(n: int) -> None:
    body = f"{1 + n % 9}{n:07d}"[:7]
    full = body + damm_digit(body)
    number = f"{full[:4]}-{full[4:]}"
    assert parse_case_number(number) == number
    assert parse_case_number(full) == number
    for i in range(8):
        for d in "0123456789":
            if d != full[i]:
                wrong = full[:i] + d + full[i + 1:]
                assert parse_case_number(wrong) is None
    for i in range(7):
        swapped = full[:i] + full[i + 1] + full[i] + full[i + 2:]
        if swapped != full:
            assert parse_case_number(swapped) is None


def test_new_case_numbers_are_valid_and_varied() -> None:
    numbers = {new_case_number() for _ in range(200)}
    assert len(numbers) > 190
    assert all(parse_case_number(n) == n for n in numbers)
