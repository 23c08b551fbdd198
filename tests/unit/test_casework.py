"""Names in any script, the person index (search, duplicates) and the case status rule."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from bot.casework.index import PersonIndex, records_of
from bot.casework.names import name_key
from bot.form.validators import chinese_id_check_char


def _id(body17: str) -> str:
    return body17 + chinese_id_check_char(body17)


ID = _id("65402319750312002")


def _case(case_id: int, number: str, *persons: dict[str, object],
          phone: str | None = None) -> list:
    return records_of(case_id, number, {"reporter": {"reporter_phone": phone},
                                        "persons": list(persons)})


def test_one_name_in_four_scripts_gets_one_key() -> None:
    keys = {name_key(n) for n in ("Nurlan", "Нұрлан", "Нурлан", "نۇرلان")}
    assert keys == {"nurlan"}
    assert name_key("Асхат Тохтаров") == name_key("Askhat Tokhtarov")
    assert name_key("王小明") == name_key("Wang Xiaoming").replace(" ", "")


@given(st.text(max_size=40))
def test_name_key_is_plain_latin_and_stable(text: str) -> None:
    key = name_key(text)
    assert key == name_key(key)
    assert all(c.isascii() and (c.isalpha() or c == " ") for c in key)


def test_search_finds_a_name_from_any_script() -> None:
    index = PersonIndex()
    index.add(_case(1, "1111-1111", {"full_name": "Нұрлан Асқар"}))
    index.add(_case(2, "2222-2222", {"full_name": "王小明"}))
    index.add(_case(3, "3333-3333", {"full_name": "Гүлжан Серікқызы"}))
    for query in ("Nurlan", "Нурлан", "нұрлан", "نۇرلان", "Nurlan Askar"):
        assert [r.case_id for r, _ in index.by_name(query)] == [1], query
    assert [r.case_id for r, _ in index.by_name("Wang Xiaoming")] == [2]
    assert [r.case_id for r, _ in index.by_name("努尔兰")] == [1]  # the pinyin is close
    assert index.by_name("Zzzyx") == []


def test_search_by_id_phone_and_forgetting_a_case() -> None:
    index = PersonIndex()
    index.add(_case(1, "1111-1111", {"full_name": "A", "chinese_id": ID},
                    phone="+77011234567"))
    assert [r.case_id for r in index.by_chinese_id(ID)] == [1]
    assert [r.case_id for r in index.by_chinese_id(ID[-6:].lower())] == [1]
    assert [r.case_id for r in index.by_phone("8 701 123 45 67")] == [1]
    index.remove_case(1)
    assert index.by_chinese_id(ID) == [] and index.by_name("A") == [] and len(index) == 0


def test_duplicates_certain_by_id_likely_by_name_year_and_prefecture() -> None:
    index = PersonIndex()
    index.add(_case(1, "1111-1111",
                    {"full_name": "Нұрлан Асқар", "birth_date": "1975", "prefecture": "ili"},
                    {"full_name": "Ерлан", "chinese_id": ID}))
    new = _case(2, "2222-2222",
                {"full_name": "Nurlan Askar", "birth_date": "1976-05", "prefecture": "ili"},
                {"full_name": "Другое имя", "chinese_id": ID},
                {"full_name": "Nurlan Askar", "birth_date": "1978", "prefecture": "ili"},
                {"full_name": "Nurlan Askar", "birth_date": "1975", "prefecture": "altay"})
    first, second, too_old, elsewhere = (index.matches(r) for r in new)
    assert [(m.record.number, m.record.person, m.certainty) for m in first] == [
        ("1111-1111", 1, "likely")]
    assert [(m.record.person, m.certainty) for m in second] == [(2, "certain")]
    assert too_old == [] and elsewhere == []
    # A case never matches itself.
    assert index.matches(_case(1, "1111-1111", {"full_name": "Ерлан", "chinese_id": ID})[0]) == []


def test_the_case_status_waits_on_its_least_advanced_open_person() -> None:
    from bot.casework.status import derive_case_status, is_backward

    assert derive_case_status(["located", "in_review"]) == "in_review"
    assert derive_case_status(["closed", "verified"]) == "verified"
    assert derive_case_status(["closed", "closed"]) == "closed"
    assert derive_case_status(["withdrawn"]) == "withdrawn"
    assert derive_case_status(["new"]) == "new"
    assert is_backward("referred", "in_review") and not is_backward("in_review", "located")


def test_find_tells_what_was_typed() -> None:
    from bot.casework.search import classify
    from bot.services.case_numbers import new_case_number

    good = new_case_number()
    digits = good.replace("-", "")
    swapped = digits[:2] + digits[3] + digits[2] + digits[4:]
    assert classify(good).kind == "case" and classify(digits).value == good
    if swapped != digits:
        assert classify(swapped).kind == "case_mistake"
    wrong = digits[:7] + str((int(digits[7]) + 1) % 10)
    assert classify(wrong).kind == "case_mistake"
    assert classify(ID).kind == "chinese_id" and classify(ID[-6:]).value == ID[-6:]
    assert classify("+7 701 123 45 67").kind == "phone"
    assert classify("Нұрлан").kind == "name" and classify("  ").kind == "empty"


def test_people_are_shown_by_name_escaped() -> None:
    from bot.handlers.people import display
    from bot.storage.people import Profile

    assert display(Profile(5, "Arman", "arman"), 5) == "Arman (@arman)"
    assert display(Profile(5, "<b>A&B</b>", None), 5) == "&lt;b&gt;A&amp;B&lt;/b&gt;"
    assert display(Profile(5, None, "dana"), 5) == "@dana"
    assert display(None, 5) == "<code>5</code>" and display(None, 5, html=False) == "5"
