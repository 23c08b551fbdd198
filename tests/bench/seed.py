"""Fill a bot database with N relatives, their submitted cases and their drafts in progress.

    python -m tests.bench.seed DATA_DIR --relatives 100000 --drafts 10000

Realistic and fast: answers come from real walks through the questionnaire engine (random
choices, multilingual free text, partial dates, valid Chinese ID numbers, files), so every case
and draft has the shape and size the bot itself would store. A few hundred such walks are made;
each relative gets one of them, sealed separately with the bot's own keyring (cases to the
organisation's public key, drafts with the server key), and rows go in with executemany in
large transactions through the bot's own Database (migrations, pragmas). The keys are generated
in DATA_DIR/keys exactly as on the bot's first start, so the bot opens what is seeded here.

Of the relatives: `drafts` have a questionnaire in progress (stopped at a random step), about
85% of the others have submitted one case (some two or three), the rest only chose a language.
Seeded user ids start at SEED_USER_BASE; simulated relatives in the benchmarks use other ids.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import random
import shutil
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bot.form import engine
from bot.form.engine import DraftState
from bot.form.model import Form, Question, load_form
from bot.form.validators import chinese_id_check_char
from bot.services.case_numbers import damm_digit
from bot.services.crypto import Keyring, load_keyring
from bot.storage.db import Database

SEED_USER_BASE = 1_000_000_000
DB_NAME = "bot.sqlite3"
LANGS = ("kk", "kk", "kk", "ru", "ru", "en")
STATUSES = ("new",) * 6 + ("in_review", "in_review", "needs_info", "verified", "referred",
                           "located", "closed", "withdrawn")

NAMES = ["Нұрлан Сейітұлы", "Әлия Нұрланқызы", "Қайрат Бекұлы", "Гүлнар Серікқызы",
         "ئابدۇللا ئەھمەت", "مۇھەممەت ئىمىن", "Ерлан Жақсылықов", "Айгерім Төлеген",
         "Серик Абдрахманов", "Bakytgul Oralbay", "Mukhtar Kabyl", "Гүлжан Тохтасын"]
CHINESE = ["王小明", "努尔兰·赛提", "阿依古丽", "买买提·伊敏", "哈力木拉提", "加娜尔古丽"]
CITIES = ["Алматы", "Астана", "Шымкент", "Жаркент", "Талдықорған", "Өскемен", "Бишкек"]
PLACES = ["Ghulja, Bayandai", "Құлжа ауданы", "伊宁县", "Чапчал", "قۇلجا", "Tacheng city"]
PHRASES = [
    "Ол 2017 жылы «оқуға» апарылды, содан бері хабар жоқ; телефоны өшірулі.",
    "Отец поехал в Кульджу продлить паспорт, и его задержали на границе.",
    "他被带到\"职业技能教育培训中心\"，至今没有消息。",
    "ئۇ 2018-يىلى تۇتقۇن قىلىندى، شۇنىڭدىن بۇيان خەۋەر يوق.",
    "We called the village office many times, they said \"wait\", nothing else.",
    "Паспортын алып қойды, шетелге шығуға рұқсат жоқ, қызы Алматыда күтіп отыр.",
    "Сестра, её муж и двое детей — связь пропала в марте; соседи боятся говорить.",
]
TODAY = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)


def free_text(rng: random.Random, length: int) -> str:
    parts: list[str] = []
    while sum(len(p) + 1 for p in parts) < length:
        parts.append(rng.choice(PHRASES))
    return " ".join(parts)[:length].strip() or "—"


def chinese_id(rng: random.Random) -> str:
    region = rng.choice(["654002", "654021", "654301", "650102", "652901"])
    born = f"{rng.randint(1940, 2000)}{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}"
    first17 = region + born + f"{rng.randint(0, 999):03d}"
    return first17 + chinese_id_check_char(first17)


def partial_date(rng: random.Random, lo: int, hi: int) -> str:
    year = rng.randint(lo, hi)
    shape = rng.random()
    if shape < 0.5:
        return str(year)
    if shape < 0.8:
        return f"{rng.randint(1, 12):02d}.{year}"
    return f"{rng.randint(1, 28):02d}.{rng.randint(1, 12):02d}.{year}"


def media(rng: random.Random, kind: str) -> engine.Media:
    return engine.Media(kind=kind, file_id=f"AgACAgIAAxkBAAI{rng.getrandbits(96):024x}",
                        file_unique_id=f"AQAD{rng.getrandbits(40):010x}",
                        size=rng.randint(20_000, 4_000_000),
                        duration=rng.randint(5, 300) if kind in ("voice", "video") else None,
                        name="паспорт.pdf" if kind == "document" else None)


def typed_answer(rng: random.Random, q: Question) -> engine.Input:
    if q.type == "date":
        return engine.Text(partial_date(rng, 1940 if "birth" in q.id else 2016,
                                        2000 if "birth" in q.id else 2025))
    if q.type == "phone":
        return engine.Text(f"+7 701 {rng.randint(100, 999)} {rng.randint(10, 99)} "
                           f"{rng.randint(10, 99)}")
    if q.type == "chinese_id":
        return engine.Text(chinese_id(rng))
    if q.id == "story" and rng.random() < 0.2:
        return media(rng, "voice")
    text = {"full_name": lambda: rng.choice(NAMES), "reporter_name": lambda: rng.choice(NAMES),
            "chinese_name": lambda: rng.choice(CHINESE),
            "reporter_city": lambda: rng.choice(CITIES),
            "place": lambda: rng.choice(PLACES), "place_held": lambda: rng.choice(PLACES),
            "story": lambda: free_text(rng, int(min(q.max_len - 40, rng.expovariate(1 / 700)))
                                       + 30)}
    make = text.get(q.id, lambda: free_text(rng, rng.randint(15, min(q.max_len, 200))))
    return engine.Text(make())


def next_inputs(rng: random.Random, form: Form, state: DraftState) -> list[engine.Input]:
    """What a plausible relative does at the current step (one or more inputs)."""
    v = engine.view(form, state)
    seq = state.seq
    if v.step == "add_person":
        extra = rng.random() < (0.35 if v.persons == 1 else 0.15)
        return [engine.Press(seq, "add" if extra else "finish")]
    if v.step == "confirm_id":
        return [engine.Press(seq, "id_yes")]
    if v.step == "review":
        return [engine.Press(seq, "submit")]
    q = v.question
    assert q is not None
    if v.can_skip and q.type not in ("attachments",) and rng.random() < 0.3:
        return [engine.Press(seq, "skip")]
    if q.type == "single":
        code = q.must_be or rng.choice(q.options).code
        return [engine.Press(seq, "opt", code)]
    if q.type == "multi":
        picks = rng.sample(q.options, rng.randint(1, min(3, len(q.options))))
        toggles: list[engine.Input] = [engine.Press(seq + i, "tog", o.code)
                                       for i, o in enumerate(picks)]
        return [*toggles, engine.Press(seq + len(picks), "done")]
    if q.type == "date" and rng.random() < 0.15:
        return [engine.Press(seq, "unknown")]
    if q.type == "attachments":
        files: list[engine.Input] = [media(rng, rng.choice(["photo", "photo", "document"]))
                                     for _ in range(rng.randint(0, 3))]
        return [*files, engine.Press(seq + len(files), "done")]
    return [typed_answer(rng, q)]


@dataclass
class Walk:
    states: list[bytes]  # every draft state along the way (JSON), for drafts in progress
    case: dict[str, Any]  # what the bot stores on submission (NewCase.data)
    persons: int
    prefecture: str | None
    attachments: int
    consent_share: str | None
    consent_publish: str | None
    language: str


def walk(rng: random.Random, form: Form, lang: str) -> Walk:
    """One relative's whole questionnaire through the real engine, up to submission."""
    state = engine.start(form)
    states = [state.to_json().encode()]
    for _ in range(500):
        for inp in next_inputs(rng, form, state):
            out = engine.apply(form, state, inp, TODAY)
            assert out.error is None, (out.error, inp, state.pos)
            state = out.state
            if out.event == "submit":
                break
            states.append(state.to_json().encode())
        else:
            continue
        break
    else:  # pragma: no cover - the walk always reaches the review
        raise RuntimeError("walk did not finish")
    consent = state.answers.get("consent", {})
    persons = [state.answers[b] for b in state.person_blocks()]
    data = {"form_version": form.version, "notice_version": form.notice_version,
            "language": lang, "consent": consent, "consent_at": state.answered_at,
            "reporter": state.answers.get("reporter", {}), "persons": persons}
    return Walk(states, data, len(persons), persons[0].get("prefecture"),
                sum(len(p.get("attachments") or []) for p in persons),
                consent.get("consent_share"), consent.get("consent_publish"), lang)


