"""Chinese resident ID numbers (GB 11643, check character ISO 7064 MOD 11-2): checking one,
decoding what it encodes, and comparing that with the other answers.

Pure: ``check_chinese_id`` returns a ChineseId or Invalid(code) for any string.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import date
from typing import Final, Literal, TypeAlias

from bot.form.answer_base import MAX_SHORT_INPUT, Invalid, ascii_digits
from bot.form.dates import MIN_YEAR, PartialDate, is_valid_ymd

__all__ = [
    "XINJIANG_PREFECTURES",
    "ChineseId",
    "ChineseIdErrorCode",
    "ChineseIdResult",
    "check_chinese_id",
    "chinese_id_check_char",
    "id_mismatches",
    "prefecture_for_id",
]

ChineseIdErrorCode: TypeAlias = Literal["length", "chars", "checksum", "birthdate"]

_ID_WEIGHTS: Final = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK_CHARS: Final = "10X98765432"
_ID_LENGTH: Final = 18
_ID_SEPARATORS_RE: Final = re.compile(r"[\s\-‐‑‒–—―−_]+")
# Latin x in any case and width, and Cyrillic Х/х, which a Russian keyboard types in its place.
_ID_X_TRANSLATION: Final = str.maketrans({"x": "X", "х": "X", "Х": "X"})
_ID_CHARS_RE: Final = re.compile(r"[0-9]*X?")

XINJIANG_PREFECTURES: Final[dict[str, str]] = {
    "6501": "urumqi",
    "6502": "karamay",
    "6504": "turpan",
    "6505": "hami",
    "6523": "changji",
    "6527": "bortala",
    "6528": "bayingolin",
    "6529": "aksu",
    "6530": "kizilsu",
    "6531": "kashgar",
    "6532": "hotan",
    "6540": "ili",
    "6542": "tacheng",
    "6543": "altay",
    "6590": "xpcc",
}
# An ID number keeps the region code it was issued with, so people registered before a
# prefecture was reorganised still carry the old prefix: Turpan Prefecture (6521, a city with
# code 6504 since 2015), Hami Prefecture (6522, 6505 since 2016) and Ili Prefecture (6541,
# merged into the Ili Kazakh Autonomous Prefecture 6540 in 2001).
_LEGACY_XINJIANG_PREFIXES: Final = {"6521": "turpan", "6522": "hami", "6541": "ili"}
_PREFECTURE_CODES: Final = frozenset(XINJIANG_PREFECTURES.values())


@dataclass(frozen=True, slots=True)
class ChineseId:
    """A Chinese resident ID number that passed its check, with what the number encodes."""

    number: str
    region_code: str
    prefecture_code: str
    birth_date: date
    gender: Literal["male", "female"]
    is_xinjiang: bool


ChineseIdResult: TypeAlias = ChineseId | Invalid[ChineseIdErrorCode]


def chinese_id_check_char(first17: str) -> str:
    """The 18th character ("0"-"9" or "X") for the first 17 digits of an ID number."""
    if len(first17) != _ID_LENGTH - 1 or not first17.isascii() or not first17.isdigit():
        raise ValueError("expected 17 ASCII digits")
    total = sum(int(digit) * weight for digit, weight in zip(first17, _ID_WEIGHTS, strict=True))
    return _ID_CHECK_CHARS[total % 11]


def _normalise_id(text: str) -> str:
    text = ascii_digits(unicodedata.normalize("NFKC", text))
    return _ID_SEPARATORS_RE.sub("", text).translate(_ID_X_TRANSLATION)


def _id_birth_date(number: str, today: date) -> date | None:
    year, month, day = int(number[6:10]), int(number[10:12]), int(number[12:14])
    if year < MIN_YEAR or not is_valid_ymd(year, month, day):
        return None
    born = date(year, month, day)
    return born if born <= today else None


def check_chinese_id(text: str, *, today: date) -> ChineseIdResult:
    """Check an 18-character Chinese resident ID number and decode it.

    Spaces and hyphens are ignored, full-width and other Unicode digits accepted, a lower-case
    (or Cyrillic) x read as X. Errors: "chars" (anything but digits and a final X), "length"
    (not 18), "checksum" (the check character disagrees), "birthdate" (no such day, before
    1900, or after ``today``).
    """
    if len(text) > MAX_SHORT_INPUT:
        return Invalid("length")
    number = _normalise_id(text)
    if _ID_CHARS_RE.fullmatch(number) is None:
        return Invalid("chars")
    if len(number) != _ID_LENGTH:
        return Invalid("length")
    if chinese_id_check_char(number[:17]) != number[17]:
        return Invalid("checksum")
    born = _id_birth_date(number, today)
    if born is None:
        return Invalid("birthdate")
    return ChineseId(
        number=number,
        region_code=number[:6],
        prefecture_code=number[:4],
        birth_date=born,
        gender="male" if int(number[16]) % 2 == 1 else "female",
        is_xinjiang=number.startswith("65"),
    )


def prefecture_for_id(cid: ChineseId) -> str | None:
    """The Xinjiang prefecture code ("ili", "altay", ...) of an ID's region, or None."""
    prefix = cid.prefecture_code
    return XINJIANG_PREFECTURES.get(prefix) or _LEGACY_XINJIANG_PREFIXES.get(prefix)


def _prefecture_code(answer: str | None) -> str | None:
    """A prefecture answer as a stable code, whether given as "ili" or as its prefix "6540"."""
    if answer is None:
        return None
    if answer in _PREFECTURE_CODES:
        return answer
    return XINJIANG_PREFECTURES.get(answer) or _LEGACY_XINJIANG_PREFIXES.get(answer)


def id_mismatches(
    cid: ChineseId,
    *,
    birth: PartialDate | None,
    gender: str | None,
    prefecture: str | None,
) -> list[str]:
    """Which other answers disagree with what the ID encodes: "birth_date", "gender", "prefecture".

    Only answers that are known are compared: a partial birth date compares the parts it has,
    a gender other than "male"/"female" and a prefecture that is not one of the Xinjiang codes
    (a stable code such as "ili", or its ID prefix such as "6540") are ignored.
    """
    mismatches: list[str] = []
    if birth is not None and not birth.matches(cid.birth_date):
        mismatches.append("birth_date")
    if gender in ("male", "female") and gender != cid.gender:
        mismatches.append("gender")
    answered = _prefecture_code(prefecture)
    if answered is not None and answered != prefecture_for_id(cid):
        mismatches.append("prefecture")
    return mismatches

