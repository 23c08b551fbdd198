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

Formula injection (OWASP "CSV injection"): a spreadsheet treats a cell that starts with ``=``,
``+``, ``-`` or ``@`` (or a tab or carriage return) as a formula, and a relative's answer could
be crafted to run one on a staff member's computer. In CSV, such a cell gets a leading
apostrophe (``'=HYPERLINK(...)``, ``'+77011234567``), which Excel and LibreOffice hide when the
cell is shown as text; every other cell is exactly as stored. In XLSX every answer is written as
a text cell (never a formula, number or link) and such cells also carry Excel's "quote prefix"
style, so the value is unchanged (``+77011234567`` stays readable) and stays text even when the
cell is edited. Excel holds at most 32,767 characters in a cell: a longer XLSX cell is cut with
a marker saying so (CSV and JSONL are never cut).

JSONL has one object per case (not per person): the metadata columns followed by the stored
answers exactly as kept (``form_version``, ``notice_version``, ``language``, ``consent``,
``consent_at``, ``reporter``, ``persons``), UTF-8, not ASCII-escaped.

The file is written under a temporary name next to ``output`` (mode 0600) and renamed when
complete, so a failed or cancelled export leaves no partial file. Writing runs in a worker
thread, one batch at a time, so the bot's event loop keeps serving while an export runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Literal, NamedTuple, Protocol

import xlsxwriter
from xlsxwriter.utility import xl_col_to_name

from bot.form.model import Form, Group, Question
from bot.storage.db import Database
from bot.storage.export_queries import CaseRow, iter_case_batches

ExportFormat = Literal["csv", "xlsx", "jsonl"]
FORMATS: tuple[ExportFormat, ...] = ("csv", "xlsx", "jsonl")
Cell = str | int | None

#: First characters that make a spreadsheet read a cell as a formula (OWASP).
FORMULA_TRIGGERS = frozenset("=+-@\t\r")
#: Excel's limit on the length of a cell, in UTF-16 code units.
XLSX_CELL_LIMIT = 32_767
#: Text questions allowing at least this many characters get wrapped, wide XLSX columns.
LONG_TEXT = 500
MAX_WIDTH = 60
_WIDTH_SAMPLE_ROWS = 2_000

CASE_COLUMNS = ("case_number", "status", "language", "submitted_at", "updated_at",
                "assignee_id", "person_index", "persons_in_case")
CONSENT_EXTRA = ("notice_version", "consent_at")
JSON_META = ("case_number", "status", "language", "submitted_at", "updated_at", "assignee_id",
             "persons_count", "prefecture", "attachments_count", "consent_share",
             "consent_publish", "notice_version")


def identity(data: bytes) -> bytes:
    """The default ``decode``: ``cases.data`` stored as plain JSON."""
    return data


class ExportError(RuntimeError):
    """A case could not be exported; the message names the case number, never its content."""


@dataclass(frozen=True, slots=True)
class ExportResult:
    rows: int  # CSV/XLSX rows (one per missing person) or JSONL lines (one per case)
    cases: int


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    description: str  # English, for the XLSX "Columns" sheet
    wrap: bool = False  # long free text
    number: bool = False


_TEXT, _OPTION, _ATTACH = range(3)


class _Field(NamedTuple):
    key: str
    kind: int
    labels: dict[str, str]


def _column_name(group: Group, q: Question) -> str:
    return q.id if q.id.startswith(group.id + "_") else f"{group.id}_{q.id}"


def _fields(group: Group) -> tuple[list[_Field], list[Column]]:
    fields: list[_Field] = []
    columns: list[Column] = []
    for q in group.questions:
        name = _column_name(group, q)
        labels = {o.code: o.label for o in q.options}
        if q.type in ("single", "multi"):
            fields.append(_Field(q.id, _OPTION, labels))
            columns += [Column(name, f"{q.short} (codes)"),
                        Column(f"{name}_label", f"{q.short} (English labels)")]
        elif q.type == "attachments":
            fields.append(_Field(q.id, _ATTACH, labels))
            columns += [Column(name, f"{q.short} (kind:file_unique_id)", wrap=True),
                        Column(f"{name}_count", f"{q.short} (number)", number=True)]
        else:
            fields.append(_Field(q.id, _TEXT, labels))
            columns.append(Column(name, q.short, wrap=q.type == "text" and q.max_len >= LONG_TEXT))
    return fields, columns


