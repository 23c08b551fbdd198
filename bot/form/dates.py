"""Partial dates as relatives type them: a decade, a year, a season, a month or a day, maybe
approximate, in kk/ru/en and numeric forms (EDTF precision).

Pure: ``parse_partial_date`` returns a PartialDate, UNKNOWN or Invalid(code) for any string.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from typing import Final, Literal, TypeAlias

from bot.form.answer_base import (
    MAX_SHORT_INPUT,
    UNKNOWN,
    Invalid,
    Unknown,
    is_unknown_answer,
    normalise_short,
)

__all__ = [
    "AUTUMN",
    "MIN_YEAR",
    "SPRING",
    "SUMMER",
    "WINTER",
    "DateErrorCode",
    "DateResult",
    "PartialDate",
    "Precision",
    "is_valid_ymd",
    "parse_partial_date",
]

DateErrorCode: TypeAlias = Literal["format", "invalid", "future", "too_old"]

MIN_YEAR: Final = 1900
_ISO_RE: Final = re.compile(r"([0-9]{4})(?:-([0-9]{2})(?:-([0-9]{2}))?)?")
# "about 1975": words that make a date approximate, before or after it.
_APPROX_RE: Final = re.compile(
    r"^(?:~|≈|примерно|приблизительно|около|где-то|шамамен|шамасы|about|around"
    r"|approximately|approx\.?|circa|ca\.|c\.)\s*|\s*(?:шамасында|шамасы|шамамен|примерно|\?)$"
)
# "1970-е", "1970-х", "1970s", "1970-жылдар", "1970 жылдары": a decade.
_DECADE_RE: Final = re.compile(
    r"(?:в\s+)?([0-9]{3})0\s*(?:-?е|-?х|-?ые|-?ых|'?s|-?ж\.?ж\.?|-?жылдар[а-яәіңғүұқөһ]*|"
    r"-?жж)\.?(?:\s*(?:годы|годах|года|г\.?г?\.?))?"
)
_SEASON_STEMS: Final = (
    (("весн", "весна", "көктем", "koktem", "spring"), 21),
    (("лет", "лето", "жаз", "jaz", "summer"), 22),
    (("осен", "күз", "куз", "kuz", "autumn", "fall"), 23),
    (("зим", "қыс", "кыс", "qys", "winter"), 24),
)


def days_in_month(year: int, month: int) -> int:
    if month == 2:
        leap = year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
        return 29 if leap else 28
    return 30 if month in (4, 6, 9, 11) else 31


def is_valid_ymd(year: int, month: int | None, day: int | None) -> bool:
    if month is None:
        return day is None
    if not 1 <= month <= 12:
        return False
    return day is None or 1 <= day <= days_in_month(year, month)


Precision: TypeAlias = Literal["decade", "year", "season", "month", "day"]
#: EDTF (ISO 8601-2) codes of the seasons, used as a month: 2019-21 is spring 2019.
SPRING, SUMMER, AUTUMN, WINTER = 21, 22, 23, 24


@dataclass(frozen=True, slots=True)
class PartialDate:
    """A date known to the decade, the year, the season, the month or the day, maybe approximate
    ("1970s", "1975", "spring 2019", "March 2018", "12.03.2018", "about 1975")."""

    year: int
    month: int | None = None
    day: int | None = None
    season: int | None = None  # SPRING..WINTER; then month and day are None
    decade: bool = False  # the ten years from `year` (a multiple of ten)
    approx: bool = False

    def __post_init__(self) -> None:
        if not 1 <= self.year <= 9999 or not is_valid_ymd(self.year, self.month, self.day):
            raise ValueError(f"not a calendar date: {self.year}-{self.month}-{self.day}")
        if self.season is not None and (self.month is not None
                                        or self.season not in (SPRING, SUMMER, AUTUMN, WINTER)):
            raise ValueError(f"not a season: {self.year}-{self.season}")
        if self.decade and (self.year % 10 or self.month is not None or self.season is not None):
            raise ValueError(f"not a decade: {self.year}")

    @property
    def precision(self) -> Precision:
        """How much of the date is known."""
        if self.decade:
            return "decade"
        if self.season is not None:
            return "season"
        if self.month is None:
            return "year"
        return "month" if self.day is None else "day"

    def iso(self) -> str:
        """ISO 8601 with reduced precision ("1975", "2018-03", "2018-03-12"), with the EDTF
        extensions for the rest: "2019-21" (spring 2019), "197X" (the 1970s), "1975~" (about)."""
        if self.decade:
            text = f"{self.year // 10:03d}X"
        elif self.season is not None:
            text = f"{self.year:04d}-{self.season}"
        elif self.month is None:
            text = f"{self.year:04d}"
        elif self.day is None:
            text = f"{self.year:04d}-{self.month:02d}"
        else:
            text = f"{self.year:04d}-{self.month:02d}-{self.day:02d}"
        return text + ("~" if self.approx else "")

    @classmethod
    def from_iso(cls, text: str) -> PartialDate:
        """Inverse of ``iso()``; raises ValueError on anything else (stored data, not input)."""
        approx = text.endswith("~")
        core = text.removesuffix("~")
        decade = _DECADE_ISO_RE.fullmatch(core)
        if decade is not None:
            return cls(int(decade.group(1)) * 10, decade=True, approx=approx)
        match = _ISO_RE.fullmatch(core)
        if match is None:
            raise ValueError(f"not a reduced-precision ISO date: {text!r}")
        year, month, day = (None if part is None else int(part) for part in match.groups())
        assert year is not None  # the pattern requires it
        if month is not None and month > 12 and day is None:
            return cls(year, season=month, approx=approx)
        return cls(year, month, day, approx=approx)

    def to_date_or_none(self) -> date | None:
        """The full date if the day is known, else None."""
        if self.month is None or self.day is None:
            return None
        return date(self.year, self.month, self.day)

    def matches(self, other: date) -> bool:
        """True if ``other`` agrees with every part of this date that is known."""
        if self.approx:
            return abs(self.year - other.year) <= 2
        if self.decade:
            return self.year // 10 == other.year // 10
        return (
            self.year == other.year
            and (self.month is None or self.month == other.month)
            and (self.day is None or self.day == other.day)
        )

    def is_after(self, today: date) -> bool:
        """True if the whole period this date names lies after ``today``."""
        if self.year != today.year or self.decade or self.season is not None:
            return self.year > today.year
        if self.month is None or self.month != today.month:
            return self.month is not None and self.month > today.month
        return self.day is not None and self.day > today.day


_DECADE_ISO_RE: Final = re.compile(r"([0-9]{3})X")


DateResult: TypeAlias = PartialDate | Unknown | Invalid[DateErrorCode]

_SEP: Final = r"(?:\s*[./\-،؍٫٬]\s*|\s+)"
_D: Final = r"([0-9]{1,2})"
_Y: Final = r"([0-9]{4})"
# (pattern, order of the groups): day first as in Kazakhstan and Russia, or year first as in ISO.
_NUMERIC_FORMATS: Final = (
    (re.compile(_Y), "y"),
    (re.compile(_D + _SEP + _Y), "my"),
    (re.compile(_Y + _SEP + _D), "ym"),
    (re.compile(_D + _SEP + _D + _SEP + _Y), "dmy"),
    (re.compile(_Y + _SEP + _D + _SEP + _D), "ymd"),
    (re.compile(_Y + r"\s*年(?:\s*" + _D + r"\s*月(?:\s*" + _D + r"\s*[日号])?)?"), "ymd"),
)
# "2018 г.", "1975 год", "2018 ж.", "1975 жыл": a year word after a numeric date.
_YEAR_SUFFIX_RE: Final = re.compile(r"\s*(?:г|гг|год[а-я]*|ж|жыл[а-яәіңғүұқөһ]*|y|yr|year)\.?$")

_ENGLISH_MONTHS: Final = {
    name: number
    for number, names in enumerate(
        (
            ("january", "jan"),
            ("february", "feb"),
            ("march", "mar"),
            ("april", "apr"),
            ("may",),
            ("june", "jun"),
            ("july", "jul"),
            ("august", "aug"),
            ("september", "sep", "sept"),
            ("october", "oct"),
            ("november", "nov"),
            ("december", "dec"),
        ),
        start=1,
    )
    for name in names
}
# Stems of month names: a word matches if it starts with a stem and adds at most a short case
# ending ("марта", "наурызда", "в мае"). Kazakh is listed in Cyrillic, as typed on a Russian
# keyboard without Kazakh letters, and in the 2021 Latin alphabet.
_RUSSIAN_MONTH_STEMS: Final = (
    ("январ", "янв"),
    ("феврал", "фев"),
    ("март", "мар"),
    ("апрел", "апр"),
    ("май", "мая", "мае"),
    ("июн",),
    ("июл",),
    ("август", "авг"),
    ("сентябр", "сен"),
    ("октябр", "окт"),
    ("ноябр", "ноя"),
    ("декабр", "дек"),
)
_KAZAKH_MONTH_STEMS: Final = (
    ("қаңтар", "кантар", "каңтар", "qantar"),
    ("ақпан", "акпан", "aqpan"),
    ("наурыз", "nauryz"),
    ("сәуір", "сәуир", "сауир", "sauir", "säuir", "sáuir"),
    ("мамыр", "mamyr"),
    ("маусым", "mausym"),
    ("шілде", "шилде", "shilde"),
    ("тамыз", "tamyz"),
    ("қыркүйек", "кыркуйек", "қыркуйек", "qyrkuiek", "qyrkúiek"),
    ("қазан", "казан", "qazan"),
    ("қараша", "караша", "qarasha"),
    ("желтоқсан", "желтоксан", "jeltoqsan", "zheltoqsan"),
)
_MAX_ENDING: Final = 4
_FILLER_WORDS: Final = frozenset(
    {"г", "гг", "ж", "в", "во", "in", "of", "the", "y", "st", "nd", "rd", "th"}
)
_FILLER_PREFIXES: Final = ("год", "жыл", "year")
_TOKEN_RE: Final = re.compile(r"[0-9]+|[^\W\d_]+")
_TOKEN_GAP_RE: Final = re.compile(r"[\s.,/\-]*")


def _month_from_word(word: str) -> int | None:
    if word in _ENGLISH_MONTHS:
        return _ENGLISH_MONTHS[word]
    for table, soft_sign_ok in ((_RUSSIAN_MONTH_STEMS, True), (_KAZAKH_MONTH_STEMS, False)):
        for number, stems in enumerate(table, start=1):
            for stem in stems:
                ending = word[len(stem) :]
                if (
                    word.startswith(stem)
                    and len(ending) <= _MAX_ENDING
                    # Kazakh endings have no soft sign: "казань" is the city, not "казан" (October)
                    and (soft_sign_ok or "ь" not in ending)
                ):
                    return number
    return None


def _parse_numeric(text: str) -> tuple[int, int | None, int | None] | None:
    text = _YEAR_SUFFIX_RE.sub("", text)
    for pattern, order in _NUMERIC_FORMATS:
        match = pattern.fullmatch(text)
        if match is None:
            continue
        parts = dict(zip(order, match.groups(), strict=True))
        month, day = parts.get("m"), parts.get("d")
        return (
            int(parts["y"]),
            None if month is None else int(month),
            None if day is None else int(day),
        )
    return None


def _parse_with_month_name(text: str) -> tuple[int, int | None, int | None] | None:
    """Dates such as "март 2018", "12 March 2018", "2018 жылы 12 наурызда", "March 12, 2018"."""
    tokens = _TOKEN_RE.findall(text)
    if not tokens or _TOKEN_GAP_RE.fullmatch(_TOKEN_RE.sub("", text)) is None:
        return None
    years: list[int] = []
    days: list[int] = []
    months: list[int] = []
    for token in tokens:
        if token.isdigit():
            if len(token) == 4:
                years.append(int(token))
            elif len(token) <= 2:
                days.append(int(token))
            else:
                return None
        elif token in _FILLER_WORDS or token.startswith(_FILLER_PREFIXES):
            continue
        elif (month := _month_from_word(token)) is not None:
            months.append(month)
        else:
            return None
    if len(years) == 1 and not months and not days:
        return years[0], None, None  # "в 2018 году", "2018 жылы"
    if len(years) != 1 or len(months) != 1 or len(days) > 1:
        return None
    return years[0], months[0], days[0] if days else None


def parse_partial_date(text: str, *, today: date) -> DateResult:
    """Read a date as a relative types it: a year, a month and year, or a full date.

    Returns a PartialDate, UNKNOWN ("не знаю", "?", ...), or Invalid with code "format" (not a
    date), "invalid" (no such day, e.g. 31.02.2018), "future" (after ``today``) or "too_old"
    (before 1900). Numeric dates are day first (12.03.2018) unless the year comes first
    (2018-03-12).
    """
    if len(text) > MAX_SHORT_INPUT:
        return Invalid("format")
    if is_unknown_answer(text):
        return UNKNOWN
    norm = normalise_short(text)
    approx = False
    while (stripped := _APPROX_RE.sub("", norm, count=1).strip()) != norm:
        norm, approx = stripped, True
    decade = _DECADE_RE.fullmatch(norm)
    if decade is not None:
        year = int(decade.group(1)) * 10
        if year < MIN_YEAR:
            return Invalid("too_old")
        result = PartialDate(year, decade=True, approx=approx)
        return Invalid("future") if result.is_after(today) else result
    season = _parse_season(norm)
    if season is not None:
        year, code = season
        if year < MIN_YEAR:
            return Invalid("too_old")
        result = PartialDate(year, season=code, approx=approx)
        return Invalid("future") if result.is_after(today) else result
    parsed = _parse_numeric(norm) or _parse_with_month_name(norm)
    if parsed is None:
        return Invalid("format")
    year, month, day = parsed
    if not is_valid_ymd(year, month, day):
        return Invalid("invalid")
    if year < MIN_YEAR:
        return Invalid("too_old")
    result = PartialDate(year, month, day, approx=approx)
    if result.is_after(today):
        return Invalid("future")
    return result


def _season_of(word: str) -> int | None:
    for stems, code in _SEASON_STEMS:
        for stem in stems:
            if word.startswith(stem) and len(word) - len(stem) <= _MAX_ENDING + 2:
                return code
    return None


def _parse_season(text: str) -> tuple[int, int] | None:
    """"весной 2019", "2018 жылдың күзі", "spring 2019", "осень 2017 года": (year, season)."""
    tokens = _TOKEN_RE.findall(text)
    if not tokens or _TOKEN_GAP_RE.fullmatch(_TOKEN_RE.sub("", text)) is None:
        return None
    years, seasons = [], []
    for token in tokens:
        if token.isdigit():
            if len(token) != 4:
                return None
            years.append(int(token))
        elif token in _FILLER_WORDS or token.startswith(_FILLER_PREFIXES):
            continue
        elif (code := _season_of(token)) is not None:
            seasons.append(code)
        else:
            return None
    if len(years) != 1 or len(seasons) != 1:
        return None
    return years[0], seasons[0]

