"""Checks a typed answer against its question type and gives the value to store or an error code."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

from bot.form import validators as v
from bot.form.model import Question


@dataclass(frozen=True, slots=True)
class Valid:
    value: Any


@dataclass(frozen=True, slots=True)
class Invalid:
    code: str
    args: dict[str, Any] = field(default_factory=dict)


def check_typed(q: Question, text: str, today: date) -> Valid | Invalid:
    """Validate typed text for question `q`; values are what the draft and the case store."""
    if q.type == "date":
        d = v.parse_partial_date(text, today=today)
        if isinstance(d, v.Invalid):
            return Invalid(f"date_{d.code}")
        return Valid("unknown" if d is v.UNKNOWN else d.iso())
    if q.type == "phone":
        p = v.parse_phone(text)
        if isinstance(p, v.Invalid):
            return Invalid("phone_invalid")
        return Valid(p.e164)
    if q.type == "chinese_id":
        c = v.check_chinese_id(text, today=today)
        if isinstance(c, v.Invalid):
            return Invalid(f"id_{c.code}")
        return Valid(c.number)
    cleaned = v.clean_text(text, max_len=q.max_len)
    if isinstance(cleaned, v.Invalid):
        if cleaned.code == "too_long":
            return Invalid("too_long", {"length": len(text), "limit": q.max_len})
        return Invalid(cleaned.code)
    if single_line(q) and "\n" in cleaned:
        return Invalid("one_line")
    return Valid(cleaned)


#: Text questions allowing at most this many characters take one line (names, places,
#: occupation): a line break there could make the answer pass for other lines of a card.
SINGLE_LINE_MAX = 500


def single_line(q: Question) -> bool:
    return q.type == "text" and q.max_len <= SINGLE_LINE_MAX


@dataclass(frozen=True, slots=True)
class ChineseIdInfo:
    number: str
    birth_date: date
    gender: str
    prefecture: str | None
    mismatches: tuple[str, ...]


def chinese_id_info(number: str, block_answers: dict[str, Any]) -> ChineseIdInfo | None:
    """What an already-checked ID says, and where it disagrees with the other answers."""
    cid = v.check_chinese_id(number, today=date.max)
    if isinstance(cid, v.Invalid):
        return None
    birth_raw = block_answers.get("birth_date")
    birth = v.PartialDate.from_iso(birth_raw) if birth_raw and birth_raw != "unknown" else None
    mismatches = v.id_mismatches(
        cid, birth=birth, gender=block_answers.get("gender"),
        prefecture=block_answers.get("prefecture"),
    )
    return ChineseIdInfo(cid.number, cid.birth_date, cid.gender, v.prefecture_for_id(cid),
                         tuple(mismatches))
