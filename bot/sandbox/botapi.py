"""The Bot API methods that act on chats, messages and files, with Telegram's limits and errors.

Transport-level methods (getUpdates, webhooks, close) live in the emulator; everything here is
synchronous and works on the shared World.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bot.sandbox.htmlcheck import (
    Entity,
    HtmlParseError,
    from_api_entities,
    parse_html,
    to_api_entities,
    trim,
)
from bot.sandbox.world import (
    CALLBACK_QUERY_LIFETIME,
    JSON,
    ApiError,
    CallbackAnswer,
    ChatState,
    SentMessage,
    StoredFile,
    Upload,
    World,
    media_fields,
)

Params = dict[str, Any]
MAX_TEXT = 4096
MAX_CAPTION = 1024
MAX_CALLBACK_DATA = 64
MAX_UPLOAD = 50 * 1024 * 1024
MAX_DOWNLOAD = 20 * 1024 * 1024
LOCAL_MAX_DOWNLOAD = 2000 * 1024 * 1024  # a self-hosted Bot API server (--local)
DELETE_WINDOW = 48 * 3600
MEDIA_METHODS = {
    "sendPhoto": "photo",
    "sendDocument": "document",
    "sendVoice": "voice",
    "sendVideo": "video",
    "sendVideoNote": "video_note",
    "sendAudio": "audio",
}
NOT_MODIFIED = (
    "Bad Request: message is not modified: specified new message content and reply markup are "
    "exactly the same as a current content and reply markup of the message"
)
_COMMAND_RE = re.compile(r"^[a-z0-9_]{1,32}$")
_BUTTON_ACTIONS = {"url", "web_app", "login_url", "switch_inline_query", "pay", "copy_text"}
_BUTTON_ACTIONS |= {"switch_inline_query_current_chat", "switch_inline_query_chosen_chat"}
_BUTTON_ACTIONS |= {"callback_game"}


def as_int(value: Any) -> int | None:
    """An integer parameter as PTB may send it (int, or digits in a form field)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and re.fullmatch(r"-?\d+", value.strip()):
        return int(value)
    return None


def as_bool(value: Any) -> bool:
    return value is True or (isinstance(value, str) and value.lower() == "true")


def scope_key(scope: Any) -> str:
    """How emulator.commands names a BotCommandScope: its type, plus chat/user ids if any."""
    if not isinstance(scope, dict):
        return "default"
    key = str(scope.get("type", "default"))
    if "chat_id" in scope:
        key += f":{scope['chat_id']}"
    if "user_id" in scope:
        key += f":{scope['user_id']}"
    return key


