"""What every answer validator shares: the rejected answer, the "I don't know" answer, and the
normalisation of short answers (dates, ID numbers, phone numbers).

Pure: nothing here talks to Telegram, the database or gettext.
"""

from __future__ import annotations

import enum
import re
import unicodedata
from dataclasses import dataclass
from typing import Final, Generic, TypeVar

__all__ = [
    "MAX_SHORT_INPUT",
    "UNKNOWN",
    "Invalid",
    "Unknown",
    "ascii_digits",
    "is_unknown_answer",
    "normalise_short",
]

# Longer input than this cannot be a date, an ID or a phone number: refuse it before any work.
MAX_SHORT_INPUT: Final = 100

CodeT = TypeVar("CodeT", bound=str)


@dataclass(frozen=True, slots=True)
class Invalid(Generic[CodeT]):
    """A rejected answer; ``code`` says why, and the caller turns it into a message."""

    code: CodeT


class Unknown(enum.Enum):
    """The relative said they do not know (a valid answer, distinct from a skipped one)."""

    UNKNOWN = "unknown"


UNKNOWN: Final = Unknown.UNKNOWN


# --------------------------------------------------------------------------------------------
# Shared normalisation
# --------------------------------------------------------------------------------------------


def ascii_digits(text: str) -> str:
    """Replace every Unicode decimal digit (Arabic-Indic, full-width, ...) by its ASCII digit."""
    if text.isascii():
        return text
    return "".join(
        str(unicodedata.decimal(ch)) if not ch.isascii() and ch.isdecimal() else ch for ch in text
    )


def normalise_short(text: str) -> str:
    """NFKC (full-width punctuation and letters), ASCII digits, case-folded, spaces collapsed."""
    text = ascii_digits(unicodedata.normalize("NFKC", text))
    return " ".join(text.casefold().split())


# --------------------------------------------------------------------------------------------
# "I don't know"
# --------------------------------------------------------------------------------------------

_UNKNOWN_WORDS: Final = frozenset(
    {
        # en
        "unknown",
        "not known",
        "don't know",
        "dont know",
        "do not know",
        "i don't know",
        "i dont know",
        "i do not know",
        "idk",
        "no idea",
        "n/a",
        # ru (with the common run-together spelling "незнаю")
        "не знаю",
        "я не знаю",
        "незнаю",
        "неизвестно",
        "не известно",
        "не помню",
        "нет данных",
        "нет информации",
        "н/д",
        # kk, also as typed on a Russian keyboard without Kazakh letters
        "білмеймін",
        "мен білмеймін",
        "билмеймин",
        "білмеймин",
        "билмеймін",
        "білмим",
        "белгісіз",
        "белгисиз",
        "есімде жоқ",
        "есимде жок",
        "есімде жок",
        # zh
        "不知道",
        "不详",
        "未知",
        "不清楚",
    }
)
_UNKNOWN_SYMBOLS_RE: Final = re.compile(r"[?؟]+|[-‐‑‒–—―−_]+")


def is_unknown_answer(text: str) -> bool:
    """True if the text means "I don't know" (kk/ru/en/zh words, "?" or "-")."""
    if len(text) > MAX_SHORT_INPUT:
        return False
    norm = normalise_short(text).replace("’", "'").replace("ʼ", "'").replace("`", "'")
    norm = norm.rstrip(".!)").strip()
    if not norm:
        return False
    if norm in _UNKNOWN_WORDS:
        return True
    return _UNKNOWN_SYMBOLS_RE.fullmatch(norm.replace(" ", "")) is not None

