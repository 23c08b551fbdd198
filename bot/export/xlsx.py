"""XLSX: a small streaming writer (sheet rows go straight into a deflated zip member), and the
export's encoder and writer on top of it (the last part of this module).

Kept because it is faster: tests/bench/bench_encoders.py measured 0.11 s (deflate level 1) and
0.13 s (level 6) against 0.43 s for xlsxwriter's constant_memory mode writing the same cells
(1,000 cases, 2026-12-03); the ecosystem review found 5.1 s against 31.6 s for 100,000 rows,
most of xlsxwriter's time in its per-cell write calls.

xlsxwriter (even in constant_memory mode) writes every row to a temporary file and, on close,
copies that file into the zip and compresses it at zlib's default level: for a 590 MB sheet
that close step alone took about 20 s. Here the sheet's XML is compressed as it is written
(``zipfile``, ZIP_DEFLATED, level 1 by default: about twice as fast as level 6 for a file
about a third bigger), nothing of the sheet is kept in memory or on disk, and zlib compresses
without holding the GIL, so the caller's other threads keep running meanwhile.

What it writes is the plain subset of SpreadsheetML that Excel, LibreOffice and openpyxl read:
inline strings (no shared-string table to hold in memory), a fixed set of cell styles
(:data:`STYLES`), column widths, a frozen header row and an autofilter. Cells are given as
ready XML (see :func:`text_cell` and :func:`number_cell`), so a caller can build rows in
another process. A streamed sheet has no ``<dimension>`` element (it is optional, and it would
have to come before the rows); the small sheets written whole have one.

Text is escaped exactly as xlsxwriter escapes it: the control characters XML 1.0 cannot hold
become ``_xHHHH_`` (Excel shows the original character), and a literal ``_xHHHH_`` is protected
as ``_x005F_xHHHH_``.
"""

from __future__ import annotations

import contextlib
import re
import zipfile
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
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
from bot.storage.export_queries import CaseRow

#: Cell style ids (the ``s`` attribute), as :data:`_STYLES_XML` defines them.
STYLE_DEFAULT = 0
STYLE_HEADER = 1  # bold, light blue fill, thin border
STYLE_TOP = 2  # aligned to the top
STYLE_WRAP = 3  # aligned to the top, wrapped
STYLE_TOP_QUOTED = 4  # as STYLE_TOP, with Excel's "quote prefix": stays text when edited
STYLE_WRAP_QUOTED = 5  # as STYLE_WRAP, with the quote prefix
STYLES = (STYLE_DEFAULT, STYLE_HEADER, STYLE_TOP, STYLE_WRAP, STYLE_TOP_QUOTED,
          STYLE_WRAP_QUOTED)
#: Excel's largest row and column numbers.
MAX_ROWS = 1_048_576
MAX_COLS = 16_384

_NS = ('xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
       'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"')
_DECL = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
_REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_PKG_REL = "http://schemas.openxmlformats.org/package/2006/relationships"
_CT = "application/vnd.openxmlformats-officedocument"

_STYLES_XML = (
    _DECL + '<styleSheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
    '<fonts count="2"><font><sz val="11"/><name val="Calibri"/><family val="2"/></font>'
    '<font><b/><sz val="11"/><name val="Calibri"/><family val="2"/></font></fonts>'
    '<fills count="3"><fill><patternFill patternType="none"/></fill>'
    '<fill><patternFill patternType="gray125"/></fill>'
    '<fill><patternFill patternType="solid"><fgColor rgb="FFDDEBF7"/><bgColor indexed="64"/>'
    "</patternFill></fill></fills>"
    '<borders count="2"><border><left/><right/><top/><bottom/><diagonal/></border>'
    '<border><left style="thin"><color auto="1"/></left><right style="thin"><color auto="1"/>'
    '</right><top style="thin"><color auto="1"/></top><bottom style="thin"><color auto="1"/>'
    "</bottom><diagonal/></border></borders>"
    '<cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/>'
    "</cellStyleXfs>"
    '<cellXfs count="6"><xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/>'
    '<xf numFmtId="0" fontId="1" fillId="2" borderId="1" xfId="0" applyFont="1" applyFill="1"'
    ' applyBorder="1"/>'
    '<xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0" applyAlignment="1">'
    '<alignment vertical="top"/></xf>'
    '<xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0" applyAlignment="1">'
    '<alignment vertical="top" wrapText="1"/></xf>'
    '<xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0" quotePrefix="1"'
    ' applyAlignment="1"><alignment vertical="top"/></xf>'
    '<xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0" quotePrefix="1"'
    ' applyAlignment="1"><alignment vertical="top" wrapText="1"/></xf></cellXfs>'
    '<cellStyles count="1"><cellStyle name="Normal" xfId="0" builtinId="0"/></cellStyles>'
    '<dxfs count="0"/><tableStyles count="0" defaultTableStyle="TableStyleMedium9"'
    ' defaultPivotStyle="PivotStyleLight16"/></styleSheet>'
)

