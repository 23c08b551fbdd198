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
complete, so a failed or cancelled export leaves no partial file. Each batch is encoded in a
worker thread while the next one is read, so the bot's event loop keeps serving meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import importlib
import json
import os
import re
import secrets
import shutil
import tempfile
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Literal, NamedTuple, Protocol, TypeVar

import xlsxwriter
from xlsxwriter.utility import xl_col_to_name

from bot.form.model import Form, Group, Question
from bot.storage.db import Database
from bot.storage.export_queries import CaseRow, iter_case_batches

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


def identity(data: bytes) -> bytes:
    """The default ``decode``: ``cases.data`` stored as plain JSON."""
    return data


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
        times = [str(t) for t in at.values()] if isinstance(at, dict) else []
        notice = data.get("notice_version", case.notice_version)
        if notice is not None and not isinstance(notice, int | str):
            notice = str(notice)
        return [notice, max(times) if times else None]

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


class _Sink(Protocol):
    """A file format: encodes each batch of cases, then finishes the file."""

    def write(self, cases: list[CaseRow], decode: Decode) -> int: ...
    def close(self) -> None: ...


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
    than one field, about twice as fast; a test compares the two on arbitrary text.
    """
    return ["" if v is None else _csv_text(v) if v.__class__ is str and v else str(v)
            for v in cells]


_CSV_EMPTY = {_TEXT: "", _OPTION: ",", _ATTACH: ",0"}  # unanswered, as _field_cells gives


class _CsvSink:
    """CSV: UTF-8 with a byte-order mark, "," and '"' with minimal quoting, CRLF lines."""

    def __init__(self, fh: IO[bytes], plan: ExportPlan) -> None:
        self._fh = fh
        self._plan = plan
        # Per field: (question id, kind, text when unanswered, cache of "code,label" by answer).
        self._once = [(key, self._compile(fields), extra) for key, fields, extra in plan.once]
        self._person = self._compile(plan.person_fields)
        self._blank = csv_cells([None] * plan.person_width)
        fh.write(b"\xef\xbb\xbf")  # the UTF-8 byte-order mark: Excel then reads UTF-8
        fh.write((",".join(csv_cells(list(plan.names))) + "\r\n").encode("utf-8"))

    @staticmethod
    def _compile(fields: list[_Field]) -> list[tuple[str, int, str, dict[Any, str], _Field]]:
        return [(f.key, f.kind, _CSV_EMPTY[f.kind], {}, f) for f in fields]

    @staticmethod
    def _part(answers: dict[str, Any], fields: list[tuple[str, int, str, dict[Any, str], _Field]],
              out: list[str]) -> None:
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
                k = v if v.__class__ is str else tuple(v) if v.__class__ is list else None
                try:
                    append(cache[k])
                except (KeyError, TypeError):
                    text = ",".join(csv_cells(list(_field_cells(f, v))))
                    if k is not None and len(cache) < _CACHE_LIMIT:
                        with contextlib.suppress(TypeError):
                            cache[k] = text
                    append(text)
            else:
                append(",".join(csv_cells(list(_field_cells(f, v)))))

    def write(self, cases: list[CaseRow], decode: Decode) -> int:
        plan = self._plan
        part = self._part
        lines: list[str] = []
        for case in cases:
            data = _decoded(case, decode)
            before = csv_cells(plan.head(case))
            shared: list[str] = []
            for key, fields, extra in self._once:
                part(_answers(data.get(key)), fields, shared)
                if extra is not None:
                    shared += csv_cells(plan.consent_extra(case, data))
            persons = plan.persons(data)
            if not persons:
                lines.append(",".join([*before, "", "0", *shared, *self._blank]))
                continue
            n = str(len(persons))
            for i, person in enumerate(persons, 1):
                cells = [*before, str(i), n, *shared]
                part(person, self._person, cells)
                lines.append(",".join(cells))
        if lines:
            self._fh.write(("\r\n".join(lines) + "\r\n").encode("utf-8"))
        return len(lines)

    def close(self) -> None:
        self._fh.flush()


class _JsonlSink:
    """JSONL: one case per line, UTF-8."""

    def __init__(self, fh: IO[bytes], plan: ExportPlan) -> None:
        self._fh = fh

    def write(self, cases: list[CaseRow], decode: Decode) -> int:
        lines = [_dumps(json_case(case, _decoded(case, decode))) for case in cases]
        if lines:
            self._fh.write(b"\n".join(lines) + b"\n")
        return len(lines)

    def close(self) -> None:
        self._fh.flush()


_CONTROL_ESCAPED = re.compile("(_x[0-9a-fA-F]{4}_)")
_CONTROL = re.compile(r"([\x00-\x08\x0b-\x1f])")
_XML_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\ufffe\uffff]")  # one class: fast to scan
_ROW = "\x00"  # stands for the row number in prepared cell XML (never left in escaped text)


def _xml_text(s: str) -> str:
    """Escape text for an inline string exactly as xlsxwriter does in constant_memory mode:
    control characters as ``_xHHHH_`` (and a literal ``_xHHHH_`` as ``_x005F_xHHHH_``),
    then ``&``, ``<`` and ``>``."""
    s = _CONTROL_ESCAPED.sub(r"_x005F\1", s)
    s = _CONTROL.sub(lambda m: f"_x{ord(m.group(1)):04X}_", s)
    s = s.replace("\ufffe", "_xFFFE_").replace("\uffff", "_xFFFF_")
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _fast_path_ok(ws: Any) -> bool:
    """Whether this worksheet streams rows the way _XlsxSink's fast path expects."""
    names = ("constant_memory", "fh", "row_data_fh", "previous_row", "table", "dim_rowmin",
             "dim_rowmax", "dim_colmin", "dim_colmax")
    return (all(hasattr(ws, a) for a in names) and bool(ws.constant_memory)
            and ws.fh is ws.row_data_fh and not ws.table and ws.dim_rowmin is None)