def _duration(seconds: Any) -> str:
    s = int(seconds)
    h, rest = divmod(s, 3600)
    return f"{h}:{rest // 60:02d}:{rest % 60:02d}" if h else f"{rest // 60}:{rest % 60:02d}"


def _voice(media: dict[str, Any]) -> str:
    kind = str(media.get("kind") or "voice")
    parts = ["voice message" if kind == "voice" else f"{kind} message"]
    ref = media.get("file_unique_id") or media.get("file_id")
    if ref:
        parts.append(f"file_unique_id={ref}")
    if isinstance(media.get("duration"), int | float):
        parts.append(_duration(media["duration"]))
    return "[" + ", ".join(parts) + "]"


def _other_text(value: Any) -> str:
    if isinstance(value, dict) and isinstance(value.get("voice"), dict):
        return _voice(value["voice"])
    if isinstance(value, int | float):
        return str(value)
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def _attachment(item: Any) -> str:
    if not isinstance(item, dict):
        return str(item)
    ref = f"{item.get('kind') or 'file'}:{item.get('file_unique_id') or item.get('file_id') or '?'}"
    name = item.get("name")
    return f"{ref} ({name})" if name else ref


def _cells(answers: Any, fields: list[_Field], out: list[Cell]) -> None:
    """Append the export cells of one part's answers (None where unanswered)."""
    if not isinstance(answers, dict):
        answers = {}
    get = answers.get
    append = out.append
    for key, kind, labels in fields:
        v = get(key)
        if kind == _TEXT:
            append(v if v is None or v.__class__ is str else _other_text(v))
        elif kind == _OPTION:
            if v is None:
                append(None)
                append(None)
            elif v.__class__ is str:
                append(v)
                append(labels.get(v, v))
            elif isinstance(v, list):
                codes = [str(c) for c in v]
                append(";".join(codes))
                append("; ".join([labels.get(c, c) for c in codes]))
            else:
                append(_other_text(v))
                append(None)
        else:  # attachments
            if v is None:
                append(None)
                append(0)
            elif isinstance(v, list):
                append("; ".join([_attachment(a) for a in v]) if v else None)
                append(len(v))
            else:
                append(_other_text(v))
                append(1)


class ExportPlan:
    """The export's columns, derived from the form, and how a case becomes rows of them."""

    def __init__(self, form: Form) -> None:
        columns = [Column(n, d, number=n in ("assignee_id", "person_index", "persons_in_case"))
                   for n, d in zip(CASE_COLUMNS, (
                       "Case number", "Status (code)", "Language of the relative (code)",
                       "Submitted at (ISO 8601)", "Last change (ISO 8601)",
                       "Assigned staff member (Telegram id)",
                       "Which missing person of the case this row is (1-based)",
                       "Missing persons in the case"), strict=True)]
        self._once: list[tuple[str, list[_Field], bool]] = []
        person_fields: list[_Field] = []
        person_columns: list[Column] = []
        for group in form.groups:
            fields, cols = _fields(group)
            if group.repeat:
                person_fields, person_columns = fields, cols
                continue
            is_consent = group.id == "consent"
            self._once.append((group.id, fields, is_consent))
            columns += cols
            if is_consent:
                columns += [Column("notice_version", "Version of the privacy notice agreed to",
                                   number=True),
                            Column("consent_at", "When the consent was given (ISO 8601)")]
        self._person_start = len(columns)
        columns += person_columns
        self._person_fields = person_fields
        self._blank_person: list[Cell] = [None] * len(person_columns)
        names = [c.name for c in columns]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"the form gives duplicate export columns: {', '.join(dupes)}")
        self.columns: tuple[Column, ...] = tuple(columns)
        self.names: tuple[str, ...] = tuple(names)

    def parts(self, case: CaseRow, data: dict[str, Any]
              ) -> tuple[list[Cell], list[Cell], list[list[Cell]]]:
        """A case's cells in three parts: before ``person_index``, after ``persons_in_case``
        up to the first person column (consent, reporter), and one list per missing person.
        A row is ``head + [index, count] + shared + person``; writers encode the parts that
        are repeated on every row of the case only once."""
        head: list[Cell] = [case.number, case.status, case.language, case.submitted_at,
                            case.updated_at, case.assignee_id]
        shared: list[Cell] = []
        for key, fields, is_consent in self._once:
            _cells(data.get(key), fields, shared)
            if is_consent:
                at = data.get("consent_at")
                times = [str(t) for t in at.values()] if isinstance(at, dict) else []
                shared.append(data.get("notice_version", case.notice_version))
                shared.append(max(times) if times else None)
        persons = data.get("persons")
        out: list[list[Cell]] = []
        if isinstance(persons, list):
            for person in persons:
                cells: list[Cell] = []
                _cells(person, self._person_fields, cells)
                out.append(cells)
        return head, shared, out

    @property
    def blank_person(self) -> list[Cell]:
        """The person cells of the row of a case without missing persons."""
        return list(self._blank_person)

    def rows(self, case: CaseRow, data: dict[str, Any]) -> list[list[Cell]]:
        """One row per missing person (one row, with ``persons_in_case`` 0, when none)."""
        head, shared, persons = self.parts(case, data)
        if not persons:
            return [[*head, None, 0, *shared, *self._blank_person]]
        n = len(persons)
        return [[*head, i, n, *shared, *person] for i, person in enumerate(persons, 1)]


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


