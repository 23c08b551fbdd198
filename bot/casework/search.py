"""What staff typed after /find: a case number, a Chinese ID (whole or its last 6), a phone
number, or a name in any script; and the persons that match it."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from bot.casework.index import PersonIndex
from bot.services.case_numbers import has_check_digit_mistake, parse_case_number

Kind = Literal["case", "case_mistake", "chinese_id", "phone", "name", "empty"]


@dataclass(frozen=True, slots=True)
class Query:
    kind: Kind
    value: str


def classify(text: str) -> Query:
    text = text.strip()
    compact = re.sub(r"[\s\-–—.()]", "", text)
    if not text:
        return Query("empty", "")
    number = parse_case_number(text)
    if number is not None:
        return Query("case", number)
    if has_check_digit_mistake(text):
        return Query("case_mistake", text)
    if re.fullmatch(r"\d{17}[\dXx]|\d{5}[\dXx]", compact):
        return Query("chinese_id", compact.upper())
    if re.fullmatch(r"\+?\d{9,15}", compact):
        return Query("phone", compact)
    return Query("name", text)


@dataclass(frozen=True, slots=True)
class Hit:
    case_id: int
    number: str
    person: int | None  # None: the case as a whole (found by its number)


def find(index: PersonIndex, query: Query, limit: int = 20) -> list[Hit]:
    """Persons matching an ID, phone or name query, best first (case numbers are looked up
    in the database by the caller)."""
    if query.kind == "chinese_id":
        records = index.by_chinese_id(query.value)
    elif query.kind == "phone":
        records = index.by_phone(query.value)
    elif query.kind == "name":
        records = [r for r, _ in index.by_name(query.value, limit=limit)]
    else:
        return []
    return [Hit(r.case_id, r.number, r.person) for r in records[:limit]]