class _XlsxSink:
    """XLSX through xlsxwriter in constant_memory mode, one sheet "Cases" and one "Columns".

    Going through ``write_string`` costs about 15 µs a cell here (two minutes for 100,000
    cases), so the fast path writes the very ``<row>``/``<c>`` XML that xlsxwriter's
    constant_memory mode writes for ``write_string``/``write_number`` (inline strings, the same
    escaping, the same styles) straight into the worksheet's row-data file and records the
    dimensions as xlsxwriter would; choices are encoded once per code, and the cells repeated
    on every row of a case once per case. Styles, the frozen pane, the filter, the widths and
    the packaging stay xlsxwriter's. A test checks that both paths give byte-identical sheet
    XML; when the worksheet does not look as expected (another xlsxwriter), the API is used.
    """

    def __init__(self, fh: IO[bytes], plan: ExportPlan, tmpdir: Path, *,
                 fast: bool = True) -> None:
        self._plan = plan
        self._wb = xlsxwriter.Workbook(fh, {
            "constant_memory": True,  # rows go to disk as written: memory stays flat
            "strings_to_formulas": False,
            "strings_to_urls": False,
            "strings_to_numbers": False,
            "tmpdir": str(tmpdir),
        })
        wb = self._wb
        wb.set_properties({"title": "Cases", "comments": "Exported by the bot"})
        header = wb.add_format({"bold": True, "bg_color": "#DDEBF7", "border": 1})
        top = wb.add_format({"valign": "top"})
        wrap = wb.add_format({"text_wrap": True, "valign": "top"})
        top_q = wb.add_format({"valign": "top", "quote_prefix": True})
        wrap_q = wb.add_format({"text_wrap": True, "valign": "top", "quote_prefix": True})
        for f in (header, top, wrap, top_q, wrap_q):
            f._get_xf_index()  # fixed style ids, whichever path writes the cells
        n = len(plan.names)
        self._formats = {False: ([wrap if c.wrap else top for c in plan.columns],
                                 [wrap_q if c.wrap else top_q for c in plan.columns]),
                         True: ([header] * n, [header] * n)}
        self._ws = wb.add_worksheet("Cases")
        self._fast = fast and _fast_path_ok(self._ws)
        self._refs = [xl_col_to_name(c) for c in range(n)]
        self._plain = [str(f._get_xf_index()) for f in self._formats[False][0]]
        self._quoted = [str(f._get_xf_index()) for f in self._formats[False][1]]
        self._choices: dict[int, dict[Any, str]] = {}
        self._widths = [len(name) + 2 for name in plan.names]
        self._row = 0
        if self._fast:
            self._emit([f'<row r="1">{self._header_xml(header)}</row>'], 1)
        else:
            self._write_api([list(plan.names)], header=True)
        self._ws.freeze_panes(1, 0)
        about = wb.add_worksheet("Columns")
        about.write_string(0, 0, "column", header)
        about.write_string(0, 1, "description", header)
        for i, c in enumerate(plan.columns, 1):
            about.write_string(i, 0, c.name)
            about.write_string(i, 1, c.description)
        about.set_column(0, 0, max(len(name) for name in plan.names) + 2)
        about.set_column(1, 1, MAX_WIDTH)

    def _header_xml(self, header: Any) -> str:
        s = header._get_xf_index()
        return "".join(f'<c r="{ref}1" s="{s}" t="inlineStr"><is><t>{_xml_text(name)}</t></is></c>'
                       for ref, name in zip(self._refs, self._plan.names, strict=True))

    def write(self, cases: list[CaseRow], decode: Decode) -> int:
        plan = self._plan
        decoded = [(case, _decoded(case, decode)) for case in cases]
        if not self._fast or self._row <= _WIDTH_SAMPLE_ROWS:
            rows: list[list[Cell]] = []
            for case, data in decoded:
                rows += plan.rows(case, data)
            self._sample_widths(rows)
            if not self._fast:
                self._write_api(rows)
                return len(rows)
        out: list[str] = []
        r = self._row
        for case, data in decoded:
            head = [self._cell(c, v) for c, v in enumerate(plan.head(case))]
            shared: list[str] = []
            for key, fields, extra in plan.once:
                self._part(_answers(data.get(key)), fields, shared)
                if extra is not None:
                    notice, at = plan.consent_extra(case, data)
                    shared.append(self._cell(extra, notice) + self._cell(extra + 1, at))
            before = "".join(head)
            after = "".join(shared)
            persons = plan.persons(data)
            if not persons:
                out.append(f'<row r="{r + 1}">' + (before + self._cell(7, 0) + after)
                           .replace(_ROW, str(r + 1)) + "</row>")
                r += 1
                continue
            count = self._cell(7, len(persons))
            for i, person in enumerate(persons, 1):
                cells = [before, self._cell(6, i), count, after]
                self._part(person, plan.person_fields, cells)
                rn = str(r + 1)
                out.append(f'<row r="{rn}">' + "".join(cells).replace(_ROW, rn) + "</row>")
                r += 1
        written = r - self._row
        self._emit(out, r)
        return written

    def _cell(self, c: int, v: Cell) -> str:
        """The XML of one cell in column ``c`` (row number left as a placeholder)."""
        if v is None:
            return ""
        if v.__class__ is int:
            return f'<c r="{self._refs[c]}{_ROW}" s="{self._plain[c]}"><v>{v:.16G}</v></c>'
        s: str = v  # type: ignore[assignment]
        if not s:
            return ""
        if len(s) > XLSX_CELL_LIMIT // 2:
            s = xlsx_fit(s)
        style = self._quoted[c] if s[0] in FORMULA_TRIGGERS else self._plain[c]
        if "&" in s or "<" in s or ">" in s or "_x" in s or _XML_CONTROL.search(s) is not None:
            s = _xml_text(s)
        t = '<t xml:space="preserve">' if s[0].isspace() or s[-1].isspace() else "<t>"
        return f'<c r="{self._refs[c]}{_ROW}" s="{style}" t="inlineStr"><is>{t}{s}</t></is></c>'

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

    def _emit(self, out: list[str], next_row: int) -> None:
        if not out:
            return
        ws = self._ws
        ws.fh.write("".join(out))
        # What xlsxwriter's _check_dimensions() would have recorded: the header row (always
        # written first, every column named) spans all columns.
        ws.dim_rowmin = 0
        ws.dim_rowmax = next_row - 1
        ws.dim_colmin = 0
        ws.dim_colmax = len(self._refs) - 1
        ws.previous_row = next_row - 1
        self._row = next_row

    def _sample_widths(self, rows: list[list[Cell]]) -> None:
        widths = self._widths
        for row in rows[: max(0, _WIDTH_SAMPLE_ROWS + 1 - self._row)]:
            for c, v in enumerate(row):
                if v.__class__ is str:
                    widths[c] = max(widths[c], len(v) + 2)

    def _write_api(self, rows: list[list[Cell]], header: bool = False) -> None:
        ws = self._ws
        plain, quoted = self._formats[header]
        r = self._row
        for row in rows:
            for c, v in enumerate(row):
                if v is None:
                    continue
                if v.__class__ is int:
                    ws.write_number(r, c, v, plain[c])
                    continue
                s: str = v  # type: ignore[assignment]
                if not s:
                    continue
                if len(s) > XLSX_CELL_LIMIT // 2:
                    s = xlsx_fit(s)
                fmt = quoted[c] if s[0] in FORMULA_TRIGGERS else plain[c]
                if s.startswith("<r>") and s.endswith("</r>"):
                    # xlsxwriter would copy such text into the XML as a rich string:
                    # write it as a real (unformatted) rich string so it stays literal.
                    ws.write_rich_string(r, c, fmt, s[:3], s[3:], fmt)
                else:
                    ws.write_string(r, c, s, fmt)
            r += 1
        self._row = r

    def close(self) -> None:
        ws = self._ws
        ws.autofilter(0, 0, max(self._row - 1, 0), len(self._plan.names) - 1)
        for c, width in enumerate(self._widths):
            ws.set_column(c, c, min(width, MAX_WIDTH))
        self._wb.close()


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