# --------------------------------------------------------------------------- writers


def _loads(data: bytes) -> Any:
    return json.loads(data)


def _dumps(obj: Any) -> bytes:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


class _Sink(Protocol):
    def write(self, cases: list[CaseRow], decode: Callable[[bytes], bytes]) -> int: ...
    def close(self) -> None: ...


def _decoded(case: CaseRow, decode: Callable[[bytes], bytes]) -> dict[str, Any]:
    try:
        data = _loads(decode(case.data))
    except Exception as exc:
        raise ExportError(f"case {case.number}: its stored answers could not be read") from exc
    if not isinstance(data, dict):
        raise ExportError(f"case {case.number}: its stored answers are not a JSON object")
    return data


def csv_cells(cells: list[Cell]) -> list[str]:
    """Encode cells as the csv module's default dialect would, after the formula guard.

    Equivalent to ``csv.writer`` (QUOTE_MINIMAL, "," and '"', "\\r\\n") for rows of more
    than one field, about twice as fast; tests compare the two on arbitrary text.
    """
    out: list[str] = []
    append = out.append
    for v in cells:
        if v is None:
            append("")
        elif v.__class__ is str:
            if v:
                if v[0] in FORMULA_TRIGGERS:
                    v = "'" + v
                if '"' in v:
                    v = '"' + v.replace('"', '""') + '"'
                elif "," in v or "\n" in v or "\r" in v:
                    v = '"' + v + '"'
            append(v)
        else:
            append(str(v))
    return out


class _CsvSink:
    def __init__(self, fh: IO[bytes], plan: ExportPlan) -> None:
        self._fh = fh
        self._plan = plan
        self._blank = csv_cells(plan.blank_person)
        fh.write(b"\xef\xbb\xbf")  # the UTF-8 byte-order mark: Excel then reads UTF-8
        fh.write((",".join(csv_cells(list(plan.names))) + "\r\n").encode("utf-8"))

    def write(self, cases: list[CaseRow], decode: Callable[[bytes], bytes]) -> int:
        lines: list[str] = []
        parts = self._plan.parts
        for case in cases:
            head, shared, persons = parts(case, _decoded(case, decode))
            before = csv_cells(head)
            after = csv_cells(shared)
            if not persons:
                lines.append(",".join([*before, "", "0", *after, *self._blank]))
                continue
            n = str(len(persons))
            for i, person in enumerate(persons, 1):
                lines.append(",".join([*before, str(i), n, *after, *csv_cells(person)]))
        if lines:
            lines.append("")
            self._fh.write("\r\n".join(lines).encode("utf-8"))
        return len(lines) - 1 if lines else 0

    def close(self) -> None:
        self._fh.flush()


class _JsonlSink:
    def __init__(self, fh: IO[bytes], plan: ExportPlan) -> None:
        self._fh = fh

    def write(self, cases: list[CaseRow], decode: Callable[[bytes], bytes]) -> int:
        lines = [_dumps(json_case(case, _decoded(case, decode))) for case in cases]
        if lines:
            lines.append(b"")
            self._fh.write(b"\n".join(lines))
        return len(cases)

    def close(self) -> None:
        self._fh.flush()


