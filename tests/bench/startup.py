"""Start-up benchmark: time from process start to the first reply, with 100,000 relatives stored.

    python -m tests.bench.startup            # empty and 100,000 relatives (10,000 drafts)
    python -m tests.bench.startup --quick

Before the bot process is started, two relatives are already waiting at the emulator: a new
one who sent /start, and one with a questionnaire in progress who writes again (our bot loads
and opens their draft and shows where they stopped; the reference bot, which has no such step,
gets /status, which reads that relative's data). The clock starts just before the process is
spawned and stops at the first message the bot sends to each. Also reported: seconds until
the bot's first getUpdates, its RSS right after answering, and how long a graceful stop takes
(for the reference bot that includes writing its whole pickle file). Each bot is started
`--repeats` times, alternating, each time on a fresh copy of the same seeded data; medians.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bot.sandbox.botapi import Params, as_int
from tests.bench import seed as seeding
from tests.bench.harness import (
    BenchEmulator,
    BotProcess,
    add_listener,
    fmt,
    machine,
    machine_line,
    median,
    results_path,
    table,
    verdict,
    write_json,
)
from tests.bench.journeys import BOTS, LABELS

NEW_USER = 3_000_000_001
TARGET_S = 2.0


async def trial(bot: str, seeded: Path | None, work: Path, run: int, relatives: int
                ) -> dict[str, Any]:
    data_dir = work / f"start{run}-{bot}"
    if seeded is not None:
        seeding.copy_data_dir(seeded, data_dir)
    emulator = BenchEmulator()
    await emulator.start()
    replied: dict[int, float] = {}
    waiting = asyncio.Event()
    returning = seeding.SEED_USER_BASE if relatives else NEW_USER + 1
    wanted = {NEW_USER, returning}

    def listen(method: str, params: Params, status: int, now: float) -> None:
        chat = as_int(params.get("chat_id"))
        if method == "sendMessage" and status == 200 and chat in wanted and chat not in replied:
            replied[chat] = now
            if set(replied) == wanted:
                waiting.set()

    remove = add_listener(emulator, listen)
    process = BotProcess(BOTS[bot], emulator, data_dir)
    try:
        await emulator.user(NEW_USER, language_code="kk").send_text("/start", wait=False)
        again = "/status" if bot == "reference" else "Сәлеметсіз бе"
        await emulator.user(returning, language_code="ru").send_text(again, wait=False)
        await process.start()
        t0 = process.started_at
        ready = await process.wait_polling()
        await asyncio.wait_for(waiting.wait(), 120)
        rss = process.rss_mb()
        t_stop = time.monotonic()
        await process.stop(timeout=300)
        stop_s = time.monotonic() - t_stop
        return {"bot": bot, "relatives": relatives, "run": run,
                "polling_s": ready,
                "first_reply_s": min(replied.values()) - t0,
                "new_relative_reply_s": replied[NEW_USER] - t0,
                "returning_relative_reply_s": replied[returning] - t0,
                "rss_mb": rss, "stop_s": stop_s}
    finally:
        remove()
        await process.stop()
        await emulator.stop()


def summarize(trials: list[dict[str, Any]]) -> list[dict[str, Any]]:
    groups: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for t in trials:
        groups.setdefault((t["bot"], t["relatives"]), []).append(t)
    rows = []
    for (bot, relatives), ts in sorted(groups.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        row: dict[str, Any] = {"bot": bot, "label": LABELS[bot], "relatives": relatives,
                               "runs": len(ts)}
        for key in ("polling_s", "first_reply_s", "new_relative_reply_s",
                    "returning_relative_reply_s", "rss_mb", "stop_s"):
            row[key] = median(t[key] for t in ts)
        row["first_reply_max_s"] = max(t["first_reply_s"] for t in ts)
        rows.append(row)
    return rows


async def bench(args: argparse.Namespace) -> dict[str, Any]:
    m = machine()
    trials: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bench-startup-") as tmp:
        work = Path(tmp)
        cache = args.seeded or work / "seeds"
        seeded: dict[tuple[str, int], Path | None] = {}
        for size in args.sizes:
            for bot in args.bots:
                kind = "reference" if bot == "reference" else "ours"
                if size == 0:
                    seeded[bot, size] = None
                    continue
                folder, rep = await seeding.ensure_seed(cache, kind, size, args.drafts,
                                                        templates=args.templates)
                seeded[bot, size] = folder
                if rep is not None:
                    print(f"seeded {size:,} relatives ({args.drafts:,} drafts) for {kind} in "
                          f"{rep.seconds:.1f} s", flush=True)
        run = 0
        for i in range(args.repeats):
            for size in args.sizes:
                bots = list(args.bots) if i % 2 == 0 else list(reversed(args.bots))
                for bot in bots:
                    if bot == "reference" and size >= 10_000 and i >= args.reference_repeats:
                        continue
                    run += 1
                    t = await trial(bot, seeded[bot, size], work, run, size)
                    trials.append(t)
                    print(f"start {run:2d} {bot:9s} stored={size:>7,}: polling after "
                          f"{t['polling_s']:.2f} s, first reply {t['first_reply_s']:.2f} s "
                          f"(new {t['new_relative_reply_s']:.2f} s, returning "
                          f"{t['returning_relative_reply_s']:.2f} s), RSS {t['rss_mb']:.0f} MB, "
                          f"stop {t['stop_s']:.2f} s", flush=True)
    rows = summarize(trials)
    targets = [{"target": f"first reply within {TARGET_S:g} s of start-up ({r['label']}, "
                          f"{r['relatives']:,} stored)",
                "value": f"{r['first_reply_s']:.2f} s (worst {r['first_reply_max_s']:.2f} s)",
                "met": r["first_reply_s"] <= TARGET_S}
               for r in rows if r["bot"] != "reference"]
    print(f"\nStart-up: medians of {args.repeats} starts ({args.reference_repeats} of the "
          f"reference bot with 10,000 or more stored). Machine: {machine_line(m)}\n")
    print(table(["bot", "stored", "first getUpdates s", "first reply s", "new relative s",
                 "returning relative s", "RSS after reply MB", "graceful stop s"],
                [[r["label"], fmt(r["relatives"]), fmt(r["polling_s"], 2),
                  fmt(r["first_reply_s"], 2), fmt(r["new_relative_reply_s"], 2),
                  fmt(r["returning_relative_reply_s"], 2), fmt(r["rss_mb"], 0),
                  fmt(r["stop_s"], 2)] for r in rows]))
    print("\nTargets:\n")
    print(table(["target", "value", ""], [[t["target"], t["value"], verdict(t["met"])]
                                          for t in targets]))
    return {"machine": m, "config": {k: v for k, v in vars(args).items()
                                     if k not in ("output", "seeded")},
            "summary": rows, "targets": targets, "trials": trials}


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tests.bench.startup", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a smoke run of a few seconds")
    parser.add_argument("--sizes", type=int, nargs="+", default=[0, 100_000],
                        help="relatives stored (0: an empty data folder, keys made at start)")
    parser.add_argument("--drafts", type=int, default=10_000)
    parser.add_argument("--bots", nargs="+", choices=["ours", "reference"],
                        default=["ours", "reference"])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--reference-repeats", type=int, default=1,
                        help="starts of the reference bot with 10,000 or more stored (each "
                             "takes minutes: it loads and, when stopping, rewrites its pickle)")
    parser.add_argument("--templates", type=int, default=100)
    parser.add_argument("--seeded", type=Path, help="a folder of seeded data to reuse")
    parser.add_argument("--output", type=Path)
    args = parser.parse_args(argv)
    if args.quick:
        args.sizes, args.drafts, args.repeats, args.templates = [200], 20, 1, 20
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    payload = asyncio.run(bench(args))
    out = args.output or results_path("startup", args.quick)
    write_json(out, payload)
    print(f"\nwritten {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
