"""Journeys benchmark: simulated relatives complete the whole questionnaire over real HTTP.

    python -m tests.bench.journeys            # the full matrix (about 10 minutes)
    python -m tests.bench.journeys --quick    # a smoke run

Each bot runs as a separate process against the Bot API emulator in this process, on a fresh
copy of data seeded beforehand (tests/bench/seed.py: 1,000, 10,000 or 100,000 relatives, a
tenth of them with a questionnaire in progress). Two bots:

  ours       `python -m bot run`, as shipped
  reference  tests/bench/reference_bot.py, the python-telegram-bot examples' way

Every simulated relative goes through the same 47 actions (language, consent, about you, one
missing person with a Chinese ID and multi-choice answers, review, submit) and waits for the
bot's answer before acting again. Two paces:

  saturating    each relative acts at most `--pace` times a second (2; the bot's flood guard
                allows 3): at 50 relatives more than either bot can serve, so this measures
                throughput, and latency there is mostly waiting in line (Little's law);
  people's pace after each answer a relative takes `--think` seconds (uniformly 1 to 5 s:
                quicker than people read a question and tap) before acting: the load a bot
                sees from that many relatives at once, where the latency target applies.

At the lowest concurrency N = C relatives complete the whole questionnaire at the saturating
pace; people's pace, higher concurrencies (at every size) and the runs with a network round
trip (`--latency-ms`, added by the emulator to every call: Telegram is not on loopback) load
the bot for a time window instead. Runs alternate between the bots and repeat; the tables
show medians over the repeats, and the ratios compare bots measured in the same run.

Measured per action, from the moment the update is queued at the emulator:
  first reply   the bot's first call aimed at that chat: answerCallbackQuery for a button
                press, the first message for a typed answer;
  next step     the message carrying the next question's buttons (or the toggled keyboard),
                i.e. when the relative can act again.
Throughput is completed actions per second of wall time; bot CPU is the bot process's user +
system time per action, which other load on a shared machine disturbs less. Peak RSS is the
bot process's VmHWM. JSON: bench-results/journeys.json.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import re
import shutil
import signal
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from bot.form import engine
from bot.form.model import load_form
from bot.sandbox.botapi import Params, as_int
from bot.sandbox.simusers import SimUser
from tests.bench import seed as seeding
from tests.bench.harness import (
    BenchEmulator,
    BotProcess,
    add_listener,
    fmt,
    machine,
    machine_line,
    median,
    percentile,
    results_path,
    self_cpu_seconds,
    table,
    verdict,
    write_json,
)

Expect = Literal["step", "toggle", "final"]
BOTS = {"ours": "bot", "reference": "tests.bench.reference_bot"}
LABELS = {"ours": "ours", "reference": "reference"}
JOURNEY_USER_BASE = 2_000_000_000
STEP_TIMEOUT = 30.0
# Warm-up relatives act without pause: at most this many actions stays under the flood guard
# (30 updates in 10 s).
WARMUP_ACTIONS = 25
_FORM_PREFIX = re.compile(r"^f:\d+:")


# ----------------------------------------------------------------------------- the journey


@dataclass(frozen=True, slots=True)
class Step:
    kind: Literal["text", "press"]
    value: str  # the text, or the button's action
    arg: str | None = None  # the option code, for buttons that carry one
    expect: Expect = "step"


def press(action: str, arg: str | None = None, expect: Expect = "step") -> Step:
    return Step("press", action, arg, expect)


def text(value: str) -> Step:
    return Step("text", value)


def journey(rng: random.Random, lang: str) -> list[Step]:
    """One relative's whole report, typed answers varied per relative.

    The answers are keyed by question id; the order comes from the form itself (the pure
    engine walks it), so a new optional question is skipped without touching this plan.
    """
    plan: dict[str, list[Step]] = {
        "consent_store": [press("opt", "agree")], "consent_share": [press("opt", "yes")],
        "consent_publish": [press("opt", "anonymous")],
        "reporter_name": [text(rng.choice(seeding.NAMES))],
        "reporter_country": [press("opt", "kz")], "reporter_more": [press("opt", "yes")],
        "reporter_city": [text(rng.choice(seeding.CITIES))],
        "reporter_citizenship": [press("opt", rng.choice(["kz", "cn", "kz_resident"]))],
        "reporter_phone": [text(f"+7 701 {rng.randint(100, 999)} {rng.randint(10, 99)} "
                                f"{rng.randint(10, 99)}")],
        "relation": [press("opt", rng.choice(["father", "mother", "brother", "sister", "son"]))],
        "full_name": [text(rng.choice(seeding.NAMES))],
        "chinese_name": [text(rng.choice(seeding.CHINESE))],
        "gender": [press("opt", rng.choice(["male", "female"]))],
        "birth_date": [text(f"{rng.randint(1, 12):02d}.{rng.randint(1945, 1999)}")],
        "ethnicity": [press("opt", rng.choice(["kazakh", "uyghur", "kyrgyz"]))],
        "citizenship": [press("opt", "cn")],
        "occupation": [text(seeding.free_text(rng, rng.randint(15, 60)))],
        "prefecture": [press("opt", rng.choice(["ili", "tacheng", "altay", "urumqi"]))],
        "place": [text(rng.choice(seeding.PLACES))],
        "chinese_id": [text(seeding.chinese_id(rng))],
        "what_happened": [press("tog", "detained", "toggle"), press("tog", "camp", "toggle"),
                          press("done")],
        "happened_date": [text(str(rng.randint(2016, 2020)))],
        "taken_from": [press("opt", rng.choice(["home", "workplace", "police_summons"]))],
        "in_danger": [press("opt", "no")], "more_details": [press("opt", "yes")],
        "place_held": [text(rng.choice(seeding.PLACES))],
        "responsible": [press("tog", "police", "toggle"), press("done")],
        "last_contact": [text(f"{rng.randint(1, 28):02d}.{rng.randint(1, 12):02d}."
                              f"{rng.randint(2016, 2020)}")],
        "steps_taken": [press("tog", "un", "toggle"), press("done")],
        "story": [text(seeding.free_text(rng, rng.randint(200, 900)))],
        "attachments": [press("done")],
    }
    return [text("/start"), press("L", lang), *walk(plan), press("finish"),
            press("submit", None, "final")]


def walk(plan: dict[str, list[Step]]) -> list[Step]:
    """The planned steps in the order the form asks for them, up to the add-person prompt."""
    form = load_form()
    now = datetime.now(UTC)
    state = engine.start(form)
    steps: list[Step] = []
    while True:
        v = engine.view(form, state)
        if v.step == "confirm_id":
            planned = [press("id_yes")]
        elif v.step == "question" and v.question is not None:
            q = v.question
            default = [press("done" if q.type == "attachments" else
                             "unknown" if q.type == "date" else "skip")]
            if q.required and q.type == "single":
                default = [press("opt", q.options[0].code)]
            planned = plan.get(q.id, default)
        else:
            return steps
        for step in planned:
            inp: engine.Input = (engine.Text(step.value) if step.kind == "text" else
                                 engine.Press(state.seq, step.value, step.arg or ""))
            outcome = engine.apply(form, state, inp, now)
            assert outcome.error is None, (v.question, step, outcome.error)
            state = outcome.state
            steps.append(step)


def resume_journey(rng: random.Random) -> list[Step]:
    """A relative with a draft in progress comes back: one message re-shows where they were."""
    return [text(rng.choice(["Сәлем", "Здравствуйте", "hello?"]))]


# ----------------------------------------------------------------------------- measuring


@dataclass(slots=True)
class Pending:
    expect: Expect
    message_id: int | None
    queued: float
    future: asyncio.Future[None]
    first: float | None = None
    done: float | None = None


@dataclass
class Tracker:
    """Listens to every call the bot makes and settles each simulated relative's action."""

    pending: dict[int, Pending] = field(default_factory=dict)
    by_query: dict[str, Pending] = field(default_factory=dict)
    calls: Counter[str] = field(default_factory=Counter)
    counting: bool = False

    def listen(self, method: str, params: Params, status: int, now: float) -> None:
        if self.counting:
            self.calls[method if status == 200 else f"{method} {status}"] += 1
        if method == "answerCallbackQuery":
            p = self.by_query.pop(str(params.get("callback_query_id", "")), None)
            if p is not None and p.first is None:
                p.first = now
            return
        chat_id = as_int(params.get("chat_id"))
        p = self.pending.get(chat_id) if chat_id is not None else None
        if p is None or status != 200:
            return
        if p.first is None and method.startswith("send"):
            p.first = now
        markup = params.get("reply_markup")
        buttons = isinstance(markup, dict) and bool(markup.get("inline_keyboard"))
        done = (
            (p.expect == "step" and method == "sendMessage" and buttons)
            or (p.expect == "final" and method == "sendMessage")
            or (p.expect == "toggle" and buttons
                and method in ("editMessageReplyMarkup", "editMessageText")
                and as_int(params.get("message_id")) == p.message_id)
        )
        if done:
            p.done = now
            if p.first is None:
                p.first = now
            del self.pending[chat_id]  # type: ignore[arg-type]
            if not p.future.done():
                p.future.set_result(None)


