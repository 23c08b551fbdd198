"""Memory benchmark: RSS of the bot with 100,000 relatives and 10,000 drafts in progress.

    python -m tests.bench.memory
    python -m tests.bench.memory --quick

The bot starts on a fresh copy of a database seeded with 100,000 relatives (about 90,000
cases) of whom 10,000 have a questionnaire in progress. Measured: RSS once it has started and
sits idle; then `--wave` of the relatives with a draft come back at once (`--concurrency` at a
time, no pause: one message each, which makes our bot load, open and show their draft), and
`--journeys` new relatives complete the whole questionnaire; then RSS and peak RSS (VmHWM)
again. The reference bot (tests/bench/reference_bot.py) gets the same data in its
PicklePersistence file and the same returning relatives (they send /status, since it has no
resume step), right after it starts polling; then it is killed: with its default settings its
first persistence update, 60 s after the start, writes the whole pickle file once per changed
user and conversation, which at this size takes hours (tests/bench/startup.py times one
graceful stop).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from tests.bench import seed as seeding
from tests.bench.harness import (
    BenchEmulator,
    BotProcess,
    fmt,
    machine,
    machine_line,
    results_path,
    table,
    verdict,
    write_json,
)
from tests.bench.journeys import BOTS, LABELS, Load, Step, drive

TARGET_MB = 100.0


async def measure(bot: str, seeded: Path, work: Path, args: argparse.Namespace
                  ) -> dict[str, Any]:
    data_dir = work / f"mem-{bot}"
    seeding.copy_data_dir(seeded, data_dir)
    emulator = BenchEmulator()
    await emulator.start()
    process = BotProcess(BOTS[bot], emulator, data_dir)
    try:
        await process.start()
        await process.wait_polling(timeout=300)
        await asyncio.sleep(args.settle)
        idle = process.rss_mb()
        message = "/status" if bot == "reference" else "Сәлеметсіз бе"
        rng = random.Random(3)
        returning = rng.sample(range(args.drafts), min(args.wave, args.drafts))
        wave = Load([(seeding.SEED_USER_BASE + i, "ru", [Step("text", message, None, "final")])
                     for i in returning])
        t0 = time.monotonic()
        wave_results, _, _ = await drive(emulator, wave, args.concurrency, None)
        wave_s = time.monotonic() - t0
        after_wave = process.rss_mb()
        journey_results: list[Any] = []
        journey_s, after, stop_s = float("nan"), float("nan"), float("nan")
        if bot != "reference":
            fresh = Load.journeys(args.journeys, seed=11)
            journey_results, journey_s, _ = await drive(emulator, fresh, args.journeys,
                                                        args.pace)
            after = process.rss_mb()
        peak = process.peak_rss_mb()
        if bot == "reference":
            # Its first persistence update, 60 s after the start, writes the whole pickle
            # once per changed user: with 100,000 relatives that takes hours. Not waited for.
            await process.kill()
        else:
            t_stop = time.monotonic()
            await process.stop(timeout=600)
            stop_s = time.monotonic() - t_stop
        failures = [r.failure for r in wave_results + journey_results if r.failure]
        return {"bot": bot, "label": LABELS[bot], "relatives": args.relatives,
                "drafts": args.drafts, "idle_rss_mb": idle, "wave": len(returning),
                "wave_s": wave_s, "rss_after_wave_mb": after_wave,
                "journeys": args.journeys, "journeys_s": journey_s,
                "rss_after_journeys_mb": after, "peak_rss_mb": peak,
                "stop_s": stop_s, "failures": failures[:5],
                "failure_count": len(failures)}
    finally:
        await process.stop()
        await emulator.stop()


async def bench(args: argparse.Namespace) -> dict[str, Any]:
    m = machine()
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-memory-") as tmp:
        work = Path(tmp)
        cache = args.seeded or work / "seeds"
        for bot in args.bots:
            kind = "reference" if bot == "reference" else "ours"
            folder, rep = await seeding.ensure_seed(cache, kind, args.relatives, args.drafts,
                                                    templates=args.templates)
            if rep is not None:
                print(f"seeded {args.relatives:,} relatives ({args.drafts:,} drafts) for {kind}"
                      f" in {rep.seconds:.1f} s", flush=True)
            row = await measure(bot, folder, work, args)
            rows.append(row)
            print(f"{bot:9s}: idle {row['idle_rss_mb']:.0f} MB, after {row['wave']:,} returning "
                  f"relatives ({row['wave_s']:.1f} s) {row['rss_after_wave_mb']:.0f} MB, after "
                  f"{row['journeys']} journeys {row['rss_after_journeys_mb']:.0f} MB, peak "
                  f"{row['peak_rss_mb']:.0f} MB, stop {row['stop_s']:.1f} s, failures "
                  f"{row['failure_count']}", flush=True)
    targets = [{"target": f"RSS under {TARGET_MB:g} MB with {args.relatives:,} relatives and "
                          f"{args.drafts:,} drafts ({r['label']}, peak)",
                "value": f"{r['peak_rss_mb']:.0f} MB", "met": r["peak_rss_mb"] < TARGET_MB}
               for r in rows if r["bot"] != "reference"]
    print(f"\nMemory with {args.relatives:,} relatives and {args.drafts:,} drafts in progress. "
          f"Machine: {machine_line(m)}\n")
    print(table(["bot", "idle MB", f"after {args.wave:,} returning MB",
                 f"after {args.journeys} journeys MB", "peak MB", "graceful stop s"],
                [[r["label"], fmt(r["idle_rss_mb"], 0), fmt(r["rss_after_wave_mb"], 0),
                  fmt(r["rss_after_journeys_mb"], 0), fmt(r["peak_rss_mb"], 0),
                  fmt(r["stop_s"], 1)] for r in rows]))
    print("\nTargets:\n")
    print(table(["target", "value", ""], [[t["target"], t["value"], verdict(t["met"])]
                                          for t in targets]))
    return {"machine": m, "config": {k: v for k, v in vars(args).items()
                                     if k not in ("output", "seeded")},
            "results": rows, "targets": targets}


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tests.bench.memory", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a smoke run of a few seconds")
    parser.add_argument("--relatives", type=int, default=100_000)
    parser.add_argument("--drafts", type=int, default=10_000)
    parser.add_argument("--wave", type=int, default=1_000,
                        help="relatives with a draft who come back during the measurement")
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--journeys", type=int, default=50,
                        help="new relatives who complete the questionnaire, all at once")
    parser.add_argument("--pace", type=float, default=2.0)
    parser.add_argument("--settle", type=float, default=2.0)
    parser.add_argument("--bots", nargs="+", choices=["ours", "reference"],
                        default=["ours", "reference"])
    parser.add_argument("--templates", type=int, default=100)
    parser.add_argument("--seeded", type=Path, help="a folder of seeded data to reuse")
    parser.add_argument("--output", type=Path)
    args = parser.parse_args(argv)
    if args.quick:
        args.relatives, args.drafts, args.wave, args.journeys = 200, 20, 20, 0
        args.templates, args.settle = 20, 0.5
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    payload = asyncio.run(bench(args))
    out = args.output or results_path("memory", args.quick)
    write_json(out, payload)
    print(f"\nwritten {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
