"""Unit and property tests for the form's answer validators (dates, Chinese IDs, phones, text)."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.form.validators import (
    UNKNOWN,
    XINJIANG_PREFECTURES,
    ChineseId,
    Invalid,
    PartialDate,
    Phone,
    Unknown,
    check_chinese_id,
    chinese_id_check_char,
    clean_text,
    id_mismatches,
    is_unknown_answer,
    parse_partial_date,
    parse_phone,
    prefecture_for_id,
)

TODAY = date(2025, 6, 15)
OLDEST = date(1900, 1, 1)

DIGIT_SCRIPTS = {
    "ascii": "0123456789",
    "arabic-indic": "٠١٢٣٤٥٦٧٨٩",
    "extended-arabic-indic": "۰۱۲۳۴۵۶۷۸۹",
    "full-width": "０１２３４５６７８９",
}


def in_script(text: str, digits: str) -> str:
    return text.translate(str.maketrans("0123456789", digits))


def valid_id(first17: str) -> str:
    return first17 + chinese_id_check_char(first17)


def decoded(text: str) -> ChineseId:
    result = check_chinese_id(text, today=TODAY)
    assert isinstance(result, ChineseId), result
    return result


def mismatches(
    cid: ChineseId,
    birth: PartialDate | None = None,
    gender: str | None = None,
    prefecture: str | None = None,
) -> list[str]:
    return id_mismatches(cid, birth=birth, gender=gender, prefecture=prefecture)


# --------------------------------------------------------------------------------------------
# Partial dates: concrete cases
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1975", PartialDate(1975)),
        ("03.2018", PartialDate(2018, 3)),
        ("3.2018", PartialDate(2018, 3)),
        ("03/2018", PartialDate(2018, 3)),
        ("2018-03", PartialDate(2018, 3)),
        ("03-2018", PartialDate(2018, 3)),
        ("12.03.2018", PartialDate(2018, 3, 12)),
        ("12/03/2018", PartialDate(2018, 3, 12)),
        ("12-03-2018", PartialDate(2018, 3, 12)),
        ("2018-03-12", PartialDate(2018, 3, 12)),
        ("2018.03.12", PartialDate(2018, 3, 12)),
        ("2.3.2018", PartialDate(2018, 3, 2)),
        ("  12.03.2018 \n", PartialDate(2018, 3, 12)),
        ("١٢.٠٣.٢٠١٨", PartialDate(2018, 3, 12)),
        ("۰۳/۲۰۱۸", PartialDate(2018, 3)),
        ("１９７５", PartialDate(1975)),
        ("１２．０３．２０１８", PartialDate(2018, 3, 12)),
        ("2018 г.", PartialDate(2018)),
        ("1975 жыл", PartialDate(1975)),
        ("12.03.2018г.", PartialDate(2018, 3, 12)),
        ("2018年3月12日", PartialDate(2018, 3, 12)),
        ("2018年3月", PartialDate(2018, 3)),
        ("1975年", PartialDate(1975)),
    ],
)
def test_numeric_dates_are_read_day_first_or_year_first(text: str, expected: PartialDate) -> None:
    assert parse_partial_date(text, today=TODAY) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("март 2018", PartialDate(2018, 3)),
        ("Март 2018", PartialDate(2018, 3)),
        ("12 марта 2018 г.", PartialDate(2018, 3, 12)),
        ("в мае 1990", PartialDate(1990, 5)),
        ("январь 2001", PartialDate(2001, 1)),
        ("March 2018", PartialDate(2018, 3)),
        ("12 March 2018", PartialDate(2018, 3, 12)),
        ("March 12, 2018", PartialDate(2018, 3, 12)),
        ("Sept. 2017", PartialDate(2017, 9)),
        ("наурыз 2018", PartialDate(2018, 3)),
        ("2018 жылы 12 наурызда", PartialDate(2018, 3, 12)),
        ("қазан 2017", PartialDate(2017, 10)),
        ("желтоксан 1999", PartialDate(1999, 12)),
        ("mamyr 2019", PartialDate(2019, 5)),
    ],
)
def test_month_names_in_kazakh_russian_and_english(text: str, expected: PartialDate) -> None:
    assert parse_partial_date(text, today=TODAY) == expected


@pytest.mark.parametrize(
    "text",
    [
        "unknown",
        "Unknown",
        "don't know",
        "Don’t know.",
        "I don't know",
        "не знаю",
        "Не знаю!",
        "неизвестно",
        "білмеймін",
        "Белгісіз",
        "белгисиз",
        "不知道",
        "?",
        "??",
        "？",
        "؟",
        "-",
        "—",
        " - ",
    ],
)
def test_dont_know_answers_give_the_unknown_marker(text: str) -> None:
    assert parse_partial_date(text, today=TODAY) is UNKNOWN
    assert is_unknown_answer(text)


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("", "format"),
        ("   ", "format"),
        ("hello", "format"),
        ("75", "format"),
        ("12.03.18", "format"),
        ("12.2018.03", "format"),
        ("1975-1976", "format"),
        ("Казань 2018", "format"),
        ("март", "format"),
        ("12 марта", "format"),
        ("март апрель 2018", "format"),
        ("1" * 500, "format"),
        ("31.02.2018", "invalid"),
        ("31.04.2018", "invalid"),
        ("00.03.2018", "invalid"),
        ("13.2018", "invalid"),
        ("2018-13", "invalid"),
        ("2018-00-10", "invalid"),
        ("32 марта 2018", "invalid"),
        ("1899", "too_old"),
        ("31.12.1899", "too_old"),
        ("0000", "too_old"),
        ("2026", "future"),
        ("07.2025", "future"),
        ("16.06.2025", "future"),
        ("01.01.2030", "future"),
    ],
)
def test_date_errors_are_codes(text: str, code: str) -> None:
    assert parse_partial_date(text, today=TODAY) == Invalid(code)


def test_the_current_year_month_and_day_are_not_future() -> None:
    assert parse_partial_date("2025", today=TODAY) == PartialDate(2025)
    assert parse_partial_date("06.2025", today=TODAY) == PartialDate(2025, 6)
    assert parse_partial_date("15.06.2025", today=TODAY) == PartialDate(2025, 6, 15)
    assert parse_partial_date("01.01.1900", today=TODAY) == PartialDate(1900, 1, 1)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("29.02.2016", PartialDate(2016, 2, 29)),
        ("29.02.2000", PartialDate(2000, 2, 29)),
        ("2024-02-29", PartialDate(2024, 2, 29)),
        ("29.02.2019", Invalid("invalid")),
        ("29.02.1900", Invalid("invalid")),
        ("2100-02-29", Invalid("invalid")),
        ("30.02.2016", Invalid("invalid")),
    ],
)
def test_29_february_only_in_leap_years(text: str, expected: object) -> None:
    assert parse_partial_date(text, today=date(2200, 1, 1)) == expected


def test_partial_date_iso_and_back() -> None:
    assert PartialDate(1975).iso() == "1975"
    assert PartialDate(2018, 3).iso() == "2018-03"
    assert PartialDate(2018, 3, 12).iso() == "2018-03-12"
    assert PartialDate.from_iso("2018-03") == PartialDate(2018, 3)
    assert PartialDate(2018, 3).precision == "month"


@pytest.mark.parametrize(
    "text", ["", "18", "2018-3", "2018-03-1", "12.03.2018", "2018-02-30", " 2018"]
)
def test_from_iso_rejects_anything_but_iso(text: str) -> None:
    with pytest.raises(ValueError):
        PartialDate.from_iso(text)


def test_partial_date_refuses_impossible_values() -> None:
    with pytest.raises(ValueError):
        PartialDate(2018, None, 5)
    with pytest.raises(ValueError):
        PartialDate(2018, 13)
    with pytest.raises(ValueError):
        PartialDate(1900, 2, 29)
    with pytest.raises(ValueError):
        PartialDate(0)


def test_to_date_only_for_full_dates() -> None:
    assert PartialDate(2018, 3, 12).to_date_or_none() == date(2018, 3, 12)
    assert PartialDate(2018, 3).to_date_or_none() is None
    assert PartialDate(2018).to_date_or_none() is None


def test_partial_date_matches_only_the_parts_it_has() -> None:
    born = date(1980, 1, 1)
    assert PartialDate(1980).matches(born)
    assert PartialDate(1980, 1).matches(born)
    assert PartialDate(1980, 1, 1).matches(born)
    assert not PartialDate(1981).matches(born)
    assert not PartialDate(1980, 2).matches(born)
    assert not PartialDate(1980, 1, 2).matches(born)


# --------------------------------------------------------------------------------------------
# Partial dates: properties
# --------------------------------------------------------------------------------------------

PADDING = st.sampled_from(["", " ", "  ", "\t", "\u00a0", "\n"])


@st.composite
def numeric_dates(draw: st.DrawFn) -> tuple[str, PartialDate]:
    """A date as someone might type it in any accepted numeric format, with what it means."""
    day = draw(st.dates(min_value=OLDEST, max_value=TODAY))
    precision = draw(st.sampled_from(["year", "month", "day"]))
    pad = draw(st.booleans())
    mm = f"{day.month:02d}" if pad else str(day.month)
    dd = f"{day.day:02d}" if pad else str(day.day)
    yyyy = f"{day.year:04d}"
    sep = draw(st.sampled_from([".", "/", "-"]))
    if precision == "year":
        text, expected = yyyy, PartialDate(day.year)
    elif precision == "month":
        first = draw(st.sampled_from(["month", "year"]))
        text = f"{mm}{sep}{yyyy}" if first == "month" else f"{yyyy}{sep}{mm}"
        expected = PartialDate(day.year, day.month)
    else:
        first = draw(st.sampled_from(["day", "year"]))
        text = f"{dd}{sep}{mm}{sep}{yyyy}" if first == "day" else f"{yyyy}{sep}{mm}{sep}{dd}"
        expected = PartialDate(day.year, day.month, day.day)
    text = in_script(text, draw(st.sampled_from(list(DIGIT_SCRIPTS.values()))))
    return draw(PADDING) + text + draw(PADDING), expected


MONTH_WORDS = {
    "en": ["January", "February", "March", "April", "May", "June", "July", "August",
           "September", "October", "November", "December"],
    "ru": ["январь", "февраль", "март", "апрель", "май", "июнь", "июль", "август",
           "сентябрь", "октябрь", "ноябрь", "декабрь"],
    "ru_genitive": ["января", "февраля", "марта", "апреля", "мая", "июня", "июля", "августа",
                    "сентября", "октября", "ноября", "декабря"],
    "kk": ["қаңтар", "ақпан", "наурыз", "сәуір", "мамыр", "маусым", "шілде", "тамыз",
           "қыркүйек", "қазан", "қараша", "желтоқсан"],
}  # fmt: skip


@st.composite
def named_month_dates(draw: st.DrawFn) -> tuple[str, PartialDate]:
    """Dates such as "март 2018", "12 марта 2018", "12 March 2018", "2018 жылы 12 наурыз"."""
    day = draw(st.dates(min_value=OLDEST, max_value=TODAY))
    language = draw(st.sampled_from(sorted(MONTH_WORDS)))
    month = MONTH_WORDS[language][day.month - 1]
    if draw(st.booleans()):
        month = month.upper() if draw(st.booleans()) else month.capitalize()
    if language == "ru_genitive" or draw(st.booleans()):
        if language == "kk":
            text = f"{day.year} жылы {day.day} {month}"
        else:
            text = f"{day.day} {month} {day.year}"
        return text, PartialDate(day.year, day.month, day.day)
    return f"{month} {day.year}", PartialDate(day.year, day.month)


@settings(max_examples=300)
@given(numeric_dates())
def test_every_typed_numeric_date_reads_back(case: tuple[str, PartialDate]) -> None:
    text, expected = case
    assert parse_partial_date(text, today=TODAY) == expected


@settings(max_examples=200)
@given(named_month_dates())
def test_every_date_with_a_month_name_reads_back(case: tuple[str, PartialDate]) -> None:
    text, expected = case
    assert parse_partial_date(text, today=TODAY) == expected


@st.composite
def partial_dates(draw: st.DrawFn) -> PartialDate:
    day = draw(st.dates(min_value=date(1, 1, 1), max_value=date(9999, 12, 31)))
    precision = draw(st.sampled_from(["year", "month", "day"]))
    if precision == "year":
        return PartialDate(day.year)
    if precision == "month":
        return PartialDate(day.year, day.month)
    return PartialDate(day.year, day.month, day.day)


@settings(max_examples=300)
@given(partial_dates())
def test_iso_output_always_parses_back(value: PartialDate) -> None:
    assert PartialDate.from_iso(value.iso()) == value
    result = parse_partial_date(value.iso(), today=date.max)
    expected = value if value.year >= 1900 else Invalid("too_old")
    assert result == expected


DATE_ALPHABET = st.sampled_from([*"0123456789./- 年月日?гж", "март", "may", "٣", "０"])


@settings(max_examples=300)
@given(st.one_of(st.text(max_size=40), st.lists(DATE_ALPHABET, max_size=12).map("".join)))
def test_any_text_gives_a_date_result_never_an_exception(text: str) -> None:
    result = parse_partial_date(text, today=TODAY)
    assert isinstance(result, PartialDate | Unknown | Invalid)
    if isinstance(result, PartialDate):
        assert result.year >= 1900
        assert not result.is_after(TODAY)
    if isinstance(result, Invalid):
        assert result.code in {"format", "invalid", "future", "too_old"}


# --------------------------------------------------------------------------------------------
# Chinese resident IDs: concrete cases
# --------------------------------------------------------------------------------------------

# The worked example of GB 11643-1999 (Beijing, Chaoyang district): check character X.
GB_EXAMPLE = "11010519491231002X"
# Computed with the MOD 11-2 weights by hand: Yining city (Ili) 1980-01-01, sequence 123
# (odd: male), weighted sum 230, 230 mod 11 = 10, check character "2".
ILI_MAN = "654002198001011232"
# Altay city, 1975-03-08, sequence 046 (even: female), weighted sum 309, 309 mod 11 = 1, "0".
ALTAY_WOMAN = "654301197503080460"


def test_check_char_matches_worked_examples() -> None:
    assert chinese_id_check_char(GB_EXAMPLE[:17]) == "X"
    assert chinese_id_check_char(ILI_MAN[:17]) == "2"
    assert chinese_id_check_char(ALTAY_WOMAN[:17]) == "0"


@pytest.mark.parametrize(
    "bad", ["", "1234", "12345678901234567X", "６５４００２１９８００１０１１２３"]
)
def test_check_char_requires_17_ascii_digits(bad: str) -> None:
    with pytest.raises(ValueError):
        chinese_id_check_char(bad)


def test_a_valid_xinjiang_id_tells_birth_date_gender_and_prefecture() -> None:
    cid = decoded(ILI_MAN)
    assert cid == ChineseId(
        number=ILI_MAN,
        region_code="654002",
        prefecture_code="6540",
        birth_date=date(1980, 1, 1),
        gender="male",
        is_xinjiang=True,
    )
    assert prefecture_for_id(cid) == "ili"
    woman = decoded(ALTAY_WOMAN)
    assert (woman.gender, woman.birth_date, prefecture_for_id(woman)) == (
        "female",
        date(1975, 3, 8),
        "altay",
    )


def test_an_id_from_outside_xinjiang_is_valid_but_has_no_prefecture() -> None:
    cid = decoded(GB_EXAMPLE)
    assert (cid.is_xinjiang, cid.gender, cid.birth_date) == (False, "female", date(1949, 12, 31))
    assert prefecture_for_id(cid) is None


@pytest.mark.parametrize(
    "typed",
    [
        "11010519491231002x",
        "110105 19491231 002X",
        "110105-19491231-002X",
        " 110105 1949 1231 002 X ",
        "１１０１０５１９４９１２３１００２Ｘ",
        "١١٠١٠٥١٩٤٩١٢٣١٠٠٢X",
        "11010519491231002х",  # Cyrillic kha, as typed on a Russian keyboard
        "11010519491231002Х",
    ],
)
def test_id_is_normalised_before_checking(typed: str) -> None:
    assert decoded(typed).number == GB_EXAMPLE


def test_old_prefixes_still_name_their_prefecture() -> None:
    # Ili Prefecture (6541) until 2001, Turpan (6521) and Hami (6522) Prefectures until 2015-16.
    for first17, prefecture in [
        ("65410119700101001", "ili"),
        ("65210119700101001", "turpan"),
        ("65220119700101001", "hami"),
    ]:
        assert prefecture_for_id(decoded(valid_id(first17))) == prefecture


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("", "length"),
        ("6540021980010112", "length"),
        ("6540021980010112322", "length"),
        ("65400219800101123", "length"),
        ("654002198001011232" * 10, "length"),
        ("не знаю", "chars"),
        ("65400219800101123A", "chars"),
        ("6540021980010112X2", "chars"),
        ("654002.198001011232", "chars"),
        ("654002198001011233", "checksum"),
        ("11010519491231002Y", "chars"),
        ("110105194912310021", "checksum"),
    ],
)
def test_id_errors_are_codes(text: str, code: str) -> None:
    assert check_chinese_id(text, today=TODAY) == Invalid(code)


@pytest.mark.parametrize(
    "birth",
    [
        "19800230",  # no 30 February
        "19801301",  # no month 13
        "19800100",  # no day 0
        "19000229",  # 1900 was not a leap year
        "18991231",  # before 1900
        "20250616",  # the day after TODAY
        "20300101",
    ],
)
def test_id_with_impossible_or_future_birth_date(birth: str) -> None:
    number = valid_id(f"654002{birth}123")
    assert check_chinese_id(number, today=TODAY) == Invalid("birthdate")


def test_id_born_on_29_february_of_a_leap_year_and_today() -> None:
    assert decoded(valid_id("65400220000229123")).birth_date == date(2000, 2, 29)
    assert decoded(valid_id("65400219960229123")).birth_date == date(1996, 2, 29)
    assert decoded(valid_id("65400220250615123")).birth_date == TODAY


# --------------------------------------------------------------------------------------------
# Chinese resident IDs: properties
# --------------------------------------------------------------------------------------------

XINJIANG_PREFIXES = sorted(XINJIANG_PREFECTURES)


@st.composite
def xinjiang_ids(draw: st.DrawFn) -> tuple[str, str, date, int]:
    """A valid Xinjiang ID number, with the prefix, birth date and sequence it was made from."""
    prefix = draw(st.sampled_from(XINJIANG_PREFIXES))
    county = draw(st.integers(0, 99))
    born = draw(st.dates(min_value=OLDEST, max_value=TODAY))
    sequence = draw(st.integers(0, 999))
    number = valid_id(f"{prefix}{county:02d}{born:%Y%m%d}{sequence:03d}")
    return number, prefix, born, sequence


@settings(max_examples=300)
@given(xinjiang_ids())
def test_generated_ids_pass_and_give_back_what_they_encode(
    case: tuple[str, str, date, int],
) -> None:
    number, prefix, born, sequence = case
    cid = decoded(number)
    assert cid.number == number
    assert cid.birth_date == born
    assert cid.gender == ("male" if sequence % 2 else "female")
    assert cid.prefecture_code == prefix
    assert cid.is_xinjiang
    assert prefecture_for_id(cid) == XINJIANG_PREFECTURES[prefix]
    full_birth = PartialDate(born.year, born.month, born.day)
    assert mismatches(cid, full_birth, cid.gender, XINJIANG_PREFECTURES[prefix]) == []


@settings(max_examples=200)
@given(
    xinjiang_ids(), st.sampled_from(list(DIGIT_SCRIPTS.values())), st.sampled_from([" ", "-", ""])
)
def test_generated_ids_pass_as_typed(
    case: tuple[str, str, date, int], digits: str, sep: str
) -> None:
    number = case[0]
    typed = sep.join([number[:6], number[6:14], number[14:]]).lower()
    assert decoded(in_script(typed, digits)).number == number


@settings(max_examples=300)
@given(xinjiang_ids(), st.integers(0, 17), st.sampled_from(list("0123456789X")))
def test_changing_any_one_character_fails_the_check(
    case: tuple[str, str, date, int], position: int, replacement: str
) -> None:
    number = case[0]
    if position < 17 and replacement == "X":
        replacement = "0"
    if number[position] == replacement:
        replacement = "1" if replacement == "0" else "0"
    changed = number[:position] + replacement + number[position + 1 :]
    # MOD 11-2 catches every single substitution, so the birth date is never reached.
    assert check_chinese_id(changed, today=TODAY) == Invalid("checksum")


@settings(max_examples=200)
@given(xinjiang_ids(), st.integers(0, 16))
def test_swapping_two_neighbouring_characters_fails_the_check(
    case: tuple[str, str, date, int], position: int
) -> None:
    number = case[0]
    if number[position] == number[position + 1]:
        return
    swapped = number[:position] + number[position + 1] + number[position] + number[position + 2 :]
    result = check_chinese_id(swapped, today=TODAY)
    assert isinstance(result, Invalid)
    assert result.code in {"checksum", "chars"}


@settings(max_examples=300)
@given(st.one_of(st.text(max_size=40), st.text(alphabet="0123456789Xx -", max_size=25)))
def test_any_text_gives_an_id_result_never_an_exception(text: str) -> None:
    result = check_chinese_id(text, today=TODAY)
    assert isinstance(result, ChineseId | Invalid)
    if isinstance(result, Invalid):
        assert result.code in {"length", "chars", "checksum", "birthdate"}


# --------------------------------------------------------------------------------------------
# Chinese resident IDs against the other answers
# --------------------------------------------------------------------------------------------


def test_no_mismatch_when_answers_agree_or_are_unknown() -> None:
    cid = decoded(ILI_MAN)  # 1980-01-01, male, Ili
    assert mismatches(cid) == []
    assert mismatches(cid, PartialDate(1980), "male", "ili") == []
    assert mismatches(cid, PartialDate(1980, 1), "male", "6540") == []
    assert mismatches(cid, PartialDate(1980, 1, 1), "other", "other") == []


def test_mismatches_name_each_disagreeing_answer() -> None:
    cid = decoded(ILI_MAN)
    assert mismatches(cid, birth=PartialDate(1981)) == ["birth_date"]
    assert mismatches(cid, birth=PartialDate(1980, 2)) == ["birth_date"]
    assert mismatches(cid, birth=PartialDate(1980, 1, 2)) == ["birth_date"]
    assert mismatches(cid, gender="female") == ["gender"]
    assert mismatches(cid, prefecture="altay") == ["prefecture"]
    assert mismatches(cid, PartialDate(1979), "female", "6543") == [
        "birth_date",
        "gender",
        "prefecture",
    ]


def test_id_from_an_old_prefix_agrees_with_the_current_prefecture() -> None:
    cid = decoded(valid_id("65410119700101001"))  # Ili Prefecture before 2001
    assert mismatches(cid, prefecture="ili") == []


def test_id_from_outside_xinjiang_disagrees_with_a_xinjiang_prefecture() -> None:
    cid = decoded(GB_EXAMPLE)
    assert mismatches(cid, prefecture="kashgar") == ["prefecture"]
    assert mismatches(cid, prefecture="other") == []


# --------------------------------------------------------------------------------------------
# Phone numbers
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "e164", "region"),
    [
        ("+7 701 123 45 67", "+77011234567", "KZ"),
        ("87011234567", "+77011234567", "KZ"),
        ("8 (701) 123-45-67", "+77011234567", "KZ"),
        ("+7-701-123-45-67", "+77011234567", "KZ"),
        ("7011234567", "+77011234567", "KZ"),
        ("8 727 250 00 00", "+77272500000", "KZ"),
        ("+86 138 0013 8000", "+8613800138000", "CN"),
        ("0086 138 0013 8000", "+8613800138000", "CN"),
        ("+86 (138) 0013-8000", "+8613800138000", "CN"),
        ("٨٧٠١١٢٣٤٥٦٧", "+77011234567", "KZ"),
        ("۸۷۰۱۱۲۳۴۵۶۷", "+77011234567", "KZ"),
        ("８７０１１２３４５６７", "+77011234567", "KZ"),
        ("＋７ ７０１ １２３ ４５ ６７", "+77011234567", "KZ"),
        ("  +77011234567\n", "+77011234567", "KZ"),
    ],
)
def test_phone_numbers_become_e164(text: str, e164: str, region: str) -> None:
    assert parse_phone(text) == Phone(e164=e164, region=region)


def test_phone_default_region_applies_to_national_numbers() -> None:
    assert parse_phone("138 0013 8000", default_region="CN") == Phone("+8613800138000", "CN")


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "hello",
        "не знаю",
        "+",
        "()",
        "12345",
        "+7 701 123 45 6",  # one digit short
        "+7 000 000 00 00",  # possible length, not a valid number
        "8701abc4567",
        "call 87011234567",
        "+7 701 123 45 67 ext. 5",
        "1" * 200,
    ],
)
def test_phone_rejects_what_is_not_a_valid_number(text: str) -> None:
    assert parse_phone(text) == Invalid("invalid")


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(max_size=30), st.text(alphabet="0123456789+ -()", max_size=20)))
def test_any_text_gives_a_phone_result_never_an_exception(text: str) -> None:
    result = parse_phone(text)
    assert isinstance(result, Phone | Invalid)
    if isinstance(result, Phone):
        assert result.e164.startswith("+")
        assert result.e164[1:].isascii() and result.e164[1:].isdigit()
        assert parse_phone(result.e164) == result


# --------------------------------------------------------------------------------------------
# Free text
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "Айгүл Серікқызы",
        "Нурлан Кайратович Ахметов",
        "Aigul Serikqyzy",
        "ئايگۈل سېرىكقىزى",
        "ئايگۈل\u200cسېرىكقىزى",  # ZWNJ inside an Arabic-script word is kept
        "艾古丽·赛力克",
        "Line one\nLine two\n\n\tindented",
        "👨\u200d👩\u200d👧 family",
        "❤️",
        "🏴\U000e0067\U000e0062\U000e0073\U000e0063\U000e0074\U000e007f",  # Scotland: tag chars
    ],
)
def test_text_in_any_script_is_kept_exactly(text: str) -> None:
    assert clean_text(text, max_len=4096) == text


BIDI_CONTROLS = "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"


@given(st.text(alphabet=st.sampled_from(f"ab ئ\u200e\n{BIDI_CONTROLS}"), max_size=40))
def test_bidi_controls_never_survive_and_nothing_else_goes(text: str) -> None:
    """L2: embedding, override and isolate characters are removed anywhere in the text; the
    other characters (direction marks U+200E included) stay, in order."""
    cleaned = clean_text(text, max_len=4096)
    kept = "".join(ch for ch in text if ch not in BIDI_CONTROLS)
    if isinstance(cleaned, str):
        assert not set(cleaned) & set(BIDI_CONTROLS)
        assert cleaned in kept
    else:
        assert not kept.strip(" \n\u200e")


def test_one_line_answers_refuse_line_breaks() -> None:
    from bot.form.answers import Invalid, Valid, check_typed
    from bot.form.model import load_form

    form = load_form()
    today = date(2026, 12, 3)
    for group, qid in (("reporter", "reporter_name"), ("person", "full_name"),
                       ("person", "place"), ("person", "occupation"),
                       ("reporter", "reporter_city")):
        q = form.question(group, qid)
        assert check_typed(q, "Name\n📂 Case 1234-5678\nStatus: Verified", today) \
            == Invalid("one_line"), qid
        assert check_typed(q, "Name\u202e Surname", today) == Valid("Name Surname"), qid
    story = form.question("person", "story")
    assert check_typed(story, "Line one\nLine two", today) == Valid("Line one\nLine two")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("  Айгүл  ", "Айгүл"),
        ("\n\tАйгүл\n\n", "Айгүл"),
        ("\u00a0\u3000Айгүл\u2003", "Айгүл"),
        ("\u200bАйгүл\ufeff", "Айгүл"),
        ("\u202eАйгүл\u202c", "Айгүл"),
        ("\u2067ئايگۈل\u2069\u200f", "ئايگۈل"),
        ("Ай\x00гүл\x07", "Айгүл"),
        ("Ай\x85гүл\x9f", "Айгүл"),
        ("one\r\ntwo\rthree", "one\ntwo\nthree"),
        ("bad\ud800half", "badhalf"),
    ],
)
def test_text_loses_only_edges_and_control_characters(text: str, expected: str) -> None:
    assert clean_text(text, max_len=100) == expected


@pytest.mark.parametrize(
    "text",
    ["", "   ", "\n\n", "\u200b", "\u200e\u202e\u2066", "\x00\x01", "\u3164", "\u2800 \u200d"],
)
def test_blank_or_invisible_text_is_empty(text: str) -> None:
    assert clean_text(text, max_len=100) == Invalid("empty")


def test_length_is_counted_after_cleaning() -> None:
    assert clean_text("абв", max_len=3) == "абв"
    assert clean_text("  абв  ", max_len=3) == "абв"
    assert clean_text("абвг", max_len=3) == Invalid("too_long")


CONTROL = st.characters(min_codepoint=0, max_codepoint=0x9F).filter(lambda ch: not ch.isprintable())
EDGE = st.sampled_from(list(" \t\n\u00a0\u200b\u200e\u202e\u2069\ufeff\u3164"))
ANY_TEXT = st.one_of(
    st.text(),
    st.lists(st.one_of(st.characters(), CONTROL, EDGE), max_size=30).map("".join),
)


@settings(max_examples=300)
@given(ANY_TEXT, st.integers(0, 40))
def test_clean_text_never_raises_and_is_idempotent(text: str, max_len: int) -> None:
    result = clean_text(text, max_len=max_len)
    if isinstance(result, Invalid):
        assert result.code in {"empty", "too_long"}
        return
    assert 0 < len(result) <= max_len
    assert clean_text(result, max_len=max_len) == result
    assert all(ch.isprintable() or ch in "\n\t" or ord(ch) > 0x9F for ch in result)
    assert result == result.strip()


# Printable characters of any script: names and stories must come through untouched.
VISIBLE = st.characters(
    categories=["L", "M", "N", "P", "S"],
    exclude_characters="\u115f\u1160\u2800\u3164\uffa0",
)


@settings(max_examples=300)
@given(st.text(alphabet=VISIBLE, min_size=1, max_size=40))
def test_visible_text_in_any_alphabet_is_never_changed(text: str) -> None:
    assert clean_text(text, max_len=len(text)) == text