def find_button(user: SimUser, action: str, arg: str | None) -> tuple[str, int] | None:
    """The callback data and message of a button on the latest message that has buttons.

    Our bot's form buttons carry "f:<seq>:action[:arg]", the reference bot's "action[:arg]";
    language buttons are "L:<code>" in both.
    """
    want = action if arg is None else f"{action}:{arg}"
    for message in reversed(user.chat.messages):
        if not message.from_bot or message.deleted or not message.inline_keyboard:
            continue
        for row in message.inline_keyboard:
            for b in row:
                data = b.get("callback_data")
                if isinstance(data, str) and _FORM_PREFIX.sub("", data) == want:
                    return data, message.message_id
        return None
    return None


@dataclass
class UserResult:
    first: list[float] = field(default_factory=list)  # ms
    step: list[float] = field(default_factory=list)  # ms
    failure: str | None = None
    stopped: bool = False  # the time window closed before the journey ended


async def act(emulator: BenchEmulator, tracker: Tracker, user: SimUser, step: Step
              ) -> tuple[float, float]:
    """Perform one action and wait for the bot; (first reply, next step) in ms."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[None] = loop.create_future()
    if step.kind == "press":
        found = find_button(user, step.value, step.arg)
        if found is None:
            raise LookupError(f"no button {step.value}:{step.arg}; last: {user.last!r}")
        data, message_id = found
        p = Pending(step.expect, message_id, time.monotonic(), future)
        tracker.pending[user.id] = p
        await user.press_data(data, message_id, wait=False)
        tracker.by_query[next(reversed(emulator.world.queries))] = p
    else:
        p = Pending(step.expect, None, time.monotonic(), future)
        tracker.pending[user.id] = p
        await user.send_text(step.value, wait=False)
    try:
        await asyncio.wait_for(future, STEP_TIMEOUT)
    except TimeoutError:
        seen = "a first reply but not the next step" if p.first else "no reply at all"
        raise TimeoutError(f"{seen} in {STEP_TIMEOUT:g} s; last: {user.last!r}") from None
    finally:
        tracker.pending.pop(user.id, None)
    assert p.first is not None and p.done is not None
    return (p.first - p.queued) * 1000, (p.done - p.queued) * 1000


async def run_user(emulator: BenchEmulator, tracker: Tracker, user: SimUser,
                   steps: Sequence[Step], pace: float | None, delay: float = 0.0,
                   until: float = float("inf"), think: tuple[float, float] | None = None
                   ) -> UserResult:
    """One relative's actions in order; stops early (not a failure) once `until` has passed.

    With `think`, the relative waits uniformly between its two bounds (seconds) after each
    answer of the bot before acting again; otherwise at most `pace` actions a second.
    """
    result = UserResult()
    rng = random.Random(user.id)
    if delay:
        await asyncio.sleep(delay)
    for i, step in enumerate(steps):
        started = time.monotonic()
        if started >= until:
            result.stopped = True
            return result
        try:
            first, done = await act(emulator, tracker, user, step)
        except (LookupError, TimeoutError) as exc:
            result.failure = f"step {i} ({step.kind} {step.value}): {type(exc).__name__} {exc}"
            return result
        result.first.append(first)
        result.step.append(done)
        if think:
            await asyncio.sleep(rng.uniform(*think))
        elif pace:
            await asyncio.sleep(max(0.0, started + 1 / pace - time.monotonic()))
    return result


@dataclass
class Load:
    """Who acts: user ids, their languages and scripts."""

    users: list[tuple[int, str, list[Step]]]

    @classmethod
    def journeys(cls, n: int, seed: int, base: int = JOURNEY_USER_BASE,
                 steps: int | None = None) -> Load:
        rng = random.Random(seed)
        langs = ("kk", "ru", "en")
        users = []
        for k in range(n):
            lang = langs[k % 3]
            users.append((base + k, lang, journey(rng, lang)[:steps]))
        return cls(users)


async def drive(emulator: BenchEmulator, load: Load, concurrency: int, pace: float | None,
                window: float | None = None, think: tuple[float, float] | None = None
                ) -> tuple[list[UserResult], float, Counter[str]]:
    """Run the load with `concurrency` relatives at a time; (results, wall seconds, calls).

    With `window`, no action starts after that many seconds (the ones in flight finish).
    """
    tracker = Tracker(counting=True)
    remove = add_listener(emulator, tracker.listen)
    queue: asyncio.Queue[tuple[int, str, list[Step]]] = asyncio.Queue()
    for item in load.users:
        queue.put_nowait(item)
    results: list[UserResult] = []
    ramp = think[1] if think else (1 / pace) if pace else 0.0

    t0 = time.monotonic()
    until = t0 + window if window else float("inf")

    async def worker(slot: int) -> None:
        delay = ramp * slot / max(1, concurrency)  # spread the first actions over one step
        while not queue.empty() and time.monotonic() < until:
            uid, lang, steps = queue.get_nowait()
            user = emulator.user(uid, language_code=lang, first_name=f"R{uid % 10_000}")
            results.append(await run_user(emulator, tracker, user, steps, pace, delay, until,
                                          think))
            delay = 0.0

    try:
        await asyncio.gather(*(worker(i) for i in range(min(concurrency, len(load.users)))))
    finally:
        remove()
    return results, time.monotonic() - t0, tracker.calls


# ----------------------------------------------------------------------------- one run


async def start_profiler(cfg: RunConfig, pid: int, run_id: int
                         ) -> asyncio.subprocess.Process | None:
    """py-spy (pip install py-spy into .venv) recording the bot: collapsed stacks, then svg."""
    if cfg.profile is None:
        return None
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    cfg.profile.mkdir(parents=True, exist_ok=True)
    out = cfg.profile / f"run{run_id}-{cfg.bot}-{cfg.relatives}-c{cfg.concurrency}.txt"
    proc = await asyncio.create_subprocess_exec(
        spy, "record", "--pid", str(pid), "--rate", "250", "--format", "raw", "--output",
        str(out), "--nonblocking", stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL)
    await asyncio.sleep(0.5)
    return proc



@dataclass
class RunConfig:
    bot: str  # a key of BOTS
    relatives: int  # stored before the start
    concurrency: int
    journeys: int
    pace: float
    window: float | None = None  # seconds; None: every journey to the end
    latency_ms: float = 0.0  # added by the emulator to every Bot API call (network round trip)
    think: tuple[float, float] | None = None  # people's pace: seconds between reply and action
    warmup: int = 3
    log_level: str = "WARNING"  # the bot's BOT_LOG_LEVEL
    profile: Path | None = None  # py-spy the bot during the measured load, into this folder


async def one_run(cfg: RunConfig, seeded: Path, workdir: Path, run_id: int) -> dict[str, Any]:
    """Start the bot on a fresh copy of the seeded data, warm it up, measure one load."""
    data_dir = workdir / f"run{run_id}-{cfg.bot}"
    phases: dict[str, float] = {}
    t = time.monotonic()
    seeding.copy_data_dir(seeded, data_dir)
    phases["copy_s"] = time.monotonic() - t
    emulator = BenchEmulator(latency=cfg.latency_ms / 1000)
    await emulator.start()
    bot = BotProcess(BOTS[cfg.bot], emulator, data_dir, {"BOT_LOG_LEVEL": cfg.log_level})
    try:
        await bot.start()
        ready = await bot.wait_polling()
        # Warm-up (not measured): a few relatives through most of the questionnaire, unpaced.
        warm = Load.journeys(cfg.warmup, seed=run_id + 1000, base=JOURNEY_USER_BASE - 1000,
                             steps=WARMUP_ACTIONS)
        t = time.monotonic()
        warm_results, _, _ = await drive(emulator, warm, cfg.warmup, None)
        phases["warmup_s"] = time.monotonic() - t
        warm_failures = [r.failure for r in warm_results if r.failure]
        load = Load.journeys(cfg.journeys, seed=run_id)
        spy = await start_profiler(cfg, bot.pid, run_id)
        cpu0, self0 = bot.cpu_seconds(), self_cpu_seconds()
        pickle_file = data_dir / "reference_bot.pickle"
        flushed_before = pickle_file.stat().st_mtime if pickle_file.exists() else None
        results, wall, calls = await drive(emulator, load, cfg.concurrency, cfg.pace,
                                           cfg.window, cfg.think)
        bot_cpu, self_cpu = bot.cpu_seconds() - cpu0, self_cpu_seconds() - self0
        if spy is not None:
            spy.send_signal(signal.SIGINT)
            await spy.wait()
        first = [x for r in results for x in r.first]
        step = [x for r in results for x in r.step]
        actions = len(first)
        failures = [r.failure for r in results if r.failure] + warm_failures
        out = {
            **cfg.__dict__,
            "run": run_id,
            "start_to_polling_s": round(ready, 3),
            "actions": actions,
            "wall_s": round(wall, 3),
            "actions_per_s": actions / wall if wall else float("nan"),
            "first_ms": {q: percentile(first, q) for q in (50, 95, 99, 100)},
            "step_ms": {q: percentile(step, q) for q in (50, 95, 99, 100)},
            "bot_cpu_ms_per_action": bot_cpu / actions * 1000 if actions else float("nan"),
            "bot_cpu_util": bot_cpu / wall if wall else float("nan"),
            "bench_cpu_util": self_cpu / wall if wall else float("nan"),
            "peak_rss_mb": bot.peak_rss_mb(),
            "rss_mb": bot.rss_mb(),
            "calls_per_action": {k: round(v / max(actions, 1), 3) for k, v in
                                 sorted(calls.items())},
            "errors_4xx_per_action": sum(v for k, v in calls.items() if " 4" in k)
            / max(actions, 1),
            "completed_journeys": sum(1 for r in results
                                      if r.failure is None and not r.stopped),
            "seconds_since_start": round(time.monotonic() - bot.started_at, 1),
            "persistence_flushed": pickle_file.exists()
            and pickle_file.stat().st_mtime != flushed_before,
            "failures": failures[:5],
            "failure_count": len(failures),
            "phases": phases,
        }
        if failures:
            out["bot_log_tail"] = bot.log_tail()
        return out
    finally:
        t = time.monotonic()
        if cfg.bot == "reference":
            # A graceful stop writes its whole pickle once per changed user, chat and
            # conversation: a minute or more after a run (startup.py times one stop).
            await bot.kill()
        else:
            await bot.stop()
        phases["stop_s"] = time.monotonic() - t
        await emulator.stop()
        shutil.rmtree(data_dir, ignore_errors=True)


# ----------------------------------------------------------------------------- the whole run


def mode(r: dict[str, Any]) -> str:
    how = "whole journeys" if not r.get("window") else f"{r['window']:g} s window"
    if r.get("think"):
        lo, hi = r["think"]
        how += f", people's pace ({lo:g}-{hi:g} s)"
    return how + (f", {r['latency_ms']:g} ms RTT" if r.get("latency_ms") else "")


def summarize(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    groups: dict[tuple[str, int, int, str], list[dict[str, Any]]] = {}
    for r in runs:
        groups.setdefault((r["bot"], r["relatives"], r["concurrency"], mode(r)), []).append(r)
    order = list(BOTS)
    rows = []
    for (bot, relatives, concurrency, how), rs in sorted(
            groups.items(), key=lambda kv: (kv[0][2], kv[0][1], order.index(kv[0][0]))):
        rows.append({
            "bot": bot, "label": LABELS[bot], "relatives": relatives,
            "concurrency": concurrency, "mode": how, "runs": len(rs),
            "latency_ms": rs[0].get("latency_ms", 0.0), "window": rs[0].get("window"),
            "actions": median(r["actions"] for r in rs),
            "actions_per_s": median(r["actions_per_s"] for r in rs),
            "actions_per_s_all": [round(r["actions_per_s"], 1) for r in rs],
            "first_p50_ms": median(r["first_ms"][50] for r in rs),
            "first_p95_ms": median(r["first_ms"][95] for r in rs),
            "first_p99_ms": median(r["first_ms"][99] for r in rs),
            "first_max_ms": median(r["first_ms"][100] for r in rs),
            "step_p50_ms": median(r["step_ms"][50] for r in rs),
            "step_p99_ms": median(r["step_ms"][99] for r in rs),
            "bot_cpu_ms_per_action": median(r["bot_cpu_ms_per_action"] for r in rs),
            "bot_cpu_util": median(r["bot_cpu_util"] for r in rs),
            "bench_cpu_util": median(r["bench_cpu_util"] for r in rs),
            "peak_rss_mb": median(r["peak_rss_mb"] for r in rs),
            "start_to_polling_s": median(r["start_to_polling_s"] for r in rs),
            "calls_per_action": median(sum(v for k, v in r["calls_per_action"].items()
                                           if not k.startswith("getUpdates")) for r in rs),
            "get_updates_per_action": median(r["calls_per_action"].get("getUpdates", 0)
                                             for r in rs),
            "errors_4xx_per_action": median(r["errors_4xx_per_action"] for r in rs),
            "completed_journeys": median(r["completed_journeys"] for r in rs),
            "persistence_flushes": sum(bool(r.get("persistence_flushed")) for r in rs),
            "failures": sum(r["failure_count"] for r in rs),
        })
    return rows


def ratios(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Ours against the reference at the same size, concurrency and round trip.

    Only runs of the same kind (whole journeys or window, pace, round trip) are compared.
    """
    refs = {(r["relatives"], r["concurrency"], r["mode"]): r for r in rows
            if r["bot"] == "reference"}
    out = []
    for r in rows:
        ref = refs.get((r["relatives"], r["concurrency"], r["mode"]))
        if r["bot"] == "reference" or ref is None:
            continue
        out.append({"bot": r["bot"], "label": r["label"], "relatives": r["relatives"],
                    "concurrency": r["concurrency"], "mode": r["mode"],
                    "reference_mode": ref["mode"],
                    "throughput_ratio": r["actions_per_s"] / ref["actions_per_s"],
                    "cpu_per_action_ratio": ref["bot_cpu_ms_per_action"]
                    / r["bot_cpu_ms_per_action"],
                    "p99_ratio": ref["first_p99_ms"] / r["first_p99_ms"],
                    "rss_ratio": ref["peak_rss_mb"] / r["peak_rss_mb"]})
    return out


