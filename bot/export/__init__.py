"""Staff exports of cases as CSV, XLSX or JSONL, streamed batch by batch to a file.

CSV and XLSX have one row per missing person; the case and reporter columns are repeated on
each of a case's rows, and a case without persons still gets one row. Columns are derived from
the questionnaire, in its order, so a new question appears in exports without code changes:

- ``case_number, status, language, submitted_at, updated_at, assignee_id, person_index,
  persons_in_case``;
- every question of the parts asked once (consent, reporter), then of the missing person. A
  column is named after the question id, prefixed with its part unless the id already starts
  with it (``consent_share``, ``reporter_country``, ``person_full_name``). The consent part is
  followed by ``notice_version`` and ``consent_at`` (when the last consent answer was given);
- a single or multiple choice gives two columns: ``<col>`` with the stable codes and
  ``<col>_label`` with the English labels (several answers joined by ";" and "; ");
- attachments give ``<col>`` ("kind:file_unique_id", with the file name in brackets when
  Telegram gave one, joined by "; ") and ``<col>_count``;
- free text is exported exactly as the relative wrote it; a voice answer is shown as
  ``[voice message, file_unique_id=..., 0:12]``; dates stay as stored (ISO 8601 ``1975``,
  ``2018-03``, ``2018-03-12``, or ``unknown``, with the EDTF extensions for what relatives
  write: ``2019-21`` spring 2019 (22 summer, 23 autumn, 24 winter), ``197X`` the 1970s, and a
  trailing ``~`` when approximate, ``1975~``); phones in E.164. Answers to questions no longer
  in the form are only in JSONL.

Formula injection (OWASP "CSV injection"): a spreadsheet reads a cell that starts with ``=``,
``+``, ``-`` or ``@`` (or a tab or carriage return) as a formula, and a relative's answer could
be crafted to run one on a staff member's computer. Excel in Russian and Kazakh locales opens a
``.csv`` with ";" as the separator, so a cell can also start after a ";" (or a TAB) inside the
text. In CSV every such trigger gets an apostrophe in front of it, as OWASP recommends: at the
start of the text and after every ",", ";", TAB, line break or quote in it (``'=HYPERLINK(...)``,
``'+77011234567``, ``a;'=1+1``), so no split of a line on ",", ";" or TAB gives a cell that
starts with a trigger. The apostrophe shows in the spreadsheet and is the only change made to
any CSV cell (remove it when feeding a CSV back into another system). CSV is for programs;
staff open XLSX. In XLSX every answer is a text cell (never a formula,
number or link) and such cells also carry Excel's "quote prefix" style, so the value is exactly
as stored (``+77011234567`` stays readable) and stays text even when the cell is edited. Excel
holds at most 32,767 characters in a cell: a longer XLSX cell is cut, with a marker saying so
(CSV and JSONL are never cut).

JSONL has one object per case (not per person): the metadata columns followed by the stored
answers exactly as kept (``form_version``, ``notice_version``, ``language``, ``consent``,
``consent_at``, ``reporter``, ``persons``), UTF-8, not ASCII-escaped.

The file is written under a temporary name next to ``output`` (mode 0600) and renamed when
complete, so a failed or cancelled export leaves no partial file. The bot's event loop keeps
serving meanwhile: a large export (:data:`PARALLEL_MIN_CASES` cases or more) is read and
encoded by worker processes, one per CPU, each taking key ranges of ``batch`` cases with its own
read-only connection, and this process writes their results in order; a smaller one is encoded
batch by batch in a thread while the next batch is read. Either way at most a few batches are
held in memory. Unsealing (about 70 µs a case with PyNaCl, which holds the GIL) and JSON
decoding are most of the cost, so they run in the workers too: ``decode`` must be
:func:`parallel_safe` for that, else the export stays in this process.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import IO

from bot.export.csv import csv_cells, csv_safe
from bot.export.plan import (
    CASE_COLUMNS,
    FORMATS,
    FORMULA_TRIGGERS,
    XLSX_CELL_LIMIT,
    Cell,
    Column,
    Decode,
    ExportError,
    ExportFormat,
    ExportPlan,
    ExportResult,
    _Writer,
    column_names,
    identity,
    json_case,
)
from bot.export.workers import (
    DEFLATE_LEVEL,
    MAX_WORKERS,
    PARALLEL_MIN_CASES,
    NoWorkerProcesses,
    _encode_here,
    _encode_in_workers,
    _in_thread,
    _worker_count,
    _writer,
    parallel_safe,
)
from bot.export.xlsx import xlsx_fit
from bot.form.model import Form
from bot.storage.db import Database
from bot.storage.export_queries import count_cases

log = logging.getLogger(__name__)

__all__ = [
    "CASE_COLUMNS",
    "DEFLATE_LEVEL",
    "FORMATS",
    "FORMULA_TRIGGERS",
    "MAX_WORKERS",
    "PARALLEL_MIN_CASES",
    "XLSX_CELL_LIMIT",
    "Cell",
    "Column",
    "Decode",
    "ExportError",
    "ExportFormat",
    "ExportPlan",
    "ExportResult",
    "check_filters",
    "column_names",
    "csv_cells",
    "csv_safe",
    "export_cases",
    "identity",
    "json_case",
    "parallel_safe",
    "xlsx_fit",
]



def check_filters(since: str | None = None, until: str | None = None,
                  status: str | None = None, lang: str | None = None) -> None:
    """ValueError, naming the valid values, for a filter that can only select nothing by
    mistake: an unknown status or language, or ``since`` after ``until``."""
    from bot.i18n import LANGUAGES
    from bot.storage.staff import FINISHED, STATUSES

    statuses = tuple(dict.fromkeys((*STATUSES, *FINISHED)))
    if status is not None and status not in statuses:
        raise ValueError(f"unknown status {status!r}; use one of {', '.join(statuses)}")
    if lang is not None and lang not in LANGUAGES:
        raise ValueError(f"unknown language {lang!r}; use one of {', '.join(LANGUAGES)}")
    if since is not None and until is not None and since > until:
        raise ValueError(f"since {since} is after until {until}")


def _temp_path(output: Path) -> Path:
    """A hidden name next to ``output`` for the file being written."""
    return output.with_name(f".{output.name}.{secrets.token_hex(6)}.part")


def _finish(writer: _Writer, fh: IO[bytes]) -> None:
    """Close the writer, then make the file durable before it is renamed into place."""
    writer.close()
    fh.flush()
    os.fsync(fh.fileno())
    fh.close()


async def export_cases(
    db: Database,
    form: Form,
    *,
    fmt: ExportFormat,
    output: Path,
    since: str | None = None,
    until: str | None = None,
    status: str | None = None,
    lang: str | None = None,
    consent: str | None = None,
    decode: Decode = identity,
    progress: Callable[[int], None] | None = None,
    batch: int = 500,
    workers: int | None = None,
    deflate_level: int = DEFLATE_LEVEL,
) -> ExportResult:
    """Export the cases matching the filters to ``output`` (replaced only when complete).

    ``since``/``until`` are inclusive YYYY-MM-DD dates on ``submitted_at``; ``decode`` turns
    the stored ``cases.data`` into JSON bytes; ``progress`` gets the number of cases done after
    every batch. Raises ValueError for a bad format or date, ExportError for an unreadable case.

    ``workers`` processes read and encode the cases, each its own ranges of ``batch`` cases
    (half as many for XLSX), while this process writes the file; by default one per CPU (at
    most four) for exports of at least :data:`PARALLEL_MIN_CASES` cases when ``decode`` is
    :func:`parallel_safe`, else (or with ``workers=0``) a thread of this process does the work.
    ``deflate_level`` is XLSX's zlib level (6, the smaller file, unless the caller prefers speed).
    """
    if fmt not in FORMATS:
        raise ValueError(f"unknown export format {fmt!r}; use one of {', '.join(FORMATS)}")
    if batch < 1:
        raise ValueError("batch must be at least 1")
    check_filters(since, until, status, lang)
    plan = ExportPlan(form)
    filters = {"since": since, "until": until, "status": status, "lang": lang,
               "consent": consent}  # consent: share or publish (storage/export_queries.py)
    # Counting reads the filters first, so a bad date fails before any file is made.
    total = await count_cases(db, **filters)
    n_workers = _worker_count(db, decode, total, batch, workers)
    output = Path(output)
    tmp = _temp_path(output)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    fh = os.fdopen(fd, "wb", buffering=1 << 20)
    done = False
    writer: _Writer | None = None
    try:
        writer = _writer(fmt, fh, plan, deflate_level)
        if n_workers:
            # An XLSX range encodes to twice the bytes of CSV: half as many cases each keeps
            # the results in flight (two per worker) as small.
            task = max(1, batch // 2) if fmt == "xlsx" else batch
            try:
                rows, cases = await _encode_in_workers(db, form, fmt, writer, decode, filters,
                                                       task, n_workers, progress)
            except NoWorkerProcesses as exc:
                log.warning("export: no worker processes here (%s); encoding in this one", exc)
                n_workers = 0
        if not n_workers:
            rows, cases = await _encode_here(db, plan, fmt, writer, decode, filters, batch,
                                             progress)
        await _in_thread(_finish, writer, fh)
        os.replace(tmp, output)
        done = True
    finally:
        if not done:
            if writer is not None:
                writer.abort()
            with contextlib.suppress(Exception):
                fh.close()
            tmp.unlink(missing_ok=True)
    return ExportResult(rows=rows, cases=cases)
