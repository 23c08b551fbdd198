"""The Bot API emulator's limits and the checks every method shares: the target chat, the
message acted on, text and entities against Telegram's limits, reply markup and replies,
and adding the bot's message to the chat. bot/sandbox/botapi.py builds the methods on them.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

from bot.sandbox.htmlcheck import (
    Entity,
    HtmlParseError,
    from_api_entities,
    parse_html,
    trim,
)
from bot.sandbox.world import (
    JSON,
    ApiError,
    ChatState,
    SentMessage,
    World,
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


class ApiCore:
    """What every Bot API method uses: the world, its settings and the shared checks."""

    def __init__(self, world: World, *, strict_html: bool = True) -> None:
        self.world = world
        self.strict_html = strict_html
        # Telegram's cloud Bot API lets bots download 20 MB; a self-hosted server 2000 MB.
        self.max_download = MAX_DOWNLOAD
        # A self-hosted server in --local mode gives getFile an absolute path on its disk.
        self.local_dir: Path | None = None
        self._albums = 0

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
