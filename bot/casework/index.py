"""The search and duplicate index of missing persons, in memory only.

Names are sealed in the database to the organisation's public key; the server can read them
only while the private key is on it. Then the index is built at start-up by opening every
case, and grows as cases are submitted; it is never written to disk, so a seized server with
the key offline reveals no names. With the private key offline there is no index: /find and
the duplicate check say so, and the same matching runs offline on an export
(`python -m bot duplicates`).

Matching rules (one place, used online and offline):
- the same valid Chinese resident ID: certainly the same person;
- a similar name (folded to Latin, see names.py) with the same prefecture and a birth year
  within one year: likely the same person.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any, Literal

from rapidfuzz import fuzz, process

from bot.casework.names import name_keys
from bot.form import validators as v

#: A name at least this similar (0-100, rapidfuzz) counts as the same name.
NAME_SCORE = 85
#: A search word at least this similar finds a name.
SEARCH_SCORE = 80
#: Birth years this far apart can still be the same person (years are often guessed).
YEAR_SLACK = 1

Certainty = Literal["certain", "likely"]


@dataclass(frozen=True, slots=True)
class PersonRecord:
    """What the index knows of one missing person; `person` counts from 1."""

    case_id: int
    number: str
    person: int
    names: tuple[str, ...]
    birth_year: int | None
    prefecture: str | None
    chinese_id: str | None
    phone: str | None  # the reporter's phone, digits only
    what_happened: tuple[str, ...] = ()  # codes, for /stats
    happened_year: int | None = None  # the year it happened, for /stats


@dataclass(frozen=True, slots=True)
class Match:
    record: PersonRecord
    certainty: Certainty
    score: int


def _digits(text: str) -> str:
    return re.sub(r"\D", "", text)


def phone_key(text: str) -> str:
    """The last ten digits: "+7 701 ..." and "8 701 ..." are the same Kazakh number."""
    return _digits(text)[-10:]


def valid_chinese_id(value: object) -> str | None:
    if not isinstance(value, str):
        return None
    checked = v.check_chinese_id(value, today=date.max)
    return None if isinstance(checked, v.Invalid) else checked.number


def _year(raw: object) -> int | None:
    return int(raw[:4]) if isinstance(raw, str) and raw[:4].isdigit() else None


def _birth_year(person: Mapping[str, Any], cid: str | None) -> int | None:
    raw = person.get("birth_date")
    if isinstance(raw, str) and raw[:4].isdigit():
        return int(raw[:4])
    return int(cid[6:10]) if cid else None


def _prefecture(person: Mapping[str, Any], cid: str | None) -> str | None:
    code = person.get("prefecture")
    if isinstance(code, str) and code and code != "other":
        return code
    if cid:
        checked = v.check_chinese_id(cid, today=date.max)
        if not isinstance(checked, v.Invalid):
            return v.prefecture_for_id(checked)
    return None


def records_of(case_id: int, number: str, data: Mapping[str, Any]) -> list[PersonRecord]:
    """The index records of one case's persons, from its opened data."""
    reporter = data.get("reporter") or {}
    phone = reporter.get("reporter_phone")
    out = []
    for i, person in enumerate(data.get("persons") or [], start=1):
        cid = valid_chinese_id(person.get("chinese_id"))
        out.append(PersonRecord(
            case_id=case_id, number=number, person=i,
            names=name_keys([person.get("full_name"), person.get("chinese_name"),
                             person.get("other_names")]),
            birth_year=_birth_year(person, cid), prefecture=_prefecture(person, cid),
            chinese_id=cid, phone=phone_key(phone) if isinstance(phone, str) else None,
            what_happened=tuple(str(c) for c in person.get("what_happened") or []
                                if isinstance(c, str)),
            happened_year=_year(person.get("happened_date"))))
    return out


