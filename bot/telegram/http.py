"""How the bot talks HTTP to the Bot API: python-telegram-bot's BaseRequest over aiohttp.

python-telegram-bot's default transport (HTTPXRequest: httpx, httpcore, anyio) costs a few
milliseconds of CPU for every call: with three or four calls per answer it was most of the
bot's CPU, and the bot's throughput on a small server. aiohttp, already a dependency, does the
same for a fraction of that (tests/bench/ measures both). Behaviour is HTTPXRequest's: the same
default timeouts, overridable per call (the outbox waits much longer for sends), the same
form encoding (multipart when there are files), and transport failures raised as
python-telegram-bot's TimedOut and NetworkError, which its Bot maps the rest from. Nothing is
logged here: URLs carry the token.
"""

from __future__ import annotations

from typing import Any

import aiohttp
import orjson
from telegram.error import NetworkError, TelegramError, TimedOut
from telegram.request import BaseRequest, RequestData

JSONDict = dict[str, Any]
_DEFAULT = type(BaseRequest.DEFAULT_NONE)  # "not given for this call": use the instance's


def _value(given: Any, default: float | None) -> float | None:
    return default if isinstance(given, _DEFAULT) else given


def _sum(*parts: float | None) -> float | None:
    return None if any(p is None for p in parts) else sum(p for p in parts if p is not None)


_JSON = {"Content-Type": "application/json"}


class AiohttpRequest(BaseRequest):
    """A pool of keep-alive connections to the Bot API (one pool per instance)."""

    __slots__ = ("_connect_timeout", "_media_write_timeout", "_pool_size", "_pool_timeout",
                 "_read_timeout", "_session", "_write_timeout")

    def __init__(self, connection_pool_size: int = 256, *, read_timeout: float | None = 5.0,
                 write_timeout: float | None = 5.0, connect_timeout: float | None = 5.0,
                 pool_timeout: float | None = 1.0, media_write_timeout: float | None = 20.0
                 ) -> None:
        self._pool_size = connection_pool_size
        self._read_timeout = read_timeout
        self._write_timeout = write_timeout
        self._connect_timeout = connect_timeout
        self._pool_timeout = pool_timeout
        self._media_write_timeout = media_write_timeout
        self._session: aiohttp.ClientSession | None = None

    @property
    def read_timeout(self) -> float | None:
        return self._read_timeout

    async def initialize(self) -> None:
        if self._session is None or self._session.closed:
            # Idle connections are dropped after 5 s, as httpx does, so a connection the
            # server has already closed is rarely picked up.
            connector = aiohttp.TCPConnector(limit=self._pool_size, limit_per_host=0,
                                             keepalive_timeout=5.0)
            self._session = aiohttp.ClientSession(
                connector=connector, headers={"User-Agent": self.USER_AGENT},
                timeout=aiohttp.ClientTimeout(total=None), auto_decompress=True)

    async def shutdown(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()
        self._session = None

    @staticmethod
    def parse_json_payload(payload: bytes) -> JSONDict:
        """Telegram's answer as a dict, with orjson; what it refuses (invalid UTF-8, lone
        surrogates, huge numbers) goes to the library's own parser, which is more lenient."""
        try:
            result = orjson.loads(payload)
        except orjson.JSONDecodeError:
            return BaseRequest.parse_json_payload(payload)
        if not isinstance(result, dict):
            raise TelegramError("Invalid server response")
        return result

    async def do_request(
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        read_timeout: Any = BaseRequest.DEFAULT_NONE,
        write_timeout: Any = BaseRequest.DEFAULT_NONE,
        connect_timeout: Any = BaseRequest.DEFAULT_NONE,
        pool_timeout: Any = BaseRequest.DEFAULT_NONE,
    ) -> tuple[int, bytes]:
        session = self._session
        if session is None or session.closed:
            raise RuntimeError("This AiohttpRequest is not initialized!")
        files = request_data.multipart_data if request_data is not None else None
        read = _value(read_timeout, self._read_timeout)
        connect = _value(connect_timeout, self._connect_timeout)
        pool = _value(pool_timeout, self._pool_timeout)
        write = _value(write_timeout,
                       self._media_write_timeout if files else self._write_timeout)
        timeout = aiohttp.ClientTimeout(
            total=_sum(pool, connect, write, read),  # aiohttp has no write timeout of its own
            connect=_sum(pool, connect),  # waiting for a free connection, then connecting
            sock_connect=connect,
            sock_read=read,
        )
        data: Any = None
        headers: dict[str, str] | None = None
        if request_data is not None:
            if files:
                form = aiohttp.FormData()
                for name, value in request_data.json_parameters.items():
                    form.add_field(name, value)
                for name, (filename, content, mime) in files.items():
                    form.add_field(name, content, filename=filename, content_type=mime)
                data = form
            elif request_data.parameters:
                # A JSON body, which the Bot API takes as well as a form: one encoding of
                # the whole call instead of a JSON string per field, then URL-encoding it all.
                try:
                    data = orjson.dumps(request_data.parameters)
                except TypeError:  # a value orjson does not know: the library's own encoding
                    data = request_data.json_payload
                headers = _JSON
        try:
            async with session.request(method, url, data=data, headers=headers,
                                       timeout=timeout) as response:
                return response.status, await response.read()
        except TimeoutError as exc:  # aiohttp's timeouts are TimeoutErrors too
            raise TimedOut from exc
        except aiohttp.ClientError as exc:
            raise NetworkError(f"aiohttp.{exc.__class__.__name__}: {exc}") from exc