def _finish(sink: _Sink, fh: IO[bytes]) -> None:
    """Close the writer, then make the file durable before it is renamed into place."""
    sink.close()
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
) -> ExportResult:
    """Export the cases matching the filters to ``output`` (replaced only when complete).

    ``since``/``until`` are inclusive YYYY-MM-DD dates on ``submitted_at``; ``decode`` turns
    the stored ``cases.data`` into JSON bytes; ``progress`` gets the number of cases done after
    every batch. Raises ValueError for a bad format or date, ExportError for an unreadable case.
    """
    if fmt not in FORMATS:
        raise ValueError(f"unknown export format {fmt!r}; use one of {', '.join(FORMATS)}")
    plan = ExportPlan(form)
    output = Path(output)
    tmp = _temp_path(output)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    fh = os.fdopen(fd, "wb", buffering=1 << 20)
    work_dir: str | None = None  # xlsxwriter's temporary files: private, removed in any case
    done = False
    try:
        sink: _Sink
        if fmt == "csv":
            sink = _CsvSink(fh, plan)
        elif fmt == "jsonl":
            sink = _JsonlSink(fh, plan)
        else:
            work_dir = tempfile.mkdtemp(prefix=".export-", dir=output.parent)
            sink = _XlsxSink(fh, plan, Path(work_dir))
        rows = cases = 0
        batches = iter_case_batches(db, since=since, until=until, status=status, lang=lang,
                                    batch=batch)
        # The first batch is read here, so a bad date fails before any work is done.
        async for chunk in _prefetched(batches):
            rows += await _in_thread(sink.write, chunk, decode)
            cases += len(chunk)
            if progress is not None:
                progress(cases)
        await _in_thread(_finish, sink, fh)
        os.replace(tmp, output)
        done = True
    finally:
        if not done:
            with contextlib.suppress(Exception):
                fh.close()
            tmp.unlink(missing_ok=True)
        if work_dir is not None:
            shutil.rmtree(work_dir, ignore_errors=True)
    return ExportResult(rows=rows, cases=cases)
