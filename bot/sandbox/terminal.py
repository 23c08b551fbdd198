"""Chat with the bot in a terminal through the sandbox, as a relative would in Telegram.

Bot messages are printed as plain text (bold as *text*), inline buttons as numbered choices;
typing a number presses that button of the latest keyboard.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from bot.sandbox.emulator import Emulator
from bot.sandbox.htmlcheck import Entity
from bot.sandbox.simusers import SimChat, SimUser
from bot.sandbox.world import SentMessage

HELP = (
    "You are chatting with the bot. Type text to send it, a button's number to press it\n"
    "('5 sends the text 5), /photo /doc /voice /video /location /sticker to send those,\n"
    "/quit (or Ctrl-D) to leave."
)
ROLES_HELP = (
    "Several people share this sandbox: /as relative, /as staff, /as admin switches who you\n"
    "are (each has a private chat with the bot). Lines starting with /group go to the staff\n"
    "group as the current person (\"/group /case 1234-5678\"); what the bot posts in the\n"
    "group is printed with [staff group]. /who tells who you are."
)


@dataclass(frozen=True, slots=True)
class Cast:
    """The people of a sandbox with roles: one per role, and the staff group."""

    users: dict[str, SimUser]
    group: SimChat | None
_MARKS = {"bold": "*", "italic": "_", "code": "`", "pre": "```", "strikethrough": "~"}
_KIND_LABELS = {
    "photo": "[photo]",
    "document": "[document]",
    "voice": "[voice message]",
    "video": "[video]",
    "video_note": "[video note]",
    "audio": "[audio]",
}


def render(text: str, entities: list[Entity]) -> str:
    """Plain text with light markup for the terminal: *bold*, _italic_, links in brackets."""
    opening: dict[int, list[str]] = {}
    closing: dict[int, list[str]] = {}
    for entity in entities:
        end = entity.offset + entity.length
        if entity.type == "text_link" and entity.url:
            closing.setdefault(end, []).append(f" ({entity.url})")
        mark = _MARKS.get(entity.type)
        if mark:
            opening.setdefault(entity.offset, []).append(mark)
            closing.setdefault(end, []).insert(0, mark)
    pieces: list[str] = []
    for index in range(len(text) + 1):
        pieces.extend(closing.get(index, []))
        pieces.extend(opening.get(index, []))
        if index < len(text):
            pieces.append(text[index])
    return "".join(pieces)


def describe(message: SentMessage) -> str:
    """How one bot message looks in the terminal, buttons numbered from 1."""
    lines = []
    label = _KIND_LABELS.get(message.kind)
    body = render(message.plain, message.entities)
    if label:
        body = f"{label} {body}".rstrip()
    lines.append(body)
    number = 0
    for row in message.inline_keyboard:
        cells = []
        for button in row:
            number += 1
            link = button.get("url")
            suffix = f" -> {link}" if isinstance(link, str) else ""
            cells.append(f"[{number}] {button.get('text', '')}{suffix}")
        lines.append("  ".join(cells))
    return "\n".join(lines)


class _Screen:
    """Prints what changed in the chat since the last look: new, edited, deleted messages."""

    def __init__(self, user: SimUser, label: str = "bot") -> None:
        self.user = user
        self.label = label
        self.seen: dict[int, tuple[int, bool]] = {}
        self.answers_seen = 0
        self.keyboard_shown: list[list[str]] | None = None

    def refresh(self) -> None:
        for message in self.user.messages:
            state = (len(message.edits), message.deleted)
            before = self.seen.get(message.message_id)
            if before == state:
                continue
            self.seen[message.message_id] = state
            if message.deleted:
                if before is not None:
                    _say(f"  (the bot deleted message #{message.message_id})")
                continue
            prefix = f"{self.label} (edited)" if before is not None else self.label
            _say(f"\n{prefix}:\n{_indent(describe(message))}")
        for answer in self.user.answers[self.answers_seen :]:
            if answer.text:
                _say(f"  ({'alert' if answer.show_alert else 'notice'}: {answer.text})")
        self.answers_seen = len(self.user.answers)
        keyboard = self.user.reply_keyboard
        if keyboard != self.keyboard_shown:
            self.keyboard_shown = keyboard
            if keyboard:
                rows = ["  ".join(f"[{label}]" for label in row) for row in keyboard]
                _say("keyboard (type a label to send it):\n" + _indent("\n".join(rows)))


async def chat_in_terminal(emulator: Emulator, user_id: int = 1, language_code: str = "ru",
                           *, cast: Cast | None = None, role: str = "relative") -> None:
    """Reads lines from stdin and plays them as a Telegram user until /quit or end of input.

    With a `cast`, `role` says who types first, /as switches, /group writes in the staff
    group, and every chat (the private ones and the group) is printed as it changes.
    """
    if cast is None:
        cast = Cast({role: emulator.user(user_id, first_name="Sandbox",
                                         language_code=language_code)}, None)
    user = cast.users[role]
    screens = [_Screen(u, "bot" if r == role else f"bot -> {r}") for r, u in cast.users.items()]
    group_user = cast.users[role].in_chat(cast.group) if cast.group is not None else None
    if group_user is not None:
        screens.append(_Screen(group_user, "[staff group] bot"))
    _say(HELP)
    if len(cast.users) > 1:
        _say(ROLES_HELP + f"\nYou are the {role} now.")
    watcher = asyncio.create_task(_watch(*screens))
    loop = asyncio.get_running_loop()
    try:
        while True:
            try:
                line = await loop.run_in_executor(None, _read_line)
            except (EOFError, KeyboardInterrupt):
                break
            if line is None:
                continue
            text = line.strip()
            if text in ("/quit", "/exit"):
                break
            if text.startswith("/as ") and text[4:].strip() in cast.users:
                role = text[4:].strip()
                user = cast.users[role]
                for screen in screens:
                    if screen.user in cast.users.values():
                        screen.label = "bot" if screen.user is user else (
                            "bot -> " + next(r for r, u in cast.users.items()
                                             if u is screen.user))
                _say(f"You are the {role} now (user {user.id}).")
                continue
            if text == "/who":
                _say(f"You are the {role} (user {user.id}).")
                continue
            if text.startswith("/group ") and cast.group is not None:
                await _act(user.in_chat(cast.group), text[7:].strip())
            elif text:
                await _act(user, text)
            for screen in screens:
                screen.refresh()
    finally:
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher
    _say("bye")


def _read_line() -> str | None:
    try:
        return input("> ")
    except UnicodeDecodeError:
        return None


async def _act(user: SimUser, text: str) -> None:
    """One line of input as a user action; any failure is reported, never raised."""
    sends: dict[str, Callable[[], Awaitable[object]]] = {
        "/photo": user.send_photo,
        "/doc": user.send_document,
        "/voice": user.send_voice,
        "/video": user.send_video,
        "/location": user.send_location,
        "/sticker": user.send_sticker,
    }
    try:
        if text.startswith("'") and len(text) > 1:
            await user.send_text(text[1:])
        elif text in sends:
            await sends[text]()
        elif not (text.isdigit() and await _press_number(user, int(text))):
            await user.send_text(text)
    except TimeoutError:
        _say("  (no answer from the bot yet)")
    except AssertionError as error:
        _say(f"  ({error})")
    except Exception as error:  # the terminal must survive anything the bot or user does
        _say(f"  (failed: {type(error).__name__}: {error})")


async def _press_number(user: SimUser, number: int) -> bool:
    """Presses button `number` of the latest keyboard; False if there is no such button."""
    keyboards = [m for m in user.messages if m.inline_keyboard and not m.deleted]
    buttons = [b for row in keyboards[-1].inline_keyboard for b in row] if keyboards else []
    if not 1 <= number <= len(buttons):
        return False
    button = buttons[number - 1]
    data = button.get("callback_data")
    if isinstance(data, str):
        await user.press_data(data, keyboards[-1].message_id)
    else:
        _say(f"  (that button opens {button.get('url') or 'something outside the chat'})")
    return True


async def _watch(*screens: _Screen) -> None:
    """Shows messages the bot sends on its own (reminders, late answers) between inputs."""
    while True:
        await asyncio.sleep(0.5)
        try:
            for screen in screens:
                screen.refresh()
        except Exception as error:  # printing must never stop the chat
            _say(f"  (display failed: {type(error).__name__})")


def _indent(text: str) -> str:
    return "\n".join(f"  {line}" for line in text.splitlines() or [""])


def _say(text: str) -> None:
    try:
        print(text, flush=True)
    except UnicodeEncodeError:
        encoding = sys.stdout.encoding or "ascii"
        print(text.encode(encoding, "replace").decode(encoding), flush=True)
