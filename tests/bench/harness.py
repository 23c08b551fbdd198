"""What the benchmarks share: the machine, bot processes, the emulator hook, statistics, output."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import platform
import signal
import statistics
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from aiohttp import web

from bot.sandbox.botapi import Params
from bot.sandbox.emulator import Emulator

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "bench-results"
CLK_TCK = os.sysconf("SC_CLK_TCK")
Listener = Callable[[str, Params, int, float], None]


# ----------------------------------------------------------------------------- the machine


def machine() -> dict[str, Any]:
    model = "?"
    with contextlib.suppress(OSError), open("/proc/cpuinfo", encoding="utf-8") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    mem_gb = 0.0
    with contextlib.suppress(OSError), open("/proc/meminfo", encoding="utf-8") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                mem_gb = int(line.split()[1]) / 2**20
                break
    return {"nproc": os.cpu_count(), "cpu": model, "ram_gb": round(mem_gb, 1),
            "python": platform.python_version(), "load_avg": os.getloadavg()}


def machine_line(m: dict[str, Any]) -> str:
    return (f"{m['nproc']} cores ({m['cpu']}), {m['ram_gb']:.0f} GB RAM, Python {m['python']}, "
            f"load average at start {m['load_avg'][0]:.2f}")


# ----------------------------------------------------------------------------- processes


def proc_status_mb(pid: int, field: str) -> float:
    """VmRSS / VmHWM (peak RSS) of a process, in MB; 0 when it is gone."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def proc_cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def self_cpu_seconds() -> float:
    return time.process_time()


class BotProcess:
    """A bot as a separate process (`python -m MODULE run`) talking to the emulator over HTTP."""

    def __init__(self, module: str, emulator: Emulator, data_dir: Path,
                 extra_env: dict[str, str] | None = None, args: Sequence[str] = ("run",)) -> None:
        self.module = module
        self.emulator = emulator
        self.data_dir = data_dir
        self.extra_env = extra_env or {}
        self.args = list(args)
        self.proc: asyncio.subprocess.Process | None = None
        self.started_at = 0.0
        self.log_path = data_dir / f"{module.replace('.', '_')}.log"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    async def start(self) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("BOT_")}
        env.update({
            "BOT_TOKEN": self.emulator.token,
            "BOT_API_BASE_URL": self.emulator.base_url,
            "BOT_DATA_DIR": str(self.data_dir),
            "BOT_LOG_LEVEL": "WARNING",
            "PYTHONPATH": str(ROOT),
            **self.extra_env,
        })
        self.data_dir.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        self.started_at = time.monotonic()
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", self.module, *self.args, cwd=str(self.data_dir), env=env,
            stdin=asyncio.subprocess.DEVNULL, stdout=log, stderr=log)
        log.close()

    async def wait_polling(self, timeout: float = 60.0) -> float:
        """Seconds from start until the bot's first getUpdates arrives (it then takes updates)."""
        seen = asyncio.get_running_loop().create_future()

        def listen(method: str, params: Params, status: int, now: float) -> None:
            if method == "getUpdates" and not seen.done():
                seen.set_result(now)

        if not isinstance(self.emulator, BenchEmulator):
            raise TypeError("use BenchEmulator")
        self.emulator.arrivals.append(listen)
        remove = lambda: self.emulator.arrivals.remove(listen)  # noqa: E731
        try:
            waiter = asyncio.ensure_future(seen)
            assert self.proc is not None
            died = asyncio.ensure_future(self.proc.wait())
            done, _ = await asyncio.wait({waiter, died}, timeout=timeout,
                                         return_when=asyncio.FIRST_COMPLETED)
            if waiter not in done:
                died.cancel()
                raise RuntimeError(f"{self.module} did not start polling; see {self.log_path}")
            died.cancel()
            return float(waiter.result()) - self.started_at
        finally:
            remove()

    def rss_mb(self) -> float:
        return proc_status_mb(self.pid, "VmRSS")

    def peak_rss_mb(self) -> float:
        return proc_status_mb(self.pid, "VmHWM")

    def cpu_seconds(self) -> float:
        return proc_cpu_seconds(self.pid)

    async def stop(self, timeout: float = 60.0) -> int:
        if self.proc is None or self.proc.returncode is not None:
            return self.proc.returncode if self.proc and self.proc.returncode is not None else 0
        self.proc.send_signal(signal.SIGTERM)
        try:
            return await asyncio.wait_for(self.proc.wait(), timeout)
        except TimeoutError:
            self.proc.kill()
            return await self.proc.wait()

    async def kill(self) -> None:
        """SIGKILL: for a bot whose graceful stop would take minutes (measured elsewhere)."""
        if self.proc is not None and self.proc.returncode is None:
            self.proc.kill()
            await self.proc.wait()

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