def case_number(i: int) -> str:
    body = str(1_000_000 + i)  # distinct, valid (Damm), never starts with 0
    full = body + damm_digit(body)
    return f"{full[:4]}-{full[4:]}"


@dataclass
class SeedReport:
    relatives: int
    cases: int
    drafts: int
    seconds: float
    db_mb: float


async def seed(data_dir: Path, relatives: int, drafts: int, *, seed: int = 7,
               templates: int = 200, chunk: int = 20_000) -> SeedReport:
    """Create DATA_DIR/bot.sqlite3 (and keys) holding `relatives` relatives and `drafts` drafts."""
    t0 = time.perf_counter()
    _new_folder(data_dir)
    drafts = min(drafts, relatives)
    form = load_form()
    rng = random.Random(seed)
    walks = [walk(rng, form, rng.choice(LANGS)) for _ in range(templates)]
    encoded = [json.dumps(w.case, ensure_ascii=False).encode() for w in walks]
    logging.getLogger("bot.services.crypto").setLevel(logging.ERROR)  # "generated keys"
    keys: Keyring = load_keyring(data_dir, None, None)
    db = await Database.open(data_dir / DB_NAME)
    start = datetime(2018, 9, 1, tzinfo=UTC)
    span = (TODAY - start).total_seconds()
    n_cases = 0
    try:
        for lo in range(0, relatives, chunk):
            users, cases, draft_rows = [], [], []
            for i in range(lo, min(relatives, lo + chunk)):
                uid = SEED_USER_BASE + i
                wi = rng.randrange(len(walks))
                w = walks[wi]
                first = start + timedelta(seconds=rng.random() * span)
                at = first.isoformat(timespec="seconds")
                users.append((uid, w.language, at, at))
                if i < drafts:  # a questionnaire in progress, stopped at a random step
                    raw = rng.choice(w.states[1:-1])
                    seq = json.loads(raw)["seq"]
                    touched = (TODAY - timedelta(days=rng.random() * 80)).isoformat(
                        timespec="seconds")
                    draft_rows.append((uid, form.version, keys.seal_draft(raw), seq, seq,
                                       rng.randint(5, 120), at, touched, rng.randint(1, 4)))
                    continue
                if rng.random() < 0.15:
                    continue  # chose a language, never reported
                for k in range(rng.choices((1, 2, 3), (85, 12, 3))[0]):
                    t = rng.randrange(len(walks)) if k else wi
                    tw, when = walks[t], first + timedelta(days=30 * k)
                    wat = when.isoformat(timespec="seconds")
                    cases.append((case_number(n_cases), uid, tw.language, rng.choice(STATUSES),
                                  tw.persons, tw.prefecture, tw.attachments, tw.consent_share,
                                  tw.consent_publish, form.notice_version, form.version,
                                  keys.seal(encoded[t]), wat, wat))
                    n_cases += 1
            async with db.transaction() as conn:
                await conn.executemany(
                    "INSERT INTO users (user_id, language, created_at, last_seen_at)"
                    " VALUES (?, ?, ?, ?)", users)
                await conn.executemany(
                    "INSERT INTO drafts (user_id, form_version, state, seq, shown_seq,"
                    " question_message_id, created_at, updated_at, first_message_id)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", draft_rows)
                await conn.executemany(
                    "INSERT INTO cases (number, user_id, language, status, persons_count,"
                    " prefecture, attachments_count, consent_share, consent_publish,"
                    " notice_version, form_version, data, submitted_at, updated_at)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", cases)
                await conn.execute(
                    "INSERT INTO case_events (case_id, at, kind)"
                    " SELECT case_id, submitted_at, 'submitted' FROM cases WHERE case_id > ?",
                    (n_cases - len(cases),))
        await db.checkpoint()
    finally:
        await db.close()
    return SeedReport(relatives, n_cases, drafts, time.perf_counter() - t0,
                      _size_mb(data_dir / DB_NAME))


