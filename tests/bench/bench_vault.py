"""The evidence vault: sealing throughput and CPU per MB; files backup and restore at scale.

    python -m tests.bench.bench_vault                 # 10 GB of generated files (the issue's)
    python -m tests.bench.bench_vault --gb 1          # a smaller data set
    python -m tests.bench.bench_vault --quick         # 0.2 GB, for a smoke run

1. Sealing: a 256 MB stream (random content, fed in 1 MB blocks as an HTTP download gives
   them) through `seal_stream` (SHA-256 of the plaintext + XChaCha20-Poly1305 secretstream,
   written and fsynced), hashing alone and sealing alone: MB/s and CPU ms per MB (process CPU,
   worker threads included). Then the same through the vault worker end to end: downloaded
   over HTTP from the emulator, sealed, recorded (the emulator runs in this process, so that
   CPU figure includes serving the download).
2. Backup and restore with a vault of --gb GB (generated sealed-like files: 60 % of the bytes
   in video appeals of 20-200 MB, the rest in 0.2-5 MB photos, documents and voice): the first
   `python -m bot backup --files DIR`, an incremental run after 1 % new files, and the
   restore as documented (cp -a into a new data folder, then `sha256sum -c SHA256SUMS`).
   Each is a child process: wall time and its peak memory (ru_maxrss). Just-written files
   are partly in the page cache, so reads may be faster than from a cold disk.
Writes bench-results/vault.json (quick: bench-results/quick/vault.json).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from nacl.public import PrivateKey

from bot.evidence.vault import BLOCK, Telegram, VaultWorker, seal_stream
from bot.sandbox.emulator import Emulator
from bot.storage.db import Database
from bot.storage.evidence import EvidenceRepository
from tests.bench.harness import RESULTS, ROOT, machine, machine_line, proc_status_mb

MB = 1 << 20


def cpu() -> float:
    return time.process_time()


async def blocks(total: int, block: bytes) -> AsyncIterator[bytes]:
    sent = 0
    while sent < total:
        yield block
        sent += len(block)
        await asyncio.sleep(0)


async def bench_sealing(folder: Path, mb: int) -> dict[str, Any]:
    private = PrivateKey.generate()
    block = os.urandom(BLOCK)
    total = mb * MB
    out: dict[str, Any] = {"stream_mb": mb}
    # hashing alone
    t0, c0 = time.perf_counter(), cpu()
    digest = hashlib.sha256()
    for _ in range(total // BLOCK):
        digest.update(block)
    wall, used = time.perf_counter() - t0, cpu() - c0
    out["hash_mb_s"] = round(mb / wall)
    out["hash_cpu_ms_per_mb"] = round(used * 1000 / mb, 2)
    # sealing and hashing, streamed, to disk with fsync
    t0, c0 = time.perf_counter(), cpu()
    sha, size = await seal_stream(blocks(total, block), folder / "x.sealed",
                                  private.public_key, {"kind": "bench"})
    wall, used = time.perf_counter() - t0, cpu() - c0
    assert size == total and sha
    out["seal_mb_s"] = round(mb / wall)
    out["seal_cpu_ms_per_mb"] = round(used * 1000 / mb, 2)
    out["sealed_overhead_pct"] = round(
        ((folder / "x.sealed").stat().st_size - total) * 100 / total, 3)
    (folder / "x.sealed").unlink()
    return out


async def bench_worker(folder: Path, files: int, size_mb: int) -> dict[str, Any]:
    """Downloads from the emulator (self-hosted mode), sealed and recorded by VaultWorker."""
    private = PrivateKey.generate()
    async with Emulator(self_hosted=True) as emu:
        db = await Database.open(folder / "bench.sqlite3")
        repo = EvidenceRepository(db)
        data = os.urandom(size_mb * MB)
        for i in range(files):
            stored = emu.world.files.add("video", data)
            ref = json.dumps({"file_id": stored.file_id, "kind": "video"}).encode()
            await repo.enqueue(1, stored.file_unique_id, ref, "2026-12-03T00:00:00+00:00", 0)
            del i
        telegram = Telegram(emu.base_url, emu.token, 2000 * MB)
        worker = VaultWorker(repo, telegram, folder / "files", private.public_key,
                             open_ref=lambda b: b, seal_custody=lambda b: b)
        (folder / "files").mkdir()
        t0, c0 = time.perf_counter(), cpu()
        pending = await repo.due(time.time() + 1, files)
        await asyncio.gather(*(worker.fetch(row) for row in pending))
        wall, used = time.perf_counter() - t0, cpu() - c0
        await telegram.aclose()
        states = await repo.by_state()
        await db.close()
    assert states.get("stored") == files, states
    total = files * size_mb
    return {"worker_files": files, "worker_mb": total, "worker_mb_s": round(total / wall),
            "worker_cpu_ms_per_mb": round(used * 1000 / total, 2)}


def generate_vault(folder: Path, gb: float, rng: random.Random) -> tuple[int, int]:
    """Files shaped like the vault's, `gb` GB in all: (files, bytes)."""
    folder.mkdir(parents=True, exist_ok=True)
    chunk = os.urandom(4 * MB)
    target = int(gb * 1024 * MB)
    written = files = 0
    while written < target:
        video = rng.random() < 0.6 * 0.05 / 0.6 if written else True  # about 1 in 20 files
        size = rng.randint(20 * MB, 200 * MB) if video else rng.randint(200_000, 5 * MB)
        size = min(size, target - written) or 1
        with (folder / f"{rng.getrandbits(128):032x}.sealed").open("wb") as fh:
            left = size
            while left > 0:
                piece = chunk[:min(left, len(chunk))]
                fh.write(piece)
                left -= len(piece)
        written += size
        files += 1
    return files, written