def targets(rows: list[dict[str, Any]], rat: list[dict[str, Any]], sizes: Sequence[int]
            ) -> list[dict[str, Any]]:
    out = []
    for r in rows:
        if r["bot"] != "reference" and r["concurrency"] == 50:
            load = "" if "people" in r["mode"] else "; offered more than it can serve"
            out.append({"target": f"p99 first reply < 100 ms at 50 concurrent ({r['label']}, "
                                  f"{r['relatives']:,} stored, {r['mode']}{load})",
                        "value": f"{r['first_p99_ms']:,.0f} ms", "met": r["first_p99_ms"] < 100})
    for x in rat:
        if x["relatives"] == 10_000 and "people" not in x["mode"]:
            out.append({"target": f">= 2x the reference's throughput, 10,000 stored, "
                                  f"{x['concurrency']} concurrent ({x['label']}, {x['mode']})",
                        "value": f"{x['throughput_ratio']:.2f}x",
                        "met": x["throughput_ratio"] >= 2})
    lo, hi = min(sizes), max(sizes)
    by = {(r["bot"], r["relatives"], r["concurrency"], r["mode"]): r for r in rows}
    for (bot, relatives, c, how), b in by.items():
        a = by.get((bot, lo, c, how))
        if relatives != hi or a is None or lo == hi:
            continue
        change = b["actions_per_s"] / a["actions_per_s"] - 1
        cpu = b["bot_cpu_ms_per_action"] / a["bot_cpu_ms_per_action"] - 1
        out.append({"target": f"throughput with {hi:,} stored within 10% of {lo:,} "
                              f"({LABELS[bot]}, {c} concurrent, {how})",
                    "value": f"{change:+.1%} (CPU per action {cpu:+.1%})",
                    "met": change >= -0.10})
    return out


