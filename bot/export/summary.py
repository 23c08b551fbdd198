"""The non-identifying spreadsheet `/export` sends in Telegram by default.

One row per case with what lets staff count and triage but names nobody: case number, dates,
status, language, prefecture, what happened (codes, per missing person), and counts. No names,
IDs, phones, places of birth, stories or files: a Telegram export stays in Telegram's cloud and
on the staff member's devices. The full export (every answer) is `/export full` for admins,
after a warning, or the command line (`python -m bot export`).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.export.workers import DEFLATE_LEVEL
from bot.export.xlsxstream import STYLE_HEADER, XlsxStream
from bot.storage.db import Database
from bot.storage.export_queries import iter_cases

#: (column, header) of the summary, in order.
SUMMARY_COLUMNS = (
    ("case_number", "Case number"),
    ("submitted_at", "Submitted at (ISO 8601)"),
    ("updated_at", "Last change (ISO 8601)"),
    ("status", "Status (code)"),
    ("language", "Language of the relative (code)"),
    ("prefecture", "Prefecture of the first missing person (code)"),
    ("what_happened", "What happened, per missing person (codes; persons separated by |)"),
    ("persons", "Missing persons in the case"),
    ("attachments", "Attachments"),
    ("assigned", "Assigned (yes/no)"),
)
SEALED = "(sealed)"


@dataclass(frozen=True, slots=True)
class SummaryResult:
    cases: int


def _what_happened(data: dict[str, Any]) -> str:
    per_person = []
    for person in data.get("persons") or []:
        codes = person.get("what_happened") if isinstance(person, dict) else None
        if isinstance(codes, str):
            codes = [codes]
        per_person.append(";".join(str(c) for c in codes or []))
    return " | ".join(per_person)


async def export_summary(db: Database, output: Path, *, decode: Any,
                         since: str | None = None, until: str | None = None,
                         status: str | None = None, lang: str | None = None,
                         consent: str | None = None) -> SummaryResult:
    """Write the summary XLSX to `output` (created 0600). `decode` opens a case's stored data
    (raising when the private key is offline: "what happened" then reads "(sealed)")."""
    fd = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    cases = 0
    with os.fdopen(fd, "wb") as fh:
        # Sent through Telegram: the smaller file (see bot/export/workers.DEFLATE_LEVEL).
        book = XlsxStream(fh, title="Cases (summary)", compresslevel=DEFLATE_LEVEL)
        try:
            sheet = book.add_sheet("Cases", columns=len(SUMMARY_COLUMNS),
                                   widths=[12, 22, 22, 12, 8, 14, 40, 8, 8, 8],
                                   freeze_header=True, autofilter=True)
            sheet.write_row([h for _, h in SUMMARY_COLUMNS], STYLE_HEADER)
            async for case in iter_cases(db, since=since, until=until, status=status,
                                         lang=lang, consent=consent):
                try:
                    data = json.loads(decode(case.data)) if case.data else {}
                    happened = _what_happened(data if isinstance(data, dict) else {})
                except Exception:  # the key is offline, or the case was erased
                    happened = SEALED if case.data else ""
                sheet.write_row([case.number, case.submitted_at, case.updated_at, case.status,
                                 case.language, case.prefecture or "", happened,
                                 case.persons_count, case.attachments_count,
                                 "yes" if case.assignee_id is not None else "no"])
                cases += 1
            book.close()
        except BaseException:
            book.abort()
            raise
    return SummaryResult(cases)
