"""Export benchmark: seed N realistic cases, time CSV, XLSX and JSONL exports, report peak RSS.

    python -m tests.bench.bench_export --cases 100000 --runs 3
    python -m tests.bench.bench_export --db /tmp/bench.sqlite3 --sealed   # seed once, reuse
    python -m tests.bench.bench_export --quick                            # 5,000 cases, 1 run

Each export runs in a fresh subprocess, which reports its own wall time and peak resident
memory (VmHWM from /proc/self/status, falling back to getrusage) and, since large exports are
encoded by worker processes, the peak of its own RSS plus its workers' RSS, and the same as
PSS (shared pages such as the interpreter's counted once), sampled from /proc (RSS every
20 ms, PSS every 200 ms); the memory target is checked against the larger, the summed RSS.
With ``--runs N`` every format runs N times; the table shows the medians (time) and maxima
(memory), and bench-results/export.json keeps every run. ``--sealed`` seals the cases to a
generated key (as the bot stores them) and exports with the private key, as ``python -m bot
export`` does; ``--db`` keeps the seeded database (and its key) for the next run. Targets
(issue 7): 100,000 cases in under 5 s to CSV and under 30 s to XLSX, with peak RSS under
150 MB.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from nacl.public import PrivateKey, SealedBox

from bot.form.model import Form, Question, load_form
from bot.services.case_numbers import damm_digit
from bot.storage.db import Database

ROOT = Path(__file__).resolve().parents[2]
#: format -> (seconds, peak RSS in MB); None where issue 7 sets no target
TARGETS: dict[str, tuple[float | None, float]] = {
    "csv": (5.0, 150.0), "xlsx": (30.0, 150.0), "jsonl": (None, 150.0)}
TZ = timezone(timedelta(hours=5))

NAMES = ["Нұрлан Сейітұлы", "Әлия Нұрланқызы", "Қайрат Бекұлы", "Гүлнар Серікқызы",
         "王小明", "李建国", "ئابدۇللا ئەھمەت", "مۇھەممەت ئىمىن", "Ерлан Жақсылықов",
         "Айгерім Төлеген", "Серик Абдрахманов", "Bakytgul Oralbay", "Mukhtar Kabyl"]
CHINESE = ["王小明", "努尔兰·赛提", "阿依古丽", "买买提·伊敏", "哈力木拉提", "加娜尔古丽"]
CITIES = ["Алматы", "Астана", "Шымкент", "Жаркент", "Талдықорған", "Өскемен", "Бишкек"]
PLACES = ["Ghulja, Bayandai", "Құлжа ауданы", "伊宁县", "Чапчал", "قۇلجا", "Tacheng city"]
PHRASES = [
    "Ол 2017 жылы «оқуға» апарылды, содан бері хабар жоқ; телефоны өшірулі.",
    "Отец поехал в Кульджу продлить паспорт, и его задержали на границе, сказали: \"проверка\".",
    "他被带到\"职业技能教育培训中心\"，至今没有消息。",
    "ئۇ 2018-يىلى تۇتقۇن قىلىندى، شۇنىڭدىن بۇيان خەۋەر يوق.",
    "We called the village office many times, they said \"wait\", nothing else.",
    "Паспортын алып қойды, шетелге шығуға рұқсат жоқ, қызы Алматыда күтіп отыр.",
    "Сестра, её муж и двое детей, — связь пропала в марте; соседи боятся говорить.",
]


def _text(rng: random.Random, length: int) -> str:
    parts: list[str] = []
    size = 0
    while size < length:
        p = rng.choice(PHRASES)
        parts.append(p)
        size += len(p) + 1
    return ("\n" if rng.random() < 0.3 else " ").join(parts)[:length].strip() or "—"


def _date(rng: random.Random) -> str:
    r = rng.random()
    if r < 0.1:
        return "unknown"
    year = rng.randint(1940, 2020)
    if r < 0.5:
        return str(year)
    if r < 0.75:
        return f"{year}-{rng.randint(1, 12):02d}"
    return f"{year}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"


def _media(rng: random.Random, kind: str) -> dict[str, Any]:
    m: dict[str, Any] = {"kind": kind, "file_id": "AgACAgIAAxkBAAI" + f"{rng.getrandbits(64):016x}",
                         "file_unique_id": f"AQAD{rng.getrandbits(40):010x}",
                         "size": rng.randint(10_000, 5_000_000)}
    if kind in ("voice", "video"):
        m["duration"] = rng.randint(3, 400)
    if kind == "document":
        m["name"] = rng.choice(["паспорт.pdf", "appeal.docx", "证件.jpg", "scan.pdf"])
    return m


def _answer(rng: random.Random, q: Question) -> Any:
    if q.type == "single":
        return rng.choice(q.options).code
    if q.type == "multi":
        return [o.code for o in rng.sample(q.options, rng.randint(1, min(3, len(q.options))))]
    if q.type == "date":
        return _date(rng)
    if q.type == "phone":
        return f"+7701{rng.randint(0, 9_999_999):07d}"
    if q.type == "chinese_id":
        return f"6540{rng.randint(10, 99)}19{rng.randint(40, 99)}0101{rng.randint(100, 999)}X"
    if q.type == "attachments":
        return [_media(rng, rng.choice(["photo", "photo", "document", "video"]))
                for _ in range(rng.randint(1, 3))]
    if q.id in ("full_name", "reporter_name"):
        return rng.choice(NAMES)
    if q.id == "chinese_name":
        return rng.choice(CHINESE)
    if q.id == "reporter_city":
        return rng.choice(CITIES)
    if q.id in ("place", "place_held"):
        return rng.choice(PLACES)
    if q.id == "story":
        if rng.random() < 0.2:
            return {"voice": _media(rng, "voice")}
        return _text(rng, int(min(q.max_len, rng.expovariate(1 / 700)) + 20))
    return _text(rng, rng.randint(10, min(q.max_len, 200)))


def fake_case(rng: random.Random, form: Form, when: datetime, lang: str) -> dict[str, Any]:
    """The cases.data JSON of a plausible case (about 1.5 missing persons on average)."""
    at = when.isoformat(timespec="seconds")
    out: dict[str, Any] = {"form_version": form.version, "notice_version": form.notice_version,
                           "language": lang, "consent_at": {}, "persons": []}
    for group in form.groups:
        count = rng.choices((1, 2, 3), (60, 30, 10))[0] if group.repeat else 1
        for _ in range(count):
            answers: dict[str, Any] = {}
            for q in group.questions:
                if q.must_be:
                    answers[q.id] = q.must_be
                elif q.required or rng.random() < 0.7:
                    answers[q.id] = _answer(rng, q)
            if group.repeat:
                out["persons"].append(answers)
            else:
                out[group.id] = answers
        if group.id == "consent":
            out["consent_at"] = {qid: at for qid in out["consent"]}
    return out


def case_number(i: int) -> str:
    """A distinct, valid case number for the i-th seeded case."""
    body = str(1_000_000 + i)
    full = body + damm_digit(body)
    return f"{full[:4]}-{full[4:]}"


async def seed(path: Path, n: int, *, seed: int = 7, chunk: int = 5000,
               seal: Callable[[bytes], bytes] | None = None) -> None:
    """Fill a new database at ``path`` with ``n`` cases, in bulk transactions; ``seal``
    turns each case's JSON into what is stored (as the bot's Keyring.seal does)."""
    form = load_form()
    rng = random.Random(seed)
    db = await Database.open(path)
    start = datetime(2019, 1, 1, 9, 0, tzinfo=TZ)
    span = (datetime(2026, 11, 1, tzinfo=TZ) - start).total_seconds()
    users = max(1, int(n / 1.2))
    statuses = ["new"] * 5 + ["in_review", "needs_info", "verified", "referred", "located",
                              "closed"]
    try:
        now = start.isoformat(timespec="seconds")
        async with db.transaction() as conn:
            await conn.executemany(
                "INSERT INTO users (user_id, language, created_at, last_seen_at)"
                " VALUES (?, 'kk', ?, ?)", ((100_000 + u, now, now) for u in range(users)))
        offsets = sorted(rng.random() * span for _ in range(n))
        for lo in range(0, n, chunk):
            batch = []
            for i in range(lo, min(n, lo + chunk)):
                when = start + timedelta(seconds=offsets[i])
                lang = rng.choice(("kk", "kk", "ru", "en"))
                data = fake_case(rng, form, when, lang)
                persons = data["persons"]
                at = when.isoformat(timespec="seconds")
                batch.append((
                    case_number(i), 100_000 + rng.randrange(users), lang, rng.choice(statuses),
                    len(persons), persons[0].get("prefecture"),
                    sum(len(p.get("attachments") or []) for p in persons),
                    data["consent"].get("consent_share"), data["consent"].get("consent_publish"),
                    form.notice_version, form.version,
                    _stored(json.dumps(data, ensure_ascii=False).encode(), seal), at, at))
            async with db.transaction() as conn:
                await conn.executemany(
                    "INSERT INTO cases (number, user_id, language, status, persons_count,"
                    " prefecture, attachments_count, consent_share, consent_publish,"
                    " notice_version, form_version, data, submitted_at, updated_at)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", batch)
        await db.checkpoint()
    finally:
        await db.close()


def _stored(data: bytes, seal: Callable[[bytes], bytes] | None) -> bytes:
    return data if seal is None else seal(data)


def sealer(private: PrivateKey) -> Callable[[bytes], bytes]:
    """Seal as the bot stores cases: the marker, then a sealed box to the public key."""
    from bot.services.crypto import MAGIC

    box = SealedBox(private.public_key)
    return lambda data: MAGIC + bytes(box.encrypt(data))


def _proc_kb(path: str, field: str) -> int:
    try:
        with open(path, encoding="ascii") as f:
            for line in f:
                if line.startswith(field):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


_PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024 if hasattr(os, "sysconf") else 4


def _rss_kb(pid: int | str) -> int:
    try:
        with open(f"/proc/{pid}/statm", encoding="ascii") as f:
            return int(f.read().split()[1]) * _PAGE_KB
    except (OSError, IndexError, ValueError):
        return 0


def _pss_kb(pid: int | str) -> int:
    """Proportional set size: shared pages (the interpreter, libraries) counted once."""
    return _proc_kb(f"/proc/{pid}/smaps_rollup", "Pss:")


def _children(pid: int) -> list[str]:
    out: list[str] = []
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/children", encoding="ascii") as f:
                out += f.read().split()
    except OSError:
        pass
    return out


class TreeRss:
    """Samples the RSS of this process plus its children (the export's workers) every
    ``every`` seconds, and their PSS ten times less often (the kernel walks every page
    table for it: sampled as often as RSS it took two CPU seconds from a CSV export)."""

    def __init__(self, every: float = 0.02) -> None:
        self.peak_kb = 0
        self.peak_pss_kb = 0
        self.workers = 0
        self._every = every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        me = os.getpid()
        n = 0
        while not self._stop.is_set():
            kids = _children(me)
            self.workers = max(self.workers, len(kids))
            self.peak_kb = max(self.peak_kb, _rss_kb(me) + sum(_rss_kb(k) for k in kids))
            if n % 10 == 0:
                self.peak_pss_kb = max(self.peak_pss_kb,
                                       _pss_kb(me) + sum(_pss_kb(k) for k in kids))
            n += 1
            self._stop.wait(self._every)

    def __enter__(self) -> TreeRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def _peak_rss_mb() -> float:
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def _child(fmt: str, db_path: Path, out: Path, key: Path | None,
                 workers: int | None, level: int | None = None) -> dict[str, Any]:
    from bot.export import export_cases
    from bot.export.sealed import case_opener

    db = await Database.open(db_path, migrate=False)
    batches = 0

    def progress(_: int) -> None:
        nonlocal batches
        batches += 1

    extra: dict[str, Any] = {}
    if level is not None:
        extra["deflate_level"] = level
    if key is not None:
        extra["decode"] = case_opener(PrivateKey(key.read_bytes()))  # noqa: ASYNC240
    with TreeRss() as tree:
        t0 = time.perf_counter()
        result = await export_cases(db, load_form(), fmt=fmt,  # type: ignore[arg-type]
                                    output=out, progress=progress, workers=workers, **extra)
        seconds = time.perf_counter() - t0
    await db.close()
    size = os.path.getsize(out)  # noqa: ASYNC240  # after the timing, nothing else runs
    return {"format": fmt, "export_seconds": round(seconds, 3), "rows": result.rows,
            "cases": result.cases, "batches": batches, "bytes": size,
            "peak_rss_mb": round(_peak_rss_mb(), 1),
            "workers": tree.workers,
            "workers_max_rss_mb": round(
                resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1),
            "peak_total_rss_mb": round(tree.peak_kb / 1024, 1),
            "peak_total_pss_mb": round(tree.peak_pss_kb / 1024, 1),
            "cpu_seconds": _cpu_seconds(resource.RUSAGE_SELF),
            "workers_cpu_seconds": _cpu_seconds(resource.RUSAGE_CHILDREN)}


def _cpu_seconds(who: int) -> float:
    usage = resource.getrusage(who)
    return round(usage.ru_utime + usage.ru_stime, 2)


def _run_child(fmt: str, db_path: Path, out: Path, key: Path | None = None,
               workers: int | None = None, level: int | None = None) -> dict[str, Any]:
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "tests.bench.bench_export", "--child", fmt, str(db_path),
         str(out), str(key or ""), "" if workers is None else str(workers),
         "" if level is None else str(level)],
        cwd=ROOT, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"{fmt} export failed:\n{proc.stderr}")
    figures: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    figures["process_seconds"] = round(wall, 3)
    figures["children_max_rss_mb"] = round(
        resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1)
    return figures


def _summary(fmt: str, runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians of the times, maxima of the memory figures, over the runs of one format."""
    out = dict(runs[-1])
    for k in ("export_seconds", "process_seconds"):
        out[k] = round(statistics.median(r[k] for r in runs), 3)
    for k in ("peak_rss_mb", "peak_total_rss_mb", "peak_total_pss_mb", "workers_max_rss_mb"):
        out[k] = max(r[k] for r in runs)
    out["runs"] = len(runs)
    out["export_seconds_all"] = [r["export_seconds"] for r in runs]
    seconds, rss_mb = TARGETS[fmt]
    out["target_seconds"] = seconds
    out["target_rss_mb"] = rss_mb
    out["ok"] = ((seconds is None or out["export_seconds"] < seconds)
                 and out["peak_total_rss_mb"] < rss_mb)
    return out


def _prepare(db_path: Path, cases: int, sealed: bool) -> tuple[float, Path | None]:
    """Seed ``db_path`` unless it is there already; (seconds spent seeding, key file)."""
    key = db_path.with_name(db_path.name + ".key") if sealed else None
    if db_path.exists() and (key is None or key.exists()):
        return 0.0, key
    for stale in (db_path, *(db_path.with_name(db_path.name + s) for s in ("-wal", "-shm"))):
        stale.unlink(missing_ok=True)
    seal = None
    if key is not None:
        private = PrivateKey.generate()
        key.write_bytes(bytes(private))
        seal = sealer(private)
    t0 = time.perf_counter()
    asyncio.run(seed(db_path, cases, seal=seal))
    return time.perf_counter() - t0, key


def main(argv: list[str] | None = None) -> int:
    """Seed, run each export in a fresh process, print a table and write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--cases", type=int, default=100_000)
    parser.add_argument("--formats", default="csv,xlsx,jsonl")
    parser.add_argument("--runs", type=int, default=1, help="runs of each format (medians)")
    parser.add_argument("--sealed", action="store_true",
                        help="store the cases sealed and export with the private key")
    parser.add_argument("--workers", type=int,
                        help="worker processes (0: none; default: the export's own choice)")
    parser.add_argument("--db", type=Path,
                        help="use (and keep) this database; seeded only when missing")
    parser.add_argument("--quick", action="store_true", help="5,000 cases, one run")
    parser.add_argument("--output", type=Path, default=ROOT / "bench-results" / "export.json")
    parser.add_argument("--keep", type=Path, help="keep the database and exports in this folder")
    parser.add_argument("--level", type=int,
                        help="XLSX deflate level (default: the export's own, 6)")
    parser.add_argument("--child", nargs=6,
                        metavar=("FORMAT", "DB", "OUT", "KEY", "WORKERS", "LEVEL"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        fmt, db_path, out, key, workers, level = args.child
        print(json.dumps(asyncio.run(_child(fmt, Path(db_path), Path(out),
                                            Path(key) if key else None,
                                            int(workers) if workers else None,
                                            int(level) if level else None))))
        return 0
    if args.quick:
        args.cases, args.runs = 5_000, 1
        if args.output == parser.get_default("output"):
            args.output = ROOT / "bench-results" / "quick" / "export.json"

    with tempfile.TemporaryDirectory(prefix="bench-export-") as tmp:
        work = args.keep or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        db_path = args.db or work / "bench.sqlite3"
        if args.db is None:
            db_path.unlink(missing_ok=True)
        seeded, key = _prepare(db_path, args.cases, args.sealed)
        size_mb = db_path.stat().st_size / 2**20
        if seeded:
            print(f"seeded {args.cases} cases in {seeded:.1f} s ({size_mb:.0f} MB database"
                  f"{', sealed' if key else ''})", flush=True)
        else:
            print(f"reusing {db_path} ({size_mb:.0f} MB{', sealed' if key else ''})", flush=True)
        runs: dict[str, list[dict[str, Any]]] = {}
        for i in range(args.runs):
            for fmt in args.formats.split(","):
                figures = _run_child(fmt, db_path, work / f"export.{fmt}", key, args.workers,
                                     args.level)
                runs.setdefault(fmt, []).append(figures)
                print(f"  {fmt} run {i + 1}: {figures['export_seconds']:.2f} s, "
                      f"{figures['peak_total_rss_mb']:.0f} MB", flush=True)
        results = [_summary(fmt, rs) for fmt, rs in runs.items()]

    header = f"{'format':<7}{'cases':>9}{'rows':>9}{'export s':>10}{'process s':>11}" \
             f"{'peak MB':>9}{'+workers':>9}{'(PSS)':>7}{'file MB':>9}{'runs':>6}  target"
    print(f"{'sealed cases, ' if key else ''}medians of {args.runs} run(s); peak MB: the "
          "exporting process; +workers: it and its worker processes together (RSS summed, "
          "and PSS)")
    print(header)
    for r in results:
        goal = (f"<{r['target_seconds']:.0f} s, " if r["target_seconds"] else "") + \
               f"<{r['target_rss_mb']:.0f} MB"
        print(f"{r['format']:<7}{r['cases']:>9}{r['rows']:>9}{r['export_seconds']:>10.2f}"
              f"{r['process_seconds']:>11.2f}{r['peak_rss_mb']:>9.1f}"
              f"{r['peak_total_rss_mb']:>9.1f}{r['peak_total_pss_mb']:>7.0f}"
              f"{r['bytes'] / 2**20:>9.1f}{r['runs']:>6}  {goal} "
              f"{'ok' if r['ok'] else 'MISSED'}")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps({
        "cases": args.cases, "seed_seconds": round(seeded, 2), "sealed": bool(key),
        "python": sys.version.split()[0], "cpus": os.cpu_count(), "results": results,
        "runs": runs}, indent=2) + "\n", encoding="utf-8")
    print(f"written to {args.output}")
    return 0  # a missed target is a figure in the table (MISSED), not a failed run


if __name__ == "__main__":
    raise SystemExit(main())