def print_report(rows: list[dict[str, Any]], rat: list[dict[str, Any]],
                 tg: list[dict[str, Any]], m: dict[str, Any], pace: float) -> None:
    runs = max((r["runs"] for r in rows), default=0)
    print(f"\nJourneys: 47 actions each; saturating pace: each relative at most {pace:g} "
          f"actions/s, people's pace: a pause after each reply; medians of {runs} runs.\n"
          f"Machine: {machine_line(m)}\n")
    print(table(
        ["bot", "stored", "C", "load", "actions/s", "first reply p50/p95/p99/max ms",
         "next step p50/p99 ms", "bot CPU ms/action", "calls/action", "peak RSS MB",
         "failures"],
        [[r["label"], fmt(r["relatives"]), r["concurrency"], r["mode"],
          fmt(r["actions_per_s"]),
          "/".join(fmt(r[k], 0) for k in ("first_p50_ms", "first_p95_ms", "first_p99_ms",
                                          "first_max_ms")),
          f"{fmt(r['step_p50_ms'], 0)}/{fmt(r['step_p99_ms'], 0)}",
          fmt(r["bot_cpu_ms_per_action"], 2), fmt(r["calls_per_action"], 2),
          fmt(r["peak_rss_mb"], 0), r["failures"]] for r in rows]))
    if rat:
        print("\nOurs against the reference bot, same load, same run (above 1 is better "
              "for ours):\n")
        print(table(["bot", "stored", "C", "load", "throughput", "CPU per action", "p99 first",
                     "peak RSS"],
                    [[x["label"], fmt(x["relatives"]), x["concurrency"], x["mode"],
                      f"{x['throughput_ratio']:.2f}x", f"{x['cpu_per_action_ratio']:.2f}x",
                      f"{x['p99_ratio']:.2f}x", f"{x['rss_ratio']:.2f}x"] for x in rat]))
    if tg:
        print("\nTargets:\n")
        print(table(["target", "value", ""], [[t["target"], t["value"], verdict(t["met"])]
                                              for t in tg]))


