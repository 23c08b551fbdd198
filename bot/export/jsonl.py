"""JSONL: one case per line, the stored answers as kept."""

from __future__ import annotations

from typing import IO

from bot.export.csv import _CsvWriter
from bot.export.plan import Decode, ExportPlan, _Chunk, _decoded, _dumps, json_case
from bot.storage.export_queries import CaseRow


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
