"""How updates reach the bot: long polling with getUpdates, or POSTs to a webhook.

Follows Telegram: updates stay queued until confirmed by offset (or accepted by the webhook),
a newer getUpdates call ends an older one with 409, and getUpdates is refused while a webhook
is set.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from urllib.parse import urlsplit

import aiohttp

from bot.sandbox.botapi import Params, as_bool, as_int
from bot.sandbox.world import DEFAULT_SKIPPED_UPDATES, JSON, ApiError, World, wait_event

_SECRET_RE = re.compile(r"^[A-Za-z0-9_-]{1,256}$")
CONFLICT_WEBHOOK = (
    "Conflict: can't use getUpdates method while webhook is active; "
    "use deleteWebhook to delete the webhook first"
)
CONFLICT_POLLING = (
    "Conflict: terminated by other getUpdates request; "
    "make sure that only one bot instance is running"
)


class UpdateDelivery:
    """getUpdates, setWebhook, deleteWebhook and getWebhookInfo over the World's update queue."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.url = ""
        self.secret: str | None = None
        self.max_connections = 40
        self.last_error: tuple[int, str] | None = None
        self.allowed_updates: set[str] | None = None
        self.stopping = False
        self.session: aiohttp.ClientSession | None = None
        self._poll_generation = 0
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self.stopping = False
        self.session = aiohttp.ClientSession()

    async def stop(self) -> None:
        """Ends long polls at once and stops webhook delivery."""
        self.stopping = True
        self.world.notify_updates()
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        if self.session is not None:
            await self.session.close()
            self.session = None

    async def get_updates(self, params: Params) -> list[JSON]:
        if self.url:
            raise ApiError(409, CONFLICT_WEBHOOK)
        offset = as_int(params.get("offset")) or 0
        limit = min(max(as_int(params.get("limit")) or 100, 1), 100)
        timeout = max(as_int(params.get("timeout")) or 0, 0)
        allowed = params.get("allowed_updates")
        if isinstance(allowed, list):
            self.allowed_updates = {str(a) for a in allowed} or None
        self.world.confirm_updates(offset)
        self._poll_generation += 1
        generation = self._poll_generation
        self.world.notify_updates()
        deadline = time.monotonic() + timeout
        while True:
            if generation != self._poll_generation or self.url:
                raise ApiError(409, CONFLICT_POLLING)
            batch = [u for u in self._allowed_pending() if u["update_id"] >= offset][:limit]
            if batch:
                self.world.mark_handed_out(batch[-1]["update_id"])
                return batch
            remaining = deadline - time.monotonic()
            if remaining <= 0 or self.stopping:
                return []
            await wait_event(self.world.updates_changed, remaining)

    def _allowed_pending(self) -> list[JSON]:
        """Pending updates of types the bot asked for; Telegram never keeps the others."""
        allowed = self.allowed_updates

        def wanted(update: JSON) -> bool:
            kind = next((k for k in update if k != "update_id"), "")
            return kind in allowed if allowed is not None else kind not in DEFAULT_SKIPPED_UPDATES

        self.world.updates = [u for u in self.world.updates if wanted(u)]
        return self.world.updates

    def set_webhook(self, params: Params) -> str:
        url = str(params.get("url") or "")
        if not url:
            return self.delete_webhook(params)
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ApiError(
                400, "Bad Request: bad webhook: An HTTPS URL must be provided for webhook"
            )
        secret = params.get("secret_token")
        if secret is not None and not _SECRET_RE.match(str(secret)):
            raise ApiError(400, "Bad Request: secret token contains unallowed characters")
        if as_bool(params.get("drop_pending_updates")):
            self.world.updates.clear()
        allowed = params.get("allowed_updates")
        if isinstance(allowed, list):
            self.allowed_updates = {str(a) for a in allowed} or None
        changed = url != self.url
        self.url = url
        self.secret = str(secret) if secret is not None else None
        self.max_connections = as_int(params.get("max_connections")) or 40
        self.last_error = None
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._deliver())
        self.world.notify_updates()
        return "Webhook was set" if changed else "Webhook is already set"

    def delete_webhook(self, params: Params) -> str:
        if as_bool(params.get("drop_pending_updates")):
            self.world.updates.clear()
        was_set = bool(self.url)
        self.url = ""
        self.secret = None
        self.world.notify_updates()
        return "Webhook was deleted" if was_set else "Webhook is already deleted"

    def webhook_info(self) -> JSON:
        info: JSON = {
            "url": self.url,
            "has_custom_certificate": False,
            "pending_update_count": len(self.world.updates),
        }
        if self.url:
            info["max_connections"] = self.max_connections
            if self.allowed_updates is not None:
                info["allowed_updates"] = sorted(self.allowed_updates)
        if self.last_error is not None:
            info["last_error_date"], info["last_error_message"] = self.last_error
        return info

    async def _deliver(self) -> None:
        """Delivers updates one by one, in order, retrying with backoff like Telegram."""
        backoff = 0.1
        while self.url and not self.stopping:
            pending = self._allowed_pending()
            if not pending:
                await wait_event(self.world.updates_changed, 1.0)
                continue
            update = pending[0]
            error = await self._post_update(self.url, update)
            if error is None:
                self.world.updates = [
                    u for u in self.world.updates if u["update_id"] != update["update_id"]
                ]
                self.world.mark_handed_out(update["update_id"])
                backoff = 0.1
            else:
                self.last_error = (int(self.world.now()), error)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 2.0)

    async def _post_update(self, url: str, update: JSON) -> str | None:
        """POSTs one update to the webhook; the error message if it was not accepted."""
        if self.session is None:
            return "Sandbox is not running"
        headers = {"Content-Type": "application/json"}
        if self.secret is not None:
            headers["X-Telegram-Bot-Api-Secret-Token"] = self.secret
        try:
            async with self.session.post(
                url,
                data=json.dumps(update),
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=30),
            ) as response:
                await response.read()
                if 200 <= response.status < 300:
                    return None
                return f"Wrong response from the webhook: {response.status} {response.reason}"
        except (aiohttp.ClientError, TimeoutError) as error:
            return f"Connection failed: {type(error).__name__}"