def plan(args: argparse.Namespace) -> list[RunConfig]:
    """One repeat of the matrix.

    At the lowest concurrency: N = C relatives complete the whole questionnaire at the
    saturating pace (`--whole-sizes`), and a `--people-window` at people's pace. Time windows
    at the saturating pace: the higher concurrencies at every size (the bot saturated:
    throughput against size), and the runs with a network round trip.
    """
    low = min(args.concurrency)
    window = None if args.quick else args.window
    out: list[RunConfig] = []

    def add(bot: str, size: int, c: int, w: float | None, latency: float = 0.0,
            think: tuple[float, float] | None = None) -> None:
        if bot in args.bots and (bot != "reference" or size in args.reference_sizes):
            out.append(RunConfig(bot, size, c, c if w is None else 20 * c, args.pace, w,
                                 latency, think, warmup=args.warmup))

    for size in args.whole_sizes:
        for bot in BOTS:
            add(bot, size, low, None)
        if args.think:
            for bot in BOTS:
                add(bot, size, low, args.people_window if not args.quick else 3.0,
                    think=(args.think[0], args.think[1]))
    for c in sorted(set(args.concurrency) - {low}):
        for size in args.sizes:
            for bot in BOTS:
                add(bot, size, c, window)
    if not args.quick:
        for latency in args.latency_ms:  # Telegram is not on loopback
            for bot in BOTS:
                add(bot, args.latency_size, low, window, latency)
    return out