class PersonIndex:
    """Every stored missing person, findable by name, ID, phone and case."""

    def __init__(self) -> None:
        self._records: list[PersonRecord | None] = []
        self._by_case: dict[int, list[int]] = defaultdict(list)
        self._by_id: dict[str, list[int]] = defaultdict(list)
        self._by_id6: dict[str, list[int]] = defaultdict(list)
        self._by_phone: dict[str, list[int]] = defaultdict(list)
        self._by_block: dict[tuple[str, int], list[int]] = defaultdict(list)
        # One entry per name variant: the folded name without spaces, and its record.
        self._joined: list[str] = []
        self._owner: list[int] = []
        # Every word of every name, and the records whose names have it.
        self._word_slots: dict[str, set[int]] = defaultdict(set)
        self._words: list[str] = []
        self._words_dirty = False

    def __len__(self) -> int:
        return sum(1 for r in self._records if r is not None)

    def add(self, records: Iterable[PersonRecord]) -> None:
        for record in records:
            slot = len(self._records)
            self._records.append(record)
            self._by_case[record.case_id].append(slot)
            if record.chinese_id:
                self._by_id[record.chinese_id].append(slot)
                self._by_id6[record.chinese_id[-6:]].append(slot)
            if record.phone:
                self._by_phone[record.phone].append(slot)
            if record.prefecture and record.birth_year:
                self._by_block[(record.prefecture, record.birth_year)].append(slot)
            for name in record.names:
                self._joined.append(name.replace(" ", ""))
                self._owner.append(slot)
                for word in name.split():
                    if word not in self._word_slots:
                        self._words_dirty = True
                    self._word_slots[word].add(slot)

    def remove_case(self, case_id: int) -> None:
        """Forget a case (erased by its relative); its slots stay empty."""
        for slot in self._by_case.pop(case_id, []):
            self._records[slot] = None

    def _live(self, slots: Iterable[int]) -> Iterator[PersonRecord]:
        for slot in slots:
            record = self._records[slot]
            if record is not None:
                yield record

    def records(self) -> Iterator[PersonRecord]:
        return self._live(range(len(self._records)))

    def persons_of(self, case_id: int) -> list[PersonRecord]:
        return list(self._live(self._by_case.get(case_id, [])))

    # -- search ---------------------------------------------------------------------------

    def by_chinese_id(self, text: str) -> list[PersonRecord]:
        """A whole ID, or its last six characters."""
        key = re.sub(r"\s", "", text).upper()
        table = self._by_id if len(key) == 18 else self._by_id6
        return list(self._live(table.get(key, [])))

    def by_phone(self, text: str) -> list[PersonRecord]:
        return list(self._live(self._by_phone.get(phone_key(text), [])))

    def _word_list(self) -> list[str]:
        if self._words_dirty:
            self._words = list(self._word_slots)
            self._words_dirty = False
        return self._words

    def by_name(self, text: str, limit: int = 20) -> list[tuple[PersonRecord, int]]:
        """Persons whose name is like `text`, best first.

        Every word of the query must be like some word of one of the person's names (so
        "Nurlan" finds "Нұрлан Асқар"), or the whole query like a whole name without spaces
        (so "Wang Xiaoming" finds 王小明, whose pinyin is one word).
        """
        keys = name_keys([text])
        if not keys:
            return []
        query = keys[0]
        words = self._word_list()
        best: dict[int, float] = {}
        per_word: list[dict[int, float]] = []
        for word in dict.fromkeys(query.split()):
            hits: dict[int, float] = {}
            for found, score, _ in process.extract(word, words, scorer=fuzz.ratio,
                                                   score_cutoff=SEARCH_SCORE, limit=None):
                for slot in self._word_slots[found]:
                    hits[slot] = max(hits.get(slot, 0.0), score)
            per_word.append(hits)
        if per_word:
            common = set(per_word[0]).intersection(*per_word[1:])
            for slot in common:
                best[slot] = sum(h[slot] for h in per_word) / len(per_word)
        for _, score, i in process.extract(query.replace(" ", ""), self._joined,
                                           scorer=fuzz.ratio, score_cutoff=SEARCH_SCORE,
                                           limit=None):
            slot = self._owner[i]
            best[slot] = max(best.get(slot, 0.0), score)
        ranked = sorted(best.items(), key=lambda kv: (-kv[1], kv[0]))
        out = []
        for slot, score in ranked:
            record = self._records[slot]
            if record is not None:
                out.append((record, round(score)))
            if len(out) >= limit:
                break
        return out

    # -- duplicates -----------------------------------------------------------------------

    def matches(self, record: PersonRecord) -> list[Match]:
        """Stored persons of other cases who may be `record`: certain ones first."""
        found: dict[int, Match] = {}
        if record.chinese_id:
            for slot in self._by_id.get(record.chinese_id, []):
                other = self._records[slot]
                if other is not None and other.case_id != record.case_id:
                    found[slot] = Match(other, "certain", 100)
        if record.prefecture and record.birth_year and record.names:
            for year in range(record.birth_year - YEAR_SLACK, record.birth_year + YEAR_SLACK + 1):
                for slot in self._by_block.get((record.prefecture, year), []):
                    other = self._records[slot]
                    if other is None or other.case_id == record.case_id or slot in found:
                        continue
                    score = name_similarity(record.names, other.names)
                    if score >= NAME_SCORE:
                        found[slot] = Match(other, "likely", score)
        return sorted(found.values(), key=lambda m: (m.certainty != "certain", -m.score,
                                                     m.record.number, m.record.person))


def name_similarity(a: tuple[str, ...], b: tuple[str, ...]) -> int:
    """The best score between any name variant of `a` and any of `b` (0-100)."""
    best = 0.0
    for x in a:
        for y in b:
            best = max(best, fuzz.token_sort_ratio(x, y),
                       fuzz.ratio(x.replace(" ", ""), y.replace(" ", "")))
    return round(best)
