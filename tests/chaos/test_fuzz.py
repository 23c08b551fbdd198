"""Hostile input at volume: generated updates through the real handlers, over real HTTP.

Hypothesis draws batches of updates: text in every script, control and zero-width characters,
4,096-character texts, HTML and Markdown look-alikes, commands with odd arguments, every kind
of message (photos, documents, voice, stickers, locations, venues, contacts, polls, dice,
games, stories, invoices, albums, forwards, replies), edits, presses of real and forged
buttons (any data up to 64 bytes, on any message), and updates from groups and channels.
The updates of a batch go in at once, each from a different person, and after each batch:

- no unhandled exception (the error handler's report and every ERROR log record),
- no call that Telegram would refuse (4xx answers from the emulator, except the refusals the
  bot expects and handles, such as "message is not modified"),
- every private-chat input answered (the bot did something in that chat).

CI draws a few hundred updates; CHAOS_FULL=1 draws at least 10,000.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from bot.errors import ErrorReport
from bot.sandbox.emulator import Emulator
from bot.sandbox.simusers import SimChat, SimUser
from bot.sandbox.world import JSON, wait_event
from bot.telegram.polling import ReadingBot
from tests.chaos.conftest import ErrorSpy, report, scale
from tests.e2e.conftest import BotRunner

pytestmark = pytest.mark.chaos

UPDATES = scale(300, 10_000)
BATCH = scale(10, 20)
POOL = 120  # people writing to the bot; their chats keep their state across batches
EXPECTED_REFUSALS = (  # what the bot asks for knowing it may be refused, and handles
    "message is not modified",
    "message to edit not found",
    "message can't be edited",
    "message to delete not found",
    "message can't be deleted",
    "there is no text in the message to edit",
)

# Unhandled exceptions this test found in handlers owned by others, reported to their owners
# (see the chaos report). Counted and shown, not failed on; remove an entry once it is fixed.
# Key: (handler, exception class, file).
# (handler, exception, file) -> why it is tolerated. Empty: every unhandled exception fails.
KNOWN_BUGS: dict[tuple[str, str, str], str] = {}

# ----------------------------------------------------------------------------- strategies

ZERO_WIDTH = ["\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u202e", "\u202d", "\u00ad",
              "\u180e", "\u2066", "\u2069"]
CONTROL = [chr(c) for c in range(32)] + ["\x7f", "\x85", "\u2028", "\u2029", "\ufffd"]
MARKUP = ["<b>", "</b>", "<i>x</i>", '<a href="tg://user?id=1">', "</a>", "&amp;", "&lt;",
          "&#0;", "&#x110000;", "&", "<", ">", "<tg-spoiler>", "<script>alert(1)</script>",
          '<pre><code class="language-x">', "<blockquote expandable>", "*bold*", "_it_",
          "__u__", "~s~", "||spoiler||", "`code`", "```py\nx\n```", "[a](http://x)", "\\",
          "%s", "%(number)s", "{0}", "${x}", "\r\n", "\t"]
SCRIPTS = ["Қазақстан", "Гүлжан Тохтасынқызы", "Москва", "ئابدۇللا ئەخمەت", "王小明", "东突厥斯坦",
           "こんにちは", "안녕하세요", "नमस्ते", "สวัสดี", "שלום", "مرحبا", "Ἀθῆναι",
           "👨‍👩‍👧‍👦", "🏳️‍🌈", "🇰🇿", "e\u0301\u0301\u0301", "Z̷̢̛̛a̵l̸g̶o̷", "ǅ", "ß", "İı",
           "\U0001f9d1\U0001f3fd\u200d\U0001f9af", "𝕏𝔸𝕄", "ꙮ", "𒀀"]
VALID = ["1975", "03.2018", "12.03.2018", "31.02.1975", "2099", "0", "+7 701 123 45 67",
         "87011234567", "654002197503120020", "65400219750312002X", "654002197513320020",
         "Алматы", "yes", "no", "skip", "unknown", "Unknown", "-", "..."]
COMMANDS = ["start", "new", "status", "help", "cancel", "delete", "mydata", "language",
            "stop_updates", "start_updates", "stats", "export", "case", "staff", "broadcast",
            "START", "Start", "start@sandbox_bot", "start@other_bot", "new@sandbox_bot",
            "x" * 40, "a_b_c"]

pieces = st.one_of(st.text(min_size=1, max_size=40),
                   st.sampled_from(ZERO_WIDTH + CONTROL + MARKUP + SCRIPTS + VALID))
composed = st.lists(pieces, min_size=1, max_size=8).map("".join)
long_text = st.builds(lambda p, n: (p * (n // max(len(p), 1) + 1))[:n], composed,
                      st.sampled_from([4096, 4095, 4000, 2001, 1025, 301, 201]))
command = st.builds(lambda name, sep, args: f"/{name}{sep}{args}"[:4096],
                    st.sampled_from(COMMANDS), st.sampled_from(["", " ", "  ", "\n"]),
                    st.one_of(st.just(""), composed, long_text))
text = st.one_of(composed, composed, st.sampled_from(VALID), long_text, command)
caption = st.one_of(st.none(), composed, long_text.map(lambda t: t[:1024]))


def _data_64(data: str) -> str:
    """Callback data as a client can send it: 1 to 64 bytes."""
    raw = data.encode()[:64]
    return (raw.decode(errors="ignore") or "x")


callback_data = st.one_of(
    st.builds(lambda seq, act, arg: f"f:{seq}:{act}:{arg}",
              st.one_of(st.integers(-5, 10**6).map(str),
                        st.sampled_from(["", "x", "1.5", "²", "٣", "-0", "9" * 30])),
              st.sampled_from(["opt", "tog", "done", "skip", "back", "keep", "unknown", "id_yes",
                               "id_no", "add", "finish", "submit", "edit", "editmenu", "rmmenu",
                               "remove_person", "review", "zzz", ""]),
              st.one_of(st.text(max_size=20), st.sampled_from(
                  ["person.0", "person.0:full_name", "person.9:x", "reporter:reporter_name",
                   "consent:consent_store", "agree", "decline", "ili", "person.-1"]))),
    st.sampled_from(["L:kk", "L:ru", "L:en", "L:xx", "L:", "m:new", "m:status", "m:lang",
                     "m:zz", "x:yes", "x:no", "del:yes", "del:no", "cc:1:5", "cc:0:0",
                     "cc:-5:99999999", "cc:a:b", "cc:1", "f:", "f", ":", "::::"]),
    st.text(min_size=1, max_size=64),
).map(_data_64)


@dataclass(frozen=True)
class Spec:
    """One update to send; realised against the chat as it is when the batch runs."""

    kind: str
    user: int
    text: str = ""
    data: str = ""
    target: str = ""
    number: int = 0
    extra: str | None = None


PRIVATE_KINDS = ["text", "text", "text", "text", "press", "press", "press", "photo",
                 "document", "voice", "audio", "video", "video_note", "animation", "sticker",
                 "location", "venue", "contact", "poll", "dice", "game", "story", "invoice",
                 "album", "edit", "reply", "forward"]
OTHER_KINDS = ["group_text", "group_command", "group_photo", "group_join", "channel_post",
               "edited_channel_post", "my_chat_member"]

spec = st.builds(
    Spec,
    kind=st.one_of(st.sampled_from(PRIVATE_KINDS), st.sampled_from(PRIVATE_KINDS),
                   st.sampled_from(PRIVATE_KINDS), st.sampled_from(OTHER_KINDS)),
    user=st.integers(0, POOL - 1),
    text=text,
    data=callback_data,
    target=st.sampled_from(["live", "live", "live", "bot", "user", "missing"]),
    number=st.integers(0, 100_000),
    extra=caption,
)
batch = st.lists(spec, min_size=BATCH, max_size=BATCH, unique_by=lambda s: s.user)

# ----------------------------------------------------------------------------- the harness

LANGUAGE_CODES = ["kk", "ru", "en", None, "zh-hans", "uk", "tr", "ar", "xx-YY"]


@dataclass
class Fuzz:
    emulator: Emulator
    bot: BotRunner
    group: SimChat
    refusals: list[tuple[str, int, str]] = field(default_factory=list)
    kinds: Counter[str] = field(default_factory=Counter)
    expected_refusals: Counter[str] = field(default_factory=Counter)
    updates: int = 0
    batches: int = 0
    failures: list[str] = field(default_factory=list)
    unanswered: int = 0
    rejected: int = 0
    exceptions: int = 0
    exception_kinds: Counter[tuple[str, str, str, str]] = field(default_factory=Counter)
    known: Counter[str] = field(default_factory=Counter)

    def person(self, index: int) -> SimUser:
        return self.emulator.user(50_000 + index, first_name=f"P{index}",
                                  language_code=LANGUAGE_CODES[index % len(LANGUAGE_CODES)])

    async def send(self, s: Spec) -> bool:
        """Send one update; True if it is a private-chat input the bot must answer."""
        user = self.person(s.user)
        self.kinds[s.kind] += 1
        self.updates += 1
        own_texts = [m for m in user.all_messages if not m.from_bot and m.kind == "text"
                     and not m.deleted]
        bot_msgs = [m for m in user.messages if not m.deleted]
        if s.kind == "text":
            await user.send_text(s.text, wait=False)
        elif s.kind == "press":
            live = [m for m in bot_msgs if m.buttons]
            if s.target == "live" and live:
                m = live[-1 - s.number % min(len(live), 3)]
                choices = [d for row in m.buttons for _, d in row if d]
                await user.press_data(choices[s.number % len(choices)], m.message_id, wait=False)
            else:
                ids = {"bot": [m.message_id for m in bot_msgs], "user": [
                    m.message_id for m in user.all_messages if not m.from_bot]}.get(s.target)
                message_id = ids[s.number % len(ids)] if ids else 10**6
                await user.press_data(s.data, message_id, wait=False)
        elif s.kind == "photo":
            await user.send_photo(caption=s.extra, wait=False)
        elif s.kind == "document":
            await user.send_document(file_name=(s.text[:200] or "f") + ".pdf",
                                     mime_type=["application/pdf", "", "x/y", "image/jpeg"][
                                         s.number % 4], caption=s.extra, wait=False)
        elif s.kind in ("voice", "audio", "video", "video_note"):
            send = getattr(user, f"send_{s.kind}")
            await send(duration=s.number, wait=False)
        elif s.kind == "animation":
            await user.send_animation(caption=s.extra, wait=False)
        elif s.kind == "sticker":
            await user.send_sticker(wait=False)
        elif s.kind == "location":
            await user.send_location(-90 + s.number % 180, -180 + s.number % 360, wait=False)
        elif s.kind == "contact":
            await user.send_contact(phone=s.text[:64] or "+1", first_name=s.text[:64] or "c",
                                    own=s.number % 2 == 0, wait=False)
        elif s.kind == "poll":
            await user.send_poll(s.text[:300] or "?", [s.text[:100] or "a", "b"], wait=False)
        elif s.kind == "dice":
            await user.send_dice(["🎲", "🎯", "🏀", "⚽", "🎳", "🎰"][s.number % 6],
                                 1 + s.number % 6, wait=False)
        elif s.kind == "album":
            await user.send_media_group([b"\xff\xd8a", ("document", b"%PDF-1"), b"\xff\xd8b"][
                : 2 + s.number % 2], caption=s.extra, wait=False)
        elif s.kind == "edit" and own_texts:
            await user.edit_text(own_texts[-1].message_id, s.text or "x", wait=False)
        elif s.kind == "reply" and bot_msgs:
            await user.send_text(s.text, reply_to=bot_msgs[-1].message_id, wait=False)
        elif s.kind in ("venue", "game", "story", "invoice", "forward", "edit", "reply"):
            await user._send(s.kind if s.kind not in ("edit", "reply", "forward") else "text",
                             self.raw_fields(s, user), False, None, text=s.text, plain=s.text)
        else:
            await self.send_other(s, user)
            return False
        return True

    def raw_fields(self, s: Spec, user: SimUser) -> JSON:
        place = {"latitude": 43.2, "longitude": 76.9}
        photo = [{"file_id": "AgAD", "file_unique_id": "u1", "width": 90, "height": 90}]
        return {
            "venue": {"venue": {"location": place, "title": s.text[:100] or "v",
                                "address": s.text[:100] or "a"}, "location": place},
            "game": {"game": {"title": s.text[:50] or "g", "description": "d", "photo": photo}},
            "story": {"story": {"chat": user.chat.to_json(), "id": s.number}},
            "invoice": {"invoice": {"title": "t", "description": "d", "start_parameter": "s",
                                    "currency": "KZT", "total_amount": s.number}},
        }.get(s.kind, {"text": s.text or "x", "forward_origin": {
            "type": "user", "sender_user": {"id": 777, "is_bot": False, "first_name": "F"},
            "date": 0}})

    async def send_other(self, s: Spec, user: SimUser) -> None:
        in_group = user.in_chat(self.group)
        now = int(time.time())
        channel = {"id": -1001234567890, "type": "channel", "title": s.text[:100] or "c"}
        if s.kind == "group_text":
            await in_group.send_text(s.text, wait=False)
        elif s.kind == "group_command":
            await in_group.send_text(f"/start@sandbox_bot {s.text}"[:4096], wait=False)
        elif s.kind == "group_photo":
            await in_group.send_photo(caption=s.extra, wait=False)
        elif s.kind == "group_join":
            await in_group.send_raw({"message": {
                "message_id": 10**6 + s.number, "date": now, "chat": self.group.state.to_json(),
                "from": user.to_json(), "new_chat_members": [user.to_json()]}}, wait=False)
        elif s.kind in ("channel_post", "edited_channel_post"):
            post: JSON = {"message_id": 1 + s.number, "date": now, "chat": channel,
                          "sender_chat": channel, "text": s.text or "x"}
            if s.kind == "edited_channel_post":
                post["edit_date"] = now
            await user.send_raw({s.kind: post}, wait=False)
        else:
            bot_user = self.emulator.world.bot_user
            await user.send_raw({"my_chat_member": {
                "chat": channel if s.number % 2 else self.group.state.to_json(),
                "from": user.to_json(), "date": now,
                "old_chat_member": {"user": bot_user, "status": "left"},
                "new_chat_member": {"user": bot_user, "status": ["member", "left",
                                                                 "kicked"][s.number % 3],
                                    "until_date": 0}}}, wait=False)

    async def run(self, specs: list[Spec], spy: ErrorSpy) -> None:
        world = self.emulator.world
        refusals_before = len(self.refusals)
        errors_before = len(spy.records)
        counts_before = dict(self.error_report().counts)
        answered_before: dict[int, int] = {}
        sent: dict[int, Spec] = {}
        for s in specs:
            user = self.person(s.user)
            reactions = user.chat.reactions
            if await self.send(s):
                answered_before[user.id] = reactions
                sent[user.id] = s
        self.batches += 1
        deadline = time.monotonic() + 15
        waiting = dict(answered_before)
        while waiting and time.monotonic() < deadline:
            waiting = {u: r for u, r in waiting.items() if world.chats[u].reactions <= r}
            if waiting:
                await wait_event(world.changed, 0.2)
        problems = []
        try:
            await self.emulator.wait_idle(quiet=0.15, timeout=15)
        except TimeoutError as exc:
            problems.append(str(exc))
        if waiting:
            problems += [f"unanswered private input: {sent[u]!r}"[:300] for u in sorted(waiting)]
            self.unanswered += len(waiting)
        rejected = [r for r in self.refusals[refusals_before:]
                    if not any(e in r[2] for e in EXPECTED_REFUSALS)]
        for r in self.refusals[refusals_before:]:
            if r not in rejected:
                self.expected_refusals[r[2][:60]] += 1
        if rejected:
            problems.append(f"calls Telegram refuses: {rejected[:5]}")
            self.rejected += len(rejected)
        errors = [ln for ln in spy.lines()[errors_before:] if not ln.startswith("bot.errors:")]
        if errors:
            problems.append(f"errors logged: {errors[:5]}")
            self.exceptions += len(errors)
        report_now = self.error_report().counts
        for key, n in report_now.items():
            new = n - counts_before.get(key, 0)
            if new:
                self.exceptions += new
                self.exception_kinds[key] += new
                known = KNOWN_BUGS.get((key[1], key[2], key[3].split(":")[0]))
                if known is None:
                    problems.append(f"unhandled {key[2]} in {key[1]} at {key[3]} for {key[0]}")
                else:
                    self.known[known] += new
        if self.emulator.internal_errors:
            problems.append(f"emulator failures: {self.emulator.internal_errors[:3]}")
            self.emulator.internal_errors.clear()
        self.failures += problems

    def error_report(self) -> ErrorReport:
        found: ErrorReport = self.bot.app.bot_data.errors
        return found


def _record_refusals(emulator: Emulator, fuzz_refusals: list[tuple[str, int, str]]) -> None:
    """Keep Telegram's description of every 4xx answer (emulator.calls has the status only)."""
    answer = emulator._answer

    async def answer_and_note(method: str, params: dict[str, Any]) -> tuple[int, JSON]:
        status, body = await answer(method, params)
        if 400 <= status < 500 and method != "getUpdates":
            fuzz_refusals.append((method, status, str(body.get("description", ""))))
        return status, body

    emulator._answer = answer_and_note  # type: ignore[method-assign]


