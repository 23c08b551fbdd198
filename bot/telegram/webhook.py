"""The webhook: Telegram POSTs updates here, served by aiohttp (already the bot's HTTP stack).

python-telegram-bot's own webhook server (tornado) reads a whole request body, up to 100 MB,
before it checks the secret token, compares the token with ``!=``, and its 403 says whether
the token was missing or wrong. This one, in this order:

- compares ``X-Telegram-Bot-Api-Secret-Token`` with BOT_WEBHOOK_SECRET in constant time
  (``hmac.compare_digest``) before reading anything; a missing and a wrong token get the same
  403;
- refuses a body over :data:`MAX_BODY` (1 MB; Telegram's updates are a few KB) with 413 from
  its Content-Length, before reading it, and cuts a body without a length off at that size;
  the connection is then closed rather than drained (``lingering_time=0``);
- hands the update to ``Application.update_queue``, python-telegram-bot's public way of
  feeding updates from a server of one's own (its examples/customwebhookbot.py). An update
  that cannot be parsed is skipped as in long polling (:func:`bot.telegram.polling.read_update`)
  and answered 200, so Telegram does not send it again forever.

Only POST on the path of BOT_WEBHOOK_URL is served (another path 404, another method 405).
Keep the listener on 127.0.0.1 or an unpublished port behind the TLS proxy (deploy/README.md).
"""

from __future__ import annotations

import hmac
from typing import Any

import orjson
from aiohttp import web

from bot.telegram.polling import read_update

#: The largest request body read (Telegram's updates are a few KB).
MAX_BODY = 1 << 20
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"  # noqa: S105  # a header's name


class WebhookServer:
    """An aiohttp server taking Telegram's POSTs on one path for one Application."""

    def __init__(self, app: Any, *, listen: str, port: int, path: str, secret: str) -> None:
        if not secret:
            raise ValueError("a webhook needs a secret token")
        self._app = app
        self._secret = secret.encode()
        self.listen = listen
        self.port = port
        self.path = "/" + path.lstrip("/")
        web_app = web.Application(client_max_size=MAX_BODY)
        web_app.router.add_post(self.path, self._handle)
        # lingering_time=0: a refused request's body is not read to the end, the connection
        # is closed instead.
        self._runner = web.AppRunner(web_app, access_log=None, lingering_time=0)
        self.received = 0  # updates handed to the application
        self._listening = False

    async def start(self) -> None:
        """Listen (raises OSError when the address or port cannot be used)."""
        await self._runner.setup()
        try:
            await web.TCPSite(self._runner, self.listen, self.port).start()
        except BaseException:
            await self._runner.cleanup()
            raise
        self._listening = True

    async def stop(self) -> None:
        """Stop taking requests (those being handled finish first)."""
        if self._listening:
            self._listening = False
            await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.Response:
        given = request.headers.get(SECRET_HEADER, "").encode("utf-8", "replace")
        if not hmac.compare_digest(given, self._secret):
            raise web.HTTPForbidden()
        length = request.content_length
        if length is not None and length > MAX_BODY:
            raise web.HTTPRequestEntityTooLarge(max_size=MAX_BODY, actual_size=length)
        body = await request.read()  # past MAX_BODY: HTTPRequestEntityTooLarge
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError:
            raise web.HTTPBadRequest() from None
        if not isinstance(data, dict):
            raise web.HTTPBadRequest()
        update, _ = read_update(data, self._app.bot)
        if update is not None:
            await self._app.update_queue.put(update)
            self.received += 1
        return web.Response()