# ----------------------------------------------------------------------------- the emulator


class BenchEmulator(Emulator):
    """The sandbox emulator with listeners on every answered call and a bounded `calls` list.

    Listeners get (method, params, HTTP status, time.monotonic()) right after the emulator
    answered the call, which is when the bot's reaction reached "Telegram".
    """

    def __init__(self, *, latency: float = 0.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.latency = latency  # seconds added to every Bot API call, like a network round trip
        self.listeners: list[Listener] = []
        self.arrivals: list[Listener] = []  # called when a call arrives (status 0)
        self.keep_calls = False

    async def _handle_method(self, request: web.Request) -> web.StreamResponse:
        if self.latency:
            await asyncio.sleep(self.latency)
        return await super()._handle_method(request)

    async def _execute(self, method: str, params: Params) -> tuple[Any, str | None]:
        if self.arrivals:
            now = time.monotonic()
            for listener in list(self.arrivals):
                listener(method, params, 0, now)
        return await super()._execute(method, params)

    def _record(self, method: str, params: Params, status: int) -> None:
        super()._record(method, params, status)
        if not self.keep_calls:
            self.calls.clear()
        if self.listeners:
            now = time.monotonic()
            for listener in list(self.listeners):
                listener(method, params, status, now)


def add_listener(emulator: Emulator, listener: Listener) -> Callable[[], None]:
    if not isinstance(emulator, BenchEmulator):
        raise TypeError("use BenchEmulator")
    emulator.listeners.append(listener)
    return lambda: emulator.listeners.remove(listener)


# ----------------------------------------------------------------------------- statistics


def percentile(values: Sequence[float], q: float) -> float:
    """Linear-interpolated percentile (q in 0..100); NaN when there is nothing."""
    if not values:
        return float("nan")
    data = sorted(values)
    if len(data) == 1:
        return data[0]
    pos = (len(data) - 1) * q / 100
    lo = int(pos)
    hi = min(lo + 1, len(data) - 1)
    return data[lo] + (data[hi] - data[lo]) * (pos - lo)


def median(values: Iterable[float]) -> float:
    vals = [v for v in values if v == v]
    return statistics.median(vals) if vals else float("nan")


def spread(values: Iterable[float]) -> tuple[float, float]:
    vals = [v for v in values if v == v]
    return (min(vals), max(vals)) if vals else (float("nan"), float("nan"))


# ----------------------------------------------------------------------------- output


def fmt(value: Any, digits: int = 1) -> str:
    if isinstance(value, float):
        if value != value:
            return "—"
        return f"{value:,.{digits}f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """A markdown table (also readable in a terminal)."""
    cells = [[str(h) for h in headers]] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(cells[0], widths, strict=True)) + " |",
             "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    for r in cells[1:]:
        lines.append("| " + " | ".join(c.rjust(w) for c, w in zip(r, widths, strict=True))
                     + " |")
    return "\n".join(lines)


def results_path(name: str, quick: bool) -> Path:
    folder = RESULTS / "quick" if quick else RESULTS
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"{name}.json"


def write_json(path: Path, payload: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, ensure_ascii=False, indent=2, default=str) + "\n",
                    encoding="utf-8")


def verdict(ok: bool | None) -> str:
    return "—" if ok is None else ("met" if ok else "MISSED")