_CONTROL_ESCAPED = re.compile("(_x[0-9a-fA-F]{4}_)")
_CONTROL = re.compile(r"([\x00-\x08\x0b-\x1f])")
_XML_SPECIAL = re.compile("[&<>\x00-\x08\x0b-\x1f\ufffe\uffff]|_x[0-9a-fA-F]{4}_")


def _xml_text(s: str) -> str:
    """Escape text for an inline string exactly as xlsxwriter does in constant_memory mode:
    control characters as ``_xHHHH_`` (and a literal ``_xHHHH_`` as ``_x005F_xHHHH_``),
    then ``&``, ``<`` and ``>``."""
    s = _CONTROL_ESCAPED.sub(r"_x005F\1", s)
    s = _CONTROL.sub(lambda m: f"_x{ord(m.group(1)):04X}_", s)
    s = s.replace("\ufffe", "_xFFFE_").replace("\uffff", "_xFFFF_")
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _fast_path_ok(ws: Any) -> bool:
    """Whether this xlsxwriter worksheet streams rows the way _XlsxSink's fast path expects."""
    return (getattr(ws, "constant_memory", False) is True or ws.constant_memory == 1) and all(
        hasattr(ws, a) for a in ("fh", "row_data_fh", "previous_row", "table", "dim_rowmin",
                                 "dim_rowmax", "dim_colmin", "dim_colmax")
    ) and ws.fh is ws.row_data_fh and not ws.table


