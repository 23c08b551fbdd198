"""Which parameters each Bot API method has (Bot API 9), for the methods the emulator serves.

Telegram ignores a parameter its method does not have; the emulator refuses it instead (400,
naming the parameter), so that a test catches the bot sending one, for example a parse_mode
from python-telegram-bot's Defaults on editMessageReplyMarkup. Parameters Telegram still
accepts for old clients (reply_to_message_id, disable_web_page_preview, ...) are listed too.
"""

from __future__ import annotations

from bot.sandbox.world import ApiError, Upload

_SEND = frozenset((
    "business_connection_id", "chat_id", "message_thread_id", "direct_messages_topic_id",
    "disable_notification", "protect_content", "allow_paid_broadcast", "message_effect_id",
    "suggested_post_parameters", "reply_parameters", "reply_markup",
    "reply_to_message_id", "allow_sending_without_reply"))
_CAPTION = frozenset(("caption", "parse_mode", "caption_entities"))

PARAMETERS: dict[str, frozenset[str]] = {
    "getMe": frozenset(),
    "close": frozenset(),
    "logOut": frozenset(),
    "getUpdates": frozenset(("offset", "limit", "timeout", "allowed_updates")),
    "setWebhook": frozenset(("url", "certificate", "ip_address", "max_connections",
                             "allowed_updates", "drop_pending_updates", "secret_token")),
    "deleteWebhook": frozenset(("drop_pending_updates",)),
    "getWebhookInfo": frozenset(),
    "sendMessage": _SEND | {"text", "parse_mode", "entities", "link_preview_options",
                            "disable_web_page_preview"},
    "editMessageText": frozenset((
        "business_connection_id", "chat_id", "message_id", "inline_message_id", "text",
        "parse_mode", "entities", "link_preview_options", "reply_markup",
        "disable_web_page_preview")),
    "editMessageCaption": frozenset((
        "business_connection_id", "chat_id", "message_id", "inline_message_id", "caption",
        "parse_mode", "caption_entities", "show_caption_above_media", "reply_markup")),
    "editMessageReplyMarkup": frozenset((
        "business_connection_id", "chat_id", "message_id", "inline_message_id",
        "reply_markup")),
    "deleteMessage": frozenset(("chat_id", "message_id")),
    "deleteMessages": frozenset(("chat_id", "message_ids")),
    "answerCallbackQuery": frozenset(("callback_query_id", "text", "show_alert", "url",
                                      "cache_time")),
    "sendMediaGroup": (_SEND - {"reply_markup"}) | {"media"},
    "copyMessage": _SEND | _CAPTION | {"from_chat_id", "message_id", "video_start_timestamp",
                                       "show_caption_above_media"},
    "forwardMessage": frozenset((
        "chat_id", "message_thread_id", "direct_messages_topic_id", "from_chat_id",
        "message_id", "video_start_timestamp", "disable_notification", "protect_content",
        "suggested_post_parameters")),
    "getFile": frozenset(("file_id",)),
    "setMyCommands": frozenset(("commands", "scope", "language_code")),
    "getMyCommands": frozenset(("scope", "language_code")),
    "deleteMyCommands": frozenset(("scope", "language_code")),
    "setChatMenuButton": frozenset(("chat_id", "menu_button")),
    "getChatMenuButton": frozenset(("chat_id",)),
    "sendChatAction": frozenset(("business_connection_id", "chat_id", "message_thread_id",
                                 "action")),
    "getChat": frozenset(("chat_id",)),
    "setMyDescription": frozenset(("description", "language_code")),
    "setMyShortDescription": frozenset(("short_description", "language_code")),
    "setMyName": frozenset(("name", "language_code")),
    "sendPhoto": _SEND | _CAPTION | {"photo", "show_caption_above_media", "has_spoiler"},
    "sendDocument": _SEND | _CAPTION | {"document", "thumbnail",
                                        "disable_content_type_detection"},
    "sendVoice": _SEND | _CAPTION | {"voice", "duration"},
    "sendVideo": _SEND | _CAPTION | {"video", "duration", "width", "height", "thumbnail",
                                     "cover", "start_timestamp", "show_caption_above_media",
                                     "has_spoiler", "supports_streaming"},
    "sendVideoNote": _SEND | {"video_note", "duration", "length", "thumbnail"},
    "sendAudio": _SEND | _CAPTION | {"audio", "duration", "performer", "title", "thumbnail"},
}


def check_parameters(method: str, params: dict[str, object]) -> None:
    """Refuse a parameter `method` does not have (methods not listed are not checked). An
    uploaded file under another name is an ``attach://`` target, not a parameter."""
    known = PARAMETERS.get(method)
    if known is None:
        return
    unknown = sorted(k for k, v in params.items() if k not in known and not isinstance(v, Upload))
    if unknown:
        raise ApiError(400, f"Bad Request: method {method} has no parameter "
                            f"{', '.join(unknown)}")
