"""The export's hand-written encoders against the standard ones, on the same cases, in memory.

    python -m tests.bench.bench_encoders                 # 5,000 cases (XLSX libraries: 1,000)
    python -m tests.bench.bench_encoders --cases 20000 --xlsx-cases 2000

CSV: ``bot.export.csv._CsvEncoder`` against ``csv.writer`` (with the same formula guard) on
the rows of ``ExportPlan.rows``; both texts are compared, so the figure is for the same bytes.
XLSX: ``bot.export.xlsx`` (encoder and streaming writer, deflate level 1 and 6) against
xlsxwriter's ``constant_memory`` mode writing the same cells. JSON decoding is included in
every figure (each encoder starts from the stored bytes). One process, no workers: this
measures the encoders, not the pool (tests/bench/bench_export.py measures whole exports).
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import random
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from bot.export.csv import _CsvEncoder, csv_safe
from bot.export.plan import ExportPlan, identity
from bot.export.xlsx import _XlsxEncoder, _XlsxWriter
from bot.form.model import load_form
from bot.storage.export_queries import CaseRow
from tests.bench.bench_export import case_number, fake_case


def cases(n: int) -> list[CaseRow]:
    rng = random.Random(7)
    form = load_form()
    start = datetime(2025, 1, 1, tzinfo=UTC)
    out = []
    for i in range(n):
        when = start + timedelta(minutes=7 * i)
        data = fake_case(rng, form, when, rng.choice(("kk", "ru", "en")))
        at = when.isoformat(timespec="seconds")
        out.append(CaseRow(i + 1, case_number(i), "new", data["language"], at, at, None,
                           len(data["persons"]), None, 0, None, None, 1,
                           json.dumps(data, ensure_ascii=False).encode()))
    return out


def best(fn: Callable[[], Any], runs: int) -> tuple[float, Any]:
    times = []
    result = None
    for _ in range(runs):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return min(times), result


def csv_ours(plan: ExportPlan, rows: list[CaseRow]) -> bytes:
    return _CsvEncoder(plan).encode(rows, identity).data


def csv_stdlib(plan: ExportPlan, rows: list[CaseRow]) -> bytes:
    buf = io.StringIO(newline="")
    writer = csv.writer(buf)
    for case in rows:
        for row in plan.rows(case, json.loads(case.data)):
            writer.writerow([csv_safe(v) if isinstance(v, str) else v for v in row])
    return buf.getvalue().encode("utf-8")


def xlsx_ours(plan: ExportPlan, rows: list[CaseRow], level: int) -> int:
    fh = io.BytesIO()
    writer = _XlsxWriter(fh, plan, level)
    encoder = _XlsxEncoder(plan)
    for i in range(0, len(rows), 250):
        writer.write(encoder.encode(rows[i:i + 250], identity, max(0, 2000 - i)))
    writer.close()
    return len(fh.getvalue())


def xlsx_library(plan: ExportPlan, rows: list[CaseRow]) -> int:
    import xlsxwriter  # type: ignore[import-untyped]

    fh = io.BytesIO()
    book = xlsxwriter.Workbook(fh, {"constant_memory": True, "in_memory": False})
    sheet = book.add_worksheet("Cases")
    sheet.write_row(0, 0, list(plan.names))
    r = 1
    for case in rows:
        for row in plan.rows(case, json.loads(case.data)):
            for c, v in enumerate(row):
                if v is None:
                    continue
                if isinstance(v, int):
                    sheet.write_number(r, c, v)
                else:
                    sheet.write_string(r, c, v)
            r += 1
    book.close()
    return len(fh.getvalue())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--cases", type=int, default=5_000)
    parser.add_argument("--xlsx-cases", type=int, default=1_000)
    parser.add_argument("--runs", type=int, default=3, help="best of this many runs")
    args = parser.parse_args(argv)
    plan = ExportPlan(load_form())
    rows = cases(args.cases)
    t_ours, ours = best(lambda: csv_ours(plan, rows), args.runs)
    t_std, std = best(lambda: csv_stdlib(plan, rows), args.runs)
    same = ours == std
    print(f"CSV, {args.cases} cases: hand-written {t_ours:.2f} s, csv.writer {t_std:.2f} s "
          f"({t_std / t_ours:.1f}x), same bytes: {same}")
    few = rows[:args.xlsx_cases]
    for level in (1, 6):
        t, size = best(lambda lv=level: xlsx_ours(plan, few, lv), args.runs)
        print(f"XLSX, {len(few)} cases: hand-written, level {level}: {t:.2f} s, "
              f"{size / 2**20:.1f} MB")
    t, size = best(lambda: xlsx_library(plan, few), 1)
    print(f"XLSX, {len(few)} cases: xlsxwriter constant_memory: {t:.2f} s, "
          f"{size / 2**20:.1f} MB")
    return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())
