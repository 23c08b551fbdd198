"""Simulated users' messages other than text: files, stickers, locations, contacts, polls,
dice and albums (SimUser in bot/sandbox/simusers.py has them all)."""

from __future__ import annotations

import time
from collections.abc import Sequence

from bot.sandbox.simbase import (
    MP3_BYTES,
    MP4_BYTES,
    OGG_BYTES,
    PDF_BYTES,
    PHOTO_BYTES,
    WEBP_BYTES,
    SimUserBase,
)
from bot.sandbox.world import JSON, SentMessage, media_fields


class SimSends(SimUserBase):
    """send_photo, send_document, ... send_media_group."""

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
