"""Duplicate matching benchmark: a new person against 100,000 stored persons (target < 50 ms).

    python -m tests.bench.bench_matching                  # 100,000 stored, 200 new persons
    python -m tests.bench.bench_matching --stored 10000

Stored persons get realistic names (Kazakh and Uyghur given names and surnames in Cyrillic,
Latin, Arabic script and Chinese characters), prefectures weighted towards where Kazakh
communities live, birth years 1940-2005, and a valid Chinese ID for one in three. Each new
person is matched with PersonIndex.matches (certain by ID, likely by name + prefecture + year)
and, for comparison, searched by name as /find does. Prints the p50, p99 and worst times.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time

from bot.casework.index import PersonIndex, PersonRecord
from bot.casework.names import name_keys
from bot.form.validators import chinese_id_check_char

GIVEN = ["Нұрлан", "Асхат", "Ерлан", "Гүлжан", "Әлия", "Қасым", "Мұрат", "Айгүл", "Бақыт",
         "Nurlan", "Askhat", "Serik", "Zhanar", "Abdulla", "Kairat", "Dina", "Marat",
         "ئابدۇللا", "نۇرلان", "قاسىم", "ئەسقەت", "努尔兰", "阿斯哈尔", "王小明", "Tursun",
         "Мейрамбек", "Жанат", "Рахима", "Sayragul", "Omirbek", "Ғалия", "Erzhan"]
FAMILY = ["Тохтаров", "Серікұлы", "Қасымұлы", "Tokhtarov", "Nurlanovich", "Zhumabay",
          "Абдуллаев", "Omarov", "Сәдуақасов", "Bekov", "Ахметов", "Turgun", "Ismail",
          "Әбдірахман", "Nurbek", "Қайратұлы", "Mamyt"]
PREFECTURES = [("ili", "6540"), ("tacheng", "6542"), ("altay", "6543"), ("urumqi", "6501"),
               ("changji", "6523"), ("hami", "6505"), ("kashgar", "6531"), ("aksu", "6529")]
WEIGHTS = [30, 20, 20, 10, 8, 6, 3, 3]


def _chinese_id(rng: random.Random, region: str, year: int) -> str:
    body = (f"{region}{rng.randint(1, 40):02d}{year}{rng.randint(1, 12):02d}"
            f"{rng.randint(1, 28):02d}{rng.randint(0, 999):03d}")
    return body + chinese_id_check_char(body)


def person(rng: random.Random, case_id: int, index: int) -> PersonRecord:
    pref, region = rng.choices(PREFECTURES, WEIGHTS)[0]
    year = rng.randint(1940, 2005)
    name = f"{rng.choice(GIVEN)} {rng.choice(FAMILY)}"
    cid = _chinese_id(rng, region, year) if rng.random() < 1 / 3 else None
    return PersonRecord(case_id=case_id, number=f"{case_id:08d}", person=index,
                        names=name_keys([name]), birth_year=year, prefecture=pref,
                        chinese_id=cid, phone=None)


def _rss_mb() -> float:
    """The resident set size now (Linux), in MB."""
    with open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stored", type=int, default=100_000)
    parser.add_argument("--new", type=int, default=200)
    parser.add_argument("--quick", action="store_true", help="10,000 stored persons, 50 new")
    args = parser.parse_args()
    if args.quick:
        args.stored, args.new = 10_000, 50
    rng = random.Random(13)
    stored = [person(rng, i, 1) for i in range(args.stored)]
    before = _rss_mb()
    index = PersonIndex()
    t0 = time.perf_counter()
    index.add(stored)
    built = time.perf_counter() - t0
    grown = _rss_mb() - before
    match_ms, find_ms, found = [], [], 0
    for n in range(args.new):
        new = person(rng, args.stored + n, 1)
        t = time.perf_counter()
        found += bool(index.matches(new))
        match_ms.append((time.perf_counter() - t) * 1000)
        t = time.perf_counter()
        index.by_name(new.names[0])
        find_ms.append((time.perf_counter() - t) * 1000)

    def line(what: str, ms: list[float]) -> str:
        ms = sorted(ms)
        return (f"{what}: p50 {statistics.median(ms):.2f} ms, p99 {ms[int(len(ms) * 0.99) - 1]:.2f}"
                f" ms, worst {ms[-1]:.2f} ms")

    print(f"stored persons: {args.stored:,}; index built in {built:.2f} s, "
          f"+{grown:.0f} MB resident for the index structures")
    print(line(f"match a new person ({args.new} tries, {found} with a candidate)", match_ms))
    print(line("search by name (/find)", find_ms))
    print(f"target: matching under 50 ms: {'met' if max(match_ms) < 50 else 'MISSED'}")
    return 0 if max(match_ms) < 50 else 1


if __name__ == "__main__":
    raise SystemExit(main())
