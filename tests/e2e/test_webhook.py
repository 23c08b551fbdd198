"""Webhook mode through the emulator: Telegram's secret token is checked on every request."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sqlite3
import sys
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bot.checks import run_checks
from bot.config import Settings
from bot.i18n import LANGUAGE_NAMES
from bot.runner import run_bot
from bot.sandbox.emulator import Emulator
from tests.e2e.conftest import click, tr
from tests.journeys import prompt

SECRET = "webhook_Secret-0123456789abcdefghijklmnop"  # 40 characters
ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def webhook_settings(emulator: Emulator, data_dir: Path, port: int, **extra: Any) -> Settings:
    values: dict[str, Any] = {
        "token": emulator.token, "api_base_url": emulator.base_url, "data_dir": data_dir,
        "webhook_url": f"http://127.0.0.1:{port}/telegram/hook", "webhook_listen": "127.0.0.1",
        "webhook_port": port, "webhook_secret": SECRET, **extra}
    return Settings(**values)


async def wait_for_webhook(emulator: Emulator, timeout: float = 15.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not emulator.webhook_url:
        assert asyncio.get_running_loop().time() < deadline, "the bot never set its webhook"
        await asyncio.sleep(0.02)


def forged_update(user_id: int) -> dict[str, Any]:
    user = {"id": user_id, "is_bot": False, "first_name": "Forger", "language_code": "en"}
    return {"update_id": 777_000, "message": {
        "message_id": 1, "date": 1_700_000_000, "chat": {"id": user_id, "type": "private"},
        "from": user, "text": "/start", "entities": [{"type": "bot_command", "offset": 0,
                                                      "length": 6}]}}


async def test_webhook_updates_need_the_secret(emulator: Emulator, tmp_path: Path) -> None:
    port = free_port()
    settings = webhook_settings(emulator, tmp_path / "data", port)
    stop = asyncio.Event()
    # BOT_WEBHOOK_URL set and no flag: webhook mode is chosen by the setting alone.
    task = asyncio.create_task(run_bot(settings, stop=stop))
    try:
        await wait_for_webhook(emulator)
        assert emulator.delivery.secret == SECRET
        assert emulator.webhook_url == settings.webhook_url

        # Updates Telegram posts (with the right secret) are processed.
        user = emulator.user(4242, language_code="en")
        await user.send_text("/start")
        await user.press(LANGUAGE_NAMES["en"])
        assert prompt("en", "consent_store").split("\n")[0] in user.last.plain

        # A POST without the secret, or with a wrong one, is refused and changes nothing.
        url = settings.webhook_url
        async with aiohttp.ClientSession() as http:
            for headers in ({}, {"X-Telegram-Bot-Api-Secret-Token": "wrong"},
                            {"X-Telegram-Bot-Api-Secret-Token": SECRET + "x"}):
                async with http.post(url, json=forged_update(5555), headers=headers) as r:
                    assert r.status == 403
        await asyncio.sleep(0.3)
        assert not [c for c in emulator.calls if str(c[1].get("chat_id")) == "5555"]
        assert "getUpdates" not in {c[0] for c in emulator.calls}

        # The journey goes on through the webhook.
        before = len(user.messages)
        await click(user, "opt", "agree")
        assert len(user.messages) > before
        assert prompt("en", "consent_share") in user.last.plain
    finally:
        stop.set()
        assert await asyncio.wait_for(task, 30) == 0
    conn = sqlite3.connect(settings.db_path)
    try:
        ids = {r[0] for r in conn.execute("SELECT user_id FROM users")}
    finally:
        conn.close()
    assert 4242 in ids and 5555 not in ids
    # The webhook stays registered: Telegram keeps updates for the next start, and `check`
    # reports that they cannot be delivered while the bot is down.
    assert emulator.webhook_url == settings.webhook_url
    await user.send_text("/help", wait=False)
    for _ in range(100):
        if emulator.delivery.last_error is not None:
            break
        await asyncio.sleep(0.02)
    report = await run_checks(settings)
    assert report.problems == [
        "BOT_WEBHOOK_URL: Telegram cannot deliver updates (Connection failed: "
        "ClientConnectorError); 1 waiting"], report.problems


async def test_webhook_mode_refuses_to_start_without_a_secret(
        emulator: Emulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    settings = webhook_settings(emulator, tmp_path / "data", free_port(), webhook_secret="")
    assert await run_bot(settings, webhook=True) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("BOT_WEBHOOK_SECRET is not set")
    no_url = settings.model_copy(update={"webhook_url": "", "webhook_secret": SECRET})
    assert await run_bot(no_url, webhook=True) == 2
    assert capsys.readouterr().err.startswith("BOT_WEBHOOK_URL is not set")
    assert not emulator.webhook_url


async def test_sigterm_in_webhook_mode(emulator: Emulator, tmp_path: Path) -> None:
    """`python -m bot run --webhook` finishes the update in hand and exits 0 on SIGTERM."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("BOT_")}
    env.update(PYTHONPATH=str(ROOT), BOT_TOKEN=emulator.token,
               BOT_API_BASE_URL=emulator.base_url, BOT_DATA_DIR=str(tmp_path / "data"),
               BOT_WEBHOOK_URL=f"http://127.0.0.1:{port}/hook", BOT_WEBHOOK_PORT=str(port),
               BOT_WEBHOOK_SECRET=SECRET)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "run", "--webhook", cwd=tmp_path, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        await wait_for_webhook(emulator)
        user = emulator.user(4343, language_code="en")
        await user.send_text("/start", timeout=15)
        await user.press(LANGUAGE_NAMES["en"], wait=False)
        proc.send_signal(signal.SIGTERM)
        _out, err = await asyncio.wait_for(proc.communicate(), 30)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode == 0, err.decode()
    log = err.decode()
    assert "stopping: finishing the updates in hand" in log
    assert emulator.token not in log
    # The press was either answered before the exit or is still queued at Telegram.
    answered = prompt("en", "consent_store").split("\n")[0] in user.last.plain
    assert answered or emulator.world.updates, log
    assert tr("en", "Missing person %(number)s", number=1) not in user.last.plain