def _new_folder(data_dir: Path) -> None:
    data_dir.mkdir(parents=True, exist_ok=True)
    if (data_dir / DB_NAME).exists():
        raise FileExistsError(f"{data_dir / DB_NAME} exists; seed a new folder")


def _size_mb(path: Path) -> float:
    return path.stat().st_size / 2**20


def _reference_answers(raw: bytes) -> tuple[dict[str, Any], dict[str, Any]]:
    """A draft state as the reference bot keeps it: (answers, where it stopped)."""
    state = json.loads(raw)
    answers: dict[str, Any] = {"persons": []}
    for block, values in state["answers"].items():
        if block.startswith("person."):
            answers["persons"].append(values)
        else:
            answers[block] = values
    if not answers["persons"]:
        answers["persons"].append({})
    return answers, state["pos"]


def seed_pickle(data_dir: Path, relatives: int, drafts: int, *, seed: int = 7,
                templates: int = 200) -> SeedReport:
    """The reference bot's PicklePersistence file with the same relatives, cases and drafts."""
    import pickle

    from tests.bench import reference_bot as ref

    t0 = time.perf_counter()
    data_dir.mkdir(parents=True, exist_ok=True)
    drafts = min(drafts, relatives)
    form = load_form()
    rng = random.Random(seed)
    walks = [walk(rng, form, rng.choice(LANGS)) for _ in range(templates)]
    encoded = [json.dumps(w.case, ensure_ascii=False) for w in walks]
    index = {(q["group"], q["id"]): i for i, q in enumerate(ref.QUESTIONS)}
    kinds = {"add_person": ref.ADD_PERSON, "review": ref.REVIEW, "confirm_id": ref.CONFIRM_ID}
    user_data: dict[int, dict[str, Any]] = {}
    chat_data: dict[int, dict[str, Any]] = {}
    conversations: dict[tuple[int, int], object] = {}
    n_cases = 0
    for i in range(relatives):
        uid = SEED_USER_BASE + i
        wi = rng.randrange(len(walks))
        w = walks[wi]
        data: dict[str, Any] = {"lang": w.language}
        chat_data[uid] = {}
        if i < drafts:
            answers, pos = _reference_answers(rng.choice(w.states[1:-1]))
            group = pos["block"].split(".")[0]
            q = index.get((group, pos["qid"]), ref.PERSON_START)
            data.update(answers=answers, q=q, msg=rng.randint(5, 120))
            qtype = ref.QUESTIONS[q]["type"]
            conversations[(uid, uid)] = kinds.get(
                pos["step"], ref.CHOOSING if qtype in ("single", "multi", "attachments")
                else ref.TYPING)
        elif rng.random() >= 0.15:
            data["cases"] = []
            for k in range(rng.choices((1, 2, 3), (85, 12, 3))[0]):
                t = rng.randrange(len(walks)) if k else wi
                data["cases"].append({"number": case_number(n_cases),
                                      "lang": walks[t].language, "status": rng.choice(STATUSES),
                                      **json.loads(encoded[t])})
                n_cases += 1
        user_data[uid] = data
    payload = {"conversations": {ref.CONVERSATION: conversations}, "user_data": user_data,
               "chat_data": chat_data, "bot_data": {}, "callback_data": None}
    path = data_dir / ref.PICKLE_NAME
    with path.open("wb") as f:
        pickle.dump(payload, f, protocol=pickle.HIGHEST_PROTOCOL)
    return SeedReport(relatives, n_cases, drafts, time.perf_counter() - t0,
                      path.stat().st_size / 2**20)


