"""The Bot API methods that act on chats, messages and files, with Telegram's limits and errors.

Transport-level methods (getUpdates, webhooks, close) live in the emulator; everything here is
synchronous and works on the shared World. The limits and shared checks are in
bot/sandbox/apichecks.py, edits, deletions and callback answers in bot/sandbox/apiedits.py;
their names are re-exported here.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from bot.sandbox.apichecks import (
    _BUTTON_ACTIONS,
    _COMMAND_RE,
    DELETE_WINDOW,
    LOCAL_MAX_DOWNLOAD,
    MAX_CALLBACK_DATA,
    MAX_CAPTION,
    MAX_DOWNLOAD,
    MAX_TEXT,
    MAX_UPLOAD,
    MEDIA_METHODS,
    NOT_MODIFIED,
    ApiCore,
    Params,
    as_bool,
    as_int,
    check_inline_button,
    scope_key,
)
from bot.sandbox.apiedits import EditingApi
from bot.sandbox.htmlcheck import to_api_entities
from bot.sandbox.world import (
    JSON,
    ApiError,
    SentMessage,
    StoredFile,
    Upload,
    World,
    media_fields,
)

__all__ = [
    "DELETE_WINDOW",
    "LOCAL_MAX_DOWNLOAD",
    "MAX_CALLBACK_DATA",
    "MAX_CAPTION",
    "MAX_DOWNLOAD",
    "MAX_TEXT",
    "MAX_UPLOAD",
    "MEDIA_METHODS",
    "NOT_MODIFIED",
    "_BUTTON_ACTIONS",
    "_COMMAND_RE",
    "ApiCore",
    "BotApi",
    "EditingApi",
    "Params",
    "as_bool",
    "as_int",
    "check_inline_button",
    "scope_key",
]


class BotApi(EditingApi):
    """Bot API methods by name; each takes the request parameters and returns the result."""

    def __init__(self, world: World, *, strict_html: bool = True) -> None:
        super().__init__(world, strict_html=strict_html)
        self.methods: dict[str, Callable[[Params], Any]] = {
            "getMe": lambda p: dict(world.bot_user),
            "sendMessage": self.send_message,
            "editMessageText": self.edit_message_text,
            "editMessageCaption": self.edit_message_caption,
            "editMessageReplyMarkup": self.edit_message_reply_markup,
            "deleteMessage": self.delete_message,
            "deleteMessages": self.delete_messages,
            "answerCallbackQuery": self.answer_callback_query,
            "sendMediaGroup": self.send_media_group,
            "copyMessage": self.copy_message,
            "forwardMessage": self.forward_message,
            "getFile": self.get_file,
            "setMyCommands": self.set_my_commands,
            "getMyCommands": self.get_my_commands,
            "deleteMyCommands": self.delete_my_commands,
            "setChatMenuButton": self.set_chat_menu_button,
            "getChatMenuButton": self.get_chat_menu_button,
            "sendChatAction": self.send_chat_action,
            "getChat": self.get_chat,
            "setMyDescription": lambda p: True,
            "setMyShortDescription": lambda p: True,
            "setMyName": lambda p: True,
        }
        for method, kind in MEDIA_METHODS.items():
            self.methods[method] = self._media_sender(kind)

    # -- sending -------------------------------------------------------------------------

    def send_message(self, p: Params) -> JSON:
        chat = self.target_chat(p)
        plain, entities = self.format_text(
            p.get("text"), p.get("parse_mode"), p.get("entities"), caption=False
        )
        markup = self.reply_markup(p)
        fields: JSON = {"text": plain}
        if entities:
            fields["entities"] = to_api_entities(plain, entities)
        message = self.deliver(
            chat,
            p,
            kind="text",
            fields=fields,
            markup=markup,
            text=str(p.get("text")),
            parse_mode=p.get("parse_mode"),
            plain=plain,
            entities=entities,
        )
        return message.raw

    def _media_sender(self, kind: str) -> Callable[[Params], JSON]:
        def send(p: Params) -> JSON:
            chat = self.target_chat(p)
            stored = self.input_file(p, p.get(kind), kind)
            caption_details = self.caption_details(p, kind)
            markup = self.reply_markup(p)
            fields = media_fields(kind, stored, duration=as_int(p.get("duration")))
            fields.update(caption_details.pop("fields"))
            message = self.deliver(
                chat,
                p,
                kind=kind,
                fields=fields,
                markup=markup,
                file_id=stored.file_id,
                **caption_details,
            )
            return message.raw

        return send

    def caption_details(self, p: Params, kind: str) -> dict[str, Any]:
        """SentMessage details and message fields for a caption (none for video notes)."""
        if kind == "video_note" or p.get("caption") in (None, ""):
            return {"fields": {}}
        plain, entities = self.format_text(
            p.get("caption"), p.get("parse_mode"), p.get("caption_entities"), caption=True
        )
        fields: JSON = {"caption": plain} if plain else {}
        if entities:
            fields["caption_entities"] = to_api_entities(plain, entities)
        return {
            "fields": fields,
            "caption": str(p["caption"]),
            "parse_mode": p.get("parse_mode"),
            "plain": plain,
            "entities": entities,
        }

    def input_file(self, p: Params, value: Any, kind: str) -> StoredFile:
        """Resolves an upload, an attach:// reference, a file_id or a URL to a stored file."""
        if isinstance(value, str) and value.startswith("attach://"):
            value = p.get(value[len("attach://") :])
            if value is None:
                raise ApiError(400, f"Bad Request: there is no {kind} in the request")
        if isinstance(value, Upload):
            if len(value.data) > MAX_UPLOAD:
                raise ApiError(413, "Request Entity Too Large")
            return self.world.files.add(
                kind, value.data, file_name=value.filename, mime_type=value.content_type
            )
        if value is None or value == "":
            raise ApiError(400, f"Bad Request: there is no {kind} in the request")
        text = str(value)
        stored = self.world.files.get(text)
        if stored is not None:
            return stored
        if text.startswith(("http://", "https://")):
            name = text.rsplit("/", 1)[-1] or None
            return self.world.files.add(kind, b"", file_name=name)
        raise ApiError(400, "Bad Request: wrong file identifier/HTTP URL specified")

    def send_media_group(self, p: Params) -> list[JSON]:
        chat = self.target_chat(p)
        media = p.get("media")
        if not isinstance(media, list) or not all(isinstance(m, dict) for m in media):
            raise ApiError(400, "Bad Request: can't parse media JSON object")
        if not 2 <= len(media) <= 10:
            raise ApiError(400, "Bad Request: wrong number of media in the album: must be 2-10")
        prepared = []
        for item in media:
            kind = str(item.get("type", ""))
            if kind not in ("photo", "video", "document", "audio"):
                raise ApiError(400, "Bad Request: unsupported media type in the album")
            stored = self.input_file(p, item.get("media"), kind)
            prepared.append((kind, stored, self.caption_details(item, kind)))
        self.check_reply(chat, p)
        self._albums += 1
        group_id = str(13_000_000_000_000_000 + self._albums)
        sent = []
        for kind, stored, details in prepared:
            fields = {**media_fields(kind, stored), **details.pop("fields")}
            message = self.deliver(
                chat,
                p,
                kind=kind,
                fields=fields,
                markup=None,
                file_id=stored.file_id,
                media_group_id=group_id,
                **details,
            )
            sent.append(message.raw)
        return sent

    def copy_message(self, p: Params) -> JSON:
        copied = self._clone(p, "message to copy not found", forward=False)
        return {"message_id": copied.message_id}

    def forward_message(self, p: Params) -> JSON:
        return self._clone(p, "message to forward not found", forward=True).raw

    def _clone(self, p: Params, not_found: str, *, forward: bool) -> SentMessage:
        chat = self.target_chat(p)
        source_chat = self.world.chats.get(as_int(p.get("from_chat_id")) or 0)
        source = source_chat.by_id.get(as_int(p.get("message_id")) or 0) if source_chat else None
        if source is None or source.deleted:
            raise ApiError(400, f"Bad Request: {not_found}")
        skipped = {"message_id", "from", "chat", "date", "edit_date", "reply_markup"}
        skipped |= {"media_group_id", "reply_to_message", "forward_origin"}
        fields = {k: copy.deepcopy(v) for k, v in source.raw.items() if k not in skipped}
        details: dict[str, Any] = {
            "text": source.text,
            "caption": source.caption,
            "parse_mode": source.parse_mode,
            "plain": source.plain,
            "entities": list(source.entities),
        }
        markup = None
        if forward:
            fields["forward_origin"] = {
                "type": "user",
                "sender_user": source.raw["from"],
                "date": source.date,
            }
        else:
            markup = self.reply_markup(p)
            if "caption" in p and source.kind != "text":
                new = self.caption_details(p, source.kind)
                fields = {
                    k: v for k, v in fields.items() if k not in ("caption", "caption_entities")
                }
                fields.update(new.pop("fields"))
                details.update(new)
        return self.deliver(
            chat,
            p,
            kind=source.kind,
            fields=fields,
            markup=markup,
            file_id=source.file_id,
            **details,
        )

    def send_chat_action(self, p: Params) -> bool:
        self.target_chat(p)
        if not p.get("action"):
            raise ApiError(400, "Bad Request: wrong parameter action in request")
        return True

    # -- files, commands, chats ----------------------------------------------------------

    def get_file(self, p: Params) -> JSON:
        stored = self.world.files.get(str(p.get("file_id", "")))
        if stored is None:
            raise ApiError(400, "Bad Request: wrong file_id or the file is temporarily "
                                "unavailable")
        if stored.size > self.max_download:
            raise ApiError(400, "Bad Request: file is too big")
        if self.local_dir is not None:
            local = self.local_dir / stored.file_path
            local.parent.mkdir(parents=True, exist_ok=True)
            local.write_bytes(stored.data)
            return {**stored.describe(), "file_path": str(local.resolve())}
        return {**stored.describe(), "file_path": stored.file_path}

    def set_my_commands(self, p: Params) -> bool:
        commands = p.get("commands")
        if not isinstance(commands, list) or len(commands) > 100:
            raise ApiError(400, "Bad Request: can't parse commands JSON object")
        cleaned = []
        for item in commands:
            if not isinstance(item, dict) or not _COMMAND_RE.match(str(item.get("command", ""))):
                raise ApiError(400, "Bad Request: BOT_COMMAND_INVALID")
            description = str(item.get("description", ""))
            if not 1 <= len(description) <= 256:
                raise ApiError(400, "Bad Request: BOT_COMMAND_DESCRIPTION_INVALID")
            cleaned.append({"command": str(item["command"]), "description": description})
        key = (scope_key(p.get("scope")), str(p.get("language_code") or ""))
        if cleaned:
            self.world.commands[key] = cleaned
        else:
            self.world.commands.pop(key, None)
        return True

    def get_my_commands(self, p: Params) -> list[JSON]:
        key = (scope_key(p.get("scope")), str(p.get("language_code") or ""))
        return copy.deepcopy(self.world.commands.get(key, []))

    def delete_my_commands(self, p: Params) -> bool:
        self.world.commands.pop(
            (scope_key(p.get("scope")), str(p.get("language_code") or "")), None
        )
        return True

    def set_chat_menu_button(self, p: Params) -> bool:
        button = p.get("menu_button") or {"type": "default"}
        if not isinstance(button, dict):
            raise ApiError(400, "Bad Request: can't parse menu button JSON object")
        if p.get("chat_id") in (None, ""):
            self.world.default_menu_button = button
        else:
            self.target_chat(p).menu_button = button
        return True

    def get_chat_menu_button(self, p: Params) -> JSON:
        if p.get("chat_id") in (None, ""):
            return self.world.default_menu_button
        return self.target_chat(p).menu_button or self.world.default_menu_button

    def get_chat(self, p: Params) -> JSON:
        chat_id = as_int(p.get("chat_id"))
        chat = self.world.chats.get(chat_id) if chat_id is not None else None
        if chat is None or not chat.known:
            raise ApiError(400, "Bad Request: chat not found")
        return {**chat.to_json(), "accent_color_id": 0, "max_reaction_count": 11}
