"""Answer validators for the questionnaire: pure functions that return data or an error code.

Nothing here talks to Telegram, the database or gettext. Each validator takes the text a
relative typed and returns either a value to store or an ``Invalid(code)``; the form engine
turns the code into a message in the relative's language. Inputs are never trusted: every
function returns a result for any string and never raises on user text.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Final, Literal, TypeAlias

import phonenumbers

# Dates, Chinese ID numbers and what all validators share live in their own modules; their
# names are re-exported here, so ``from bot.form import validators as v`` keeps working.
from bot.form.answer_base import (
    MAX_SHORT_INPUT,
    UNKNOWN,
    Invalid,
    Unknown,
    ascii_digits,
    is_unknown_answer,
)
from bot.form.chinese_id import (
    XINJIANG_PREFECTURES,
    ChineseId,
    ChineseIdErrorCode,
    ChineseIdResult,
    check_chinese_id,
    chinese_id_check_char,
    id_mismatches,
    prefecture_for_id,
)
from bot.form.dates import (
    AUTUMN,
    SPRING,
    SUMMER,
    WINTER,
    DateErrorCode,
    DateResult,
    PartialDate,
    Precision,
    parse_partial_date,
)

__all__ = [
    "AUTUMN",
    "SPRING",
    "SUMMER",
    "UNKNOWN",
    "WINTER",
    "XINJIANG_PREFECTURES",
    "ChineseId",
    "ChineseIdErrorCode",
    "ChineseIdResult",
    "DateErrorCode",
    "DateResult",
    "Invalid",
    "PartialDate",
    "Phone",
    "PhoneErrorCode",
    "PhoneResult",
    "Precision",
    "TextErrorCode",
    "TextResult",
    "Unknown",
    "check_chinese_id",
    "chinese_id_check_char",
    "clean_text",
    "id_mismatches",
    "is_unknown_answer",
    "parse_partial_date",
    "parse_phone",
    "prefecture_for_id",
]

# --------------------------------------------------------------------------------------------
# Phone numbers
# --------------------------------------------------------------------------------------------

PhoneErrorCode: TypeAlias = Literal["invalid"]

# Digits, one leading plus, and the punctuation people put between groups of digits.
_PHONE_CHARS_RE: Final = re.compile(r"\+?[0-9\s().\-/‐‑‒–—−]+")


@dataclass(frozen=True, slots=True)
class Phone:
    """A valid phone number in E.164 form, with the country it belongs to."""

    e164: str
    region: str | None


PhoneResult: TypeAlias = Phone | Invalid[PhoneErrorCode]


def parse_phone(text: str, default_region: str = "KZ") -> PhoneResult:
    """Read a phone number ("+7 701 123 45 67", "8 701 123 4567", "+86 138 0013 8000").

    Numbers without a country code are read as ``default_region`` numbers (Kazakh trunk
    prefix 8 included); a leading 00 is read as +. Anything that is not a valid number for its
    country is Invalid("invalid").
    """
    if len(text) > MAX_SHORT_INPUT:
        return Invalid("invalid")
    candidate = ascii_digits(unicodedata.normalize("NFKC", text)).strip()
    if _PHONE_CHARS_RE.fullmatch(candidate) is None:
        return Invalid("invalid")
    if candidate.startswith("00"):
        candidate = "+" + candidate[2:]
    try:
        number = phonenumbers.parse(candidate, default_region)
    except phonenumbers.NumberParseException:
        return Invalid("invalid")
    if not phonenumbers.is_valid_number(number):
        return Invalid("invalid")
    return Phone(
        e164=phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164),
        region=phonenumbers.region_code_for_number(number),
    )


# --------------------------------------------------------------------------------------------
# Free text
# --------------------------------------------------------------------------------------------

TextErrorCode: TypeAlias = Literal["empty", "too_long"]
TextResult: TypeAlias = str | Invalid[TextErrorCode]

# C0 controls but tab and newline, DEL, C1 controls, and lone surrogates (which cannot be
# stored as UTF-8).
_CONTROL_RE: Final = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]")
#: Bidirectional embedding, override and isolate controls (U+202A-U+202E, U+2066-U+2069): they
#: can make text look like something else (reverse a line, hide where it ends). Removed from
#: everything relatives write. The marks U+200E/U+200F, which only set a direction, stay.
_BIDI_RE: Final = re.compile("[\u202a-\u202e\u2066-\u2069]")


def strip_bidi(text: str) -> str:
    """`text` without bidi embedding, override and isolate characters."""
    return _BIDI_RE.sub("", text)
# Invisible characters that mean nothing at the start or end of an answer: zero-width
# characters, bidi marks, embeddings, overrides and isolates, and blank "filler" letters used
# to send empty-looking messages. Inside the text they are kept (ZWJ joins emoji, ZWNJ shapes
# Arabic-script words).
_EDGE_INVISIBLE: Final = frozenset(
    "\u00ad\u034f\u061c\u115f\u1160\u180e\u200b\u200c\u200d\u200e\u200f"
    "\u202a\u202b\u202c\u202d\u202e\u2060\u2061\u2062\u2063\u2064"
    "\u2066\u2067\u2068\u2069\u2800\u3164\ufeff\uffa0"
)


def _is_edge_garbage(ch: str) -> bool:
    return ch.isspace() or ch in _EDGE_INVISIBLE


def clean_text(text: str, *, max_len: int) -> TextResult:
    """Tidy a free-text answer while keeping it as typed, in any script.

    Line breaks become "\\n" (CRLF and CR included), control characters other than newline
    and tab are removed, and so are bidi embedding, override and isolate characters
    (``strip_bidi``); whitespace and invisible characters are trimmed from both ends.
    Returns the text, or Invalid("empty") / Invalid("too_long") (more than ``max_len`` code
    points after cleaning).
    """
    text = _CONTROL_RE.sub("", text.replace("\r\n", "\n").replace("\r", "\n"))
    text = strip_bidi(text)
    start, end = 0, len(text)
    while start < end and _is_edge_garbage(text[start]):
        start += 1
    while end > start and _is_edge_garbage(text[end - 1]):
        end -= 1
    text = text[start:end]
    if not text:
        return Invalid("empty")
    if len(text) > max_len:
        return Invalid("too_long")
    return text