async def ensure_seed(cache: Path, kind: str, relatives: int, drafts: int, *,
                      templates: int = 100) -> tuple[Path, SeedReport | None]:
    """A seeded folder in `cache`, made once and reused (a marker file says it is complete).

    kind: "ours" (the bot's database and keys) or "reference" (the reference bot's pickle).
    Returns the folder and the report when it was seeded now (None when reused).
    """
    folder = cache / f"{kind}-{relatives}-{drafts}-t{templates}"
    marker = folder / ".seeded"
    if marker.exists():
        return folder, None
    if folder.exists():
        shutil.rmtree(folder)
    if kind == "ours":
        report = await seed(folder, relatives, drafts, templates=templates)
    else:
        report = seed_pickle(folder, relatives, drafts, templates=templates)
    marker.write_text(json.dumps(report.__dict__))
    return folder, report


def copy_data_dir(src: Path, dst: Path) -> None:
    """A fresh copy of a seeded data folder (database and keys, or pickle) for one bot run.

    The copy is flushed to disk before the bot starts: otherwise SQLite's first checkpoint,
    which fsyncs the database file, waits for the whole freshly written copy (hundreds of MB
    at 100,000 relatives) and the run measures the disk instead of the bot.
    """
    shutil.copytree(src, dst, dirs_exist_ok=True, ignore=shutil.ignore_patterns(".seeded"))
    for path in dst.rglob("*"):
        if path.is_file():
            fd = os.open(path, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.bench.seed", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data_dir", type=Path)
    parser.add_argument("--relatives", type=int, default=10_000)
    parser.add_argument("--drafts", type=int, default=None, help="default: relatives / 10")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--reference", action="store_true",
                        help="write the reference bot's pickle file instead of our database")
    args = parser.parse_args(argv)
    drafts = args.relatives // 10 if args.drafts is None else args.drafts
    if args.reference:
        report = seed_pickle(args.data_dir, args.relatives, drafts, seed=args.seed)
    else:
        report = asyncio.run(seed(args.data_dir, args.relatives, drafts, seed=args.seed))
    print(f"seeded {report.relatives} relatives, {report.cases} cases, {report.drafts} drafts "
          f"in {report.seconds:.1f} s ({report.db_mb:.0f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