class BotApi:
    """Bot API methods by name; each takes the request parameters and returns the result."""

    def __init__(self, world: World, *, strict_html: bool = True) -> None:
        self.world = world
        self.strict_html = strict_html
        # Telegram's cloud Bot API lets bots download 20 MB; a self-hosted server 2000 MB.
        self.max_download = MAX_DOWNLOAD
        # A self-hosted server in --local mode gives getFile an absolute path on its disk.
        self.local_dir: Path | None = None
        self._albums = 0
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

    # -- shared checks -------------------------------------------------------------------

    def target_chat(self, p: Params) -> ChatState:
        """The chat a send goes to, refused as Telegram refuses it."""
        if p.get("chat_id") in (None, ""):
            raise ApiError(400, "Bad Request: chat_id is empty")
        chat_id = as_int(p.get("chat_id"))
        chat = self.world.chats.get(chat_id) if chat_id is not None else None
        if chat is None or not chat.known:
            raise ApiError(400, "Bad Request: chat not found")
        if chat.blocked:
            raise ApiError(403, "Forbidden: bot was blocked by the user")
        return chat

    def find_message(self, p: Params, not_found: str) -> tuple[ChatState, SentMessage]:
        chat_id = as_int(p.get("chat_id"))
        chat = self.world.chats.get(chat_id) if chat_id is not None else None
        if chat is None or not chat.known:
            raise ApiError(400, "Bad Request: chat not found")
        message_id = as_int(p.get("message_id"))
        message = chat.by_id.get(message_id) if message_id is not None else None
        if message is None or message.deleted:
            raise ApiError(400, f"Bad Request: {not_found}")
        return chat, message

    def format_text(
        self, text: Any, parse_mode: Any, entities: Any, *, caption: bool
    ) -> tuple[str, list[Entity]]:
        """Plain text and entities after parsing, checked against Telegram's length limits."""
        source = text if isinstance(text, str) else "" if text is None else str(text)
        mode = str(parse_mode or "").lower()
        if mode == "html":
            try:
                plain, parsed = parse_html(source, strict_entities=self.strict_html)
            except HtmlParseError as error:
                raise ApiError(400, f"Bad Request: can't parse entities: {error.detail}") from None
        elif mode in ("", "markdown", "markdownv2"):
            given = entities if isinstance(entities, list) and not mode else []
            plain, parsed = trim(source, from_api_entities(source, given))
        else:
            raise ApiError(400, "Bad Request: unsupported parse_mode")
        if caption:
            if len(plain) > MAX_CAPTION:
                raise ApiError(400, "Bad Request: message caption is too long")
        elif not plain:
            raise ApiError(400, "Bad Request: message text is empty")
        elif len(plain) > MAX_TEXT:
            raise ApiError(400, "Bad Request: message is too long")
        return plain, parsed

    def reply_markup(self, p: Params) -> JSON | None:
        markup = p.get("reply_markup")
        if markup is None:
            return None
        if not isinstance(markup, dict):
            raise ApiError(400, "Bad Request: can't parse reply keyboard markup JSON object")
        rows = markup.get("inline_keyboard")
        if rows is not None:
            if not isinstance(rows, list) or not all(isinstance(r, list) for r in rows):
                raise ApiError(400, "Bad Request: can't parse inline keyboard button JSON object")
            for row in rows:
                for button in row:
                    check_inline_button(button)
        elif not any(k in markup for k in ("keyboard", "remove_keyboard", "force_reply")):
            raise ApiError(400, "Bad Request: can't parse reply keyboard markup JSON object")
        return markup

    def check_reply(self, chat: ChatState, p: Params) -> JSON | None:
        """The message being replied to, for the reply_to_message field."""
        parameters = p.get("reply_parameters")
        reply_id = as_int(p.get("reply_to_message_id"))
        allow_missing = as_bool(p.get("allow_sending_without_reply"))
        if isinstance(parameters, dict):
            reply_id = as_int(parameters.get("message_id"))
            allow_missing = as_bool(parameters.get("allow_sending_without_reply"))
        if reply_id is None:
            return None
        replied = chat.by_id.get(reply_id)
        if replied is None or replied.deleted:
            if allow_missing:
                return None
            raise ApiError(400, "Bad Request: message to be replied not found")
        return copy.deepcopy(replied.raw)

    def deliver(
        self,
        chat: ChatState,
        p: Params,
        *,
        kind: str,
        fields: JSON,
        markup: JSON | None,
        **details: Any,
    ) -> SentMessage:
        """Adds the bot's message to the chat after the checks every send shares passed."""
        replied = self.check_reply(chat, p)
        if replied is not None:
            fields = {**fields, "reply_to_message": replied}
        if markup is not None:
            if "keyboard" in markup:
                chat.reply_keyboard = [
                    [str(b.get("text", "")) if isinstance(b, dict) else str(b) for b in row]
                    for row in markup["keyboard"]
                    if isinstance(row, list)
                ]
            elif "remove_keyboard" in markup:
                chat.reply_keyboard = None
        return self.world.add_message(
            chat,
            from_bot=True,
            sender=self.world.bot_user,
            kind=kind,
            fields=fields,
            reply_markup=markup,
            **details,
        )

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

    # -- editing and deleting ------------------------------------------------------------

    def edit_message_text(self, p: Params) -> JSON:
        chat, message = self.find_message(p, "message to edit not found")
        if not message.from_bot:
            raise ApiError(400, "Bad Request: message can't be edited")
        if message.kind != "text":
            raise ApiError(400, "Bad Request: there is no text in the message to edit")
        plain, entities = self.format_text(
            p.get("text"), p.get("parse_mode"), p.get("entities"), caption=False
        )
        markup = self.inline_markup(p)
        if (plain, entities, markup) == (message.plain, message.entities, message.reply_markup):
            raise ApiError(400, NOT_MODIFIED)
        message.text, message.parse_mode = str(p.get("text")), p.get("parse_mode")
        self._apply_edit(chat, message, "editMessageText", plain, entities, markup, "text")
        return message.raw

    def edit_message_caption(self, p: Params) -> JSON:
        chat, message = self.find_message(p, "message to edit not found")
        if not message.from_bot:
            raise ApiError(400, "Bad Request: message can't be edited")
        if message.kind == "text":
            raise ApiError(400, "Bad Request: there is no caption in the message to edit")
        plain, entities = self.format_text(
            p.get("caption"), p.get("parse_mode"), p.get("caption_entities"), caption=True
        )
        markup = self.inline_markup(p)
        if (plain, entities, markup) == (message.plain, message.entities, message.reply_markup):
            raise ApiError(400, NOT_MODIFIED)
        message.caption, message.parse_mode = p.get("caption"), p.get("parse_mode")
        self._apply_edit(chat, message, "editMessageCaption", plain, entities, markup, "caption")
        return message.raw

    def edit_message_reply_markup(self, p: Params) -> JSON:
        chat, message = self.find_message(p, "message to edit not found")
        if not message.from_bot:
            raise ApiError(400, "Bad Request: message can't be edited")
        markup = self.inline_markup(p)
        if markup == message.reply_markup:
            raise ApiError(400, NOT_MODIFIED)
        field = "text" if message.kind == "text" else "caption"
        self._apply_edit(
            chat, message, "editMessageReplyMarkup", message.plain, message.entities, markup, field
        )
        return message.raw

    def inline_markup(self, p: Params) -> JSON | None:
        """An edit's markup: only inline keyboards; leaving it out removes the keyboard."""
        markup = self.reply_markup(p)
        if markup is not None and "inline_keyboard" not in markup:
            raise ApiError(400, "Bad Request: inline keyboard expected")
        if markup is not None and not markup["inline_keyboard"]:
            return None
        return markup

    def _apply_edit(
        self,
        chat: ChatState,
        message: SentMessage,
        method: str,
        plain: str,
        entities: list[Entity],
        markup: JSON | None,
        field: str,
    ) -> None:
        message.plain, message.entities, message.reply_markup = plain, entities, markup
        raw = message.raw
        entity_field = "entities" if field == "text" else "caption_entities"
        raw.pop(entity_field, None)
        raw.pop(field, None)
        if plain:
            raw[field] = plain
        if entities:
            raw[entity_field] = to_api_entities(plain, entities)
        raw.pop("reply_markup", None)
        if markup is not None:
            raw["reply_markup"] = markup
        raw["edit_date"] = int(self.world.now())
        message.edits.append({"method": method, "plain": plain, "reply_markup": markup})
        chat.notify()

    def delete_message(self, p: Params) -> bool:
        chat, message = self.find_message(p, "message to delete not found")
        self._delete(chat, message)
        return True

    def delete_messages(self, p: Params) -> bool:
        chat_id = as_int(p.get("chat_id"))
        chat = self.world.chats.get(chat_id) if chat_id is not None else None
        if chat is None or not chat.known:
            raise ApiError(400, "Bad Request: chat not found")
        ids = p.get("message_ids")
        if not isinstance(ids, list) or not 1 <= len(ids) <= 100:
            raise ApiError(400, "Bad Request: message_ids must contain 1-100 message identifiers")
        for message_id in ids:
            message = chat.by_id.get(as_int(message_id) or 0)
            if message is not None and not message.deleted:
                self._delete(chat, message)
        return True

    def _delete(self, chat: ChatState, message: SentMessage) -> None:
        if self.world.now() - message.date > DELETE_WINDOW:
            raise ApiError(400, "Bad Request: message can't be deleted for everyone")
        message.deleted = True
        chat.notify()

    def answer_callback_query(self, p: Params) -> bool:
        query = self.world.queries.get(str(p.get("callback_query_id", "")))
        expired = query is None or self.world.now() - query.created_at > CALLBACK_QUERY_LIFETIME
        if query is None or expired or query.answer is not None:
            raise ApiError(
                400,
                "Bad Request: query is too old and response timeout expired or query ID is invalid",
            )
        text = p.get("text")
        if isinstance(text, str) and len(text) > 200:
            raise ApiError(400, "Bad Request: MESSAGE_TOO_LONG")
        query.answer = CallbackAnswer(
            query_id=query.id,
            text=text if isinstance(text, str) else None,
            show_alert=as_bool(p.get("show_alert")),
            url=p.get("url") if isinstance(p.get("url"), str) else None,
        )
        chat = self.world.chats.get(query.chat_id)
        if chat is not None:
            chat.answers.append(query.answer)
            chat.notify()
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


def check_inline_button(button: Any) -> None:
    """Refuses an inline button as Telegram does (callback_data must be 1-64 bytes)."""
    if not isinstance(button, dict) or not isinstance(button.get("text"), str):
        raise ApiError(400, "Bad Request: can't parse inline keyboard button JSON object")
    if "callback_data" in button:
        data = button["callback_data"]
        if not isinstance(data, str) or not 1 <= len(data.encode("utf-8")) <= MAX_CALLBACK_DATA:
            raise ApiError(400, "Bad Request: BUTTON_DATA_INVALID")
        return
    if not any(key in button for key in _BUTTON_ACTIONS):
        raise ApiError(
            400,
            "Bad Request: can't parse inline keyboard button: "
            "Text buttons are unallowed in the inline keyboard",
        )
    url = button.get("url")
    if url is not None and (not isinstance(url, str) or not re.match(r"^(https?|tg)://\S", url)):
        raise ApiError(400, "Bad Request: BUTTON_URL_INVALID")