@pytest.fixture
def fuzz(tmp_path: Path) -> Iterator[tuple[Fuzz, asyncio.AbstractEventLoop]]:
    loop = asyncio.new_event_loop()

    async def start() -> Fuzz:
        emulator = Emulator()
        await emulator.start()
        bot = BotRunner(emulator, tmp_path / "data")
        await bot.start()
        f = Fuzz(emulator, bot, emulator.group(-100777, "Family chat"))
        _record_refusals(emulator, f.refusals)
        return f

    f = loop.run_until_complete(start())
    try:
        yield f, loop
    finally:
        async def stop() -> None:
            await f.bot.stop()
            await f.emulator.stop()

        loop.run_until_complete(stop())
        loop.close()


@pytest.mark.timeout(7200 if UPDATES > 1000 else 300)
def test_hostile_updates(fuzz: tuple[Fuzz, asyncio.AbstractEventLoop],
                         error_spy: ErrorSpy) -> None:
    f, loop = fuzz
    started = time.monotonic()
    logging.getLogger("bot.services.outbox").setLevel(logging.INFO)
    logging.getLogger("bot.telegram.retries").setLevel(logging.INFO)

    # No shrinking: the bot keeps state across batches, so a smaller batch is not the same
    # experiment; the failing batch is printed whole instead.
    @settings(max_examples=-(-UPDATES // BATCH), deadline=None, database=None,
              suppress_health_check=list(HealthCheck), print_blob=True,
              phases=(Phase.explicit, Phase.generate))
    @given(batch)
    def one_batch(specs: list[Spec]) -> None:
        loop.run_until_complete(f.run(specs, error_spy))

    try:
        one_batch()
    finally:
        report("fuzz", {
            "updates": f.updates, "batches": f.batches, "seconds": round(
                time.monotonic() - started), "unhandled_exceptions": f.exceptions,
            "exception_kinds": {" | ".join(k): n for k, n in f.exception_kinds.items()},
            "known_bugs_hit": dict(f.known),
            "refused_by_telegram": f.rejected, "unanswered_private_inputs": f.unanswered,
            "expected_refusals": dict(f.expected_refusals), "by_kind": dict(f.kinds),
            "failures": sorted(set(f.failures))[:20]})
    assert f.updates >= UPDATES
    assert f.failures == []


async def test_an_unreadable_update_does_not_stall_the_bot(
        emulator: Emulator, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """python-telegram-bot fails a whole getUpdates batch it cannot parse, and would ask for the
    same batch forever; the bot skips the unreadable update (logged without content) instead."""
    bot = BotRunner(emulator, tmp_path / "data")
    await bot.start()
    skipped = ReadingBot.skipped
    try:
        odd = emulator.user(59_001)
        with caplog.at_level(logging.INFO):
            await odd.send_raw({"my_chat_member": {
                "chat": odd.chat.to_json(), "from": odd.to_json(), "date": int(time.time()),
                "old_chat_member": {"user": emulator.world.bot_user, "status": "member"},
                # An administrator without the rights fields the library requires.
                "new_chat_member": {"user": emulator.world.bot_user, "status": "administrator",
                                    "custom_title": "Секрет Гүлжан"}}},
                wait=False)
            relative = emulator.user(59_002)
            await relative.send_text("/start", timeout=5)
            assert "Choose your language" in relative.last.plain
            await relative.press("English")  # and the next one, and so on
            assert relative.last.buttons
        assert ReadingBot.skipped == skipped + 1
        assert not emulator.world.undelivered()
        lines = [r.getMessage() for r in caplog.records if r.name == "bot.telegram.polling"]
        assert len(lines) == 1 and "(my_chat_member)" in lines[0], lines
        everything = "\n".join(r.getMessage() for r in caplog.records)
        assert "Секрет" not in everything and str(odd.id) not in everything
    finally:
        await bot.stop()
