"""Duplicate matching on the offline computer, where the private key is kept.

With the private key offline the bot cannot read names, so it cannot find duplicates. The same
rules (bot/casework/index.py) then run here on an export: `python -m bot duplicates --key
FILE --input EXPORT --output REPORT`. The export may be sealed (as the bot writes it with the
key offline) or already opened; JSONL or CSV. Cases are compared in the export's order (the
order they were submitted), each new case against those before it, as the bot would have. The
report is a CSV of case numbers and person numbers, never names.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bot.casework.index import PersonIndex, records_of

REPORT_COLUMNS = ("case_number", "person", "possibly_same_as_case", "possibly_same_as_person",
                  "certainty", "name_score")


def _cases_from_jsonl(path: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                row = json.loads(line)
                yield str(row.get("case_number")), row


def _cases_from_csv(path: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    """Rows per person back into cases: the columns the matching needs, by export name."""
    current: tuple[str, dict[str, Any]] | None = None
    with path.open(encoding="utf-8-sig", newline="") as fh:
        for row in csv.DictReader(fh):
            number = row.get("case_number", "")
            person = {key: (row.get(f"person_{key}") or "").lstrip("'") or None
                      for key in ("full_name", "chinese_name", "other_names", "birth_date",
                                  "prefecture", "chinese_id")}
            if current is None or current[0] != number:
                if current is not None:
                    yield current
                phone = (row.get("reporter_phone") or "").lstrip("'") or None
                current = (number, {"reporter": {"reporter_phone": phone}, "persons": []})
            current[1]["persons"].append(person)
    if current is not None:
        yield current


def read_export(path: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    """(case number, answers) of every case of a plain JSONL or CSV export."""
    with path.open("rb") as fh:
        first = fh.read(1)
    return _cases_from_jsonl(path) if first == b"{" else _cases_from_csv(path)


def find_duplicates(cases: Iterator[tuple[str, dict[str, Any]]]) -> list[dict[str, Any]]:
    index = PersonIndex()
    found: list[dict[str, Any]] = []
    for case_id, (number, data) in enumerate(cases, start=1):
        records = records_of(case_id, number, data)
        for record in records:
            for match in index.matches(record):
                found.append({"case_number": number, "person": record.person,
                              "possibly_same_as_case": match.record.number,
                              "possibly_same_as_person": match.record.person,
                              "certainty": match.certainty, "name_score": match.score})
        index.add(records)
    return found


def is_plain_export(path: Path) -> bool:
    """A JSONL or CSV export as written (not sealed)."""
    with path.open("rb") as fh:
        head = fh.read(16)
    return head.startswith((b"{", b"\xef\xbb\xbfcase_number", b"case_number"))


def write_report(plain: Path, output: Path) -> int:
    """Match the persons of a plain export and write the report; returns the pairs found."""
    found = find_duplicates(read_export(plain))
    with output.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=REPORT_COLUMNS)
        writer.writeheader()
        writer.writerows(found)
    return len(found)
