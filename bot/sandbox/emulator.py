"""A local Telegram Bot API server, so the real bot runs over real HTTP with no Telegram at all.

End-to-end tests, `python -m bot sandbox` and chaos tests point python-telegram-bot at it:

    emu = Emulator()
    await emu.start()
    app = (ApplicationBuilder().token(emu.token).base_url(f"{emu.base_url}/bot")
           .base_file_url(f"{emu.base_url}/file/bot").build())
    user = emu.user(42, language_code="ru")
    await user.send_command("start")

It enforces Telegram's limits and error texts, can be rate-limited like Telegram and can inject
faults. Nothing it logs contains message text or user data.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import Counter, deque
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web

from bot.sandbox.botapi import (
    LOCAL_MAX_DOWNLOAD,
    MAX_UPLOAD,
    MEDIA_METHODS,
    BotApi,
    Params,
    as_int,
)
from bot.sandbox.delivery import UpdateDelivery
from bot.sandbox.httpparams import read_params
from bot.sandbox.params import check_parameters
from bot.sandbox.simusers import SimChat, SimUser
from bot.sandbox.world import (
    JSON,
    ApiError,
    SentMessage,
    World,
    wait_event,
)

logger = logging.getLogger(__name__)

FAULT_KINDS = ("429", "500", "502", "drop", "slow")
RATE_COUNTED = {*MEDIA_METHODS, "sendMessage", "sendMediaGroup", "copyMessage", "forwardMessage"}
TRANSPORT_METHODS = (
    "getUpdates",
    "setWebhook",
    "deleteWebhook",
    "getWebhookInfo",
    "close",
    "logOut",
)
LOOPBACK = ("127.0.0.1", "::1", "localhost")
UNAUTHORIZED = {"ok": False, "error_code": 401, "description": "Unauthorized"}
NOT_FOUND = {"ok": False, "error_code": 404, "description": "Not Found"}


class _Window:
    """A sliding window of recent sends; rates below 1/s widen the window instead."""

    def __init__(self, rate: float) -> None:
        self.span = 1.0 if rate >= 1 else 1.0 / rate
        self.capacity = max(1, int(rate * self.span))
        self.stamps: deque[float] = deque()

    def retry_after(self, now: float) -> int | None:
        while self.stamps and self.stamps[0] <= now - self.span:
            self.stamps.popleft()
        if len(self.stamps) < self.capacity:
            return None
        return max(1, int(self.stamps[0] + self.span - now + 0.999))

    def add(self, now: float) -> None:
        self.stamps.append(now)


@dataclass
class _FaultPlan:
    rate: float
    kinds: tuple[str, ...]
    rng: random.Random
    slow_seconds: float
    methods: set[str] | None

    def pick(self, method: str) -> str | None:
        if self.methods is not None and method.lower() not in self.methods:
            return None
        draw = self.rng.random()
        if draw >= self.rate:
            return None
        # One draw decides both whether and which, so kinds come out evenly for any seed.
        return self.kinds[min(int(draw / self.rate * len(self.kinds)), len(self.kinds) - 1)]


class Emulator:
    """The Bot API server plus its simulated users."""

    def __init__(
        self,
        token: str = "123456:SANDBOX",  # noqa: S107 - a fake token that only the sandbox knows
        *,
        bot_username: str = "sandbox_bot",
        global_rate: float | None = None,
        per_chat_rate: float | None = None,
        settle: float = 0.08,
        strict_html: bool = True,
        self_hosted: bool = False,
        local_dir: Path | None = None,
    ) -> None:
        self.token = token
        bot_id = as_int(token.split(":", 1)[0]) or 123456
        bot_user: JSON = {
            "id": bot_id,
            "is_bot": True,
            "first_name": "Sandbox Bot",
            "username": bot_username,
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
        }
        self.world = World(bot_user, settle)
        self.api = BotApi(self.world, strict_html=strict_html)
        if self_hosted:  # a self-hosted Bot API server: downloads up to 2000 MB
            self.api.max_download = LOCAL_MAX_DOWNLOAD
            # --local mode: getFile answers with a path on this machine's disk
            self.api.local_dir = local_dir
        # File downloads: an outage answers 502 to every download (getFile still works, as
        # when Telegram's file servers fail alone); a rate in bytes/s streams them slowly.
        self.file_outage = False
        self.download_rate: float | None = None
        self.calls: list[tuple[str, Params, int]] = []
        self.stats: Counter[str] = Counter()
        self.faults_injected: Counter[str] = Counter()
        self.internal_errors: list[str] = []
        self.global_rate = global_rate
        self.per_chat_rate = per_chat_rate
        self._global_window = _Window(global_rate) if global_rate else None
        self._chat_windows: dict[int, _Window] = {}
        self._faults: _FaultPlan | None = None
        self._users: dict[int, SimUser] = {}
        self._names = {name.lower(): name for name in (*self.api.methods, *TRANSPORT_METHODS)}
        self.delivery = UpdateDelivery(self.world)
        self._runner: web.AppRunner | None = None
        self._port = 0
        self._host = "127.0.0.1"

    # -- lifecycle -----------------------------------------------------------------------

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        if host not in LOOPBACK:
            raise ValueError("the sandbox only listens on loopback")
        app = web.Application(client_max_size=MAX_UPLOAD + 2**20)
        app.router.add_route("*", "/bot{token}/{method}", self._handle_method)
        app.router.add_route("GET", "/file/bot{token}/{path:.+}", self._handle_file)
        app.router.add_route("*", "/{tail:.*}", self._handle_unknown)
        self._runner = web.AppRunner(
            app, access_log=None, handle_signals=False, shutdown_timeout=0.5
        )
        await self._runner.setup()
        await web.TCPSite(self._runner, host, port).start()
        self._host = host
        self._port = int(self._runner.addresses[0][1])
        await self.delivery.start()

    async def stop(self) -> None:
        await self.delivery.stop()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Emulator:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def base_url(self) -> str:
        host = f"[{self._host}]" if ":" in self._host else self._host
        return f"http://{host}:{self._port}"

    # -- what tests use ------------------------------------------------------------------

    def user(
        self,
        user_id: int,
        *,
        first_name: str = "Test",
        language_code: str | None = "en",
        username: str | None = None,
    ) -> SimUser:
        """The simulated user with this id, the same object on every call.

        Calling again with a non-default value changes that field, so `emu.user(5)` fetches
        user 5 without resetting a language set earlier (or assign `user.language_code`).
        """
        user = self._users.get(user_id)
        if user is None:
            user = SimUser(
                self.world,
                user_id,
                first_name=first_name,
                language_code=language_code,
                username=username,
            )
            self._users[user_id] = user
            return user
        if first_name != "Test":
            user.first_name = first_name
        if language_code != "en":
            user.language_code = language_code
        if username is not None:
            user.username = username
        return user

    def group(self, chat_id: int, title: str = "Group") -> SimChat:
        return SimChat(self.world, chat_id, title)

    @property
    def commands(self) -> dict[tuple[str, str], list[JSON]]:
        """setMyCommands results by (scope, language_code); "" is the language default."""
        return self.world.commands

    @property
    def sent_count(self) -> int:
        """Messages the bot delivered (an album counts each of its messages)."""
        return self.stats["sent"]

    @property
    def webhook_url(self) -> str:
        return self.delivery.url

    def messages_in(self, chat_id: int) -> list[SentMessage]:
        chat = self.world.chats.get(chat_id)
        return list(chat.messages) if chat else []

    def advance_clock(self, seconds: float) -> None:
        """Moves Telegram's clock forward (callback queries expire, deletion windows close)."""
        self.world.clock_offset += seconds

    def set_faults(
        self,
        rate: float,
        kinds: Sequence[str] = FAULT_KINDS,
        seed: int | None = None,
        slow_seconds: float = 15.0,
        methods: set[str] | None = None,
    ) -> None:
        """Makes that share of calls fail like a flaky Telegram; set_faults(0) turns it off."""
        unknown = set(kinds) - set(FAULT_KINDS)
        if unknown or not kinds:
            raise ValueError(f"fault kinds must be among {FAULT_KINDS}, not {sorted(unknown)}")
        if not 0 <= rate <= 1:
            raise ValueError("rate is a share of calls, between 0 and 1")
        if rate == 0:
            self._faults = None
            return
        wanted = {m.lower() for m in methods} if methods is not None else None
        self._faults = _FaultPlan(rate, tuple(kinds), random.Random(seed), slow_seconds, wanted)

    async def wait_idle(self, quiet: float = 0.2, timeout: float = 30.0) -> None:
        """Waits until the bot fetched every update and made no call for `quiet` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            now = time.monotonic()
            pending = self.world.undelivered()
            idle_for = now - self.world.last_activity
            if not pending and idle_for >= quiet:
                return
            if now >= deadline:
                raise TimeoutError(
                    f"sandbox not idle after {timeout:g}s: {pending} updates not fetched, "
                    f"last call {idle_for:.2f}s ago"
                )
            pause = quiet - idle_for if not pending else quiet
            await wait_event(self.world.changed, min(deadline - now, max(pause, 0.01)))

    # -- HTTP ----------------------------------------------------------------------------

    async def _handle_unknown(self, request: web.Request) -> web.Response:
        return web.json_response(NOT_FOUND, status=404)

    async def _handle_file(self, request: web.Request) -> web.StreamResponse:
        if request.match_info["token"] != self.token:
            return web.json_response(UNAUTHORIZED, status=401)
        if self.file_outage:
            self.stats["download_outages"] += 1
            return web.json_response(
                {"ok": False, "error_code": 502, "description": "Bad Gateway"}, status=502)
        stored = self.world.files.by_path(request.match_info["path"])
        if stored is None:
            return web.json_response(NOT_FOUND, status=404)
        if stored.size > self.api.max_download:  # as Telegram: only what getFile allows
            return web.json_response(
                {"ok": False, "error_code": 400, "description": "Bad Request: file is too big"},
                status=400)
        self.stats["downloads"] += 1
        content_type = stored.mime_type or "application/octet-stream"
        if self.download_rate is None:
            return web.Response(body=stored.data, content_type=content_type)
        response = web.StreamResponse(headers={"Content-Type": content_type,
                                               "Content-Length": str(stored.size)})
        await response.prepare(request)
        step = max(1024, int(self.download_rate / 20))
        for start in range(0, stored.size, step):
            await response.write(stored.data[start:start + step])
            await asyncio.sleep(step / self.download_rate)
        await response.write_eof()
        return response

    async def _handle_method(self, request: web.Request) -> web.StreamResponse:
        if request.match_info["token"] != self.token:
            return web.json_response(UNAUTHORIZED, status=401)
        asked = request.match_info["method"]
        try:
            params = await read_params(request)
        except ApiError as error:
            self._record(asked, {}, error.code)
            return web.json_response(error.to_json(), status=error.code)
        method = self._names.get(asked.lower())
        if method is None:
            self._record(asked, params, 404)
            return web.json_response(NOT_FOUND, status=404)
        plan = self._faults
        fault = plan.pick(method) if plan is not None else None
        if plan is not None and fault is not None:
            self.faults_injected[fault] += 1
            logger.debug("sandbox injects %s into %s", fault, method)
            if fault != "slow":
                return self._fault_response(fault, request, method, params)
            await asyncio.sleep(plan.slow_seconds)
        status, body = await self._answer(method, params)
        self._record(method, params, status)
        return web.json_response(body, status=status)

    def _fault_response(
        self, fault: str, request: web.Request, method: str, params: Params
    ) -> web.Response:
        if fault == "drop":
            self._record(method, params, 0)
            if request.transport is not None:
                request.transport.close()
            return web.Response(status=500)
        error = {
            "429": ApiError(429, "Too Many Requests: retry after 1", retry_after=1),
            "500": ApiError(500, "Internal Server Error"),
            "502": ApiError(502, "Bad Gateway"),
        }[fault]
        if error.code == 429:
            self.stats["429"] += 1
        self._record(method, params, error.code)
        return web.json_response(error.to_json(), status=error.code)

    async def _answer(self, method: str, params: Params) -> tuple[int, JSON]:
        try:
            result, description = await self._execute(method, params)
        except ApiError as error:
            if error.code == 429:
                self.stats["429"] += 1
            return error.code, error.to_json()
        except Exception as error:  # a sandbox bug must not look like a Telegram answer
            logger.exception("sandbox failed while handling %s", method)
            self.internal_errors.append(f"{method}: {type(error).__name__}: {error}")
            return 500, {"ok": False, "error_code": 500, "description": "Internal Server Error"}
        body: JSON = {"ok": True, "result": result}
        if description:
            body["description"] = description
        return 200, body

    def _record(self, method: str, params: Params, status: int) -> None:
        self.calls.append((method, params, status))
        self.stats["calls"] += 1
        logger.debug("sandbox %s -> %s", method, status)
        if method == "getUpdates":
            return
        chat_id = as_int(params.get("chat_id"))
        if method == "answerCallbackQuery":
            query = self.world.queries.get(str(params.get("callback_query_id", "")))
            chat_id = query.chat_id if query is not None else None
        reaction = method == "answerCallbackQuery" or (
            method.startswith(("send", "edit", "delete", "copy", "forward"))
            and method != "sendChatAction"
        )
        self.world.touch(chat_id, reaction=reaction)

    async def _execute(self, method: str, params: Params) -> tuple[Any, str | None]:
        check_parameters(method, params)
        if method == "getUpdates":
            return await self.delivery.get_updates(params), None
        if method == "setWebhook":
            return True, self.delivery.set_webhook(params)
        if method == "deleteWebhook":
            return True, self.delivery.delete_webhook(params)
        if method == "getWebhookInfo":
            return self.delivery.webhook_info(), None
        if method in ("close", "logOut"):
            return True, None
        if method not in RATE_COUNTED:
            return self.api.methods[method](params), None
        chat_id = as_int(params.get("chat_id"))
        now = time.monotonic()
        chat_window = self._chat_window(chat_id)
        for window in (self._global_window, chat_window):
            wait = window.retry_after(now) if window is not None else None
            if wait is not None:
                raise ApiError(429, f"Too Many Requests: retry after {wait}", retry_after=wait)
        result = self.api.methods[method](params)
        for window in (self._global_window, chat_window):
            if window is not None:
                window.add(now)
        self.stats["sent"] += len(result) if isinstance(result, list) else 1
        return result, None

    def _chat_window(self, chat_id: int | None) -> _Window | None:
        if not self.per_chat_rate or chat_id is None:
            return None
        window = self._chat_windows.get(chat_id)
        if window is None:
            window = self._chat_windows[chat_id] = _Window(self.per_chat_rate)
        return window