def _rss_kb() -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


async def _raw_request(port: int, head: str, body: bytes = b"") -> tuple[str, float]:
    """Send a request's head (and the start of a body) and read the answer's status line
    without sending the rest: (status line, seconds it took)."""
    started = asyncio.get_running_loop().time()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(head.encode() + body)
        await writer.drain()
        line = await asyncio.wait_for(reader.readline(), 5)
    finally:
        writer.close()
    return line.decode().strip(), asyncio.get_running_loop().time() - started


async def test_webhook_refuses_big_bodies_unread_and_compares_the_secret_in_full(
        emulator: Emulator, tmp_path: Path) -> None:
    """Security review L1: a body over 1 MB is refused from its length before it is read
    (the answer comes while the client has sent only a few bytes of it), one sent without a
    length is cut off at 1 MB, and memory does not grow; updates still arrive."""
    port = free_port()
    settings = webhook_settings(emulator, tmp_path / "data", port)
    stop = asyncio.Event()
    task = asyncio.create_task(run_bot(settings, stop=stop))
    try:
        await wait_for_webhook(emulator)
        path = "/telegram/hook"
        big = 50 * 1024 * 1024

        # 50 MB announced, 10 bytes sent: refused at once, unread (413), with the secret;
        # without it 403 (the same for a missing and a wrong secret).
        for headers, status in ((f"X-Telegram-Bot-Api-Secret-Token: {SECRET}\r\n", "413"),
                                ("", "403"),
                                ("X-Telegram-Bot-Api-Secret-Token: x\r\n", "403")):
            head = (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{headers}"
                    f"Content-Type: application/json\r\nContent-Length: {big}\r\n\r\n")
            line, seconds = await _raw_request(port, head, b'{"update_')
            assert line.split()[1] == status, line
            assert seconds < 2.0

        # Bodies without a length (chunked), 8 MB each: cut off at 1 MB; memory stays flat.
        async def chunks() -> Any:
            block = b" " * 65536
            for _ in range(128):
                yield block

        before = _rss_kb()
        statuses = []
        async with aiohttp.ClientSession() as http:
            for _ in range(5):
                try:
                    async with http.post(settings.webhook_url, data=chunks(), headers={
                            "X-Telegram-Bot-Api-Secret-Token": SECRET}) as r:
                        statuses.append(r.status)
                except (aiohttp.ClientError, ConnectionError):
                    statuses.append(0)  # closed by the server while the body was coming
        assert set(statuses) <= {413, 0}, statuses
        assert _rss_kb() - before < 20_000, (before, _rss_kb())

        # An update of an ordinary size still goes through, and the bot answers.
        user = emulator.user(4545, language_code="en")
        await user.send_text("/start")
        assert user.last.buttons
    finally:
        stop.set()
        assert await asyncio.wait_for(task, 30) == 0
