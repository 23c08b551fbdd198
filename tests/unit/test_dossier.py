"""The dossier's pure parts: dates in words, names in Latin, the missing box, the consents."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.evidence.dossier import (
    CaseFacts,
    build_dossier,
    describe_date,
    missing_elements,
    transliterate,
)
from bot.form.model import load_form
from bot.form.validators import AUTUMN, SPRING, SUMMER, WINTER, PartialDate

FORM = load_form()


@pytest.mark.parametrize(("stored", "words"), [
    ("2019-21", "spring 2019"), ("2019-22", "summer 2019"), ("2017-23", "autumn 2017"),
    ("2018-24", "winter 2018"), ("197X", "the 1970s"), ("1975~", "about 1975"),
    ("2018-03", "March 2018"), ("2018-03-12", "12 March 2018"), ("2018", "2018"),
    ("2018-04~", "about April 2018"), ("201X~", "about the 2010s"),
    ("unknown", "not known"), ("", ""), (None, ""),
    ("весной 2018", "весной 2018"),  # not a code (an older form's text): as stored
])
def test_describe_date(stored: str | None, words: str) -> None:
    assert describe_date(stored) == words


@st.composite
def partial_dates(draw: st.DrawFn) -> PartialDate:
    year = draw(st.integers(1900, 2030))
    approx = draw(st.booleans())
    kind = draw(st.sampled_from(["decade", "year", "season", "month", "day"]))
    if kind == "decade":
        return PartialDate(year - year % 10, decade=True, approx=approx)
    if kind == "season":
        return PartialDate(year, season=draw(st.sampled_from([SPRING, SUMMER, AUTUMN, WINTER])),
                           approx=approx)
    if kind == "year":
        return PartialDate(year, approx=approx)
    month = draw(st.integers(1, 12))
    return PartialDate(year, month, draw(st.integers(1, 28)) if kind == "day" else None,
                       approx=approx)


@given(partial_dates())
def test_every_stored_date_reads_as_words(d: PartialDate) -> None:
    words = describe_date(d.iso())
    assert "~" not in words and "X" not in words and "-" not in words
    assert str(d.year) in words or f"{d.year}s" in words
    assert words.startswith("about ") == d.approx
    if d.season is not None:
        assert words.split()[-2] in ("spring", "summer", "autumn", "winter")
    if d.month is not None:
        assert words.split()[-2][0].isupper()  # the month's name


@pytest.mark.parametrize(("name", "latin"), [
    ("Ерлан Тохтасын", "Erlan Tokhtasyn"), ("叶尔兰", "Ye Erlan"), ("王小明", "Wang Xiaoming"),
    ("ئابدۇللا 🙏", "Abdulla"), ("Әлия Нұрланқызы", "Äliya Nurlanqyzy"),
    ("Ἀλέξανδρος", "Alexandros"), ("Erlan 叶尔兰", "Erlan Ye Erlan"), ("Aliya", None),
])
def test_transliterate(name: str, latin: str | None) -> None:
    assert transliterate(name) == latin


def test_chinese_places_and_transcribed_names_are_one_word_per_part() -> None:
    assert transliterate("伊宁市", place=True) == "Yiningshi"
    assert transliterate("努尔兰·托合塔森") == "Nuerlan Tuohetasen"


def texts(doc: Any) -> str:
    return "\n".join([p.text for p in doc.paragraphs]
                     + [c.text for t in doc.tables for r in t.rows for c in r.cells])


V1_CASE: dict[str, Any] = {  # answered on form version 1: no "taken from", no steps' result
    "consent": {"consent_store": "agree", "consent_share": "yes",
                "consent_publish": "by_name"},
    "reporter": {"reporter_name": "Gulzhan", "reporter_country": "kz"},
    "persons": [{"relation": "brother", "full_name": "Erlan", "gender": "male",
                 "birth_date": "1980", "chinese_id": "X", "prefecture": "ili",
                 "place": "Ghulja", "what_happened": ["detained"], "happened_date": "2018-04",
                 "responsible": ["police"], "reasons": "none", "steps_taken": ["un"]}],
}


def test_form_v1_case() -> None:
    person = V1_CASE["persons"][0]
    assert missing_elements(FORM, person, [], V1_CASE, 1) == [
        "Where the person was taken from or last seen (not asked by questionnaire version 1: "
        "ask the relative)",
        "Results of the steps taken and when they were taken (not asked by questionnaire "
        "version 1: ask the relative)",
    ]
    doc = build_dossier(FORM, CaseFacts("4821-0736", "2024-01-01T00:00:00", "new", 1), V1_CASE,
                        0, [], "reported")
    text = texts(doc)
    assert "not asked (older questionnaire)" in text and "April 2018" in text
    assert "CONFIDENTIAL: the source's identity must not be revealed" in text  # no reveal asked


def test_consents_decide_the_source() -> None:
    case = CaseFacts("4821-0736", "2024-01-01T00:00:00", "new", 2)
    revealed = {**V1_CASE, "consent": {**V1_CASE["consent"], "consent_reveal": "yes"}}
    text = texts(build_dossier(FORM, case, revealed, 0, [], "reported"))
    assert "Gulzhan" in text and "may reveal their identity to the Government of China" in text
    assert "CONFIDENTIAL" not in text
    withheld = {**V1_CASE, "consent": {"consent_store": "agree", "consent_share": "no"}}
    text = texts(build_dossier(FORM, case, withheld, 0, [], "reported"))
    assert "Gulzhan" not in text and "A family member (identity withheld)" in text
    assert "Source: the relative's consent to share the case with the UN" in text
    nameless = {**V1_CASE, "reporter": {"reporter_country": "kz"}}
    assert "Source: the name of the person reporting (the UN needs it; it stays confidential)" \
        in missing_elements(FORM, nameless["persons"][0], [], nameless, 2)
