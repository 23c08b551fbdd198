"""Simulated Telegram users: they write to the bot, press its buttons and wait for its answers.

Tests read like a relative's session: `await user.send_command("start")`, then
`user.last.plain`, then `await user.press("Русский")`. What every user has (identity, what they
see, the plumbing) is in bot/sandbox/simbase.py, messages other than text in
bot/sandbox/simsends.py; their names are re-exported here.
"""

from __future__ import annotations

import copy
import time

from bot.sandbox.htmlcheck import Entity, to_api_entities
from bot.sandbox.simbase import (
    _COMMAND_RE,
    DEFAULT_TIMEOUT,
    MP3_BYTES,
    MP4_BYTES,
    OGG_BYTES,
    PDF_BYTES,
    PHOTO_BYTES,
    WEBP_BYTES,
    MessageMatch,
    SimChat,
    SimUserBase,
    _matches,
)
from bot.sandbox.simsends import SimSends
from bot.sandbox.world import JSON, CallbackAnswer, SentMessage, wait_event

__all__ = [
    "DEFAULT_TIMEOUT",
    "MP3_BYTES",
    "MP4_BYTES",
    "OGG_BYTES",
    "PDF_BYTES",
    "PHOTO_BYTES",
    "WEBP_BYTES",
    "_COMMAND_RE",
    "MessageMatch",
    "SimChat",
    "SimSends",
    "SimUser",
    "SimUserBase",
    "_matches",
]


class SimUser(SimSends):
    """A person writing to the bot, in a private chat (chat id == user id) or in a group."""

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
