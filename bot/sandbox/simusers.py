"""Simulated Telegram users: they write to the bot, press its buttons and wait for its answers.

Tests read like a relative's session: `await user.send_command("start")`, then
`user.last.plain`, then `await user.press("Русский")`.
"""

from __future__ import annotations

import asyncio
import copy
import re
import time
from collections.abc import Callable, Sequence
from typing import Any

from bot.sandbox.htmlcheck import Entity, to_api_entities
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


class SimUser:
    """A person writing to the bot, in a private chat (chat id == user id) or in a group."""

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

    def in_chat(self, group: SimChat) -> SimUser:
        """The same person, writing in `group` instead of the private chat."""
        return SimUser(
            self.world,
            self.id,
            first_name=self.first_name,
            language_code=self.language_code,
            username=self.username,
            chat_id=group.id,
        )

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

    # -- writing to the bot --------------------------------------------------------------

    async def send_text(
        self,
        text: str,
        *,
        reply_to: int | None = None,
        wait: bool = True,
        timeout: float | None = None,
    ) -> SentMessage:
        """Sends a text; one starting with a command gets Telegram's bot_command entity."""
        fields: JSON = {"text": text}
        entities: list[Entity] = []
        command = _COMMAND_RE.match(text)
        if command:
            entities.append(Entity("bot_command", 0, command.end()))
            fields["entities"] = to_api_entities(text, entities)
        if reply_to is not None:
            replied = self.chat.by_id.get(reply_to)
            if replied is not None:
                fields["reply_to_message"] = copy.deepcopy(replied.raw)
        return await self._send(
            "text", fields, wait, timeout, text=text, plain=text, entities=entities
        )

    async def forward_from(self, other: SimUser, text: str, *, wait: bool = True) -> SentMessage:
        """Forwards a text that `other` wrote (forward_origin of type "user")."""
        fields: JSON = {"text": text, "forward_origin": {
            "type": "user", "date": int(self.world.now()), "sender_user": other.to_json()}}
        return await self._send("text", fields, wait, None, text=text, plain=text)

    async def share_user(self, request_id: int, other: SimUser, *, wait: bool = True
                         ) -> SentMessage:
        """Picks `other` in the user picker a KeyboardButtonRequestUsers button opened."""
        shared: JSON = {"user_id": other.id, "first_name": other.first_name}
        if other.username is not None:
            shared["username"] = other.username
        fields: JSON = {"users_shared": {"request_id": request_id, "users": [shared]}}
        return await self._send("users_shared", fields, wait, None, plain="")

    async def send_command(
        self, cmd: str, args: str = "", *, wait: bool = True, timeout: float | None = None
    ) -> SentMessage:
        text = "/" + cmd.lstrip("/") + (f" {args}" if args else "")
        return await self.send_text(text, wait=wait, timeout=timeout)

    async def send_photo(
        self,
        data: bytes = PHOTO_BYTES,
        caption: str | None = None,
        *,
        wait: bool = True,
        timeout: float | None = None,
    ) -> SentMessage:
        full = self.world.files.add("photo", data)
        thumbnail = self.world.files.add("photo", data[:64])
        fields = media_fields("photo", full, thumbnail=thumbnail)
        return await self._send_media("photo", fields, full.file_id, caption, wait, timeout)

    async def send_document(
        self,
        data: bytes = PDF_BYTES,
        file_name: str = "document.pdf",
        mime_type: str = "application/pdf",
        *,
        caption: str | None = None,
        wait: bool = True,
        timeout: float | None = None,
    ) -> SentMessage:
        stored = self.world.files.add("document", data, file_name=file_name, mime_type=mime_type)
        fields = media_fields("document", stored)
        return await self._send_media("document", fields, stored.file_id, caption, wait, timeout)

    async def send_voice(
        self,
        duration: int = 3,
        data: bytes = OGG_BYTES,
        *,
        wait: bool = True,
        timeout: float | None = None,
    ) -> SentMessage:
        return await self._send_file("voice", data, duration, None, wait, timeout)

    async def send_video(
        self,
        duration: int = 5,
        data: bytes = MP4_BYTES,
        *,
        caption: str | None = None,
        wait: bool = True,
        timeout: float | None = None,
    ) -> SentMessage:
        return await self._send_file("video", data, duration, caption, wait, timeout)

    async def send_video_note(
        self,
        duration: int = 4,
        data: bytes = MP4_BYTES,
        *,
        wait: bool = True,
        timeout: float | None = None,
    ) -> SentMessage:
        return await self._send_file("video_note", data, duration, None, wait, timeout)

    async def send_audio(
        self,
        duration: int = 60,
        data: bytes = MP3_BYTES,
        *,
        caption: str | None = None,
        wait: bool = True,
        timeout: float | None = None,
    ) -> SentMessage:
        return await self._send_file("audio", data, duration, caption, wait, timeout)

    async def send_sticker(self, *, wait: bool = True, timeout: float | None = None) -> SentMessage:
        return await self._send_file("sticker", WEBP_BYTES, None, None, wait, timeout)

    async def send_animation(
        self, *, caption: str | None = None, wait: bool = True, timeout: float | None = None
    ) -> SentMessage:
        """A GIF: like Telegram, the message carries both `animation` and `document`."""
        return await self._send_file("animation", MP4_BYTES, 2, caption, wait, timeout)

    async def send_location(
        self,
        lat: float = 43.2567,
        lon: float = 76.9286,
        *,
        wait: bool = True,
        timeout: float | None = None,
    ) -> SentMessage:
        fields = {"location": {"latitude": lat, "longitude": lon}}
        return await self._send("location", fields, wait, timeout)

    async def send_contact(
        self,
        phone: str = "+77010000000",
        first_name: str = "Contact",
        *,
        own: bool = False,
        wait: bool = True,
        timeout: float | None = None,
    ) -> SentMessage:
        """Shares a contact; `own=True` shares the user's own (with user_id, as Telegram does)."""
        contact: JSON = {"phone_number": phone, "first_name": first_name}
        if own:
            contact["user_id"] = self.id
        return await self._send("contact", {"contact": contact}, wait, timeout)

    async def send_poll(
        self,
        question: str = "Question?",
        options: Sequence[str] = ("Yes", "No"),
        *,
        wait: bool = True,
        timeout: float | None = None,
    ) -> SentMessage:
        poll = {
            "id": str(int(time.time() * 1000)),
            "question": question,
            "options": [
                {"persistent_id": str(index), "text": option, "voter_count": 0}
                for index, option in enumerate(options)
            ],
            "total_voter_count": 0,
            "is_closed": False,
            "is_anonymous": True,
            "type": "regular",
            "allows_multiple_answers": False,
            "allows_revoting": True,  # required since Bot API 9.6
            "members_only": False,  # required since Bot API 10.0
        }
        return await self._send("poll", {"poll": poll}, wait, timeout)

    async def send_dice(
        self, emoji: str = "🎲", value: int = 3, *, wait: bool = True, timeout: float | None = None
    ) -> SentMessage:
        return await self._send("dice", {"dice": {"emoji": emoji, "value": value}}, wait, timeout)

    async def send_media_group(
        self,
        items: Sequence[bytes | tuple[str, bytes]],
        caption: str | None = None,
        *,
        wait: bool = True,
        timeout: float | None = None,
    ) -> list[SentMessage]:
        """An album: one message per item (bytes = photo, or (kind, bytes)), one media_group_id."""
        chat = self._writable_chat()
        since = chat.reactions
        group_id = f"{self.id}{int(time.time() * 1000)}"
        sent = []
        for index, item in enumerate(items):
            kind, data = ("photo", item) if isinstance(item, bytes) else item
            name = f"file_{index + 1}.pdf" if kind == "document" else None
            stored = self.world.files.add(kind, data, file_name=name)
            fields = media_fields(kind, stored)
            text = caption if index == 0 else None
            if text:
                fields["caption"] = text
            message = self._record(
                chat,
                kind,
                fields,
                caption=text,
                plain=text or "",
                file_id=stored.file_id,
                media_group_id=group_id,
            )
            sent.append(message)
        if wait:
            await self._await_reaction(chat, since, timeout, "send_media_group")
        return sent

    async def edit_text(
        self, message_id: int, new_text: str, *, wait: bool = True, timeout: float | None = None
    ) -> SentMessage:
        """Edits one of the user's own text messages (an edited_message update)."""
        chat = self._writable_chat()
        message = chat.by_id.get(message_id)
        if message is None or message.from_bot or message.deleted or message.kind != "text":
            raise AssertionError(f"no text message #{message_id} of this user in {self.chat_id}")
        message.text = message.plain = new_text
        message.raw["text"] = new_text
        message.raw["edit_date"] = int(self.world.now())
        message.edits.append({"method": "edit_text", "plain": new_text, "reply_markup": None})
        since = chat.reactions
        self.world.push_update({"edited_message": message.raw})
        chat.notify()
        if wait:
            await self._await_reaction(chat, since, timeout, "edit_text")
        return message

    async def press(
        self,
        label_or_data: str,
        message: SentMessage | None = None,
        *,
        wait: bool = True,
        timeout: float | None = None,
    ) -> CallbackAnswer | None:
        """Presses an inline button (by visible text, else by callback_data) and returns the
        bot's answer to the press, if it answered before this returned."""
        target = message if message is not None else self._latest_keyboard()
        if target.deleted:
            raise AssertionError(f"message #{target.message_id} was deleted; nothing to press")
        buttons = [b for row in target.inline_keyboard for b in row]
        found = next((b for b in buttons if b.get("text") == label_or_data), None)
        if found is None:
            found = next((b for b in buttons if b.get("callback_data") == label_or_data), None)
        if found is None:
            raise AssertionError(
                f"no button {label_or_data!r} on message #{target.message_id}; "
                f"available (text, callback_data): {target.buttons}"
            )
        data = found.get("callback_data")
        if not isinstance(data, str):
            raise AssertionError(f"button {found.get('text')!r} has no callback_data: {found}")
        return await self.press_data(data, target.message_id, wait=wait, timeout=timeout)

    async def press_data(
        self, data: str, message_id: int, *, wait: bool = True, timeout: float | None = None
    ) -> CallbackAnswer | None:
        """A callback query with any data on any message id (forged or stale presses)."""
        chat = self._writable_chat()
        message = chat.by_id.get(message_id)
        if message is not None and not message.deleted:
            shown = message.raw
        else:
            shown = {"chat": chat.to_json(), "message_id": message_id, "date": 0}
        query_id = self.world.new_query(chat.id, message_id, data)
        since = chat.reactions
        query = {"id": query_id, "from": self.to_json(), "message": shown, "data": data}
        query["chat_instance"] = str(abs(chat.id) * 7919 % 10**12)
        self.world.push_update({"callback_query": query})
        if wait:
            await self._await_reaction(chat, since, timeout, f"press {data!r}")
        return self.world.queries[query_id].answer

    async def send_raw(
        self, update: JSON, *, wait: bool = True, timeout: float | None = None
    ) -> JSON:
        """Queues any update JSON (fuzzing, channel posts...); update_id is added if missing.

        Waits for the bot's reaction in the chat the update names; if it names none, only until
        the bot has fetched it.
        """
        body = {k: v for k, v in update.items() if k != "update_id"}
        chat = self._chat_named_in(body)
        since = chat.reactions if chat is not None else 0
        if chat is not None:
            chat.known = True
        queued = self.world.push_update(body)
        if not wait:
            return queued
        if chat is not None:
            await self._await_reaction(chat, since, timeout, "send_raw")
            return queued
        deadline = time.monotonic() + (timeout or self.timeout)
        while self.world.handed_out_id < queued["update_id"]:
            if time.monotonic() >= deadline:
                raise TimeoutError(f"the bot did not fetch update {queued['update_id']}")
            await wait_event(self.world.changed, deadline - time.monotonic())
        return queued

    def block(self, *, notify: bool = True) -> None:
        """Blocks the bot: its sends to this user now fail with 403 (and it gets my_chat_member)."""
        self._set_blocked(True, notify)

    def unblock(self, *, notify: bool = True) -> None:
        self._set_blocked(False, notify)

    async def wait_for(
        self, predicate_or_text: MessageMatch, timeout: float = DEFAULT_TIMEOUT
    ) -> SentMessage:
        """The first visible bot message (already there or still to come) that matches: a
        predicate, or a text contained in the message's plain text."""
        chat = self.chat
        deadline = time.monotonic() + timeout
        while True:
            for message in chat.messages:
                if (
                    message.from_bot
                    and not message.deleted
                    and _matches(predicate_or_text, message)
                ):
                    return message
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(
                    f"no bot message matching {predicate_or_text!r} in chat {self.chat_id} "
                    f"after {timeout:g}s; last messages: {self._recent()}"
                )
            await wait_event(chat.changed, remaining)

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
