"""Chaos harness: simulated relatives who behave like people, the bot as a subprocess that
can be killed, an error spy, and the figures each run reports.

CI runs reduced versions; `CHAOS_FULL=1` (what `make chaos` sets) runs the full ones. Figures
are printed (run with -s to see them) and, when CHAOS_REPORT names a file, appended to it as
one JSON object per test.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import random
import signal
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from bot.form.answers import Valid, check_typed
from bot.form.model import Question, load_form
from bot.form.validators import chinese_id_check_char
from bot.handlers.relative import THANKS
from bot.i18n import LANGUAGES
from bot.sandbox.emulator import Emulator
from bot.sandbox.world import SentMessage, wait_event
from bot.services.case_numbers import parse_case_number
from tests import journeys
from tests.e2e.conftest import BotRunner, tr

FULL = os.environ.get("CHAOS_FULL") == "1"
ROOT = Path(__file__).resolve().parents[2]
FORM = load_form()
STALE_BUTTON = "This button is from an earlier question."


def scale(ci: int, full: int) -> int:
    """The CI figure, or the full one under CHAOS_FULL=1 (an env var CHAOS_<NAME> wins)."""
    return full if FULL else ci


def report(name: str, figures: dict[str, Any]) -> None:
    """Print a test's figures, and append them to $CHAOS_REPORT if set."""
    line = json.dumps({"test": name, "full": FULL, **figures}, ensure_ascii=False, default=str)
    print(f"\nCHAOS {line}")
    target = os.environ.get("CHAOS_REPORT")
    if target:
        with open(target, "a", encoding="utf-8") as f:
            f.write(line + "\n")


# ----------------------------------------------------------------------------- the bot


class FaultyBotRunner(BotRunner):
    """The in-process bot with the production rate limiter (AIORateLimiter plus retries)."""

    rate_limit = True