def timed_child(argv: list[str], cwd: Path, env: dict[str, str] | None = None
                ) -> tuple[float, float, str]:
    """(seconds, peak RSS MB, stdout) of a child process.

    The peak is the child's VmHWM, read while it runs (ru_maxrss would count the parent's
    memory copied at fork).
    """
    t0 = time.perf_counter()
    proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    peak = 0.0
    while proc.poll() is None:
        peak = max(peak, proc_status_mb(proc.pid, "VmHWM"))
        time.sleep(0.02)
    wall = time.perf_counter() - t0
    out, err = proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"{argv[:3]} failed ({proc.returncode}): {err[-500:]}")
    return wall, peak, out


def bench_backup(base: Path, gb: float) -> dict[str, Any]:
    rng = random.Random(15)
    data = base / "data"
    t0 = time.perf_counter()
    files, size = generate_vault(data / "files", gb, rng)
    out: dict[str, Any] = {"vault_gb": round(size / 1024 / MB, 2), "vault_files": files,
                           "generate_s": round(time.perf_counter() - t0, 1)}
    env = {k: v for k, v in os.environ.items() if not k.startswith("BOT_")}
    env.update(BOT_DATA_DIR=str(data), PYTHONPATH=str(ROOT))
    dest = base / "offsite"
    cmd = [sys.executable, "-m", "bot", "backup", "--files", str(dest)]
    wall, rss, _ = timed_child(cmd, base, env)
    out.update(backup_full_s=round(wall, 1), backup_full_peak_mb=round(rss),
               backup_full_mb_s=round(size / MB / wall))
    added, added_size = generate_vault(data / "files", gb / 100, rng)
    wall, rss, stdout = timed_child(cmd, base, env)
    assert f"{added} new" in stdout, stdout
    out.update(incremental_new_files=added, incremental_new_mb=round(added_size / MB),
               backup_incremental_s=round(wall, 1), backup_incremental_peak_mb=round(rss))
    restored = base / "restored"
    restored.mkdir()
    wall_cp, rss_cp, _ = timed_child(["cp", "-a", str(dest / "files"), str(restored / "files")],
                                     base)
    wall_ck, rss_ck, stdout = timed_child(["sha256sum", "--quiet", "-c", "SHA256SUMS"], dest)
    out.update(restore_copy_s=round(wall_cp, 1), restore_copy_peak_mb=round(rss_cp, 1),
               restore_verify_s=round(wall_ck, 1), restore_verify_peak_mb=round(rss_ck, 1),
               restore_total_s=round(wall_cp + wall_ck, 1))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.bench.bench_vault",
                                     description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gb", type=float, default=10.0, help="size of the generated vault")
    parser.add_argument("--quick", action="store_true", help="0.2 GB and a 64 MB stream")
    parser.add_argument("--dir", type=Path, help="where to generate (default: a temp folder)")
    parser.add_argument("--output", type=Path)
    args = parser.parse_args(argv)
    gb = 0.2 if args.quick else args.gb
    stream_mb = 64 if args.quick else 256
    print(f"vault benchmark on {machine_line(machine())}", flush=True)
    results: dict[str, Any] = {"machine": machine()}
    base_dir = args.dir or Path(tempfile.gettempdir())
    free_gb = shutil.disk_usage(base_dir).free / 1024**3
    if free_gb < gb * 2.2 + 1:
        print(f"only {free_gb:.0f} GB free in {base_dir}: {gb} GB needs {gb * 2.2 + 1:.0f}; "
              "pass --gb or --dir", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="bench-vault-", dir=base_dir) as tmp:
        base = Path(tmp)
        results["backup"] = bench_backup(base, gb)
        print("backup:", json.dumps(results["backup"]), flush=True)
        shutil.rmtree(base / "data")
        shutil.rmtree(base / "offsite")
        shutil.rmtree(base / "restored")
        results["sealing"] = asyncio.run(bench_sealing(base, stream_mb))
        print("sealing:", json.dumps(results["sealing"]), flush=True)
        (base / "w").mkdir()
        results["worker"] = asyncio.run(bench_worker(base / "w", 4 if args.quick else 8, 32))
        print("worker:", json.dumps(results["worker"]), flush=True)
    results["peak_rss_mb_this_process"] = round(
        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    out = args.output or (RESULTS / ("quick" if args.quick else "") / "vault.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(f"written {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
