"""The sandbox Bot API emulator answers like Telegram: limits, error texts, updates, faults."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.ext import (
    Application,
    ApplicationBuilder,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    filters,
)

from bot.sandbox.emulator import Emulator
from bot.sandbox.htmlcheck import HtmlParseError, parse_html, to_api_entities
from bot.sandbox.terminal import chat_in_terminal

PARSE_ERROR = "Bad Request: can't parse entities: "


class Api:
    """Calls the emulator as a bot would, over HTTP, and returns (status, body)."""

    def __init__(self, emu: Emulator, session: aiohttp.ClientSession) -> None:
        self.emu = emu
        self.session = session

    async def __call__(self, method: str, **params: Any) -> tuple[int, dict[str, Any]]:
        url = f"{self.emu.base_url}/bot{self.emu.token}/{method}"
        async with self.session.post(url, json=params) as response:
            return response.status, await response.json()

    async def ok(self, method: str, **params: Any) -> Any:
        status, body = await self(method, **params)
        assert (status, body["ok"]) == (200, True), body
        return body["result"]

    async def error(self, method: str, **params: Any) -> tuple[int, str]:
        status, body = await self(method, **params)
        assert body["ok"] is False and body["error_code"] == status, body
        return status, body["description"]


@pytest.fixture
async def emu() -> AsyncIterator[Emulator]:
    emulator = Emulator(settle=0.02)
    await emulator.start()
    try:
        yield emulator
    finally:
        await emulator.stop()


@pytest.fixture
async def api(emu: Emulator) -> AsyncIterator[Api]:
    async with aiohttp.ClientSession() as session:
        yield Api(emu, session)


def keyboard(*data: str) -> dict[str, Any]:
    return {
        "inline_keyboard": [[{"text": f"b{i}", "callback_data": d} for i, d in enumerate(data)]]
    }


# -- HTML parse mode ---------------------------------------------------------------------


def test_html_valid_nesting_gives_plain_text_and_utf16_entities() -> None:
    plain, entities = parse_html(
        '<b>Bold <i>both</i></b> 🙂 <a href="https://x.org/?a=1&amp;b=2">link</a> '
        '<pre><code class="language-python">x</code></pre> <tg-spoiler>s</tg-spoiler> '
        "<blockquote expandable>q</blockquote> &lt;&gt;&quot;&#1241;"
    )
    assert plain == 'Bold both 🙂 link x s q <>"ә'
    assert to_api_entities(plain, entities) == [
        {"type": "bold", "offset": 0, "length": 9},
        {"type": "italic", "offset": 5, "length": 4},
        {"type": "text_link", "offset": 13, "length": 4, "url": "https://x.org/?a=1&b=2"},
        {"type": "pre", "offset": 18, "length": 1, "language": "python"},
        {"type": "spoiler", "offset": 20, "length": 1},
        {"type": "expandable_blockquote", "offset": 22, "length": 1},
    ]


@pytest.mark.parametrize(
    ("markup", "detail"),
    [
        ("a <br> b", 'Unsupported start tag "br" at byte offset 2'),
        ("Лагерь <script>", 'Unsupported start tag "script" at byte offset 13'),
        ("x < 5 and y", 'Unsupported start tag "" at byte offset 2'),
        ("<b>open", 'Can\'t find end tag corresponding to start tag "b"'),
        ("<b>x</i>", 'Unmatched end tag at byte offset 4, expected "</b>", found "</i>"'),
        ("x</b>", "Unexpected end tag at byte offset 1"),
        ("<b", "Unclosed start tag at byte offset 0"),
        ('<span class="x">y</span>', 'Tag "span" must have class "tg-spoiler" at byte offset 0'),
        ("AT&T", 'Unescaped "&" at byte offset 2'),
        ("&nbsp;", 'Unescaped "&" at byte offset 0'),
    ],
)
def test_html_errors_name_the_problem_and_byte_offset(markup: str, detail: str) -> None:
    with pytest.raises(HtmlParseError) as caught:
        parse_html(markup)
    assert caught.value.detail.startswith(detail)


def test_stray_ampersand_is_literal_when_not_strict() -> None:
    assert parse_html("AT&T &nbsp;", strict_entities=False) == ("AT&T &nbsp;", [])


async def test_text_length_is_measured_after_parsing(emu: Emulator, api: Api) -> None:
    await emu.user(1).send_text("hi", wait=False)
    exact = "<b>" + "x" * 4096 + "</b>"
    await api.ok("sendMessage", chat_id=1, text=exact, parse_mode="HTML")
    assert emu.user(1).last.plain == "x" * 4096
    assert await api.error("sendMessage", chat_id=1, text="x" * 4097) == (
        400,
        "Bad Request: message is too long",
    )
    assert await api.error("sendMessage", chat_id=1, text="<b> </b>", parse_mode="HTML") == (
        400,
        "Bad Request: message text is empty",
    )
    assert await api.error("sendMessage", chat_id=1, text="a <x> b", parse_mode="HTML") == (
        400,
        PARSE_ERROR + 'Unsupported start tag "x" at byte offset 2',
    )
    await api.ok("sendMessage", chat_id=1, text="<i>ok</i>")  # no parse_mode: shown as typed
    assert emu.user(1).last.plain == "<i>ok</i>"


# -- limits and errors -------------------------------------------------------------------


async def test_callback_data_is_limited_to_64_bytes(emu: Emulator, api: Api) -> None:
    await emu.user(1).send_text("hi", wait=False)
    await api.ok("sendMessage", chat_id=1, text="ok", reply_markup=keyboard("x" * 64))
    for bad in ("x" * 65, "ә" * 33, ""):
        assert await api.error("sendMessage", chat_id=1, text="no", reply_markup=keyboard(bad)) == (
            400,
            "Bad Request: BUTTON_DATA_INVALID",
        )
    assert [m.plain for m in emu.user(1).messages] == ["ok"]


async def test_caption_limit_and_unknown_chat(emu: Emulator, api: Api) -> None:
    emu.user(2)  # exists, but never wrote to the bot
    assert await api.error("sendMessage", chat_id=2, text="hi") == (
        400,
        "Bad Request: chat not found",
    )
    await emu.user(2).send_text("hi", wait=False)
    photo = (await emu.user(2).send_photo(wait=False)).file_id
    await api.ok("sendPhoto", chat_id=2, photo=photo, caption="c" * 1024)
    assert await api.error("sendPhoto", chat_id=2, photo=photo, caption="c" * 1025) == (
        400,
        "Bad Request: message caption is too long",
    )
    assert await api.error("sendPhoto", chat_id=2, photo="nonsense") == (
        400,
        "Bad Request: wrong file identifier/HTTP URL specified",
    )


async def test_blocked_user_gives_403_and_the_bot_is_told(emu: Emulator, api: Api) -> None:
    user = emu.user(3)
    await user.send_text("hi", wait=False)
    user.block()
    assert await api.error("sendMessage", chat_id=3, text="hello") == (
        403,
        "Forbidden: bot was blocked by the user",
    )
    updates = await api.ok("getUpdates")
    assert updates[-1]["my_chat_member"]["new_chat_member"]["status"] == "kicked"
    user.unblock()
    await api.ok("sendMessage", chat_id=3, text="hello again")


async def test_edits_and_deletes_follow_telegram(emu: Emulator, api: Api) -> None:
    user = emu.user(4)
    own = await user.send_text("mine", wait=False)
    sent = await api.ok("sendMessage", chat_id=4, text="v1", reply_markup=keyboard("a"))
    mid = sent["message_id"]
    same = {"chat_id": 4, "message_id": mid, "text": "v1", "reply_markup": keyboard("a")}
    status, description = await api.error("editMessageText", **same)
    assert (status, description.split(":")[0]) == (400, "Bad Request")
    assert "message is not modified" in description
    await api.ok("editMessageText", chat_id=4, message_id=mid, text="v2")
    assert (user.last.plain, user.last.buttons, len(user.last.edits)) == ("v2", [], 1)
    assert await api.error("editMessageText", chat_id=4, message_id=999, text="x") == (
        400,
        "Bad Request: message to edit not found",
    )
    await api.ok("deleteMessage", chat_id=4, message_id=own.message_id)  # the user's own
    assert await api.error("deleteMessage", chat_id=4, message_id=own.message_id) == (
        400,
        "Bad Request: message to delete not found",
    )
    assert [m.plain for m in user.visible] == ["v2"]
    assert own.deleted and not own.from_bot


async def test_callback_queries_expire_and_answer_once(emu: Emulator, api: Api) -> None:
    user = emu.user(5)
    await user.send_text("hi", wait=False)
    await api.ok("sendMessage", chat_id=5, text="pick", reply_markup=keyboard("a", "b"))
    with pytest.raises(AssertionError, match=r"\[\('b0', 'a'\), \('b1', 'b'\)\]"):
        await user.press("missing", wait=False)
    await user.press("b1", wait=False)
    await user.press("a", wait=False)
    updates = await api.ok("getUpdates")
    first, second = (u["callback_query"] for u in updates[-2:])
    assert (first["data"], second["data"]) == ("b", "a")
    await api.ok("answerCallbackQuery", callback_query_id=first["id"], text="Saved")
    too_old = "Bad Request: query is too old and response timeout expired or query ID is invalid"
    assert await api.error("answerCallbackQuery", callback_query_id=first["id"]) == (400, too_old)
    emu.advance_clock(15 * 60 + 1)
    assert await api.error("answerCallbackQuery", callback_query_id=second["id"]) == (400, too_old)
    assert user.answers[0].text == "Saved"


async def test_wrong_token_and_unknown_method(emu: Emulator, api: Api) -> None:
    async with api.session.post(f"{emu.base_url}/bot1:WRONG/getMe") as response:
        assert response.status == 401
        assert await response.json() == {
            "ok": False,
            "error_code": 401,
            "description": "Unauthorized",
        }
    assert await api.error("sendTelepathy") == (404, "Not Found")
    assert (await api.ok("getme"))["username"] == "sandbox_bot"  # names are case-insensitive


async def test_multipart_upload_is_stored_and_downloadable(emu: Emulator, api: Api) -> None:
    await emu.user(6).send_text("hi", wait=False)
    form = aiohttp.FormData()
    form.add_field("chat_id", "6")
    form.add_field("caption", "<b>scan</b>")
    form.add_field("parse_mode", "HTML")
    form.add_field("reply_markup", '{"inline_keyboard": [[{"text": "A", "callback_data": "a"}]]}')
    form.add_field(
        "document", b"%PDF-1.4 bytes", filename="scan.pdf", content_type="application/pdf"
    )
    url = f"{emu.base_url}/bot{emu.token}/sendDocument"
    async with api.session.post(url, data=form) as response:
        body = await response.json()
    assert body["ok"], body
    document = body["result"]["document"]
    assert (document["file_name"], document["file_size"]) == ("scan.pdf", 14)
    assert emu.user(6).last.buttons == [[("A", "a")]]
    file = await api.ok("getFile", file_id=document["file_id"])
    async with api.session.get(f"{emu.base_url}/file/bot{emu.token}/{file['file_path']}") as r:
        assert await r.read() == b"%PDF-1.4 bytes"


# -- updates -------------------------------------------------------------------------------


async def test_get_updates_long_polls_and_confirms_by_offset(emu: Emulator, api: Api) -> None:
    user = emu.user(7)
    poll = asyncio.create_task(api.ok("getUpdates", timeout=5))
    await asyncio.sleep(0.05)
    assert not poll.done()
    await user.send_command("start", "deep-link", wait=False)
    updates = await asyncio.wait_for(poll, 2)
    message = updates[0]["message"]
    assert message["text"] == "/start deep-link"
    assert message["entities"] == [{"type": "bot_command", "offset": 0, "length": 6}]
    again = await api.ok("getUpdates", offset=updates[0]["update_id"])
    assert [u["update_id"] for u in again] == [updates[0]["update_id"]]  # not yet confirmed
    assert await api.ok("getUpdates", offset=updates[0]["update_id"] + 1) == []


async def test_rate_limits_answer_429_with_retry_after() -> None:
    async with Emulator(per_chat_rate=1, global_rate=3) as emu, aiohttp.ClientSession() as s:
        api = Api(emu, s)
        for uid in (1, 2, 3, 4):
            await emu.user(uid).send_text("hi", wait=False)
        await api.ok("sendMessage", chat_id=1, text="one")
        status, body = await api("sendMessage", chat_id=1, text="two")
        assert (status, body["parameters"]) == (429, {"retry_after": 1})
        assert body["description"] == "Too Many Requests: retry after 1"
        await api.ok("sendMessage", chat_id=2, text="one")
        await api.ok("editMessageText", chat_id=1, message_id=2, text="edits are not counted")
        await api.ok("sendMessage", chat_id=3, text="one")
        assert (await api.error("sendMessage", chat_id=4, text="over global"))[0] == 429
        assert emu.stats["429"] == 2
        assert emu.sent_count == 3


async def test_fault_injection_counts_and_does_not_deliver(emu: Emulator, api: Api) -> None:
    await emu.user(8).send_text("hi", wait=False)
    emu.set_faults(1.0, kinds=("500", "502", "429"), seed=7, methods={"sendMessage"})
    results = [await api("sendMessage", chat_id=8, text="x") for _ in range(20)]
    assert Counter(str(status) for status, _ in results) == emu.faults_injected
    assert sum(emu.faults_injected.values()) == 20 and len(emu.faults_injected) == 3
    assert {body["description"] for _, body in results} == {
        "Internal Server Error",
        "Bad Gateway",
        "Too Many Requests: retry after 1",
    }
    assert emu.stats["429"] == emu.faults_injected["429"]
    assert emu.user(8).messages == []
    await api.ok("getMe")  # other methods untouched
    emu.set_faults(1.0, kinds=("drop",))
    with pytest.raises(aiohttp.ClientError):
        await api("sendMessage", chat_id=8, text="x")
    emu.set_faults(1.0, kinds=("slow",), slow_seconds=0.05)
    await api.ok("sendMessage", chat_id=8, text="late but delivered")
    emu.set_faults(0)
    await api.ok("sendMessage", chat_id=8, text="normal")
    assert [m.plain for m in emu.user(8).messages] == ["late but delivered", "normal"]
    assert (emu.faults_injected["drop"], emu.faults_injected["slow"]) == (1, 1)


async def test_webhook_receives_updates_with_secret_header(emu: Emulator, api: Api) -> None:
    received: asyncio.Queue[tuple[str | None, dict[str, Any]]] = asyncio.Queue()

    async def hook(request: web.Request) -> web.Response:
        secret = request.headers.get("X-Telegram-Bot-Api-Secret-Token")
        await received.put((secret, await request.json()))
        return web.Response()

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    port = runner.addresses[0][1]
    try:
        url = f"http://127.0.0.1:{port}/hook"
        await api.ok("setWebhook", url=url, secret_token="s3cret-token_1")
        await emu.user(9).send_text("via webhook", wait=False)
        secret, update = await asyncio.wait_for(received.get(), 5)
        assert secret == "s3cret-token_1"
        assert update["message"]["text"] == "via webhook"
        info = await api.ok("getWebhookInfo")
        assert (info["url"], info["pending_update_count"]) == (url, 0)
        status, description = await api.error("getUpdates")
        assert status == 409 and description.startswith("Conflict: can't use getUpdates method")
        await api.ok("deleteWebhook")
        await emu.user(9).send_text("via polling", wait=False)
        assert (await api.ok("getUpdates"))[0]["message"]["text"] == "via polling"
    finally:
        await runner.cleanup()


async def test_commands_per_language_and_user_timeout(emu: Emulator, api: Api) -> None:
    await api.ok("setMyCommands", commands=[{"command": "start", "description": "Start"}])
    ru = [{"command": "start", "description": "Начать"}]
    await api.ok("setMyCommands", commands=ru, language_code="ru")
    assert emu.commands[("default", "ru")] == ru
    assert emu.user(10, language_code="ru").commands == [("start", "Начать")]
    assert emu.user(11, language_code="kk").commands == [("start", "Start")]
    with pytest.raises(TimeoutError, match="chat 10"):
        await emu.user(10).send_text("nobody polls", timeout=0.2)


# -- the real python-telegram-bot Application --------------------------------------------


async def _start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    buttons = [[InlineKeyboardButton("Қазақша", callback_data="lang:kk")]]
    buttons.append([InlineKeyboardButton("Русский", callback_data="lang:ru")])
    assert update.effective_message is not None
    await update.effective_message.reply_html(
        "<b>Сәлем!</b> Тілді таңдаңыз", reply_markup=InlineKeyboardMarkup(buttons)
    )


async def _chosen(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    query = update.callback_query
    assert query is not None
    await query.answer("✓")
    await query.edit_message_text(f"Выбран язык: {query.data}")


async def _photo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    assert update.message is not None
    photo = await update.message.photo[-1].get_file()
    data = await photo.download_as_bytearray()
    await update.message.reply_document(bytes(data), filename="copy.jpg", caption="received")


async def test_real_application_over_http(emu: Emulator) -> None:
    app: Application[Any, Any, Any, Any, Any, Any] = (
        ApplicationBuilder()
        .token(emu.token)
        .base_url(f"{emu.base_url}/bot")
        .base_file_url(f"{emu.base_url}/file/bot")
        .build()
    )
    app.add_handler(CommandHandler("start", _start))
    app.add_handler(CallbackQueryHandler(_chosen))
    app.add_handler(MessageHandler(filters.PHOTO, _photo))
    await app.initialize()
    await app.start()
    assert app.updater is not None
    await app.updater.start_polling(poll_interval=0, timeout=1)
    try:
        user = emu.user(42, first_name="Әлия", language_code="kk")
        await user.send_command("start")
        assert user.last.plain == "Сәлем! Тілді таңдаңыз"
        assert user.last.buttons == [[("Қазақша", "lang:kk")], [("Русский", "lang:ru")]]
        answer = await user.press("Русский")
        assert answer is not None and answer.text == "✓"
        assert user.last.plain == "Выбран язык: lang:ru"
        assert user.last.buttons == []
        sent = await user.send_photo(b"\xff\xd8 fake jpeg")
        assert (user.last.kind, user.last.plain) == ("document", "received")
        returned = emu.world.files.get(str(user.last.file_id))
        assert returned is not None and returned.data == b"\xff\xd8 fake jpeg"
        assert [m.message_id for m in user.visible] == [1, 2, sent.message_id, 4]
        await emu.wait_idle(quiet=0.05, timeout=5)
    finally:
        await app.updater.stop()
        await app.stop()
        await app.shutdown()
    assert emu.internal_errors == []


# -- the terminal chat -------------------------------------------------------------------


async def _scripted_bot(api: Api) -> None:
    """A minimal bot over raw HTTP: a keyboard for every message, an edit for every press."""
    offset = 0
    while True:
        for update in await api.ok("getUpdates", offset=offset, timeout=1):
            offset = update["update_id"] + 1
            if "message" in update:
                chat_id = update["message"]["chat"]["id"]
                markup = keyboard("a", "b")
                text = "<b>Choose</b> one"
                await api.ok(
                    "sendMessage",
                    chat_id=chat_id,
                    text=text,
                    parse_mode="HTML",
                    reply_markup=markup,
                )
            elif "callback_query" in update:
                query = update["callback_query"]
                await api.ok("answerCallbackQuery", callback_query_id=query["id"], text="noted")
                where = {"chat_id": query["message"]["chat"]["id"]}
                where["message_id"] = query["message"]["message_id"]
                await api.ok("editMessageText", **where, text=f"chose {query['data']}")


async def test_terminal_chat_survives_odd_input(
    emu: Emulator, api: Api, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = iter(["/start", "2", "99", "'1", "/photo", "\x00 <b> &", "   ", "/sticker"])

    def fake_input(prompt: str = "") -> str:
        try:
            return next(lines)
        except StopIteration:
            raise EOFError from None

    monkeypatch.setattr("builtins.input", fake_input)
    bot = asyncio.create_task(_scripted_bot(api))
    try:
        await asyncio.wait_for(chat_in_terminal(emu, user_id=77, language_code="kk"), 20)
    finally:
        bot.cancel()
    shown = capsys.readouterr().out
    assert "*Choose* one\n  [1] b0  [2] b1" in shown
    assert "bot (edited):\n  chose b" in shown
    assert "(notice: noted)" in shown
    assert shown.rstrip().endswith("bye")
    sent = [m.plain for m in emu.user(77).all_messages if not m.from_bot]
    assert sent == ["/start", "99", "1", "", "\x00 <b> &", ""]
    assert emu.user(77).language_code == "kk"


async def test_user_actions_build_telegram_shaped_updates(emu: Emulator, api: Api) -> None:
    user = emu.user(12, username="aliya")
    group = emu.group(-100, "Families")
    await user.in_chat(group).send_command("status", wait=False)
    await user.send_animation(wait=False)
    album = await user.send_media_group([b"one", ("document", b"two")], caption="both", wait=False)
    await user.send_raw(
        {
            "channel_post": {
                "message_id": 1,
                "date": 0,
                "chat": {"id": -5, "type": "channel"},
                "text": "x",
            }
        },
        wait=False,
    )
    updates = await api.ok("getUpdates")
    kinds = [next(k for k in u if k != "update_id") for u in updates]
    assert kinds == ["message", "message", "message", "message", "channel_post"]
    in_group, gif, first, second = (u["message"] for u in updates[:4])
    assert (in_group["chat"]["type"], in_group["from"]["username"]) == ("group", "aliya")
    assert {"animation", "document"} <= gif.keys()
    assert first["media_group_id"] == second["media_group_id"] and first["caption"] == "both"
    assert [m.kind for m in album] == ["photo", "document"]
    await api.ok("sendMessage", chat_id=-100, text="group reply")
    assert [m.plain for m in group.messages] == ["group reply"]
    waiting = asyncio.create_task(user.wait_for("later", timeout=2))
    await api.ok("sendMessage", chat_id=12, text="much later")
    assert (await waiting).plain == "much later"
