"""What the sandbox's Telegram knows: chats, messages, files, callback queries and pending updates.

Shared by the HTTP side (the bot's API calls) and the simulated users, and the one place that
wakes whoever waits for something to happen in a chat.
"""

from __future__ import annotations

import asyncio
import copy
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bot.sandbox.htmlcheck import Entity

JSON = dict[str, Any]
CALLBACK_QUERY_LIFETIME = 15 * 60
DEFAULT_SKIPPED_UPDATES = frozenset({"chat_member", "message_reaction", "message_reaction_count"})

_FOLDERS: dict[str, tuple[str, str]] = {
    "photo": ("photos", ".jpg"),
    "document": ("documents", ""),
    "voice": ("voice", ".oga"),
    "video": ("videos", ".mp4"),
    "video_note": ("video_notes", ".mp4"),
    "audio": ("music", ".mp3"),
    "sticker": ("stickers", ".webp"),
    "animation": ("animations", ".mp4"),
}


class ApiError(Exception):
    """A Bot API error answer: HTTP status, Telegram's description, and retry_after for 429."""

    def __init__(self, code: int, description: str, retry_after: int | None = None) -> None:
        super().__init__(description)
        self.code = code
        self.description = description
        self.retry_after = retry_after

    def to_json(self) -> JSON:
        body: JSON = {"ok": False, "error_code": self.code, "description": self.description}
        if self.retry_after is not None:
            body["parameters"] = {"retry_after": self.retry_after}
        return body


@dataclass
class Upload:
    """A file the bot uploaded in a multipart request."""

    data: bytes
    filename: str | None = None
    content_type: str | None = None


@dataclass
class StoredFile:
    """A file Telegram holds: what getFile describes and the file URL serves."""

    file_id: str
    file_unique_id: str
    file_path: str
    data: bytes
    file_name: str | None = None
    mime_type: str | None = None

    @property
    def size(self) -> int:
        return len(self.data)

    def describe(self) -> JSON:
        """The fields every Bot API file object carries."""
        return {
            "file_id": self.file_id,
            "file_unique_id": self.file_unique_id,
            "file_size": self.size,
        }


class FileStore:
    """Files by file_id and by file_path."""

    def __init__(self) -> None:
        self._by_id: dict[str, StoredFile] = {}
        self._by_path: dict[str, StoredFile] = {}
        self._count = 0

    def add(
        self,
        kind: str,
        data: bytes,
        *,
        file_name: str | None = None,
        mime_type: str | None = None,
    ) -> StoredFile:
        self._count += 1
        number = self._count
        folder, extension = _FOLDERS.get(kind, ("documents", ""))
        if file_name and "." in file_name:
            suffix = "".join(c for c in file_name.rsplit(".", 1)[1] if c.isascii() and c.isalnum())
            extension = f".{suffix[:10]}" if suffix else extension
        stored = StoredFile(
            file_id=f"SBX{kind[:3].upper()}{number:06d}{secrets.token_hex(6)}",
            file_unique_id=f"U{number:06d}",
            file_path=f"{folder}/file_{number}{extension}",
            data=data,
            file_name=file_name,
            mime_type=mime_type,
        )
        self._by_id[stored.file_id] = stored
        self._by_path[stored.file_path] = stored
        return stored

    def get(self, file_id: str) -> StoredFile | None:
        return self._by_id.get(file_id)

    def forget(self, file_id: str) -> None:
        """Telegram no longer has the file (deleted, or the bot's account was lost)."""
        stored = self._by_id.pop(file_id, None)
        if stored is not None:
            self._by_path.pop(stored.file_path, None)

    def by_path(self, path: str) -> StoredFile | None:
        return self._by_path.get(path)


def media_fields(
    kind: str,
    stored: StoredFile,
    *,
    duration: int | None = None,
    thumbnail: StoredFile | None = None,
) -> JSON:
    """The message fields Telegram sets for a file of this kind (e.g. {"photo": [...]})."""
    base = stored.describe()
    seconds = duration if duration is not None else 3
    if kind == "photo":
        sizes = [{**base, "width": 1280, "height": 960}]
        if thumbnail is not None:
            sizes.insert(0, {**thumbnail.describe(), "width": 90, "height": 68})
        return {"photo": sizes}
    if kind == "document":
        return {
            "document": {
                **base,
                "file_name": stored.file_name or stored.file_path.rsplit("/", 1)[-1],
                "mime_type": stored.mime_type or "application/octet-stream",
            }
        }
    if kind == "voice":
        return {"voice": {**base, "duration": seconds, "mime_type": "audio/ogg"}}
    if kind == "video":
        video = {**base, "width": 640, "height": 360, "duration": seconds}
        return {"video": {**video, "mime_type": stored.mime_type or "video/mp4"}}
    if kind == "video_note":
        return {"video_note": {**base, "length": 240, "duration": seconds}}
    if kind == "audio":
        return {
            "audio": {**base, "duration": seconds, "mime_type": stored.mime_type or "audio/mpeg"}
        }
    if kind == "sticker":
        sticker = {**base, "width": 512, "height": 512, "type": "regular"}
        return {"sticker": {**sticker, "is_animated": False, "is_video": False, "emoji": "👍"}}
    if kind == "animation":
        animation = {**base, "width": 320, "height": 240, "duration": seconds}
        animation.update(file_name="animation.gif.mp4", mime_type="video/mp4")
        document = {**base, "file_name": "animation.gif.mp4", "mime_type": "video/mp4"}
        return {"animation": animation, "document": document}
    raise ValueError(f"unknown media kind {kind!r}")


