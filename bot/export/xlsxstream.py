"""XLSX: a small streaming writer (sheet rows go straight into a deflated zip member); the
export's encoder and writer on top of it are in bot/export/xlsx.py.

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
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import IO

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
