"""Run every benchmark, one subprocess each: `python -m tests.bench` (what `make bench` runs).

    python -m tests.bench                  # everything
    python -m tests.bench --quick          # a smoke run of every benchmark that has --quick
    python -m tests.bench --only journeys startup

Seeded data (tests/bench/seed.py) is made once and shared by journeys, startup and memory.
Each benchmark prints its tables and writes bench-results/<name>.json (bench-results/quick/
for --quick); this runner keeps the whole output in bench-results/bench.log, writes the
README's tables to bench-results/figures.md (tests/bench/report.py) and lists at the end what
ran, how long it took and whether it failed. Benchmarks owned elsewhere
(bench_export, bench_broadcast) run when present; in --quick mode only if they take --quick.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.bench.harness import RESULTS, ROOT, machine, machine_line
from tests.bench.report import render

HERE = Path(__file__).resolve().parent
OURS = ["journeys", "startup", "memory"]  # take --seeded and --quick
OTHERS = {"export": "bench_export", "export-sealed": "bench_export",
          "encoders": "bench_encoders", "vault": "bench_vault", "broadcast": "bench_broadcast",
          "matching": "bench_matching"}
# Full-run arguments: medians of 3, and the export also as the bot stores cases (sealed).
FULL_ARGS = {"export": ["--runs", "3"],
             "export-sealed": ["--sealed", "--runs", "3", "--output",
                               str(RESULTS / "export_sealed.json")]}


def takes_quick(path: Path) -> bool:
    return '"--quick"' in path.read_text(encoding="utf-8", errors="replace")


def run(name: str, argv: list[str], log: list[str]) -> tuple[str, float, int]:
    print(f"\n===== {name}: {' '.join(argv[2:])}\n", flush=True)
    t0 = time.monotonic()
    proc = subprocess.Popen([sys.executable, *argv], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    for line in proc.stdout:
        sys.stdout.write(line)
        sys.stdout.flush()
        log.append(line.rstrip("\n"))
    code = proc.wait()
    return name, time.monotonic() - t0, code


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--only", nargs="+", choices=[*OURS, *OTHERS])
    args = parser.parse_args(argv)
    wanted = args.only or [*OURS, *OTHERS]
    print(f"Benchmarks on {machine_line(machine())}", flush=True)
    log: list[str] = []
    done: list[tuple[str, float, int]] = []
    skipped: list[str] = []
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="bench-seeds-") as seeds:
        for name in OURS:
            if name in wanted:
                flags = ["--seeded", seeds] + (["--quick"] if args.quick else [])
                done.append(run(name, ["-m", f"tests.bench.{name}", *flags], log))
    for name, module in OTHERS.items():
        if name not in wanted:
            continue
        path = HERE / f"{module}.py"
        if not path.exists():
            skipped.append(f"{name}: {path.name} is not there")
            continue
        if args.quick and not takes_quick(path):
            skipped.append(f"{name}: {path.name} has no --quick flag")
            continue
        if args.quick and name == "export-sealed":
            continue
        done.append(run(name, ["-m", f"tests.bench.{module}",
                               *(["--quick"] if args.quick else FULL_ARGS.get(name, []))], log))
    total = time.monotonic() - started
    print("\n===== summary\n")
    for name, seconds, code in done:
        print(f"{name:10s} {seconds:6.0f} s  {'ok' if code == 0 else f'FAILED ({code})'}")
    for note in skipped:
        print(f"skipped    {note}")
    print(f"total      {total:6.0f} s")
    folder = RESULTS / "quick" if args.quick else RESULTS
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "bench.log").write_text("\n".join(log) + "\n", encoding="utf-8")
    (folder / "figures.md").write_text(render(folder), encoding="utf-8")
    print(f"figures for the README: {folder / 'figures.md'}")
    return 0 if all(code == 0 for _, _, code in done) else 1


if __name__ == "__main__":
    sys.exit(main())