_CONTROL_ESCAPED = re.compile("(_x[0-9a-fA-F]{4}_)")
_CONTROL = re.compile("([\x00-\x08\x0b-\x1f])")
#: Anything that makes :func:`xml_text` change a string (one pattern: one scan).
NEEDS_ESCAPE = re.compile("[&<>\x00-\x08\x0b-\x1f\ufffe\uffff]|_x")


def xml_text(s: str) -> str:
    """Escape text for an inline string as xlsxwriter does: control characters as
    ``_xHHHH_`` (a literal ``_xHHHH_`` as ``_x005F_xHHHH_``), then ``&``, ``<`` and ``>``."""
    if NEEDS_ESCAPE.search(s) is None:
        return s
    s = _CONTROL_ESCAPED.sub(r"_x005F\1", s)
    s = _CONTROL.sub(lambda m: f"_x{ord(m.group(1)):04X}_", s)
    s = s.replace("\ufffe", "_xFFFE_").replace("\uffff", "_xFFFF_")
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def column_letter(col: int) -> str:
    """The letters of a 0-based column number (0 -> "A", 52 -> "BA")."""
    if not 0 <= col < MAX_COLS:
        raise ValueError(f"column {col} is outside Excel's sheet")
    letters = ""
    col += 1
    while col:
        col, rest = divmod(col - 1, 26)
        letters = chr(65 + rest) + letters
    return letters


def text_cell(ref: str, style: int, text: str) -> str:
    """An inline-string cell; ``ref`` is its reference ("B7"), ``text`` is escaped here."""
    s = xml_text(text)
    t = '<t xml:space="preserve">' if s and (s[0].isspace() or s[-1].isspace()) else "<t>"
    attr = f' s="{style}"' if style else ""
    return f'<c r="{ref}"{attr} t="inlineStr"><is>{t}{s}</t></is></c>'


def number_cell(ref: str, style: int, value: int | float) -> str:
    """A number cell, formatted as Excel keeps numbers (15-17 significant digits)."""
    attr = f' s="{style}"' if style else ""
    return f'<c r="{ref}"{attr}><v>{value:.16G}</v></c>'


def excel_width(chars: float) -> float:
    """The stored width of a column meant to show ``chars`` characters (as xlsxwriter)."""
    if chars <= 0:
        return 0.0
    if chars < 1:
        return int(chars * 12 + 0.5) * 256 // 12 / 256
    return int((int(chars * 7 + 0.5) + 5) / 7 * 256) / 256


def _cols_xml(widths: Sequence[float]) -> str:
    """``<cols>``, adjacent columns of equal width merged as Excel does."""
    if not widths:
        return ""
    out = []
    start = 0
    for c in range(1, len(widths) + 1):
        if c == len(widths) or widths[c] != widths[start]:
            out.append(f'<col min="{start + 1}" max="{c}" width="{excel_width(widths[start]):.16g}"'
                       ' customWidth="1"/>')
            start = c
    return "<cols>" + "".join(out) + "</cols>"


def _escape_attr(s: str) -> str:
    """Escape text for XML content or a double-quoted attribute."""
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace(
        '"', "&quot;")


def _quoted_sheet(name: str) -> str:
    return name if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.]*", name) else \
        "'" + name.replace("'", "''") + "'"


class SheetStream:
    """One sheet being written: append rows as XML, then :meth:`close`."""

    def __init__(self, book: XlsxStream, name: str, stream: IO[bytes], columns: int,
                 autofilter: bool) -> None:
        self._book = book
        self.name = name
        self._stream = stream
        self._columns = columns
        self._autofilter = autofilter
        self.rows = 0  # rows written so far (the header row included)
        self.closed = False

    def write_xml(self, xml: bytes, rows: int) -> None:
        """Append ``rows`` complete ``<row>`` elements, numbered from ``self.rows + 1``."""
        if self.rows + rows > MAX_ROWS:
            raise ValueError(f"more than {MAX_ROWS} rows do not fit in an Excel sheet")
        self._stream.write(xml)
        self.rows += rows

    def write_row(self, cells: Sequence[str | int | None], style: int = STYLE_DEFAULT) -> None:
        """Append one row of plain cells (text or numbers, None for an empty cell)."""
        r = self.rows + 1
        parts = [f'<row r="{r}">']
        for c, v in enumerate(cells):
            if v is None or v == "":
                continue
            ref = f"{column_letter(c)}{r}"
            parts.append(number_cell(ref, style, v) if isinstance(v, int) else
                         text_cell(ref, style, v))
        parts.append("</row>")
        self.write_xml("".join(parts).encode("utf-8"), 1)

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        tail = "</sheetData>"
        if self._autofilter and self._columns:
            tail += f'<autoFilter ref="{self.filter_range()}"/>'
        tail += ('<pageMargins left="0.7" right="0.7" top="0.75" bottom="0.75" header="0.3"'
                 ' footer="0.3"/></worksheet>')
        self._stream.write(tail.encode("utf-8"))
        self._stream.close()
        self._book._sheet_closed(self)

    def filter_range(self, absolute: bool = False) -> str:
        last = column_letter(max(self._columns, 1) - 1)
        rows = max(self.rows, 1)
        if absolute:
            return f"$A$1:${last}${rows}"
        return f"A1:{last}{rows}"


