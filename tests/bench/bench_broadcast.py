"""Broadcast benchmark: N recipients through the real sender and the Bot API emulator.

    python -m tests.bench.bench_broadcast [--recipients 10000] [--rate 25] [--only capped]

Two runs, each with a fresh database and a fresh emulator in a child process (so the CPU time
measured here is the bot's alone):

- capped: the emulator enforces Telegram's 30 messages per second (429 with retry_after); the
  bot is built as in production (PTB's AIORateLimiter) and the sender runs at its configured
  rate (25/s by default). Figures: achieved msgs/s and its share of the cap, 429s received.
- uncapped: no limit anywhere (the sender's 30/s ceiling lifted, for this measurement only):
  how fast the sender itself could go, and its CPU cost per recipient.
- baseline: the same messages sent straight with `bot.send_message`, 16 at a time: what
  python-telegram-bot and httpx cost by themselves, so the sender's own overhead shows.

During each run a probe sends a reply to a relative every half second through the same bot,
as a handler would, and its latency is reported: what broadcasting costs relatives. 1% of the
recipients have blocked the bot. The table is printed and written to bench-results/broadcast.json.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
NOW = "2026-11-26T12:00:00+00:00"
TEXTS = {"kk": "БҰҰ біздің өтінішімізді алды. Жиналыс сенбіде, сағат 11-де.",
         "ru": "ООН получила наше обращение. Встреча в субботу в 11 часов.",
         "en": "The UN has received our submission. Meeting on Saturday at 11."}
FIRST_ID = 1_000_000
BLOCKED_EVERY = 100


# ----------------------------------------------------------------------------- the emulator


async def serve(recipients: int, cap: float | None) -> None:
    """Child process: the emulator with N known users; answers `stats` and `quit` on stdin."""
    from bot.sandbox.emulator import Emulator

    emu = Emulator(global_rate=cap)
    await emu.start()
    for i in range(recipients + 1):  # the last one is the probe
        user = emu.user(FIRST_ID + i)
        user.chat.known = True
        if i < recipients and i % BLOCKED_EVERY == BLOCKED_EVERY - 1:
            user.block(notify=False)
    print(json.dumps({"base_url": emu.base_url, "token": emu.token}), flush=True)
    loop = asyncio.get_running_loop()
    while True:
        line = (await loop.run_in_executor(None, sys.stdin.readline)).strip()
        if line == "stats":
            per_user = [sum(1 for m in emu.messages_in(FIRST_ID + i) if m.from_bot)
                        for i in range(recipients)]
            print(json.dumps({"sent": emu.stats["sent"], "429": emu.stats["429"],
                              "received_once": sum(1 for n in per_user if n == 1),
                              "received_twice_or_more": sum(1 for n in per_user if n > 1),
                              "received_none": sum(1 for n in per_user if n == 0),
                              "emulator_cpu_seconds": round(_cpu(), 2)}),
                  flush=True)
        elif line in ("quit", ""):
            break
    await emu.stop()


# ----------------------------------------------------------------------------- one run


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def run(mode: str, recipients: int, rate: float) -> dict[str, Any]:
    from bot.app import build_application, open_deps
    from bot.config import Settings
    from bot.services.broadcast import TELEGRAM_CAP, BroadcastSender
    from bot.storage.broadcasts import Audience, BroadcastRepository, NewBroadcast

    capped = mode == "capped"
    args = [sys.executable, "-m", "tests.bench.bench_broadcast", "--serve",
            "--recipients", str(recipients)]
    if capped:
        args += ["--cap", str(TELEGRAM_CAP)]
    child = await asyncio.create_subprocess_exec(
        *args, cwd=ROOT, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)
    assert child.stdin is not None and child.stdout is not None
    info = json.loads(await child.stdout.readline())
    langs = ("kk", "ru", "en")
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(token=info["token"], api_base_url=info["base_url"],
                            data_dir=Path(tmp))
        d = await open_deps(settings)
        async with d.db.transaction() as conn:
            await conn.executemany(
                "INSERT INTO users (user_id, language, created_at, last_seen_at)"
                " VALUES (?, ?, ?, ?)",
                [(FIRST_ID + i, langs[i % 3], NOW, NOW) for i in range(recipients)])
        app = build_application(d, rate_limit=capped)
        await app.initialize()
        await app.start()
        if mode == "baseline":
            result = await _baseline(app, recipients)
            await app.stop()
            await app.shutdown()
            await d.db.close()
            await _quit(child)
            return result
        repo = BroadcastRepository(d.db)
        queue_started = time.perf_counter()
        await repo.queue(NewBroadcast(audience=Audience.parse("all"), texts=TEXTS,
                                      fallback="ru"), NOW)
        queue_seconds = time.perf_counter() - queue_started
        sender = BroadcastSender(app.bot, d.db, rate=rate if capped else 100_000.0,
                                 allow_over_cap=not capped)
        probe_latencies: list[float] = []
        stop_probe = asyncio.Event()

        async def probe() -> None:
            while not stop_probe.is_set():
                started = time.perf_counter()
                await app.bot.send_message(FIRST_ID + recipients, "probe")
                probe_latencies.append(time.perf_counter() - started)
                await asyncio.sleep(0.5)

        cpu0, t0 = _cpu(), time.perf_counter()
        sender.start()
        probing = asyncio.create_task(probe())
        while (b := await repo.get(1)) is not None and b.state != "done":  # noqa: ASYNC110
            await asyncio.sleep(0.2)  # the state lives in the database: poll it
        seconds = time.perf_counter() - t0
        cpu = _cpu() - cpu0
        stop_probe.set()
        await probing
        await sender.stop()
        counts = await repo.counts(1)
        await app.stop()
        await app.shutdown()
        await d.db.close()
    child.stdin.write(b"stats\n")
    await child.stdin.drain()
    emu = json.loads(await child.stdout.readline())
    await _quit(child)
    done = sum(counts.get(s, 0) for s in ("sent", "blocked", "failed"))
    result: dict[str, Any] = {
        "mode": mode,
        "recipients": recipients,
        "configured_rate": rate if capped else None,
        "cap": TELEGRAM_CAP if capped else None,
        "seconds": round(seconds, 2),
        "msgs_per_second": round(done / seconds, 2),
        "share_of_cap": round(done / seconds / TELEGRAM_CAP, 3) if capped else None,
        "429_received": emu["429"],
        "cpu_seconds": round(cpu, 2),
        "cpu_ms_per_recipient": round(cpu / recipients * 1000, 3),
        "emulator_cpu_seconds": emu["emulator_cpu_seconds"],
        "queue_seconds": round(queue_seconds, 3),
        "states": counts,
        "received_once": emu["received_once"],
        "received_twice_or_more": emu["received_twice_or_more"],
        "received_none": emu["received_none"],
        "reply_latency_ms_p50": round(statistics.median(probe_latencies) * 1000, 1),
        "reply_latency_ms_max": round(max(probe_latencies) * 1000, 1),
    }
    return result


async def _quit(child: asyncio.subprocess.Process) -> None:
    assert child.stdin is not None
    child.stdin.write(b"quit\n")
    await child.stdin.drain()
    await child.wait()


async def _baseline(app: Any, recipients: int) -> dict[str, Any]:
    """PTB's own cost: the same messages sent straight with bot.send_message, 16 at a time,
    no database, no pacing. The sender's overhead is the difference to the uncapped run."""
    from telegram.error import TelegramError

    slots = asyncio.Semaphore(16)

    async def one(i: int) -> None:
        async with slots:
            with contextlib.suppress(TelegramError):
                await app.bot.send_message(FIRST_ID + i, TEXTS[("kk", "ru", "en")[i % 3]])

    cpu0, t0 = _cpu(), time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(recipients)))
    seconds, cpu = time.perf_counter() - t0, _cpu() - cpu0
    return {"mode": "baseline", "recipients": recipients, "seconds": round(seconds, 2),
            "msgs_per_second": round(recipients / seconds, 2), "429_received": 0,
            "cpu_seconds": round(cpu, 2),
            "cpu_ms_per_recipient": round(cpu / recipients * 1000, 3)}


