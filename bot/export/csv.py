"""CSV: the encoder (one text per batch, quoted as ``csv.writer`` would) and the writer."""

from __future__ import annotations

import re
from typing import IO, Any

from bot.export.plan import (
    _ATTACH,
    _CACHE_LIMIT,
    _OPTION,
    _TEXT,
    FORMULA_TRIGGERS,
    Cell,
    Decode,
    ExportPlan,
    _attachment,
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

#: Where a spreadsheet may see a cell start: the start of the text, or right after a character
#: that some program splits cells or lines on ("," and ";": Excel in Russian and Kazakh locales
#: uses ";"; TAB; a line break; a quote, which a naive split leaves at the front). A formula
#: trigger (FORMULA_TRIGGERS) there gets an apostrophe in front of it.
_CELL_START = re.compile('(^|[,;\t\r\n"])(?=[=+\\-@\t\r])')
_GUARDED = "\\1'"
#: A trigger inside the text where a cell may start (a quick test: most texts have none).
_INNER_TRIGGER = re.compile('[,;\t\r\n"][=+\\-@\t\r]')


def csv_safe(value: str) -> str:
    """The CSV formula guard: an apostrophe before every formula trigger (= + - @ TAB CR)
    at the start of the text and after every ",", ";", TAB, line break or quote in it, so that
    no split of the line makes a cell that a spreadsheet reads as a formula."""
    if value and (value[0] in FORMULA_TRIGGERS or _INNER_TRIGGER.search(value) is not None):
        return _CELL_START.sub(_GUARDED, value)
    return value


def _csv_text(v: str) -> str:
    """One non-empty text cell for CSV: formula guard, then csv's QUOTE_MINIMAL quoting."""
    if v[0] in FORMULA_TRIGGERS or _INNER_TRIGGER.search(v) is not None:
        v = _CELL_START.sub(_GUARDED, v)
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


_CSV_EMPTY = {_TEXT: "", _OPTION: ",", _ATTACH: ",0"}  # unanswered, as _field_cells gives
#: Per field: (question id, kind, text when unanswered, cache of "code,label" by answer, field)
_Compiled = list[tuple[str, int, str, dict[Any, str], _Field]]


#: A CSV text cell that needs neither the formula guard nor quotes (checked in one call).
_CSV_PLAIN = re.compile('[^=+\\-@\t\r",\n;][^",\r\n;\t]*')
#: The metadata cells of a row (a case's number, status, language and times), when plain.
_CSV_PLAIN_HEAD = re.compile('(?:[^=+\\-@\t\r",\n;][^",\r\n;\t]*,){5}')


class _CsvEncoder:
    """CSV lines, quoted here exactly as ``csv.writer`` would. Kept because it is faster:
    tests/bench/bench_encoders.py measured 0.25 s against csv.writer's 0.45-0.57 s for the
    same bytes, formula guard included (5,000 cases, JSON decoding included, 2026-12-03; 0.16 s
    before the guard looked inside cells); the csv module looks at every
    character in C, slower on these long texts than ``in`` and ``replace``. The hot loop is
    :meth:`_part`; choices are encoded once per answer, and the cells shared by a case's rows
    once per case."""

    def __init__(self, plan: ExportPlan) -> None:
        self._plan = plan
        self._once = [(key, self._compile(fields), extra) for key, fields, extra in plan.once]
        self._person = self._compile(plan.person_fields)
        self._blank = ",".join(csv_cells([None] * (plan.person_width + 2)))  # + key, level

    @staticmethod
    def _compile(fields: list[_Field]) -> _Compiled:
        return [(f.key, f.kind, _CSV_EMPTY[f.kind], {}, f) for f in fields]

    @staticmethod
    def _part(answers: dict[str, Any], fields: _Compiled, out: list[str]) -> None:
        get = answers.get
        append = out.append
        triggers = FORMULA_TRIGGERS
        inner = _INNER_TRIGGER.search
        guard = _CELL_START.sub
        for key, kind, empty, cache, f in fields:
            v = get(key)
            if v is None:
                append(empty)
            elif kind == _TEXT:
                if v.__class__ is not str:
                    v = _other_text(v)
                if v:  # _csv_text(), inline: this is the innermost loop
                    if v[0] in triggers or inner(v) is not None:
                        v = guard(_GUARDED, v)
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
            levels = person_levels(case) if case.verification else {}
            for i, person in enumerate(persons, 1):
                cells = [f"{before},{i},{n},{after}"]
                part(person if person.__class__ is dict else {}, person_fields, cells)
                cells += csv_cells([case.person_key(i)])
                cells.append(levels.get(i, "reported"))
                append(",".join(cells))
        append("")
        encoded = "\r\n".join(lines).encode("utf-8") if len(lines) > 1 else b""
        return _Chunk(encoded, len(lines) - 1, len(cases))


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
