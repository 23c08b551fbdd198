"""Answer validators for the questionnaire: pure functions that return data or an error code.

Nothing here talks to Telegram, the database or gettext. Each validator takes the text a
relative typed and returns either a value to store or an ``Invalid(code)``; the form engine
turns the code into a message in the relative's language. Inputs are never trusted: every
function returns a result for any string and never raises on user text.
"""

from __future__ import annotations

import enum
import re
import unicodedata
from dataclasses import dataclass
from datetime import date
from typing import Final, Generic, Literal, TypeAlias, TypeVar

import phonenumbers

__all__ = [
    "UNKNOWN",
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

# Longer input than this cannot be a date, an ID or a phone number: refuse it before any work.
_MAX_SHORT_INPUT: Final = 100

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


def _ascii_digits(text: str) -> str:
    """Replace every Unicode decimal digit (Arabic-Indic, full-width, ...) by its ASCII digit."""
    if text.isascii():
        return text
    return "".join(
        str(unicodedata.decimal(ch)) if not ch.isascii() and ch.isdecimal() else ch for ch in text
    )


def _normalise_short(text: str) -> str:
    """NFKC (full-width punctuation and letters), ASCII digits, case-folded, spaces collapsed."""
    text = _ascii_digits(unicodedata.normalize("NFKC", text))
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
    if len(text) > _MAX_SHORT_INPUT:
        return False
    norm = _normalise_short(text).replace("’", "'").replace("ʼ", "'").replace("`", "'")
    norm = norm.rstrip(".!)").strip()
    if not norm:
        return False
    if norm in _UNKNOWN_WORDS:
        return True
    return _UNKNOWN_SYMBOLS_RE.fullmatch(norm.replace(" ", "")) is not None


# --------------------------------------------------------------------------------------------
# Partial dates
# --------------------------------------------------------------------------------------------

DateErrorCode: TypeAlias = Literal["format", "invalid", "future", "too_old"]

_MIN_YEAR: Final = 1900
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


def _days_in_month(year: int, month: int) -> int:
    if month == 2:
        leap = year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
        return 29 if leap else 28
    return 30 if month in (4, 6, 9, 11) else 31


def _is_valid_ymd(year: int, month: int | None, day: int | None) -> bool:
    if month is None:
        return day is None
    if not 1 <= month <= 12:
        return False
    return day is None or 1 <= day <= _days_in_month(year, month)


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
        if not 1 <= self.year <= 9999 or not _is_valid_ymd(self.year, self.month, self.day):
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
    if len(text) > _MAX_SHORT_INPUT:
        return Invalid("format")
    if is_unknown_answer(text):
        return UNKNOWN
    norm = _normalise_short(text)
    approx = False
    while (stripped := _APPROX_RE.sub("", norm, count=1).strip()) != norm:
        norm, approx = stripped, True
    decade = _DECADE_RE.fullmatch(norm)
    if decade is not None:
        year = int(decade.group(1)) * 10
        if year < _MIN_YEAR:
            return Invalid("too_old")
        result = PartialDate(year, decade=True, approx=approx)
        return Invalid("future") if result.is_after(today) else result
    season = _parse_season(norm)
    if season is not None:
        year, code = season
        if year < _MIN_YEAR:
            return Invalid("too_old")
        result = PartialDate(year, season=code, approx=approx)
        return Invalid("future") if result.is_after(today) else result
    parsed = _parse_numeric(norm) or _parse_with_month_name(norm)
    if parsed is None:
        return Invalid("format")
    year, month, day = parsed
    if not _is_valid_ymd(year, month, day):
        return Invalid("invalid")
    if year < _MIN_YEAR:
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


# --------------------------------------------------------------------------------------------
# Chinese resident ID numbers (GB 11643, check character ISO 7064 MOD 11-2)
# --------------------------------------------------------------------------------------------

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
    text = _ascii_digits(unicodedata.normalize("NFKC", text))
    return _ID_SEPARATORS_RE.sub("", text).translate(_ID_X_TRANSLATION)


def _id_birth_date(number: str, today: date) -> date | None:
    year, month, day = int(number[6:10]), int(number[10:12]), int(number[12:14])
    if year < _MIN_YEAR or not _is_valid_ymd(year, month, day):
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
    if len(text) > _MAX_SHORT_INPUT:
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
    if len(text) > _MAX_SHORT_INPUT:
        return Invalid("invalid")
    candidate = _ascii_digits(unicodedata.normalize("NFKC", text)).strip()
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