class XlsxStream:
    """An XLSX file written sheet by sheet into ``fh``; call :meth:`close` at the end.

    Only one sheet is open at a time (they are members of one zip file). ``compresslevel`` is
    zlib's (1 fastest, 9 smallest).
    """

    def __init__(self, fh: IO[bytes], *, title: str = "", description: str = "",
                 compresslevel: int = 1) -> None:
        self._zip = zipfile.ZipFile(fh, "w", zipfile.ZIP_DEFLATED, allowZip64=True,
                                    compresslevel=compresslevel)
        self._title = title
        self._description = description
        self._created = datetime.now(UTC)
        self._sheets: list[SheetStream] = []
        self._open: SheetStream | None = None
        self.closed = False

    def add_sheet(self, name: str, *, columns: int, widths: Sequence[float] = (),
                  freeze_header: bool = False, autofilter: bool = False,
                  rows_hint: int | None = None) -> SheetStream:
        """Start a sheet of ``columns`` columns; ``widths`` in characters, per column.

        ``rows_hint``, when the number of rows (header included) is known in advance, is
        written as the sheet's dimension."""
        if self._open is not None:
            raise RuntimeError(f"sheet {self._open.name!r} is still open")
        if not 0 < len(name) <= 31 or any(ch in name for ch in "[]:*?/\\"):
            raise ValueError(f"{name!r} cannot name an Excel sheet")
        index = len(self._sheets) + 1
        stream = self._zip.open(f"xl/worksheets/sheet{index}.xml", "w", force_zip64=True)
        head = [_DECL, f"<worksheet {_NS}>"]
        if rows_hint is not None and columns:
            head.append(f'<dimension ref="A1:{column_letter(columns - 1)}{max(rows_hint, 1)}"/>')
        selected = ' tabSelected="1"' if index == 1 else ""
        if freeze_header:
            head.append(f'<sheetViews><sheetView{selected} workbookViewId="0">'
                        '<pane ySplit="1" topLeftCell="A2" activePane="bottomLeft"'
                        ' state="frozen"/><selection pane="bottomLeft"/></sheetView>'
                        "</sheetViews>")
        else:
            head.append(f'<sheetViews><sheetView{selected} workbookViewId="0"/></sheetViews>')
        head.append('<sheetFormatPr defaultRowHeight="15"/>')
        head.append(_cols_xml(widths))
        head.append("<sheetData>")
        stream.write("".join(head).encode("utf-8"))
        sheet = SheetStream(self, name, stream, columns, autofilter)
        self._open = sheet
        return sheet

    def _sheet_closed(self, sheet: SheetStream) -> None:
        self._sheets.append(sheet)
        self._open = None

    def abort(self) -> None:
        """Give up on the file (the caller removes it): release the zip without finishing the
        workbook, so nothing is written to ``fh`` later (e.g. when garbage collected)."""
        if self.closed:
            return
        self.closed = True
        with contextlib.suppress(Exception):
            if self._open is not None:
                self._open._stream.close()
        with contextlib.suppress(Exception):
            self._zip.close()

    def close(self) -> None:
        """Write the workbook's other parts and finish the zip (``fh`` stays open)."""
        if self.closed:
            return
        if self._open is not None:
            self._open.close()
        self.closed = True
        sheets = self._sheets
        names = "".join(f'<sheet name="{_escape_attr(s.name)}"'
                        f' sheetId="{i}" r:id="rId{i}"/>' for i, s in enumerate(sheets, 1))
        defined = "".join(
            f'<definedName name="_xlnm._FilterDatabase" localSheetId="{i}" hidden="1">'
            f"{_escape_attr(_quoted_sheet(s.name))}!{s.filter_range(absolute=True)}"
            "</definedName>"
            for i, s in enumerate(sheets) if s._autofilter and s._columns)
        workbook = (
            _DECL + f"<workbook {_NS}>"
            '<workbookPr/><bookViews><workbookView xWindow="240" yWindow="15"'
            ' windowWidth="16095" windowHeight="9660"/></bookViews>'
            f"<sheets>{names}</sheets>"
            + (f"<definedNames>{defined}</definedNames>" if defined else "")
            + '<calcPr calcId="124519" fullCalcOnLoad="1"/></workbook>')
        rels = "".join(
            f'<Relationship Id="rId{i}" Type="{_REL}/worksheet" Target="worksheets/sheet{i}.xml"/>'
            for i in range(1, len(sheets) + 1))
        rels += (f'<Relationship Id="rId{len(sheets) + 1}" Type="{_REL}/styles"'
                 ' Target="styles.xml"/>')
        overrides = "".join(
            f'<Override PartName="/xl/worksheets/sheet{i}.xml"'
            f' ContentType="{_CT}.spreadsheetml.worksheet+xml"/>'
            for i in range(1, len(sheets) + 1))
        when = self._created.strftime("%Y-%m-%dT%H:%M:%SZ")
        titles = "".join(f"<vt:lpstr>{_escape_attr(s.name)}</vt:lpstr>" for s in sheets)
        parts = {
            "[Content_Types].xml": (
                _DECL + '<Types xmlns="http://schemas.openxmlformats.org/package/2006/'
                'content-types"><Default Extension="rels" ContentType="application/'
                'vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml"'
                ' ContentType="application/xml"/>'
                f'<Override PartName="/docProps/app.xml" ContentType="{_CT}.extended-'
                'properties+xml"/><Override PartName="/docProps/core.xml" ContentType='
                '"application/vnd.openxmlformats-package.core-properties+xml"/>'
                f'<Override PartName="/xl/styles.xml" ContentType="{_CT}.spreadsheetml.'
                'styles+xml"/><Override PartName="/xl/workbook.xml" ContentType='
                f'"{_CT}.spreadsheetml.sheet.main+xml"/>{overrides}</Types>'),
            "_rels/.rels": (
                _DECL + f'<Relationships xmlns="{_PKG_REL}">'
                f'<Relationship Id="rId1" Type="{_REL}/officeDocument" Target="xl/workbook.xml"/>'
                f'<Relationship Id="rId2" Type="{_PKG_REL}/metadata/core-properties"'
                ' Target="docProps/core.xml"/>'
                f'<Relationship Id="rId3" Type="{_REL}/extended-properties"'
                ' Target="docProps/app.xml"/></Relationships>'),
            "docProps/app.xml": (
                _DECL + '<Properties xmlns="http://schemas.openxmlformats.org/officeDocument/'
                '2006/extended-properties" xmlns:vt="http://schemas.openxmlformats.org/'
                'officeDocument/2006/docPropsVTypes"><Application>Microsoft Excel</Application>'
                '<DocSecurity>0</DocSecurity><ScaleCrop>false</ScaleCrop><HeadingPairs>'
                '<vt:vector size="2" baseType="variant"><vt:variant><vt:lpstr>Worksheets'
                f"</vt:lpstr></vt:variant><vt:variant><vt:i4>{len(sheets)}</vt:i4></vt:variant>"
                f'</vt:vector></HeadingPairs><TitlesOfParts><vt:vector size="{len(sheets)}"'
                f' baseType="lpstr">{titles}</vt:vector></TitlesOfParts>'
                "<LinksUpToDate>false</LinksUpToDate><SharedDoc>false</SharedDoc>"
                "<HyperlinksChanged>false</HyperlinksChanged><AppVersion>12.0000</AppVersion>"
                "</Properties>"),
            "docProps/core.xml": (
                _DECL + '<cp:coreProperties xmlns:cp="http://schemas.openxmlformats.org/package/'
                '2006/metadata/core-properties" xmlns:dc="http://purl.org/dc/elements/1.1/"'
                ' xmlns:dcterms="http://purl.org/dc/terms/" xmlns:dcmitype="http://purl.org/dc/'
                'dcmitype/" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
                f"<dc:title>{_escape_attr(self._title)}</dc:title>"
                f"<dc:description>{_escape_attr(self._description)}</dc:description>"
                f'<dcterms:created xsi:type="dcterms:W3CDTF">{when}</dcterms:created>'
                f'<dcterms:modified xsi:type="dcterms:W3CDTF">{when}</dcterms:modified>'
                "</cp:coreProperties>"),
            "xl/workbook.xml": workbook,
            "xl/_rels/workbook.xml.rels": (
                _DECL + f'<Relationships xmlns="{_PKG_REL}">{rels}</Relationships>'),
            "xl/styles.xml": _STYLES_XML,
        }
        for name, text in parts.items():
            self._zip.writestr(name, text.encode("utf-8"))
        self._zip.close()


# --------------------------------------------------------------------------- the export's sheets

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
