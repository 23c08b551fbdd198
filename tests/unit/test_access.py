"""The staff gate's pieces: signed button data, command names, and safe splitting of long text."""

from __future__ import annotations

import html
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from telegram import Message, MessageEntity

from bot.handlers.access import button_data, command_name, has_role, parse_button
from bot.handlers.common import esc
from bot.handlers.staff_view import escaped_chunks, pack_lines, text_blocks
from bot.services.crypto import load_keyring


def fake_deps(tmp_path: Path) -> Any:
    return SimpleNamespace(keys=load_keyring(tmp_path, None, None))


def test_button_data_is_signed_and_short(tmp_path: Path) -> None:
    d = fake_deps(tmp_path)
    data = button_data(d, "st", 2_000_000_000, "needs_info")
    assert len(data.encode()) <= 64
    assert parse_button(d, data) == ("st", 2_000_000_000, "needs_info")
    body, tag = data.rsplit(":", 1)
    for forged in (data.replace(":2000000000:", ":2000000001:"),
                   data.replace("needs_info", "closed"), body + ":AAAAAAAA", body,
                   "s:st:1:closed", "s:open:x::" + tag, ""):
        assert parse_button(d, forged) is None, forged
    other = fake_deps(tmp_path / "other")  # another installation's key
    assert parse_button(other, data) is None


def message(text: str, length: int | None = None) -> Message:
    entity = MessageEntity(MessageEntity.BOT_COMMAND, 0, length or len(text.split()[0]))
    return Message.de_json({"message_id": 1, "date": 0, "chat": {"id": 1, "type": "private"},
                            "text": text, "entities": [entity.to_dict()]}, None)


def test_command_names_as_command_handler_reads_them() -> None:
    assert command_name(message("/case 1234-5678"), "sandbox_bot") == "case"
    assert command_name(message("/CASE@Sandbox_Bot 1"), "sandbox_bot") == "case"
    assert command_name(message("/case@other_bot 1"), "sandbox_bot") is None
    assert command_name(None, "sandbox_bot") is None


def test_roles() -> None:
    assert has_role("admin", "admin") and has_role("admin", "staff")
    assert has_role("staff", "staff") and not has_role("staff", "admin")
    assert not has_role(None, "staff")


@given(st.text(alphabet=st.sampled_from("ab <>&\n«»🙏ئ王"), max_size=3000),
       st.integers(min_value=20, max_value=500))
def test_escaped_chunks_keep_every_character(text: str, budget: int) -> None:
    pieces = escaped_chunks(text, budget)
    for piece in pieces:
        assert len(piece.encode("utf-16-le")) // 2 <= budget
        assert esc(html.unescape(piece)) == piece  # no escape was cut in half
    joined = [html.unescape(p) for p in pieces]
    # Cuts drop only the line break they fall on.
    assert "".join(joined).replace("\n", "") == text.replace("\n", "")
    assert len("\n".join(joined)) >= len(text) - text.count("\n")


def test_long_story_blocks_fit_a_message() -> None:
    story = ("«Ерлан» \"исчез\"; <b>не</b> тег & амперсанд.\n" * 120).strip()
    blocks = text_blocks("<b>Story</b>", story)
    assert len(blocks) > 1 and all(len(b) <= 3800 for b in blocks)
    # The relative's text is quoted (L2): every block holds one <blockquote> around its part.
    body = "\n".join(blocks).removeprefix("<b>Story</b>\n")
    assert all(b.count("<blockquote>") == 1 and b.endswith("</blockquote>") for b in blocks)
    unquoted = body.replace("<blockquote>", "").replace("</blockquote>", "")
    assert html.unescape(unquoted) == story
    assert pack_lines(["a", "b"], limit=3) == ["a", "b"]
    assert pack_lines(["a", "b"]) == ["a\nb"]