class _XlsxSink:
    """XLSX through xlsxwriter in constant_memory mode.

    xlsxwriter builds each cell through several generic layers (about 15 µs a cell here, so
    two minutes for 100,000 cases). The fast path writes the same ``<row>``/``<c>`` XML that
    xlsxwriter's constant_memory mode writes for ``write_string``/``write_number`` (inline
    strings, the same escaping) straight into the worksheet's row-data file, and keeps its
    dimensions up to date; everything else (styles, frozen pane, filter, widths, packaging)
    stays xlsxwriter's. A test checks that both paths give byte-identical sheet XML; when the
    worksheet does not look as expected (another xlsxwriter version), the public API is used.
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
        self._header = wb.add_format({"bold": True, "bg_color": "#DDEBF7", "border": 1})
        wrap = wb.add_format({"text_wrap": True, "valign": "top"})
        top = wb.add_format({"valign": "top"})
        wrap_q = wb.add_format({"text_wrap": True, "valign": "top", "quote_prefix": True})
        top_q = wb.add_format({"valign": "top", "quote_prefix": True})
        for f in (self._header, top, wrap, top_q, wrap_q):
            f._get_xf_index()  # fixed style ids, whichever path writes the cells
        self._plain = [wrap if c.wrap else top for c in plan.columns]
        self._quoted = [wrap_q if c.wrap else top_q for c in plan.columns]
        self._ws = wb.add_worksheet("Cases")
        ws = self._ws
        self._fast = fast and _fast_path_ok(ws)
        self._refs = [xl_col_to_name(c) for c in range(len(plan.names))]
        self._plain_s = [f._get_xf_index() for f in self._plain]
        self._quoted_s = [f._get_xf_index() for f in self._quoted]
        self._widths = [len(n) + 2 for n in plan.names]
        self._row = 0
        self._write_rows([list(plan.names)], header=True)
        ws.freeze_panes(1, 0)
        about = wb.add_worksheet("Columns")
        about.write_string(0, 0, "column", self._header)
        about.write_string(0, 1, "description", self._header)
        for i, c in enumerate(plan.columns, 1):
            about.write_string(i, 0, c.name)
            about.write_string(i, 1, c.description)
        about.set_column(0, 0, max(len(n) for n in plan.names) + 2)
        about.set_column(1, 1, MAX_WIDTH)

    def write(self, cases: list[CaseRow], decode: Callable[[bytes], bytes]) -> int:
        rows: list[list[Cell]] = []
        plan_rows = self._plan.rows
        for case in cases:
            rows += plan_rows(case, _decoded(case, decode))
        self._write_rows(rows)
        return len(rows)

    def _write_rows(self, rows: list[list[Cell]], header: bool = False) -> None:
        if self._fast:
            self._write_fast(rows, header)
        else:
            self._write_api(rows, header)

    def _write_fast(self, rows: list[list[Cell]], header: bool) -> None:
        ws = self._ws
        refs, widths = self._refs, self._widths
        hs = str(self._header._get_xf_index())
        plain_s = [hs] * len(refs) if header else [str(i) for i in self._plain_s]
        quoted_s = [hs] * len(refs) if header else [str(i) for i in self._quoted_s]
        special = _XML_SPECIAL.search
        half = XLSX_CELL_LIMIT // 2
        out: list[str] = []
        append = out.append
        r = self._row
        for row in rows:
            rn = str(r + 1)
            append(f'<row r="{rn}">')
            sample = r <= _WIDTH_SAMPLE_ROWS
            for c, v in enumerate(row):
                if v is None:
                    continue
                if v.__class__ is int:
                    append(f'<c r="{refs[c]}{rn}" s="{plain_s[c]}"><v>{v:.16G}</v></c>')
                    continue
                s: str = v  # type: ignore[assignment]
                if not s:
                    continue
                if len(s) > half:
                    s = xlsx_fit(s)
                if sample and len(s) + 2 > widths[c]:
                    widths[c] = len(s) + 2
                style = quoted_s[c] if s[0] in FORMULA_TRIGGERS else plain_s[c]
                if special(s) is not None:
                    s = _xml_text(s)
                t = "<t xml:space=\"preserve\">" if s[0].isspace() or s[-1].isspace() else "<t>"
                append(f'<c r="{refs[c]}{rn}" s="{style}" t="inlineStr"><is>{t}{s}</t></is></c>')
            append("</row>")
            r += 1
        if not rows:
            return
        ws.fh.write("".join(out))
        # What xlsxwriter's _check_dimensions() would have recorded: the header row (written
        # first, every column named) spans all columns.
        ws.dim_rowmin = 0
        ws.dim_rowmax = r - 1
        ws.dim_colmin = 0
        ws.dim_colmax = len(refs) - 1
        ws.previous_row = r - 1
        self._row = r

    def _write_api(self, rows: list[list[Cell]], header: bool) -> None:
        ws = self._ws
        plain = [self._header] * len(self._refs) if header else self._plain
        quoted = [self._header] * len(self._refs) if header else self._quoted
        widths = self._widths
        r = self._row
        for row in rows:
            sample = r <= _WIDTH_SAMPLE_ROWS
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
                if sample and len(s) + 2 > widths[c]:
                    widths[c] = len(s) + 2
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
        for c, (col, width) in enumerate(zip(self._plan.columns, self._widths, strict=True)):
            ws.set_column(c, c, MAX_WIDTH if col.wrap and width > MAX_WIDTH else
                          min(width, MAX_WIDTH))
        self._wb.close()


def _temp_path(output: Path) -> Path:
    return output.with_name(f".{output.name}.{secrets.token_hex(6)}.part")


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
    decode: Callable[[bytes], bytes] = identity,
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
    done = False
    try:
        sink: _Sink
        if fmt == "csv":
            sink = _CsvSink(fh, plan)
        elif fmt == "jsonl":
            sink = _JsonlSink(fh, plan)
        else:
            sink = _XlsxSink(fh, plan, output.parent)
        rows = cases = 0
        async for chunk in iter_case_batches(db, since=since, until=until, status=status,
                                             lang=lang, batch=batch):
            rows += await asyncio.to_thread(sink.write, chunk, decode)
            cases += len(chunk)
            if progress is not None:
                progress(cases)
        await asyncio.to_thread(_finish, sink, fh)
        os.replace(tmp, output)
        done = True
    finally:
        if not done:
            with contextlib.suppress(Exception):
                fh.close()
            tmp.unlink(missing_ok=True)
    return ExportResult(rows=rows, cases=cases)


def _finish(sink: _Sink, fh: IO[bytes]) -> None:
    """Close the writer, then make the file durable before it is renamed into place."""
    sink.close()
    fh.flush()
    os.fsync(fh.fileno())
    fh.close()


def column_names(form: Form) -> list[str]:
    """The CSV/XLSX header for ``form``, in order."""
    return list(ExportPlan(form).names)