@dataclass(eq=False)
class SentMessage:
    """One message in a chat as its members see it, from the bot (from_bot) or from a user."""

    chat_id: int
    message_id: int
    from_bot: bool
    kind: str
    date: int
    text: str | None = None
    caption: str | None = None
    parse_mode: str | None = None
    plain: str = ""
    entities: list[Entity] = field(default_factory=list)
    reply_markup: JSON | None = None
    deleted: bool = False
    edits: list[JSON] = field(default_factory=list)
    file_id: str | None = None
    media_group_id: str | None = None
    sender_id: int | None = None
    raw: JSON = field(default_factory=dict)

    @property
    def inline_keyboard(self) -> list[list[JSON]]:
        """The raw inline buttons, row by row (empty when there are none)."""
        rows = (self.reply_markup or {}).get("inline_keyboard")
        if not isinstance(rows, list):
            return []
        return [[b for b in row if isinstance(b, dict)] for row in rows if isinstance(row, list)]

    @property
    def buttons(self) -> list[list[tuple[str, str | None]]]:
        """Inline buttons as rows of (visible text, callback_data or None for link buttons)."""
        return [
            [(str(b.get("text", "")), _callback_data(b)) for b in row]
            for row in self.inline_keyboard
        ]

    @property
    def button_labels(self) -> list[str]:
        return [text for row in self.buttons for text, _ in row]

    def __repr__(self) -> str:
        who = "bot" if self.from_bot else "user"
        state = " deleted" if self.deleted else ""
        shown = self.plain if len(self.plain) <= 60 else self.plain[:57] + "..."
        labels = f" buttons={self.button_labels}" if self.inline_keyboard else ""
        return f"<#{self.message_id} {who} {self.kind}{state} {shown!r}{labels}>"


def _callback_data(button: JSON) -> str | None:
    data = button.get("callback_data")
    return data if isinstance(data, str) else None


@dataclass
class CallbackAnswer:
    """What the bot said when it answered a button press (the toast or alert)."""

    query_id: str
    text: str | None
    show_alert: bool
    url: str | None


@dataclass
class PendingQuery:
    id: str
    chat_id: int
    message_id: int
    data: str | None
    created_at: float
    answer: CallbackAnswer | None = None


@dataclass(eq=False)
class ChatState:
    """A chat and everything in it, plus when the bot last did something there."""

    id: int
    type: str
    title: str | None = None
    user: JSON | None = None
    known: bool = False
    blocked: bool = False
    messages: list[SentMessage] = field(default_factory=list)
    by_id: dict[int, SentMessage] = field(default_factory=dict)
    next_message_id: int = 1
    reactions: int = 0
    last_call_at: float = 0.0
    answers: list[CallbackAnswer] = field(default_factory=list)
    reply_keyboard: list[list[str]] | None = None
    menu_button: JSON | None = None
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def to_json(self) -> JSON:
        """The Chat object as the Bot API writes it."""
        chat: JSON = {"id": self.id, "type": self.type}
        if self.type == "private" and self.user is not None:
            for key in ("first_name", "last_name", "username"):
                if self.user.get(key) is not None:
                    chat[key] = self.user[key]
        elif self.title is not None:
            chat["title"] = self.title
        return chat

    def notify(self) -> None:
        event, self.changed = self.changed, asyncio.Event()
        event.set()


