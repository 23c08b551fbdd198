"""What every simulated user has: who they are, what they see of the chat, and the plumbing
that records their messages and waits for the bot's reaction (bot/sandbox/simusers.py).
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable
from typing import Any

from bot.sandbox.world import (
    JSON,
    CallbackAnswer,
    ChatState,
    SentMessage,
    World,
    media_fields,
    wait_event,
)

DEFAULT_TIMEOUT = 10.0
PHOTO_BYTES = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00sandbox photo\xff\xd9"
PDF_BYTES = b"%PDF-1.4\n% sandbox document\n%%EOF\n"
OGG_BYTES = b"OggS\x00\x02sandbox voice"
MP4_BYTES = b"\x00\x00\x00\x18ftypmp42sandbox video"
MP3_BYTES = b"ID3\x03\x00sandbox audio"
WEBP_BYTES = b"RIFF\x10\x00\x00\x00WEBPVP8 sandbox"
_COMMAND_RE = re.compile(r"^/[A-Za-z0-9_]{1,64}(@[A-Za-z0-9_]{3,32})?(?=\s|$)")
MessageMatch = Callable[[SentMessage], bool] | str


class SimChat:
    """A group the bot is in; users write there with `user.in_chat(group)`."""

    def __init__(self, world: World, chat_id: int, title: str) -> None:
        self.world = world
        self.id = chat_id
        self.title = title
        world.group_chat(chat_id, title)

    @property
    def state(self) -> ChatState:
        return self.world.chats[self.id]

    @property
    def messages(self) -> list[SentMessage]:
        return [m for m in self.state.messages if m.from_bot]

    @property
    def visible(self) -> list[SentMessage]:
        return [m for m in self.state.messages if not m.deleted]



class SimUserBase:
    """A person in a chat with the bot: identity, what they see, and how their messages go in."""

    def __init__(
        self,
        world: World,
        user_id: int,
        *,
        first_name: str = "Test",
        language_code: str | None = "en",
        username: str | None = None,
        chat_id: int | None = None,
    ) -> None:
        self.world = world
        self.id = user_id
        self.first_name = first_name
        self.language_code = language_code
        self.username = username
        self.chat_id = user_id if chat_id is None else chat_id
        self.timeout = DEFAULT_TIMEOUT
        if user_id not in world.chats or self.chat_id == user_id:
            world.private_chat(self.to_json())

    def __repr__(self) -> str:
        return f"<SimUser {self.id} in chat {self.chat_id}>"

    def to_json(self) -> JSON:
        """The User object Telegram puts in `from`."""
        user: JSON = {"id": self.id, "is_bot": False, "first_name": self.first_name}
        if self.username is not None:
            user["username"] = self.username
        if self.language_code is not None:
            user["language_code"] = self.language_code
        return user

    # -- what the user sees --------------------------------------------------------------

    @property
    def chat(self) -> ChatState:
        chat = self.world.chats[self.chat_id]
        if chat.type == "private":
            chat.user = self.to_json()
        return chat

    @property
    def messages(self) -> list[SentMessage]:
        """The bot's messages in this chat, in order, deleted ones included."""
        return [m for m in self.chat.messages if m.from_bot]

    @property
    def all_messages(self) -> list[SentMessage]:
        """Every message in this chat, the user's own included."""
        return list(self.chat.messages)

    @property
    def visible(self) -> list[SentMessage]:
        """What is on screen: the bot's and the user's messages that were not deleted."""
        return [m for m in self.chat.messages if not m.deleted]

    @property
    def last(self) -> SentMessage:
        """The latest of the bot's messages still on screen."""
        for message in reversed(self.chat.messages):
            if message.from_bot and not message.deleted:
                return message
        raise AssertionError(f"the bot has sent nothing visible in chat {self.chat_id}")

    @property
    def answers(self) -> list[CallbackAnswer]:
        """How the bot answered this chat's button presses (toasts and alerts), in order."""
        return list(self.chat.answers)

    @property
    def reply_keyboard(self) -> list[list[str]] | None:
        """The custom keyboard under the input field, if the bot set one."""
        return self.chat.reply_keyboard

    @property
    def blocked(self) -> bool:
        return self.world.chats[self.id].blocked

    @property
    def commands(self) -> list[tuple[str, str]]:
        """The command menu this user gets, resolved by scope and language as Telegram does."""
        lang = self.language_code or ""
        if self.chat_id == self.id:
            scopes = [f"chat:{self.id}", "all_private_chats", "default"]
        else:
            scopes = [f"chat_member:{self.chat_id}:{self.id}", f"chat:{self.chat_id}"]
            scopes += ["all_group_chats", "default"]
        for scope in scopes:
            for language in (lang, "") if lang else ("",):
                found = self.world.commands.get((scope, language))
                if found:
                    return [(str(c["command"]), str(c["description"])) for c in found]
        return []

    # -- plumbing ------------------------------------------------------------------------

    def _writable_chat(self) -> ChatState:
        chat = self.chat
        if self.world.chats[self.id].blocked and chat.type == "private":
            raise AssertionError(f"user {self.id} has blocked the bot; call unblock() first")
        chat.known = True
        return chat

    def _record(self, chat: ChatState, kind: str, fields: JSON, **details: Any) -> SentMessage:
        message = self.world.add_message(
            chat, from_bot=False, sender=self.to_json(), kind=kind, fields=fields, **details
        )
        self.world.push_update({"message": message.raw})
        return message

    async def _send(
        self, kind: str, fields: JSON, wait: bool, timeout: float | None, **details: Any
    ) -> SentMessage:
        chat = self._writable_chat()
        since = chat.reactions
        message = self._record(chat, kind, fields, **details)
        if wait:
            await self._await_reaction(chat, since, timeout, f"send {kind}")
        return message

    async def _send_media(
        self,
        kind: str,
        fields: JSON,
        file_id: str,
        caption: str | None,
        wait: bool,
        timeout: float | None,
    ) -> SentMessage:
        if caption:
            fields["caption"] = caption
        return await self._send(
            kind, fields, wait, timeout, caption=caption, plain=caption or "", file_id=file_id
        )

    async def _send_file(
        self,
        kind: str,
        data: bytes,
        duration: int | None,
        caption: str | None,
        wait: bool,
        timeout: float | None,
    ) -> SentMessage:
        stored = self.world.files.add(kind, data)
        fields = media_fields(kind, stored, duration=duration)
        return await self._send_media(kind, fields, stored.file_id, caption, wait, timeout)

    def _latest_keyboard(self) -> SentMessage:
        for message in reversed(self.chat.messages):
            if message.from_bot and not message.deleted and message.inline_keyboard:
                return message
        raise AssertionError(
            f"no bot message with inline buttons in chat {self.chat_id}; "
            f"last messages: {self._recent()}"
        )

    def _chat_named_in(self, body: JSON) -> ChatState | None:
        for value in body.values():
            if not isinstance(value, dict):
                continue
            holder = value.get("message") if "message" in value else value
            if isinstance(holder, dict) and isinstance(holder.get("chat"), dict):
                return self.world.chat_from_json(holder["chat"])
        return None

    def _set_blocked(self, blocked: bool, notify: bool) -> None:
        chat = self.world.chats[self.id]
        if chat.blocked == blocked:
            return
        chat.blocked = blocked
        if notify and chat.known:
            bot = self.world.bot_user
            old, new = ("member", "kicked") if blocked else ("kicked", "member")
            new_member: JSON = {"user": bot, "status": new}
            if blocked:
                new_member["until_date"] = 0
            old_member: JSON = {"user": bot, "status": old}
            if not blocked:
                old_member["until_date"] = 0
            self.world.push_update(
                {
                    "my_chat_member": {
                        "chat": chat.to_json(),
                        "from": self.to_json(),
                        "date": int(self.world.now()),
                        "old_chat_member": old_member,
                        "new_chat_member": new_member,
                    }
                }
            )

    async def _await_reaction(
        self, chat: ChatState, since: int, timeout: float | None, action: str
    ) -> None:
        """Waits for the bot's first call aimed at this chat, then for `settle` seconds of quiet."""
        limit = self.timeout if timeout is None else timeout
        deadline = time.monotonic() + limit
        while chat.reactions <= since:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(
                    f"the bot did not react within {limit:g}s to {action} in chat {chat.id}; "
                    f"last messages: {self._recent()}"
                )
            await wait_event(chat.changed, remaining)
        settle = self.world.settle
        while True:
            quiet = time.monotonic() - chat.last_call_at
            if time.monotonic() >= deadline + settle:
                return
            if quiet >= settle:
                # An in-process bot can say whether it is still working (BotRunner sets this):
                # on a loaded machine a pause between two calls may be longer than `settle`.
                probe = self.world.busy_probe
                if probe is None or not probe():
                    return
                await asyncio.sleep(0.01)
                continue
            await wait_event(chat.changed, settle - quiet)

    def _recent(self) -> str:
        shown = self.chat.messages[-3:]
        return ", ".join(repr(m) for m in shown) if shown else "(none)"


def _matches(match: MessageMatch, message: SentMessage) -> bool:
    if isinstance(match, str):
        return match in message.plain
    return bool(match(message))
