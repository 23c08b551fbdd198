"""The Bot API transport's JSON: orjson for speed, the library's parser for what orjson refuses."""

from __future__ import annotations

import pytest
from telegram.error import TelegramError

from bot.telegram.http import AiohttpRequest

parse = AiohttpRequest.parse_json_payload


def test_ordinary_answers_parse_to_the_same_dict_as_the_library() -> None:
    raw = '{"ok":true,"result":{"message_id":7,"text":"Әлия 王 \\"q\\" 🙂","chat":{"id":-100}}}'
    assert parse(raw.encode()) == {"ok": True, "result": {
        "message_id": 7, "text": "Әлия 王 \"q\" 🙂", "chat": {"id": -100}}}


def test_what_orjson_refuses_is_still_read() -> None:
    # A lone surrogate (Telegram counts in UTF-16) and bytes that are not UTF-8.
    assert parse(b'{"ok":true,"result":"\\ud800x"}')["result"] == "\ud800x"
    assert parse(b'{"ok":true,"result":"\xff"}')["result"] == "\ufffd"


@pytest.mark.parametrize("payload", [b"not json", b"[1, 2]", b""])
def test_unreadable_answers_are_a_telegram_error(payload: bytes) -> None:
    with pytest.raises(TelegramError, match="Invalid server response"):
        parse(payload)