def _table(results: list[dict[str, Any]]) -> str:
    keys = ["mode", "recipients", "seconds", "msgs_per_second", "share_of_cap", "429_received",
            "cpu_ms_per_recipient", "received_twice_or_more", "received_none",
            "reply_latency_ms_p50", "reply_latency_ms_max"]
    rows = [keys] + [[str(r.get(k)) for k in keys] for r in results]
    widths = [max(len(row[i]) for row in rows) for i in range(len(keys))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True))
                     for row in rows)


async def main_async(recipients: int, rate: float, modes: list[str]) -> None:
    results = []
    for mode in modes:
        print(f"running {mode} with {recipients} recipients...", flush=True)
        results.append(await run(mode, recipients, rate))
        print(json.dumps(results[-1], ensure_ascii=False), flush=True)
    print(_table(results))
    out = ROOT / "bench-results" / "broadcast.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"results": results}, indent=2, ensure_ascii=False) + "\n",
                   encoding="utf-8")
    print(f"written to {out.relative_to(ROOT)}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.bench.bench_broadcast")
    parser.add_argument("--recipients", type=int, default=10_000)
    parser.add_argument("--rate", type=float, default=25.0, help="the sender's rate when capped")
    parser.add_argument("--only", choices=("capped", "uncapped", "baseline"))
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--cap", type=float, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        asyncio.run(serve(args.recipients, args.cap))
        return 0
    modes = [args.only] if args.only else ["capped", "uncapped", "baseline"]
    asyncio.run(main_async(args.recipients, args.rate, modes))
    return 0


if __name__ == "__main__":
    sys.exit(main())
