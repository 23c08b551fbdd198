"""The export's "Cases" sheet in XLSX: its encoder (rows as XML, possibly in another process)
and writer, on the streaming writer of bot/export/xlsxstream.py (kept because it is faster;
the figures are in its docstring). The stream's names are re-exported here, as before.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import IO, Any

from bot.export.plan import (
    _ATTACH,
    _CACHE_LIMIT,
    _OPTION,
    _TEXT,
    _WIDTH_SAMPLE_ROWS,
    FORMULA_TRIGGERS,
    MAX_WIDTH,
    XLSX_CELL_LIMIT,
    Cell,
    Decode,
    ExportPlan,
    _answers,
    _Chunk,
    _decoded,
    _Field,
    _field_cells,
    _option_key,
    _other_text,
    _sync_now,
    person_levels,
)
from bot.export.xlsxstream import (
    MAX_COLS,
    MAX_ROWS,
    NEEDS_ESCAPE,
    STYLE_DEFAULT,
    STYLE_HEADER,
    STYLE_TOP,
    STYLE_TOP_QUOTED,
    STYLE_WRAP,
    STYLE_WRAP_QUOTED,
    STYLES,
    SheetStream,
    XlsxStream,
    column_letter,
    excel_width,
    number_cell,
    text_cell,
    xml_text,
)
from bot.storage.export_queries import CaseRow

__all__ = [
    "MAX_COLS",
    "MAX_ROWS",
    "NEEDS_ESCAPE",
    "STYLES",
    "STYLE_DEFAULT",
    "STYLE_HEADER",
    "STYLE_TOP",
    "STYLE_TOP_QUOTED",
    "STYLE_WRAP",
    "STYLE_WRAP_QUOTED",
    "SheetStream",
    "XlsxStream",
    "column_letter",
    "excel_width",
    "number_cell",
    "text_cell",
    "xlsx_fit",
    "xml_text",
]


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
            levels = person_levels(case) if case.verification else {}
            for i, person in enumerate(persons, 1):
                cells = [start, before, cell(6, i), count, after]
                self._part(person, plan.person_fields, cells)
                cells.append(cell(plan.key_col, case.person_key(i)))
                cells.append(cell(plan.verification_col, levels.get(i, "reported")))
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

    def __init__(self, fh: IO[bytes], plan: ExportPlan, deflate_level: int = 1) -> None:
        self._plan = plan
        self._fh = fh
        self._synced = 0
        self._book = XlsxStream(fh, title="Cases", description="Exported by the bot",
                                compresslevel=deflate_level)
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