class World:
    """All sandbox state. Single-threaded: only touched from the event loop."""

    def __init__(self, bot_user: JSON, settle: float) -> None:
        self.bot_user = bot_user
        self.settle = settle
        # Optional: a function telling whether an in-process bot is still handling updates.
        self.busy_probe: Callable[[], bool] | None = None
        self.chats: dict[int, ChatState] = {}
        self.files = FileStore()
        self.commands: dict[tuple[str, str], list[JSON]] = {}
        self.default_menu_button: JSON = {"type": "commands"}
        self.queries: dict[str, PendingQuery] = {}
        self.updates: list[JSON] = []
        self.next_update_id = 1000
        self.handed_out_id = 0
        self.clock_offset = 0.0
        self.last_activity = 0.0
        self.changed = asyncio.Event()
        self.updates_changed = asyncio.Event()

    def now(self) -> float:
        """Telegram's clock (Unix time), which tests may move forward."""
        return time.time() + self.clock_offset

    def private_chat(self, user: JSON) -> ChatState:
        chat = self.chats.get(int(user["id"]))
        if chat is None:
            chat = ChatState(id=int(user["id"]), type="private")
            self.chats[chat.id] = chat
        chat.user = user
        return chat

    def group_chat(self, chat_id: int, title: str) -> ChatState:
        chat = self.chats.get(chat_id)
        if chat is None:
            kind = "supergroup" if chat_id <= -1_000_000_000_000 else "group"
            chat = ChatState(id=chat_id, type=kind, title=title)
            self.chats[chat_id] = chat
        return chat

    def chat_from_json(self, raw: JSON) -> ChatState | None:
        """The chat an arbitrary update names, created if new (for send_raw)."""
        chat_id = raw.get("id")
        if not isinstance(chat_id, int):
            return None
        chat = self.chats.get(chat_id)
        if chat is None:
            kind = str(raw.get("type", "private"))
            chat = ChatState(id=chat_id, type=kind, title=raw.get("title"))
            if kind == "private":
                chat.user = {"id": chat_id, "is_bot": False, "first_name": raw.get("first_name")}
            self.chats[chat_id] = chat
        return chat

    def add_message(
        self,
        chat: ChatState,
        *,
        from_bot: bool,
        sender: JSON,
        kind: str,
        fields: JSON,
        **details: Any,
    ) -> SentMessage:
        """Records a new message in `chat`; `details` fill SentMessage fields (text, plain...)."""
        message = SentMessage(
            chat_id=chat.id,
            message_id=chat.next_message_id,
            from_bot=from_bot,
            kind=kind,
            date=int(self.now()),
            sender_id=int(sender["id"]),
            **details,
        )
        chat.next_message_id += 1
        raw: JSON = {
            "message_id": message.message_id,
            "from": sender,
            "chat": chat.to_json(),
            "date": message.date,
        }
        raw.update(fields)
        if message.media_group_id is not None:
            raw["media_group_id"] = message.media_group_id
        if message.reply_markup is not None and "inline_keyboard" in message.reply_markup:
            raw["reply_markup"] = message.reply_markup
        message.raw = raw
        chat.messages.append(message)
        chat.by_id[message.message_id] = message
        chat.notify()
        return message

    def push_update(self, body: JSON) -> JSON:
        """Queues an update for the bot (a deep copy, so later edits do not rewrite history)."""
        update = {"update_id": self.next_update_id, **copy.deepcopy(body)}
        self.next_update_id += 1
        self.updates.append(update)
        self.notify_updates()
        return update

    def confirm_updates(self, offset: int) -> None:
        """getUpdates' offset: forget every update before it (negative: keep the last -offset)."""
        if offset > 0:
            self.updates = [u for u in self.updates if u["update_id"] >= offset]
        elif offset < 0:
            self.updates = self.updates[offset:]

    def mark_handed_out(self, update_id: int) -> None:
        if update_id > self.handed_out_id:
            self.handed_out_id = update_id
            self.notify_all()

    def undelivered(self) -> int:
        return sum(1 for u in self.updates if u["update_id"] > self.handed_out_id)

    def new_query(self, chat_id: int, message_id: int, data: str | None) -> str:
        query_id = str(secrets.randbits(62))
        self.queries[query_id] = PendingQuery(query_id, chat_id, message_id, data, self.now())
        return query_id

    def touch(self, chat_id: int | None, *, reaction: bool) -> None:
        """The bot just called a method: wake waiters (of that chat, if it targets one)."""
        now = time.monotonic()
        self.last_activity = now
        chat = self.chats.get(chat_id) if chat_id is not None else None
        if chat is not None:
            if reaction:
                chat.reactions += 1
            chat.last_call_at = now
            chat.notify()
        self.notify_all()

    def notify_all(self) -> None:
        event, self.changed = self.changed, asyncio.Event()
        event.set()

    def notify_updates(self) -> None:
        event, self.updates_changed = self.updates_changed, asyncio.Event()
        event.set()
        self.notify_all()


async def wait_event(event: asyncio.Event, timeout: float) -> None:
    """Waits until `event` is set or `timeout` seconds pass, whichever comes first."""
    if timeout <= 0:
        return
    try:
        async with asyncio.timeout(timeout):
            await event.wait()
    except TimeoutError:
        pass