async def bench(args: argparse.Namespace) -> dict[str, Any]:
    m = machine()
    runs: list[dict[str, Any]] = []
    seeds: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="bench-journeys-") as tmp:
        work = Path(tmp)
        cache = args.seeded or work / "seeds"
        seeded: dict[tuple[str, int], Path] = {}
        needed = sorted({("reference" if cfg.bot == "reference" else "ours", cfg.relatives)
                         for cfg in plan(args)}, key=lambda k: (k[1], k[0]))
        for kind, size in needed:
            folder, rep = await seeding.ensure_seed(cache, kind, size, size // 10,
                                                    templates=args.templates)
            seeded["reference" if kind == "reference" else "ours", size] = folder
            if rep is not None:
                seeds[f"{kind}-{size}"] = rep.__dict__
                print(f"seeded {size:,} relatives for {kind}: {rep.cases:,} cases, "
                      f"{rep.drafts:,} drafts, {rep.db_mb:.0f} MB, {rep.seconds:.1f} s",
                      flush=True)
        run_id = 0
        for rep_i in range(args.repeats):
            configs = plan(args)
            if rep_i % 2:
                configs.reverse()  # alternate the order, so drifts in load spread evenly
            if args.parallel:  # smoke runs only: every bot at once, figures not comparable
                runs += await asyncio.gather(*(
                    one_run(cfg, seeded[cfg.bot, cfg.relatives], work, run_id + k + 1)
                    for k, cfg in enumerate(configs)))
                run_id += len(configs)
                for r in runs[-len(configs):]:
                    print(f"run {r['run']:2d} {r['bot']:9s}: {r['actions']} actions, "
                          f"{r['actions_per_s']:.1f}/s, failures {r['failure_count']}")
                    for f in r["failures"][:2]:
                        print(f"    failure: {f}", flush=True)
                continue
            for cfg in configs:
                run_id += 1
                cfg.profile, cfg.log_level = args.profile, args.bot_log_level
                r = await one_run(cfg, seeded[cfg.bot, cfg.relatives], work, run_id)
                runs.append(r)
                print(f"run {run_id:2d} {cfg.bot:9s} stored={cfg.relatives:>7,} "
                      f"C={cfg.concurrency:3d} {mode(r):14s}: {r['actions']:5d} actions "
                      f"{r['actions_per_s']:6.1f}/s, first reply p50/p99 "
                      f"{r['first_ms'][50]:5.0f}/{r['first_ms'][99]:6.0f} ms, next step p99 "
                      f"{r['step_ms'][99]:6.0f} ms, bot CPU "
                      f"{r['bot_cpu_ms_per_action']:5.2f} ms/action "
                      f"({r['bot_cpu_util']:.0%}), bench CPU {r['bench_cpu_util']:.0%}, "
                      f"peak RSS {r['peak_rss_mb']:.0f} MB, failures "
                      f"{r['failure_count']}", flush=True)
                for f in r["failures"][:2]:
                    print(f"    failure: {f}", flush=True)
    rows = summarize(runs)
    rat = ratios(rows)
    tg = targets(rows, rat, args.sizes)
    print_report(rows, rat, tg, m, args.pace)
    return {"machine": m, "config": {k: v for k, v in vars(args).items()
                                     if k not in ("output", "profile", "seeded")},
            "seeds": seeds, "summary": rows, "ratios": rat, "targets": tg, "runs": runs}


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tests.bench.journeys",
                                     description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a smoke run of a few seconds")
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000, 10_000, 100_000],
                        help="relatives stored, for the runs at the higher concurrencies")
    parser.add_argument("--whole-sizes", type=int, nargs="*", default=[10_000],
                        help="sizes where every relative completes the whole questionnaire")
    parser.add_argument("--bots", nargs="+", choices=list(BOTS), default=list(BOTS))
    parser.add_argument("--reference-sizes", type=int, nargs="*", default=[10_000])
    parser.add_argument("--concurrency", type=int, nargs="+", default=[50, 200],
                        help="the lowest runs whole journeys, the others a time window")
    parser.add_argument("--warmup", type=int, default=1,
                        help="relatives who go through most of the questionnaire first, unmeasured")
    parser.add_argument("--window", type=float, default=6.0,
                        help="seconds of load for windowed runs")
    parser.add_argument("--latency-ms", type=float, nargs="*", default=[50.0],
                        help="also run ours and the reference with this round trip per call")
    parser.add_argument("--latency-size", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--pace", type=float, default=2.0,
                        help="saturating pace: at most this many actions a second per relative")
    parser.add_argument("--think", type=float, nargs="*", default=[1.0, 5.0],
                        metavar="SECONDS", help="people's pace: a relative waits uniformly "
                        "between these bounds after each reply (none: no such runs)")
    parser.add_argument("--people-window", type=float, default=40.0,
                        help="seconds of load for the runs at people's pace")
    parser.add_argument("--templates", type=int, default=100,
                        help="distinct questionnaire walks the seeded answers are drawn from")
    parser.add_argument("--seeded", type=Path,
                        help="a folder of seeded data to reuse (and fill); default: temporary")
    parser.add_argument("--profile", type=Path,
                        help="record each bot with py-spy during the measured load, into here")
    parser.add_argument("--bot-log-level", default="WARNING", help="BOT_LOG_LEVEL of the bots")
    parser.add_argument("--output", type=Path)
    args = parser.parse_args(argv)
    if args.think and (len(args.think) != 2 or not 0 <= args.think[0] <= args.think[1]):
        parser.error("--think takes two bounds, the lower first")
    args.parallel = False
    if args.quick:  # every bot at once, a few relatives, no repeats: checks that all works
        args.sizes = args.whole_sizes = args.reference_sizes = [200]
        args.templates, args.concurrency, args.repeats, args.pace = 20, [4], 1, 2.5
        args.think = [0.2, 0.5]
        args.parallel = True
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    payload = asyncio.run(bench(args))
    out = args.output or results_path("journeys", args.quick)
    write_json(out, payload)
    print(f"\nwritten {out}")
    return 0 if all(r["failures"] == 0 for r in payload["summary"]) else 1


if __name__ == "__main__":
    sys.exit(main())