class BotProcess:
    """`python -m bot run` against the emulator, killed with SIGKILL and started again."""

    def __init__(self, emulator: Emulator, data_dir: Path, log_path: Path) -> None:
        self.emulator = emulator
        self.data_dir = data_dir
        self.log_path = log_path
        self.proc: asyncio.subprocess.Process | None = None
        self.starts = 0
        self.kills = 0
        self._calls_at_start = 0

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("BOT_")}
        env.update(BOT_TOKEN=self.emulator.token, BOT_API_BASE_URL=self.emulator.base_url,
                   BOT_DATA_DIR=str(self.data_dir), BOT_LOG_LEVEL="INFO",
                   PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1")
        return env

    async def start(self) -> None:
        assert self.proc is None or self.proc.returncode is not None
        self.starts += 1
        self._calls_at_start = len(self.emulator.calls)
        with self.log_path.open("a") as log:
            log.write(f"\n===== start {self.starts} =====\n")
            log.flush()
            # cwd outside the project: no stray .env is read.
            self.proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "bot", "run", env=self.env(), cwd=self.data_dir.parent,
                stdout=log, stderr=asyncio.subprocess.STDOUT)

    def polling(self) -> bool:
        """True once this process has started long polling (deleteWebhook comes first)."""
        return any(c[0] == "deleteWebhook" for c in self.emulator.calls[self._calls_at_start:])

    async def wait_polling(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while not self.polling():
            assert self.proc is not None
            if self.proc.returncode is not None:
                raise AssertionError(f"the bot exited with {self.proc.returncode}; see "
                                     f"{self.log_path}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"the bot did not start polling in {timeout}s")
            await asyncio.sleep(0.05)

    async def kill(self) -> None:
        """SIGKILL: no clean-up of any kind, as when the machine or the OOM killer stops it."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        await self.proc.wait()
        self.kills += 1

    async def stop(self) -> int:
        """SIGTERM: the graceful stop."""
        if self.proc is None or self.proc.returncode is not None:
            return self.proc.returncode if self.proc else 0
        self.proc.send_signal(signal.SIGTERM)
        try:
            return await asyncio.wait_for(self.proc.wait(), 30)
        except TimeoutError:
            self.proc.kill()
            return await self.proc.wait()

    def log_problems(self) -> list[str]:
        """ERROR lines and tracebacks in the bot's log (a killed process leaves neither)."""
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return [ln for ln in text.splitlines()
                if " ERROR " in ln or " CRITICAL " in ln or ln.startswith("Traceback")]


# ----------------------------------------------------------------------------- error spy


class ErrorSpy(logging.Handler):
    """Every ERROR (or worse) record from the bot and the libraries it runs on."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def lines(self) -> list[str]:
        return [f"{r.name}: {r.getMessage()}" for r in self.records]


@pytest.fixture
def error_spy() -> Iterator[ErrorSpy]:
    spy = ErrorSpy()
    root = logging.getLogger()
    root.addHandler(spy)
    try:
        yield spy
    finally:
        root.removeHandler(spy)


@pytest.fixture
async def emulator() -> AsyncIterator[Emulator]:
    emu = Emulator()
    await emu.start()
    try:
        yield emu
    finally:
        await emu.stop()


# ----------------------------------------------------------------------------- relatives

TEXTS = [
    "Гүлжан Тохтасынқызы", "Ерлан Серікұлы", "Әлия Нұрланқызы", "Абдуллаһ Мәмет",
    "Мухтар <b>Ахметов</b> & сыновья", "ئابدۇللا ئەخمەت", "王小明", "Ayşe Yılmaz",
    "Nurlan \"Nuri\" O'Brien", "Марат *жирный* _курсив_ `код`", "Жанар 🙏", "X Æ A-12",
]
DATES = ["1975", "03.1980", "12.03.1968", "2018"]
PHONES = ["+7 701 123 45 67", "8 702 555 12 34", "+996 555 123 456"]


def valid_chinese_id(rng: random.Random) -> str:
    first17 = "654002" + f"19{rng.randint(50, 99)}0{rng.randint(1, 9)}1{rng.randint(0, 9)}" \
        + f"{rng.randint(0, 999):03d}"
    return first17 + chinese_id_check_char(first17)


@dataclass(frozen=True)
class Step:
    """What a relative does at a question: press an option, toggle options, type, skip."""

    action: str  # opt, multi, text, unknown, skip, done
    arg: Any = None


def make_plan(rng: random.Random) -> dict[str, Step]:
    """One answer for every question of the form, drawn at random (people differ)."""
    plan: dict[str, Step] = {}
    for group in FORM.groups:
        for q in group.questions:
            plan[q.id] = _plan_one(rng, q)
    return plan


def _plan_one(rng: random.Random, q: Question) -> Step:
    optional = not q.required and not q.required_when
    if q.must_be is not None:
        return Step("opt", q.must_be)
    if q.type == "single":
        if optional and rng.random() < 0.25:
            return Step("skip")
        return Step("opt", rng.choice(q.options).code)
    if q.type == "multi":
        if optional and rng.random() < 0.5:
            return Step("skip")
        codes = rng.sample([o.code for o in q.options], k=rng.randint(1, 2))
        return Step("multi", frozenset(codes))
    if q.type == "attachments":
        return Step("done")
    if q.type == "date" and optional and rng.random() < 0.35:
        return Step("unknown")  # one "I do not know" button, no Skip
    if optional and q.type != "date" and rng.random() < 0.35:
        return Step("skip")
    if q.type == "date":
        return Step("unknown") if rng.random() < 0.2 else Step("text", rng.choice(DATES))
    if q.type == "phone":
        return Step("text", rng.choice(PHONES))
    if q.type == "chinese_id":
        return Step("text", valid_chinese_id(rng))
    return Step("text", rng.choice(TEXTS)[: q.max_len])


@dataclass
class Screen:
    kind: str  # language, question, confirm_id, add_person, review, menu, done, none
    seq: int = -1
    qid: str = ""
    block: str = ""
    message: SentMessage | None = None
    number: str = ""


@dataclass
class Pending:
    seq: int
    block: str
    qid: str
    value: Any


def _live(message: SentMessage, prefix: str | tuple[str, ...]) -> list[str]:
    return [d for row in message.buttons for _, d in row if d and d.startswith(prefix)]


def _seq(message: SentMessage) -> int:
    seqs = [int(d.split(":")[1]) for d in _live(message, "f:")]
    return max(seqs) if seqs else -1


class Relative:
    """A simulated relative: reads what the bot shows, answers it, and notices silence.

    Like a person, it looks at the latest question on screen (the live buttons with the
    highest step counter), answers that one, and waits for the bot. It records each answer and
    counts it as acknowledged once the bot shows a later step. If the bot stays silent after
    being killed with the update already taken from Telegram, the relative asks again (sends
    /start, or repeats the answer); it never repeats while its update is still queued.
    """

    def __init__(self, emulator: Emulator, user_id: int, seed: int, *,
                 kills: Callable[[], int] = lambda: 0, think: tuple[float, float] = (0.3, 0.6),
                 patience: float = 60.0) -> None:
        self.rng = random.Random(seed)
        self.lang = self.rng.choice(LANGUAGES)
        self.emulator = emulator
        self.world = emulator.world
        self.user = emulator.user(user_id, language_code={"kk": "kk", "ru": "ru"}.get(
            self.lang, "en"))
        self.user.timeout = patience
        self.kills = kills
        self.think = think
        self.patience = patience
        self.plan = make_plan(self.rng)
        self.pending: list[Pending] = []
        self.acknowledged: dict[tuple[str, str], Any] = {}
        self.number: str | None = None
        self.submitted = False
        self.nudge = False
        self.stats: Counter[str] = Counter()
        self.waits: list[float] = []  # seconds from an input to the bot's answer
        self.problems: list[str] = []
        self.started_at = 0.0
        self.finished_at = 0.0
        self._thanks_head = tr(self.lang, THANKS, number="0000-0000").split("\n")[0]

    # -- reading the screen ----------------------------------------------------------------

    def confirmations(self) -> list[str]:
        """Case numbers in confirmation messages, one entry per message (duplicates show)."""
        found = []
        for m in self.user.messages:
            if not m.deleted and m.plain.startswith(self._thanks_head):
                found += [w for w in m.plain.replace("\n", " ").split() if parse_case_number(w)]
        return found

    def screen(self) -> Screen:
        confirmed = self.confirmations()
        if confirmed:
            return Screen("done", number=confirmed[0])
        live = [m for m in self.user.messages if not m.deleted and m.buttons]
        if not live:
            return Screen("none")
        latest = live[-1]
        if _live(latest, "L:"):
            return Screen("language", message=latest)
        questions = [m for m in live if _live(m, "f:")]
        if not questions:
            return Screen("menu" if _live(latest, "m:") else "none", message=latest)
        current = max(questions, key=lambda m: (_seq(m), m.message_id))
        seq = _seq(current)
        actions = {d.split(":")[2] for d in _live(current, "f:")}
        if "submit" in actions:
            return Screen("review", seq, message=current)
        if "finish" in actions:
            return Screen("add_person", seq, message=current)
        if "id_yes" in actions:  # "This ID number says: ... Is this right?"
            q = next(q for g in FORM.groups for q in g.questions if q.type == "chinese_id")
            return Screen("confirm_id", seq, q.id, f"{FORM.repeat_group.id}.0", current)
        for prompt, group, qid in journeys.prompts():  # the question id, from what it shows
            if prompt and prompt in current.plain:
                block = f"{group}.0" if group == FORM.repeat_group.id else group
                kind = "confirm_id" if "id_yes" in actions else "question"
                return Screen(kind, seq, qid, block, current)
        return Screen("none", seq, message=current)

    def signature(self) -> tuple[int, ...]:
        msgs = self.user.messages
        return (len(msgs), sum(len(m.edits) for m in msgs), sum(m.deleted for m in msgs),
                len(self.user.chat.answers))

    def _acknowledge(self, screen: Screen) -> None:
        for p in list(self.pending):
            same_question = screen.kind in ("question", "confirm_id") and \
                (screen.block, screen.qid) == (p.block, p.qid)
            if screen.seq > p.seq and not same_question:
                self.acknowledged[(p.block, p.qid)] = p.value
                self.pending.remove(p)

    # -- acting ----------------------------------------------------------------------------

    async def run(self, until: str | None = None) -> None:
        """Go through the journey to the confirmation (or until the screen is `until`)."""
        self.started_at = time.monotonic()
        if self.screen().kind == "none":
            await self._input(lambda: self.user.send_text("/start", wait=False), ("L:",))
        while True:
            screen = self.screen()
            self._acknowledge(screen)
            if screen.kind == until:
                return
            if screen.kind == "done":
                self.number = screen.number
                self.finished_at = time.monotonic()
                return
            await asyncio.sleep(self.rng.uniform(*self.think))
            await self._act(self.screen())

    async def _act(self, screen: Screen) -> None:
        if screen.kind == "done":
            return
        if self.nudge or screen.kind == "none":
            # No live question (a crash took the buttons away, or left an old step on
            # screen): /start brings the current step back (the language choice first when
            # none was recorded yet).
            self.nudge = False
            self.stats["nudges"] += 1
            await self._input(lambda: self.user.send_text("/start", wait=False),
                              ("L:", "f:", "m:"))
            return
        if screen.kind == "language":
            assert screen.message is not None
            await self._press(screen.message, f"L:{self.lang}", expect=("f:", "m:"))
            return
        if screen.kind == "menu":
            if self.submitted:  # the confirmation is on its way (the outbox sends it)
                await self._wait_for(lambda: self.screen().kind == "done", self.patience,
                                     "confirmation")
                return
            self.problems.append("main menu before submitting: the draft was lost")
            assert screen.message is not None
            await self._press(screen.message, "m:new")
            return
        assert screen.message is not None
        if screen.kind == "review":
            self.submitted = True
            await self._press(screen.message, self._data(screen.message, "submit"), screen.seq)
            return
        if screen.kind == "add_person":
            await self._press(screen.message, self._data(screen.message, "finish"), screen.seq)
            return
        if screen.kind == "confirm_id":
            value = self.plan[screen.qid].arg
            self.pending.append(Pending(screen.seq, screen.block, screen.qid, value))
            await self._press(screen.message, self._data(screen.message, "id_yes"), screen.seq)
            return
        await self._answer(screen)

    async def _answer(self, screen: Screen) -> None:
        assert screen.message is not None
        group = screen.block.split(".")[0]
        q = FORM.question(group, screen.qid)
        step = self.plan[screen.qid]
        m = screen.message
        if step.action == "multi":
            marked = {d.split(":")[3] for row in m.buttons for label, d in row
                      if d and d.startswith("f:") and ":tog:" in d and label.startswith("✅")}
            wanted: frozenset[str] = step.arg
            if marked != wanted:
                code = sorted(marked ^ wanted)[0]
                await self._press(m, self._data(m, "tog", code), screen.seq)
                return
            value = [o.code for o in q.options if o.code in wanted]
            self.pending.append(Pending(screen.seq, screen.block, q.id, value))
            await self._press(m, self._data(m, "done"), screen.seq)
            return
        if step.action == "text":
            if q.type != "chinese_id":  # a typed ID waits for its confirmation first
                checked = check_typed(q, step.arg, datetime.now(UTC).date())
                assert isinstance(checked, Valid), (q.id, step.arg)
                self.pending.append(Pending(screen.seq, screen.block, q.id, checked.value))
            text: str = step.arg
            await self._input(lambda: self.user.send_text(text, wait=False), None, screen.seq)
            return
        value = {"opt": step.arg, "unknown": "unknown", "skip": None, "done": None}[step.action]
        if q.type == "attachments":
            value = None
        self.pending.append(Pending(screen.seq, screen.block, q.id, value))
        await self._press(m, self._data(m, step.action, step.arg if step.action == "opt"
                                        else None), screen.seq)

    @staticmethod
    def _data(message: SentMessage, action: str, arg: str | None = None) -> str:
        for d in _live(message, "f:"):
            parts = d.split(":", 3)
            if parts[2] == action and (arg is None or parts[3:] == [arg]):
                return d
        raise AssertionError(f"no {action}:{arg} button on {message!r}")

    async def _press(self, message: SentMessage, data: str, seq: int = -1,
                     expect: tuple[str, ...] | None = None) -> None:
        box: list[str] = []

        async def press() -> None:
            await self.user.press_data(data, message.message_id, wait=False)
            box.append(next(reversed(self.world.queries)))  # no await since the push

        await self._input(press, expect, seq)
        answer = self.world.queries[box[0]].answer if box else None
        if answer is not None and answer.text == tr(self.lang, STALE_BUTTON) \
                and not message.deleted and _live(message, "f:"):
            # The bot saved this step but died before showing the next one: the old buttons
            # stay live and only say "earlier question". Typing brings the current step back.
            self.stats["stale_buttons"] += 1
            self.nudge = True

    async def _input(self, send: Callable[[], Awaitable[Any]], expect: tuple[str, ...] | None,
                     seq: int = -1) -> None:
        """Send one input and wait until the bot has answered it (or lost it in a crash)."""
        before = self.signature()
        messages_before = len(self.user.messages)
        kills_at_send = self.kills()
        await send()
        update_id = self.world.next_update_id - 1
        self.stats["inputs"] += 1
        sent_at = time.monotonic()
        taken_at_kills: int | None = None

        def answered() -> bool:
            if self.signature() == before:
                return False
            new = [m for m in self.user.messages[messages_before:] if not m.deleted]
            if expect is not None:
                return any(_live(m, expect) for m in new) or self.screen().kind == "done"
            screen = self.screen()
            return (screen.kind == "done" or screen.seq > seq
                    or any(m.buttons for m in new)
                    or any(a.text for a in self.user.chat.answers[before[3]:]))

        while not answered():
            queued = any(u["update_id"] == update_id for u in self.world.updates)
            if not queued and taken_at_kills is None:
                taken_at_kills = self.kills()
            waited = time.monotonic() - sent_at
            if taken_at_kills is not None and self.kills() > taken_at_kills:
                # Taken from Telegram by a process that was then killed: maybe lost.
                self.stats["resends"] += 1
                return
            if waited > self.patience:
                self.problems.append(
                    f"no answer for {waited:.0f}s to update {update_id} at step {seq} (kills "
                    f"at send {kills_at_send}, now {self.kills()}; queued: {queued}); "
                    f"last: {self.user.messages[-2:]}")
                self.stats["stuck"] += 1
                return
            await wait_event(self.user.chat.changed, 0.2)
        self.waits.append(time.monotonic() - sent_at)
        # Let the rest of the bot's answer arrive (the old question's buttons go, etc.).
        quiet_since = time.monotonic()
        last = self.signature()
        while time.monotonic() - quiet_since < 0.15:
            await wait_event(self.user.chat.changed, 0.05)
            if self.signature() != last:
                last, quiet_since = self.signature(), time.monotonic()

    async def _wait_for(self, ready: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not ready():
            if time.monotonic() > deadline:
                self.problems.append(f"no {what} within {timeout:.0f}s")
                self.stats["stuck"] += 1
                return
            await wait_event(self.user.chat.changed, 0.5)


# ----------------------------------------------------------------------------- checks


@dataclass
class Tally:
    """What a set of relatives went through."""

    relatives: int = 0
    finished: int = 0
    stats: Counter[str] = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)
    confirmations: int = 0
    duplicate_confirmations: int = 0
    slowest_answer: float = 0.0

    @classmethod
    def of(cls, people: list[Relative]) -> Tally:
        t = cls(relatives=len(people))
        for r in people:
            t.finished += r.number is not None
            t.stats.update(r.stats)
            t.problems += [f"user {r.user.id}: {p}" for p in r.problems]
            numbers = r.confirmations()
            t.confirmations += len(numbers)
            t.duplicate_confirmations += len(numbers) - len(set(numbers))
            t.slowest_answer = max([t.slowest_answer, *r.waits])
        return t


def stored_answers(case_data: dict[str, Any] | None, draft_answers: dict[str, Any] | None
                   ) -> dict[str, dict[str, Any]]:
    """Answers by block, from the submitted case if there is one, else from the draft."""
    if case_data is not None:
        out = {"consent": case_data.get("consent", {}), "reporter": case_data.get("reporter", {})}
        for i, person in enumerate(case_data.get("persons", [])):
            out[f"{FORM.repeat_group.id}.{i}"] = person
        return out
    return draft_answers or {}


def missing_acknowledged(user_id: int, acknowledged: dict[tuple[str, str], Any],
                         stored: dict[str, dict[str, Any]]) -> list[str]:
    """Acknowledged answers that are not stored as given."""
    wrong = []
    for (block, qid), value in acknowledged.items():
        got = stored.get(block, {}).get(qid)
        if q_is_attachments(block, qid):
            continue
        if got != value:
            wrong.append(f"user {user_id} {block}.{qid}: acknowledged {value!r}, stored {got!r}")
    return wrong


def q_is_attachments(block: str, qid: str) -> bool:
    return FORM.question(block.split(".")[0], qid).type == "attachments"
