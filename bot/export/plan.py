"""What an export holds: the columns derived from the form, and how a case becomes rows.

Also the pieces every format shares: decoding a case's stored answers, the encoded batch
(:class:`_Chunk`) that an encoder makes and a writer writes, and the periodic fsync. The
format contract itself is in the package's docstring (bot/export/__init__.py).
"""

from __future__ import annotations

import importlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO, Any, Literal, NamedTuple, Protocol

from bot.form.model import Form, Group, Question
from bot.storage.db import identity as identity
from bot.storage.export_queries import CaseRow

ExportFormat = Literal["csv", "xlsx", "jsonl"]
FORMATS: tuple[ExportFormat, ...] = ("csv", "xlsx", "jsonl")
Cell = str | int | None
Decode = Callable[[bytes], bytes]

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
#: Added after every column derived from the form (columns are never renamed or reused).
VERIFICATION_COLUMN = ("person_verification",
                       "Verification level: reported (one source), corroborated (a second "
                       "independent source) or documented (an official document or evidence)")
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
        # Last: the key shared by persons linked as the same person (case work, duplicates).
        self.key_col = len(columns)
        columns.append(Column("person_key", "The same for every row of one person reported in "
                                            "several cases (NUMBER/person of the first)"))
        self.verification_col = len(columns)
        columns.append(Column(*VERIFICATION_COLUMN))
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
            return [[*head, None, 0, *shared, *([None] * self.person_width), None, None]]
        out = []
        levels = person_levels(case)
        for i, person in enumerate(persons, 1):
            row = [*head, i, len(persons), *shared]
            for f in self.person_fields:
                row += _field_cells(f, person.get(f.key))
            row.append(case.person_key(i))
            row.append(levels.get(i, "reported"))
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
    persons = data.get("persons")
    if isinstance(persons, list):  # one key per person, shared by persons linked as the same
        meta["person_keys"] = [case.person_key(i) for i in range(1, len(persons) + 1)]
    levels = person_levels(case)
    meta["person_verification"] = [levels.get(i, "reported") for i in
                                   range(1, (len(persons) if isinstance(persons, list) else 0) + 1)]
    return meta


def person_levels(case: CaseRow) -> dict[int, str]:
    """Each person's verification level as staff set it (missing: reported)."""
    out: dict[int, str] = {}
    for item in (case.verification or "").split(","):
        person, _, level = item.partition(":")
        if person.isdigit() and level:
            out[int(person)] = level
    return out


def column_names(form: Form) -> list[str]:
    """The CSV/XLSX header for ``form``, in order."""
    return list(ExportPlan(form).names)


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
