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
  ``2018-03``, ``2018-03-12``, or ``unknown``); phones in E.164. Answers to questions no longer
  in the form are only in JSONL.

Formula injection (OWASP "CSV injection"): a spreadsheet reads a cell that starts with ``=``,
``+``, ``-`` or ``@`` (or a tab or carriage return) as a formula, and a relative's answer could
be crafted to run one on a staff member's computer. In CSV such a cell gets a leading
apostrophe, as OWASP recommends (``'=HYPERLINK(...)``, ``'+77011234567``, ``'-``): the
apostrophe shows in the spreadsheet and is the only change made to any CSV cell (remove it when
feeding a CSV back into another system). In XLSX every answer is a text cell (never a formula,
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

import asyncio
import collections
import contextlib
import functools
import gc
import importlib
import json
import os
import pickle
import re
import secrets
import struct
import subprocess
import sys
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Literal, NamedTuple, Protocol, TypeVar

from bot.form.model import Form, Group, Question
from bot.services.xlsx_stream import (
    NEEDS_ESCAPE,
    STYLE_HEADER,
    STYLE_TOP,
    STYLE_TOP_QUOTED,
    STYLE_WRAP,
    STYLE_WRAP_QUOTED,
    SheetStream,
    XlsxStream,
    column_letter,
    xml_text,
)
from bot.storage.db import Database, identity
from bot.storage.export_queries import (
    CaseKey,
    CaseRow,
    count_cases,
    fetch_case_range,
    iter_case_batches,
    iter_key_ranges,
    open_reader,
)

ExportFormat = Literal["csv", "xlsx", "jsonl"]
FORMATS: tuple[ExportFormat, ...] = ("csv", "xlsx", "jsonl")
Cell = str | int | None
Decode = Callable[[bytes], bytes]
T = TypeVar("T")

#: First characters that make a spreadsheet read a cell as a formula (OWASP).
FORMULA_TRIGGERS = frozenset("=+-@\t\r")
#: Excel's limit on the length of a cell, in UTF-16 code units.
XLSX_CELL_LIMIT = 32_767
#: Text questions allowing at least this many characters get wrapped, wide XLSX columns.
LONG_TEXT = 500
MAX_WIDTH = 60
_WIDTH_SAMPLE_ROWS = 2_000
_CACHE_LIMIT = 4_096  # encoded choice answers kept per column (combinations of a multi choice)

CASE_COLUMNS = (
    ("case_number", "Case number"),
    ("status", "Status (code)"),
    ("language", "Language of the relative (code)"),
    ("submitted_at", "Submitted at (ISO 8601)"),
    ("updated_at", "Last change (ISO 8601)"),
    ("assignee_id", "Assigned staff member (Telegram id)"),
    ("person_index", "Which missing person of the case this row is (1-based)"),
    ("persons_in_case", "Missing persons in the case"),
)
_NUMBER_COLUMNS = frozenset(("assignee_id", "person_index", "persons_in_case"))
_INT_OR_STR = (int, str)


class ExportError(RuntimeError):
    """A case could not be exported; the message names the case number, never its content."""


@dataclass(frozen=True, slots=True)
class ExportResult:
    """What an export wrote."""

    rows: int  # CSV/XLSX rows (one per missing person) or JSONL lines (one per case)
    cases: int


@dataclass(frozen=True, slots=True)
class Column:
    """One CSV/XLSX column."""

    name: str
    description: str  # English, for the XLSX "Columns" sheet
    wrap: bool = False  # long free text
    number: bool = False


# --------------------------------------------------------------------------- values

_TEXT, _OPTION, _ATTACH = range(3)


class _Field(NamedTuple):
    key: str  # the question id in the stored answers
    kind: int  # _TEXT (one column), _OPTION or _ATTACH (two columns)
    labels: dict[str, str]  # option code -> English label
    col: int  # index of its first column


def _column_name(group: Group, q: Question) -> str:
    return q.id if q.id.startswith(group.id + "_") else f"{group.id}_{q.id}"


def _fields(group: Group, first_col: int) -> tuple[list[_Field], list[Column]]:
    fields: list[_Field] = []
    columns: list[Column] = []
    for q in group.questions:
        name = _column_name(group, q)
        col = first_col + len(columns)
        labels = {o.code: o.label for o in q.options}
        if q.type in ("single", "multi"):
            fields.append(_Field(q.id, _OPTION, labels, col))
            columns += [Column(name, f"{q.short} (codes)"),
                        Column(f"{name}_label", f"{q.short} (English labels)")]
        elif q.type == "attachments":
            fields.append(_Field(q.id, _ATTACH, labels, col))
            columns += [Column(name, f"{q.short} (kind:file_unique_id)", wrap=True),
                        Column(f"{name}_count", f"{q.short} (number)", number=True)]
        else:
            fields.append(_Field(q.id, _TEXT, labels, col))
            columns.append(Column(name, q.short, wrap=q.type == "text" and q.max_len >= LONG_TEXT))
    return fields, columns


def _duration(seconds: float) -> str:
    s = int(seconds)
    h, rest = divmod(s, 3600)
    return f"{h}:{rest // 60:02d}:{rest % 60:02d}" if h else f"{rest // 60}:{rest % 60:02d}"


def _voice(media: dict[str, Any]) -> str:
    kind = str(media.get("kind") or "voice")
    parts = ["voice message" if kind == "voice" else f"{kind} message"]
    ref = media.get("file_unique_id") or media.get("file_id")
    if ref:
        parts.append(f"file_unique_id={ref}")
    duration = media.get("duration")
    if isinstance(duration, int | float) and not isinstance(duration, bool):
        parts.append(_duration(duration))
    return "[" + ", ".join(parts) + "]"


def _other_text(value: Any) -> str:
    """A non-string answer to a text question: a voice message, or anything else as JSON."""
    if isinstance(value, dict) and isinstance(value.get("voice"), dict):
        return _voice(value["voice"])
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def _attachment(item: Any) -> str:
    if not isinstance(item, dict):
        return str(item)
    ref = f"{item.get('kind') or 'file'}:{item.get('file_unique_id') or item.get('file_id') or '?'}"
    name = item.get("name")
    return f"{ref} ({name})" if name else ref


def _field_cells(f: _Field, v: Any) -> tuple[Cell, ...]:
    """The cells of one answer: one for text, two (codes and labels, or list and count)."""
    if f.kind == _TEXT:
        return (v if v is None or v.__class__ is str else _other_text(v),)
    if f.kind == _OPTION:
        if v is None:
            return (None, None)
        if isinstance(v, str):
            return (v, f.labels.get(v, v))
        if isinstance(v, list):
            codes = [str(c) for c in v]
            return (";".join(codes), "; ".join([f.labels.get(c, c) for c in codes]))
        return (_other_text(v), None)
    if v is None:
        return (None, 0)
    if isinstance(v, list):
        return ("; ".join([_attachment(a) for a in v]) if v else None, len(v))
    return (_other_text(v), 1)


def _answers(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _option_key(v: Any) -> Any:
    """A hashable key for a choice answer (a code or a list of codes), or None."""
    if v.__class__ is str:
        return v
    if isinstance(v, list) and all(c.__class__ is str for c in v):
        return tuple(v)
    return None


class ExportPlan:
    """The export's columns, derived from the form, and how a case becomes rows of them."""

    def __init__(self, form: Form) -> None:
        columns = [Column(n, d, number=n in _NUMBER_COLUMNS) for n, d in CASE_COLUMNS]
        #: (key in the stored data, fields, column of notice_version when consent_at follows)
        self.once: list[tuple[str, list[_Field], int | None]] = []
        self.person_fields: list[_Field] = []
        person_columns: list[Column] = []
        for group in form.groups:
            if group.repeat:
                continue
            fields, cols = _fields(group, len(columns))
            columns += cols
            extra = len(columns) if group.id == "consent" else None
            self.once.append((group.id, fields, extra))
            if extra is not None:
                columns += [Column("notice_version", "Version of the privacy notice agreed to",
                                   number=True),
                            Column("consent_at", "When the consent was given (ISO 8601)")]
        self.person_fields, person_columns = _fields(form.repeat_group, len(columns))
        columns += person_columns
        self.person_width = len(person_columns)
        names = [c.name for c in columns]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"the form gives duplicate export columns: {', '.join(dupes)}")
        self.columns: tuple[Column, ...] = tuple(columns)
        self.names: tuple[str, ...] = tuple(names)

    @staticmethod
    def head(case: CaseRow) -> list[Cell]:
        """The cells before ``person_index``."""
        return [case.number, case.status, case.language, case.submitted_at, case.updated_at,
                case.assignee_id]

    @staticmethod
    def consent_extra(case: CaseRow, data: dict[str, Any]) -> list[Cell]:
        """``notice_version`` and ``consent_at`` (the latest consent answer's time)."""
        at = data.get("consent_at")
        latest = max(map(str, at.values())) if at.__class__ is dict and at else None
        notice = data.get("notice_version", case.notice_version)
        if notice is not None and not isinstance(notice, _INT_OR_STR):
            notice = str(notice)
        return [notice, latest]

    @staticmethod
    def persons(data: dict[str, Any]) -> list[dict[str, Any]]:
        """The answers of each missing person, in order."""
        persons = data.get("persons")
        return [_answers(p) for p in persons] if isinstance(persons, list) else []

    def rows(self, case: CaseRow, data: dict[str, Any]) -> list[list[Cell]]:
        """One row of cells per missing person (one row, ``persons_in_case`` 0, when none)."""
        shared: list[Cell] = []
        for key, fields, extra in self.once:
            answers = _answers(data.get(key))
            for f in fields:
                shared += _field_cells(f, answers.get(f.key))
            if extra is not None:
                shared += self.consent_extra(case, data)
        head = self.head(case)
        persons = self.persons(data)
        if not persons:
            return [[*head, None, 0, *shared, *([None] * self.person_width)]]
        out = []
        for i, person in enumerate(persons, 1):
            row = [*head, i, len(persons), *shared]
            for f in self.person_fields:
                row += _field_cells(f, person.get(f.key))
            out.append(row)
        return out


def json_case(case: CaseRow, data: dict[str, Any]) -> dict[str, Any]:
    """The JSONL object of one case: metadata columns, then every stored answer as kept."""
    meta: dict[str, Any] = {
        "case_number": case.number, "status": case.status, "language": case.language,
        "submitted_at": case.submitted_at, "updated_at": case.updated_at,
        "assignee_id": case.assignee_id, "persons_count": case.persons_count,
        "prefecture": case.prefecture, "attachments_count": case.attachments_count,
        "consent_share": case.consent_share, "consent_publish": case.consent_publish,
        "notice_version": case.notice_version,
    }
    meta.update(data)
    return meta


def csv_safe(value: str) -> str:
    """Prefix an apostrophe when a spreadsheet would read the text as a formula."""
    return "'" + value if value and value[0] in FORMULA_TRIGGERS else value


def _utf16_len(s: str) -> int:
    return len(s.encode("utf-16-le", "surrogatepass")) // 2


def xlsx_fit(value: str) -> str:
    """Cut text to Excel's cell limit with a visible marker (unchanged when it fits)."""
    if len(value) <= XLSX_CELL_LIMIT // 2 or _utf16_len(value) <= XLSX_CELL_LIMIT:
        return value
    marker = f" […truncated: {len(value)} characters in full, see the CSV or JSONL export]"
    room = XLSX_CELL_LIMIT - len(marker)
    used = 0
    for i, ch in enumerate(value):
        used += 2 if ord(ch) > 0xFFFF else 1
        if used > room:
            return value[:i] + marker
    return value + marker


def column_names(form: Form) -> list[str]:
    """The CSV/XLSX header for ``form``, in order."""
    return list(ExportPlan(form).names)


# --------------------------------------------------------------------------- writers


try:  # Linux: bigger pipes from the worker processes
    _fcntl: Any = importlib.import_module("fcntl")
except ImportError:  # pragma: no cover - Windows
    _fcntl = None

try:  # optional: about three times faster than json, and decoding is a third of a CSV export
    _orjson: Any = importlib.import_module("orjson")
except ImportError:  # pragma: no cover - depends on the installation
    _orjson = None


def _loads(data: bytes) -> Any:
    if _orjson is not None:
        try:
            return _orjson.loads(data)
        except ValueError:
            pass  # what orjson refuses (NaN, huge integers) json may still read
    return json.loads(data)


def _dumps(obj: Any) -> bytes:
    if _orjson is not None:
        try:
            return bytes(_orjson.dumps(obj))
        except TypeError:
            pass  # integers beyond 64 bits
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _decoded(case: CaseRow, decode: Decode) -> dict[str, Any]:
    try:
        data = _loads(decode(case.data))
    except Exception as exc:
        raise ExportError(f"case {case.number}: its stored answers could not be read") from exc
    if not isinstance(data, dict):
        raise ExportError(f"case {case.number}: its stored answers are not a JSON object")
    return data


class _Chunk(NamedTuple):
    """One batch of cases, encoded (in a worker process or thread) and ready to be written."""

    data: bytes  # CSV/JSONL: the lines; XLSX: the rows' XML, see _XlsxEncoder
    rows: int
    cases: int
    widths: list[list[int]] | None = None  # XLSX: text widths of the batch's first rows


class _Encoder(Protocol):
    """Turns a batch of cases into bytes of one format; pure, so it can run anywhere."""

    def encode(self, cases: list[CaseRow], decode: Decode, sample: int) -> _Chunk: ...


class _Writer(Protocol):
    """Writes encoded batches, in order, into the file, then finishes it."""

    def write(self, chunk: _Chunk) -> None: ...
    def close(self) -> None: ...
    def abort(self) -> None: ...


def _csv_text(v: str) -> str:
    """One non-empty text cell for CSV: formula guard, then csv's QUOTE_MINIMAL quoting."""
    if v[0] in FORMULA_TRIGGERS:
        v = "'" + v
    if '"' in v:
        return '"' + v.replace('"', '""') + '"'
    if "," in v or "\n" in v or "\r" in v:
        return '"' + v + '"'
    return v


def csv_cells(cells: list[Cell]) -> list[str]:
    """Encode cells as the csv module's default dialect would, after the formula guard.

    The same text as ``csv.writer`` (QUOTE_MINIMAL, "," and '"', "\\r\\n") for rows of more
    than one field; a test compares the two on arbitrary text.
    """
    return ["" if v is None else _csv_text(v) if v.__class__ is str and v else str(v)
            for v in cells]


def _guard(v: Cell) -> Cell:
    """The CSV formula guard on one cell (see the module's docstring)."""
    if isinstance(v, str) and v and v[0] in FORMULA_TRIGGERS:
        return "'" + v
    return v


_CSV_EMPTY = {_TEXT: "", _OPTION: ",", _ATTACH: ",0"}  # unanswered, as _field_cells gives
#: Per field: (question id, kind, text when unanswered, cache of "code,label" by answer, field)
_Compiled = list[tuple[str, int, str, dict[Any, str], _Field]]


#: A CSV text cell that needs neither the formula guard nor quotes (checked in one call).
_CSV_PLAIN = re.compile('[^=+\\-@\t\r",\n][^",\r\n]*')
#: The metadata cells of a row (a case's number, status, language and times), when plain.
_CSV_PLAIN_HEAD = re.compile('(?:[^=+\\-@\t\r",\n][^",\r\n]*,){5}')


class _CsvEncoder:
    """CSV lines, quoted here exactly as ``csv.writer`` would (the csv module looks at every
    character in C, which is about twice as slow on these long texts as ``in`` and
    ``replace``). The hot loop is :meth:`_part`; choices are encoded once per answer, and the
    cells shared by a case's rows once per case."""

    def __init__(self, plan: ExportPlan) -> None:
        self._plan = plan
        self._once = [(key, self._compile(fields), extra) for key, fields, extra in plan.once]
        self._person = self._compile(plan.person_fields)
        self._blank = ",".join(csv_cells([None] * plan.person_width))

    @staticmethod
    def _compile(fields: list[_Field]) -> _Compiled:
        return [(f.key, f.kind, _CSV_EMPTY[f.kind], {}, f) for f in fields]

    @staticmethod
    def _part(answers: dict[str, Any], fields: _Compiled, out: list[str]) -> None:
        get = answers.get
        append = out.append
        triggers = FORMULA_TRIGGERS
        for key, kind, empty, cache, f in fields:
            v = get(key)
            if v is None:
                append(empty)
            elif kind == _TEXT:
                if v.__class__ is not str:
                    v = _other_text(v)
                if v:  # _csv_text(), inline: this is the innermost loop
                    if v[0] in triggers:
                        v = "'" + v
                    if '"' in v:
                        v = '"' + v.replace('"', '""') + '"'
                    elif "," in v or "\n" in v or "\r" in v:
                        v = '"' + v + '"'
                append(v)
            elif kind == _OPTION:
                try:  # a code, or a list of codes
                    append(cache[v if v.__class__ is str else
                                 tuple(v) if v.__class__ is list else None])
                except (KeyError, TypeError):
                    text = ",".join(csv_cells(list(_field_cells(f, v))))
                    k = _option_key(v)
                    if k is not None and len(cache) < _CACHE_LIMIT:
                        cache[k] = text
                    append(text)
            elif v.__class__ is list:
                text = "; ".join([_attachment(a) for a in v]) if v else ""
                if text and not _CSV_PLAIN.fullmatch(text):
                    text = _csv_text(text)
                append(f"{text},{len(v)}")
            else:
                append(",".join(csv_cells(list(_field_cells(f, v)))))

    def encode(self, cases: list[CaseRow], decode: Decode, sample: int = 0) -> _Chunk:
        plan = self._plan
        part = self._part
        person_fields = self._person
        lines: list[str] = []
        append = lines.append
        for case in cases:
            data = _decoded(case, decode)
            before = (f"{case.number},{case.status},{case.language},{case.submitted_at},"
                      f"{case.updated_at},")
            if _CSV_PLAIN_HEAD.fullmatch(before) is None:
                before = ",".join(csv_cells(plan.head(case)[:5])) + ","
            assignee = case.assignee_id
            if assignee is not None:
                before += str(assignee) if assignee.__class__ is int else csv_cells([assignee])[0]
            shared: list[str] = []
            for key, fields, extra in self._once:
                answers = data.get(key)
                part(answers if answers.__class__ is dict else {}, fields, shared)
                if extra is not None:
                    shared += csv_cells(plan.consent_extra(case, data))
            after = ",".join(shared)
            persons = data.get("persons")
            if persons.__class__ is not list or not persons:
                append(f"{before},,0,{after},{self._blank}")
                continue
            n = len(persons)
            for i, person in enumerate(persons, 1):
                cells = [f"{before},{i},{n},{after}"]
                part(person if person.__class__ is dict else {}, person_fields, cells)
                append(",".join(cells))
        append("")
        encoded = "\r\n".join(lines).encode("utf-8") if len(lines) > 1 else b""
        return _Chunk(encoded, len(lines) - 1, len(cases))


#: Written data is flushed to disk every this many bytes while the export runs, so that the
#: fsync before the rename does not wait for the whole file at the end.
SYNC_EVERY = 32 << 20


def _sync_now(fh: IO[bytes], synced: int) -> int:
    """fdatasync ``fh`` when SYNC_EVERY bytes were written since ``synced``; the new mark."""
    try:
        position = fh.tell()
        if position - synced < SYNC_EVERY:
            return synced
        fh.flush()
        os.fdatasync(fh.fileno())
    except (OSError, ValueError, AttributeError):  # not a file on disk (tests: BytesIO)
        return synced
    return position


class _CsvWriter:
    """CSV: UTF-8 with a byte-order mark, "," and '"' with minimal quoting, CRLF lines."""

    def __init__(self, fh: IO[bytes], plan: ExportPlan) -> None:
        self._fh = fh
        self._synced = 0
        fh.write(b"\xef\xbb\xbf")  # the UTF-8 byte-order mark: Excel then reads UTF-8
        fh.write((",".join(csv_cells(list(plan.names))) + "\r\n").encode("utf-8"))

    def write(self, chunk: _Chunk) -> None:
        self._fh.write(chunk.data)
        self._synced = _sync_now(self._fh, self._synced)

    def close(self) -> None:
        self._fh.flush()

    def abort(self) -> None:
        pass


class _JsonlEncoder:
    """JSONL: one case per line, UTF-8."""

    def __init__(self, plan: ExportPlan) -> None:
        self._plan = plan

    def encode(self, cases: list[CaseRow], decode: Decode, sample: int = 0) -> _Chunk:
        lines = [_dumps(json_case(case, _decoded(case, decode))) for case in cases]
        return _Chunk(b"\n".join(lines) + b"\n" if lines else b"", len(lines), len(cases))


class _JsonlWriter(_CsvWriter):
    def __init__(self, fh: IO[bytes], plan: ExportPlan) -> None:
        self._fh = fh
        self._synced = 0


_ROW = "\x00"  # stands for the row number in encoded XLSX rows (escaped wherever it is text)
_ROW_END = "\x01"  # separates encoded XLSX rows (likewise never left in escaped text)


def _numbered(data: bytes, first: int, group: int = 64) -> Iterator[tuple[bytes, int]]:
    """Encoded XLSX rows with their row numbers, the first being ``first``: (XML, rows),
    ``group`` rows at a time (copies of a whole batch would be most of the memory used)."""
    if not data:
        return
    rows = data.split(b"\x01")
    for i in range(0, len(rows), group):
        part = rows[i:i + group]
        yield b"".join([row.replace(b"\x00", b"%d" % r)
                        for r, row in enumerate(part, first + i)]), len(part)


class _XlsxEncoder:
    """The "Cases" sheet's ``<row>``/``<c>`` XML, as xlsxwriter writes it for
    ``write_string``/``write_number`` (inline strings, the same escaping, the same styles).

    Row numbers are left as a placeholder (a batch does not know where it starts when it is
    encoded in another process); the writer fills them in. Choices are encoded once per code,
    and the cells repeated on every row of a case once per case.
    """

    def __init__(self, plan: ExportPlan) -> None:
        self._plan = plan
        text = [f'<c r="{column_letter(c)}{_ROW}" s="{STYLE_WRAP if col.wrap else STYLE_TOP}"'
                ' t="inlineStr"><is>' for c, col in enumerate(plan.columns)]
        quoted = [f'<c r="{column_letter(c)}{_ROW}" s="'
                  f'{STYLE_WRAP_QUOTED if col.wrap else STYLE_TOP_QUOTED}" t="inlineStr"><is>'
                  for c, col in enumerate(plan.columns)]
        self._number = [f'<c r="{column_letter(c)}{_ROW}"'
                        f' s="{STYLE_WRAP if col.wrap else STYLE_TOP}"><v>'
                        for c, col in enumerate(plan.columns)]
        self._text = (text, quoted)
        self._choices: dict[int, dict[Any, str]] = {}

    def _cell(self, c: int, v: Cell) -> str:
        """The XML of one cell in column ``c`` (row number left as a placeholder)."""
        if v is None:
            return ""
        if v.__class__ is int:
            return f"{self._number[c]}{v:.16G}</v></c>"
        s = v if v.__class__ is str else str(v)
        if not s:
            return ""
        if len(s) > XLSX_CELL_LIMIT // 2:
            s = xlsx_fit(s)
        start = self._text[s[0] in FORMULA_TRIGGERS][c]
        if NEEDS_ESCAPE.search(s) is not None:
            s = xml_text(s)
        if s[0].isspace() or s[-1].isspace():
            return f'{start}<t xml:space="preserve">{s}</t></is></c>'
        return f"{start}<t>{s}</t></is></c>"

    def _part(self, answers: dict[str, Any], fields: list[_Field], out: list[str]) -> None:
        get = answers.get
        append = out.append
        cell = self._cell
        choices = self._choices
        for f in fields:
            v = get(f.key)
            if v is None and f.kind != _ATTACH:
                continue
            if f.kind == _TEXT:
                append(cell(f.col, v if v.__class__ is str else _other_text(v)))
            elif f.kind == _OPTION and (key := _option_key(v)) is not None:
                table = choices.setdefault(f.col, {})
                xml = table.get(key)
                if xml is None:
                    a, b = _field_cells(f, v)
                    xml = cell(f.col, a) + cell(f.col + 1, b)
                    if len(table) < _CACHE_LIMIT:
                        table[key] = xml
                append(xml)
            else:
                a, b = _field_cells(f, v)
                append(cell(f.col, a) + cell(f.col + 1, b))

    def encode(self, cases: list[CaseRow], decode: Decode, sample: int = 0) -> _Chunk:
        plan = self._plan
        cell = self._cell
        widths: list[list[int]] | None = [] if sample > 0 else None
        out: list[bytes] = []
        start = f'<row r="{_ROW}">'
        for case in cases:
            data = _decoded(case, decode)
            if widths is not None and len(widths) < sample:  # the first rows set the widths
                for row in plan.rows(case, data)[: sample - len(widths)]:
                    widths.append([len(v) + 2 if isinstance(v, str) else 0 for v in row])
            shared = [cell(c, v) for c, v in enumerate(plan.head(case))]
            before = "".join(shared)
            shared = []
            for key, fields, extra in plan.once:
                self._part(_answers(data.get(key)), fields, shared)
                if extra is not None:
                    notice, at = plan.consent_extra(case, data)
                    shared.append(cell(extra, notice) + cell(extra + 1, at))
            after = "".join(shared)
            persons = plan.persons(data)
            if not persons:
                out.append((start + before + cell(7, 0) + after + "</row>").encode())
                continue
            count = cell(7, len(persons))
            for i, person in enumerate(persons, 1):
                cells = [start, before, cell(6, i), count, after]
                self._part(person, plan.person_fields, cells)
                cells.append("</row>")
                out.append("".join(cells).encode())
        return _Chunk(_ROW_END.encode().join(out), len(out), len(cases), widths)


class _XlsxWriter:
    """XLSX: a "Cases" sheet (frozen header row, autofilter, column widths from the first
    rows) and a "Columns" sheet describing each column, streamed by :mod:`xlsx_stream`.

    Every answer is a text cell (never a formula, number or link); one that starts like a
    formula also gets Excel's "quote prefix" style. The rows before the column widths are
    known (the first 2,000) are held back, then everything streams.
    """

    def __init__(self, fh: IO[bytes], plan: ExportPlan) -> None:
        self._plan = plan
        self._fh = fh
        self._synced = 0
        self._book = XlsxStream(fh, title="Cases", description="Exported by the bot")
        self._widths = [len(name) + 2 for name in plan.names]
        self._held: list[tuple[bytes, int]] = []  # (encoded rows, data rows before them)
        self._data_rows = 0
        self._sheet: SheetStream | None = None

    def write(self, chunk: _Chunk) -> None:
        first = self._data_rows  # data rows before this chunk
        if chunk.widths:
            widths = self._widths
            for row in chunk.widths[: max(0, _WIDTH_SAMPLE_ROWS - first)]:
                for c, w in enumerate(row):
                    if w > widths[c]:
                        widths[c] = w
        self._data_rows += chunk.rows
        if self._sheet is None:  # the widths are not known yet: hold the rows back
            self._held.append((chunk.data, first))
            if self._data_rows >= _WIDTH_SAMPLE_ROWS:
                self._start()
            return
        self._write_rows(self._sheet, chunk.data, first)
        self._synced = _sync_now(self._fh, self._synced)

    @staticmethod
    def _write_rows(sheet: SheetStream, data: bytes, first: int) -> None:
        """Write encoded rows, ``first`` data rows coming before them."""
        for xml, rows in _numbered(data, first + 2):  # row 1 is the header
            sheet.write_xml(xml, rows)

    def _start(self) -> SheetStream:
        plan = self._plan
        sheet = self._book.add_sheet(
            "Cases", columns=len(plan.names), freeze_header=True, autofilter=True,
            widths=[min(w, MAX_WIDTH) for w in self._widths])
        sheet.write_row(list(plan.names), STYLE_HEADER)
        for data, first in self._held:
            self._write_rows(sheet, data, first)
        self._held = []
        self._sheet = sheet
        return sheet

    def close(self) -> None:
        plan = self._plan
        (self._sheet or self._start()).close()
        about = self._book.add_sheet(
            "Columns", columns=2, rows_hint=len(plan.columns) + 1,
            widths=[max(len(name) for name in plan.names) + 2, MAX_WIDTH])
        about.write_row(["column", "description"], STYLE_HEADER)
        for c in plan.columns:
            about.write_row([c.name, c.description])
        about.close()
        self._book.close()

    def abort(self) -> None:
        self._book.abort()


def _encoder(fmt: ExportFormat, plan: ExportPlan) -> _Encoder:
    if fmt == "csv":
        return _CsvEncoder(plan)
    return _XlsxEncoder(plan) if fmt == "xlsx" else _JsonlEncoder(plan)


def _writer(fmt: ExportFormat, fh: IO[bytes], plan: ExportPlan) -> _Writer:
    if fmt == "csv":
        return _CsvWriter(fh, plan)
    return _XlsxWriter(fh, plan) if fmt == "xlsx" else _JsonlWriter(fh, plan)


def _sample(cases_before: int) -> int:
    """How many of a batch's rows may fall within the rows that set the XLSX column widths
    (each case gives at least one row)."""
    return max(0, _WIDTH_SAMPLE_ROWS - cases_before)


# --------------------------------------------------------------------------- worker processes

#: Exports of fewer cases are encoded in a thread of the calling process: starting worker
#: processes (a new interpreter each, about a third of a second) would not pay off.
PARALLEL_MIN_CASES = 5_000
MAX_WORKERS = 4
WORKER_MODULE = "bot.services.export_worker"
_FRAME = struct.Struct("<I")  # parent -> worker: a length, then the message
_RESULT = struct.Struct("<cIIII")  # worker -> parent: kind, rows, cases, widths and data sizes


def parallel_safe(decode: Decode) -> bool:
    """Whether ``decode`` may run in worker processes: :func:`identity`, or a callable that
    says so with a true ``parallel_safe`` attribute (it is pickled to each worker, so it must
    not depend on this process's state; see ``sealed_export.CaseOpener``)."""
    return decode is identity or getattr(decode, "parallel_safe", False) is True


def _cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def _worker_count(db: Database, decode: Decode, cases: int, batch: int,
                  workers: int | None) -> int:
    """How many worker processes to use (0: encode in this process)."""
    if workers is None:
        if cases < PARALLEL_MIN_CASES:
            return 0
        workers = min(_cpus(), MAX_WORKERS)
        if workers < 2:
            return 0
    if workers <= 0 or not parallel_safe(decode):
        return 0
    path = str(db.path)
    if path == ":memory:" or path.startswith("file:") or not os.path.isfile(path):
        return 0
    return max(1, min(workers, -(-cases // batch)))


def worker_main(stdin: IO[bytes] | None = None, stdout: IO[bytes] | None = None) -> int:
    """The loop of an export worker process (``python -m bot.services.export_worker``).

    Reads from ``stdin`` a pickled set-up (database path, format, form, decode, filters) from
    the process that started it, then key ranges as JSON; answers each range with its encoded
    cases (or an error) on ``stdout``, in order, until ``stdin`` closes.
    """
    stdin = stdin or sys.stdin.buffer
    stdout = stdout or sys.stdout.buffer
    setup = _read_frame(stdin)
    if setup is None:
        return 0
    # Written by the exporting process that started this one, over a pipe only they share.
    db_path, fmt, form, decode, filters = pickle.loads(setup)  # noqa: S301
    # The work is acyclic (JSON in, bytes out): reference counting frees all of it, and the
    # cycle collector would only rescan the same young objects again and again.
    gc.disable()
    encoder = _encoder(fmt, ExportPlan(form))
    conn = open_reader(Path(db_path))
    try:
        while (task := _read_frame(stdin)) is not None:
            after, upto, sample = json.loads(task)
            try:
                cases = fetch_case_range(conn, tuple(after) if after else None,
                                         tuple(upto) if upto else None, **filters)
                chunk = encoder.encode(cases, decode, sample)
            except Exception as exc:  # reported to the exporting process, which raises it
                message = str(exc) if isinstance(exc, ExportError) else \
                    f"export worker: {type(exc).__name__}: {exc}"
                stdout.write(_RESULT.pack(b"E", 0, 0, 0, len(message.encode())))
                stdout.write(message.encode())
                stdout.flush()
                return 1
            widths = json.dumps(chunk.widths).encode() if chunk.widths is not None else b""
            stdout.write(_RESULT.pack(b"R", chunk.rows, chunk.cases, len(widths),
                                      len(chunk.data)))
            stdout.write(widths)
            stdout.write(chunk.data)
            stdout.flush()
    finally:
        conn.close()
    return 0


def _read_frame(stream: IO[bytes]) -> bytes | None:
    head = stream.read(_FRAME.size)
    if len(head) < _FRAME.size:
        return None
    (size,) = _FRAME.unpack(head)
    return stream.read(size)


def _read_exactly(stream: IO[bytes], size: int) -> bytes:
    data = stream.read(size)
    if len(data) != size:
        raise EOFError
    return data


class _Worker:
    """One worker process, seen from the exporting process.

    A thread reads its results as soon as they come (so it never waits, with a full pipe,
    for the results of other workers to be written first) and hands each to the future of
    the range it answers, in order.
    """

    def __init__(self, setup: bytes, loop: asyncio.AbstractEventLoop) -> None:
        env = dict(os.environ)
        # The worker imports this package from wherever this process does.
        env["PYTHONPATH"] = os.pathsep.join(os.path.abspath(p or os.curdir) for p in sys.path)
        self.proc = subprocess.Popen(  # noqa: S603  # this interpreter, a fixed module
            [sys.executable, "-m", WORKER_MODULE], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, env=env, bufsize=1 << 20)
        if self.proc.stdout is not None and hasattr(_fcntl, "F_SETPIPE_SZ"):
            # A 1 MiB pipe instead of 64 KiB: a batch crosses in a few system calls.
            with contextlib.suppress(OSError):
                _fcntl.fcntl(self.proc.stdout.fileno(), _fcntl.F_SETPIPE_SZ, 1 << 20)
        self._loop = loop
        self._waiting: collections.deque[asyncio.Future[_Chunk]] = collections.deque()
        self._failed: BaseException | None = None
        self._send(setup)
        self._reader = threading.Thread(target=self._read_results, daemon=True,
                                        name="export-worker-reader")
        self._reader.start()

    def _send(self, message: bytes) -> None:
        stdin = self.proc.stdin
        assert stdin is not None
        stdin.write(_FRAME.pack(len(message)) + message)
        stdin.flush()

    def submit(self, after: CaseKey | None, upto: CaseKey | None,
               sample: int) -> asyncio.Future[_Chunk]:
        """Send a key range; the future gets its encoded cases."""
        future: asyncio.Future[_Chunk] = self._loop.create_future()
        if self._failed is not None:
            future.set_exception(self._failed)
            return future
        self._waiting.append(future)
        self._send(json.dumps([after, upto, sample]).encode())
        return future

    def _result(self) -> _Chunk:
        """The next result, in the order the ranges were sent (blocking)."""
        stdout = self.proc.stdout
        assert stdout is not None
        try:
            kind, rows, cases, widths_size, size = _RESULT.unpack(
                _read_exactly(stdout, _RESULT.size))
            widths = _read_exactly(stdout, widths_size) if widths_size else b""
            data = _read_exactly(stdout, size)
        except (EOFError, OSError, ValueError, struct.error):
            code = self.proc.poll()
            raise ExportError("an export worker process stopped unexpectedly"
                              + (f" (exit status {code})" if code is not None else "")) from None
        if kind != b"R":
            raise ExportError(data.decode("utf-8", "replace"))
        return _Chunk(data, rows, cases, json.loads(widths) if widths else None)

    def _read_results(self) -> None:  # the reader thread
        while True:
            try:
                chunk = self._result()
            except ExportError as exc:
                self._call(self._deliver, None, exc)
                return
            self._call(self._deliver, chunk, None)

    def _call(self, fn: Callable[..., None], *args: Any) -> None:
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody is waiting
            self._loop.call_soon_threadsafe(fn, *args)

    def _deliver(self, chunk: _Chunk | None, exc: ExportError | None) -> None:
        if exc is not None:
            self._failed = exc
            while self._waiting:
                future = self._waiting.popleft()
                if not future.done():
                    future.set_exception(exc)
            return
        if self._waiting:
            future = self._waiting.popleft()
            if not future.done():
                future.set_result(chunk)  # type: ignore[arg-type]

    def finish(self) -> None:
        """Let the worker end (it stops at the end of its input), or stop it if it does not
        (blocking)."""
        with contextlib.suppress(OSError):
            if self.proc.stdin is not None:
                self.proc.stdin.close()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:  # pragma: no cover - a stuck worker
            self.proc.kill()
            self.proc.wait()
        self._reader.join()
        if self.proc.stdout is not None:
            self.proc.stdout.close()

    def kill(self) -> None:
        with contextlib.suppress(OSError):
            self.proc.kill()


async def _encode_in_workers(
    db: Database, form: Form, fmt: ExportFormat, writer: _Writer, decode: Decode,
    filters: dict[str, str | None], batch: int, workers: int,
    progress: Callable[[int], None] | None,
) -> tuple[int, int]:
    """Encode key ranges of ``batch`` cases in ``workers`` processes (each reads the database
    with its own connection) and write their results in order as they come back.

    Range k goes to worker k mod n, which answers its ranges in order. At most two ranges per
    worker are in flight: memory stays bounded whatever the export's size.
    """
    setup = pickle.dumps((str(db.path), fmt, form, decode, filters))
    loop = asyncio.get_running_loop()
    pool: list[_Worker] = []
    in_flight: collections.deque[asyncio.Future[_Chunk]] = collections.deque()
    rows = cases = 0
    ok = False

    async def write_oldest() -> None:
        nonlocal rows, cases
        chunk = await in_flight.popleft()
        await _in_thread(writer.write, chunk)
        rows += chunk.rows
        cases += chunk.cases
        if progress is not None:
            progress(cases)

    try:
        for _ in range(workers):
            pool.append(_Worker(setup, loop))
        k = 0
        async for after, upto in iter_key_ranges(db, batch=batch, **filters):
            in_flight.append(pool[k % workers].submit(after, upto, _sample(k * batch)))
            k += 1
            if len(in_flight) >= 2 * workers:
                await write_oldest()
        while in_flight:
            await write_oldest()
        ok = True
    finally:
        if not ok:
            for worker in pool:
                worker.kill()
        for worker in pool:
            await _in_thread(worker.finish)
        for future in in_flight:
            if future.done() and not future.cancelled():
                future.exception()  # retrieved: no "never retrieved" warning
    return rows, cases


async def _encode_here(
    db: Database, plan: ExportPlan, fmt: ExportFormat, writer: _Writer, decode: Decode,
    filters: dict[str, str | None], batch: int, progress: Callable[[int], None] | None,
) -> tuple[int, int]:
    """Encode each batch in a worker thread of this process while the next one is read."""
    encoder = _encoder(fmt, plan)

    def encode_and_write(chunk: list[CaseRow], sample: int) -> int:
        encoded = encoder.encode(chunk, decode, sample)
        writer.write(encoded)
        return encoded.rows

    rows = cases = 0
    batches = iter_case_batches(db, batch=batch, **filters)
    async for chunk in _prefetched(batches):
        rows += await _in_thread(encode_and_write, chunk, _sample(cases))
        cases += len(chunk)
        if progress is not None:
            progress(cases)
    return rows, cases


# --------------------------------------------------------------------------- export


def _temp_path(output: Path) -> Path:
    """A hidden name next to ``output`` for the file being written."""
    return output.with_name(f".{output.name}.{secrets.token_hex(6)}.part")


async def _in_thread(fn: Callable[..., T], *args: Any) -> T:
    """Run ``fn`` in a worker thread; if cancelled, let it finish before passing the
    cancellation on, so the files it writes are not removed under its feet."""
    future = asyncio.get_running_loop().run_in_executor(None, functools.partial(fn, *args))
    try:
        return await asyncio.shield(future)
    except asyncio.CancelledError:
        with contextlib.suppress(BaseException):
            await asyncio.wait([future])
        raise


def _finish(writer: _Writer, fh: IO[bytes]) -> None:
    """Close the writer, then make the file durable before it is renamed into place."""
    writer.close()
    fh.flush()
    os.fsync(fh.fileno())
    fh.close()


async def _prefetched(batches: AsyncIterator[list[CaseRow]]) -> AsyncIterator[list[CaseRow]]:
    """Yield the batches while the next one is already being read."""
    pending: asyncio.Future[list[CaseRow] | None] = asyncio.ensure_future(anext(batches, None))
    try:
        while (chunk := await pending) is not None:
            pending = asyncio.ensure_future(anext(batches, None))
            yield chunk
    finally:
        if not pending.done():
            pending.cancel()
            with contextlib.suppress(BaseException):
                await pending


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
    decode: Decode = identity,
    progress: Callable[[int], None] | None = None,
    batch: int = 500,
    workers: int | None = None,
) -> ExportResult:
    """Export the cases matching the filters to ``output`` (replaced only when complete).

    ``since``/``until`` are inclusive YYYY-MM-DD dates on ``submitted_at``; ``decode`` turns
    the stored ``cases.data`` into JSON bytes; ``progress`` gets the number of cases done after
    every batch. Raises ValueError for a bad format or date, ExportError for an unreadable case.

    ``workers`` processes read and encode the cases, each its own ranges of ``batch`` cases
    (half as many for XLSX), while this process writes the file; by default one per CPU (at
    most four) for exports of at least :data:`PARALLEL_MIN_CASES` cases when ``decode`` is
    :func:`parallel_safe`, else (or with ``workers=0``) a thread of this process does the work.
    """
    if fmt not in FORMATS:
        raise ValueError(f"unknown export format {fmt!r}; use one of {', '.join(FORMATS)}")
    if batch < 1:
        raise ValueError("batch must be at least 1")
    plan = ExportPlan(form)
    filters = {"since": since, "until": until, "status": status, "lang": lang}
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
        writer = _writer(fmt, fh, plan)
        if n_workers:
            # An XLSX range encodes to twice the bytes of CSV: half as many cases each keeps
            # the results in flight (two per worker) as small.
            task = max(1, batch // 2) if fmt == "xlsx" else batch
            rows, cases = await _encode_in_workers(db, form, fmt, writer, decode, filters,
                                                   task, n_workers, progress)
        else:
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
