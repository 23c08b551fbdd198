"""Staff storage against a real SQLite file: workflow events, questions' windows, audit, staff."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bot.storage.cases import CaseRepository, NewCase
from bot.storage.db import Database
from bot.storage.staff import AuditLog, StaffRepository, Workflow
from bot.storage.users import UserRepository

T0, T1, T2 = "2026-11-26T12:00:00+00:00", "2026-11-26T12:10:00+00:00", "2026-11-26T13:00:00+00:00"


def sealed(data: bytes) -> bytes:
    return b"S1" + data[::-1]


def unsealed(data: bytes) -> bytes:
    assert data.startswith(b"S1")
    return data[2:][::-1]


async def test_workflow_events_questions_and_audit(tmp_path: Path) -> None:
    db = await Database.open(tmp_path / "s.sqlite3")
    await UserRepository(db).seen(42, T0)
    number = await CaseRepository(db).submit(
        NewCase(42, "ru", 1, "ili", 0, "yes", "no", 1, 1, b"{}"), T0, lambda: "1234-5678")
    wf = Workflow(db, sealed, unsealed)
    case = await wf.case(number)
    assert case is not None and (case.status, case.assignee_id) == ("new", None)

    assert await wf.set_status(case.case_id, "in_review", 7, T1) == "new"
    assert await wf.set_status(case.case_id, "in_review", 7, T1) is None  # nothing changed
    with pytest.raises(ValueError):
        await wf.set_status(case.case_id, "withdrawn", 7, T1)  # only erasure withdraws
    assert await wf.assign(case.case_id, 8, 7, T1) and not await wf.assign(case.case_id, 8, 7, T1)
    await wf.add_note(case.case_id, "Позвонить «завтра»", 7, T1)

    question = await wf.ask(case, "Где он работал?", 7, T1)
    assert await wf.waiting_question(42, T0, T0) is None  # not delivered yet
    await wf.question_sent(question, 555)
    waiting = await wf.waiting_question(42, T0, T0)
    assert waiting is not None and waiting.number == number
    assert await wf.waiting_question(42, T2, T0) is None  # asked too long ago
    assert await wf.question_for_reply(42, 555) == waiting
    assert await wf.question_for_reply(43, 555) is None  # another user's reply
    await wf.record_answer(waiting, {"kind": "text", "text": "На шахте"}, T1)
    assert await wf.waiting_question(42, T2, T0) is not None  # a follow-up soon after
    assert await wf.waiting_question(42, T2, T2) is None  # but not much later

    events = await wf.events(case.case_id)
    assert [e.kind for e in events] == ["submitted", "status", "assigned", "note", "question",
                                        "answer"]
    personal = {e.kind: e for e in events}
    for kind in ("note", "question", "answer"):
        assert "Позвонить" not in (personal[kind].detail or "")
    assert wf.reveal(personal["note"]) == {"text": "Позвонить «завтра»"}
    assert wf.reveal(personal["answer"]) == {"question": question, "kind": "text",
                                             "text": "На шахте"}
    assert wf.reveal(personal["status"]) is None

    page, total = await wf.list_cases(assignee_id=8, open_only=True)
    assert total == 1 and page[0].number == number
    assert (await wf.list_cases(status="closed"))[1] == 0

    audit = await AuditLog(db).recent()
    assert [a.action for a in audit] == ["status", "assign", "note", "ask"]
    assert audit[0].detail == {"case": number, "from": "new", "to": "in_review"}
    assert "Позвонить" not in json.dumps([a.detail for a in audit], ensure_ascii=False)
    await db.close()


async def test_staff_members(tmp_path: Path) -> None:
    db = await Database.open(tmp_path / "m.sqlite3")
    staff = StaffRepository(db)
    assert await staff.add(5, 1, T0) and not await staff.add(5, 1, T0)
    assert await staff.contains(5) and not await staff.contains(6)
    assert [m.user_id for m in await staff.all()] == [5]
    assert await staff.remove(5, 1, T1) and not await staff.remove(5, 1, T1)
    assert [(a.action, a.detail) for a in await AuditLog(db).recent()] == [
        ("staff_add", {"user_id": 5}), ("staff_remove", {"user_id": 5})]
    await db.close()
