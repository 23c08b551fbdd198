"""Dates as relatives write them: seasons, decades, approximate years (property tests)."""

from __future__ import annotations

from datetime import date

from hypothesis import given
from hypothesis import strategies as st

from bot.form.validators import AUTUMN, SPRING, SUMMER, WINTER, PartialDate, parse_partial_date

TODAY = date(2026, 12, 3)
years = st.integers(1900, 2025)
SEASON_WORDS = {
    SPRING: ["весной", "весна", "көктемде", "spring"],
    SUMMER: ["летом", "жазда", "summer"],
    AUTUMN: ["осенью", "күзі", "autumn", "fall"],
    WINTER: ["зимой", "қыста", "winter"],
}


@st.composite
def partial_dates(draw: st.DrawFn) -> PartialDate:
    year = draw(years)
    kind = draw(st.sampled_from(["decade", "year", "season", "month", "day"]))
    approx = draw(st.booleans())
    if kind == "decade":
        return PartialDate(year - year % 10, decade=True, approx=approx)
    if kind == "season":
        return PartialDate(year, season=draw(st.sampled_from(list(SEASON_WORDS))), approx=approx)
    if kind == "year":
        return PartialDate(year, approx=approx)
    month = draw(st.integers(1, 12))
    if kind == "month":
        return PartialDate(year, month, approx=approx)
    return PartialDate(year, month, draw(st.integers(1, 28)), approx=approx)


@given(partial_dates())
def test_stored_form_reads_back_the_same(d: PartialDate) -> None:
    assert PartialDate.from_iso(d.iso()) == d
    assert d.iso().endswith("~") == d.approx


@given(years, st.sampled_from(["примерно", "около", "шамамен", "about", "~", "approximately"]))
def test_approximate_years(year: int, word: str) -> None:
    got = parse_partial_date(f"{word} {year}", today=TODAY)
    assert got == PartialDate(year, approx=True)
    assert got.precision == "year"  # type: ignore[union-attr]


@given(years, st.sampled_from(sorted(SEASON_WORDS)), st.data())
def test_seasons_in_three_languages(year: int, season: int, data: st.DataObject) -> None:
    word = data.draw(st.sampled_from(SEASON_WORDS[season]))
    text = data.draw(st.sampled_from([f"{word} {year}", f"{year} жылдың {word}",
                                      f"{word} {year} года", f"{word} of {year}"]))
    got = parse_partial_date(text, today=TODAY)
    assert got == PartialDate(year, season=season), text
    assert got.precision == "season"  # type: ignore[union-attr]


@given(st.integers(190, 202), st.sampled_from(["{}0-е", "{}0s", "{}0-х", "в {}0-х годах",
                                               "{}0-жылдары", "примерно {}0-е"]))
def test_decades(prefix: int, pattern: str) -> None:
    got = parse_partial_date(pattern.format(prefix), today=TODAY)
    assert isinstance(got, PartialDate) and got.decade and got.year == prefix * 10
    assert got.approx == pattern.startswith("примерно")


@given(years)
def test_year_with_words(year: int) -> None:
    for text in (f"в {year} году", f"{year} жылы", f"in {year}", f"{year} г."):
        assert parse_partial_date(text, today=TODAY) == PartialDate(year), text


@given(st.text(max_size=60))
def test_any_text_gives_an_answer_not_an_exception(text: str) -> None:
    got = parse_partial_date(text, today=TODAY)
    if isinstance(got, PartialDate):
        assert not got.is_after(TODAY)
        assert PartialDate.from_iso(got.iso()) == got


def test_the_review_examples() -> None:
    expected = {"в 2018 году": "2018", "весной 2019": "2019-21", "2018 жылдың күзі": "2018-23",
                "spring 2019": "2019-21", "примерно 1975": "1975~", "около 1975": "1975~",
                "шамамен 1975": "1975~", "about 1975": "1975~", "~1975": "1975~",
                "1970-е": "197X", "1970s": "197X", "осенью 2017": "2017-23"}
    for text, iso in expected.items():
        got = parse_partial_date(text, today=TODAY)
        assert isinstance(got, PartialDate) and got.iso() == iso, text
