"""The README's table of figures, from the JSON the benchmarks wrote.

    python -m tests.bench.report              # from bench-results/
    python -m tests.bench.report --quick      # from bench-results/quick/

Prints markdown (journeys, start-up, memory) and writes it to bench-results/figures.md.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from tests.bench.harness import RESULTS, fmt, machine_line, table


def _load(folder: Path, name: str) -> dict[str, Any] | None:
    path = folder / f"{name}.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None


def journeys_md(j: dict[str, Any]) -> list[str]:
    rows = j["summary"]
    think = j["config"].get("think")
    people = (f", people's pace: {think[0]:g}-{think[1]:g} s between a reply and the next "
              "action" if think else "")
    out = [f"Journeys: 38 actions per relative; saturating pace: at most "
           f"{j['config']['pace']:g} actions/s each{people}; medians of "
           f"{max(r['runs'] for r in rows)} runs.", ""]
    out.append(table(
        ["bot", "stored", "C", "load", "actions/s", "first reply p50/p95/p99/max ms",
         "next step p99 ms", "bot CPU ms/action", "peak RSS MB"],
        [[r["label"], fmt(r["relatives"]), r["concurrency"], r["mode"], fmt(r["actions_per_s"]),
          "/".join(fmt(r[k], 0) for k in ("first_p50_ms", "first_p95_ms", "first_p99_ms",
                                          "first_max_ms")),
          fmt(r["step_p99_ms"], 0), fmt(r["bot_cpu_ms_per_action"], 1), fmt(r["peak_rss_mb"], 0)]
         for r in rows]))
    if j.get("ratios"):
        out += ["", "Ours against the reference bot, same load, same run:", ""]
        out.append(table(["bot", "stored", "C", "load", "throughput", "CPU per action",
                          "p99 first reply", "peak RSS"],
                         [[x["label"], fmt(x["relatives"]), x["concurrency"], x["mode"],
                           f"{x['throughput_ratio']:.2f}x", f"{x['cpu_per_action_ratio']:.2f}x",
                           f"{x['p99_ratio']:.2f}x", f"{x['rss_ratio']:.2f}x"]
                          for x in j["ratios"]]))
    return out


def startup_md(s: dict[str, Any]) -> list[str]:
    out = ["Start-up (medians; the reference with 100,000 stored: one start):", ""]
    out.append(table(["bot", "stored", "first reply s", "RSS after it MB", "graceful stop s"],
                     [[r["label"], fmt(r["relatives"]), fmt(r["first_reply_s"], 2),
                       fmt(r["rss_mb"], 0), fmt(r["stop_s"], 1)] for r in s["summary"]]))
    return out


def memory_md(m: dict[str, Any]) -> list[str]:
    c = m["config"]
    out = [f"Memory with {c['relatives']:,} relatives and {c['drafts']:,} drafts in progress "
           f"({c['wave']:,} of them come back, then {c['journeys']} new relatives report; "
           "the reference is killed before its first 60-s persistence update):", ""]
    out.append(table(["bot", "idle MB", "after the returning MB", "peak MB"],
                     [[r["label"], fmt(r["idle_rss_mb"], 0), fmt(r["rss_after_wave_mb"], 0),
                       fmt(r["peak_rss_mb"], 0)] for r in m["results"]]))
    return out


def targets_md(*payloads: dict[str, Any] | None) -> list[str]:
    rows = [t for p in payloads if p for t in p.get("targets", [])]
    if not rows:
        return []
    return ["Targets:", "", table(["target", "value", ""],
                                  [[t["target"], t["value"], "met" if t["met"] else "missed"]
                                   for t in rows])]


def render(folder: Path) -> str:
    j, s, m = (_load(folder, n) for n in ("journeys", "startup", "memory"))
    machine = next((p["machine"] for p in (j, s, m) if p), None)
    parts: list[str] = []
    if machine:
        parts += [f"Machine: {machine_line(machine)} (shared with other work while measured).",
                  ""]
    for block in ((journeys_md(j) if j else []), (startup_md(s) if s else []),
                  (memory_md(m) if m else []), targets_md(j, s, m)):
        if block:
            parts += [*block, ""]
    return "\n".join(parts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.bench.report", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    folder = RESULTS / "quick" if args.quick else RESULTS
    text = render(folder)
    print(text)
    (folder / "figures.md").write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
