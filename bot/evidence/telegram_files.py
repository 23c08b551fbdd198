"""Fetching a file from the Bot API: getFile, then the download (or a self-hosted server's
local file), with Telegram's answers turned into reasons the vault records.

Telegram's cloud Bot API lets bots download 20 MB per file; a self-hosted Bot API server
(github.com/tdlib/telegram-bot-api, BOT_API_BASE_URL) 2000 MB, and in its --local mode getFile
gives a path on the server's disk, read in place. Errors never show the URL (it holds the token).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import httpx

CLOUD_LIMIT = 20 * 1024 * 1024
LOCAL_LIMIT = 2000 * 1024 * 1024
BLOCK = 1 << 20  # bytes read at a time


class FetchError(Exception):
    """A file could not be fetched this time; `permanent` when trying again will not help."""

    def __init__(self, reason: str, *, permanent: bool = False, gone: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.permanent = permanent
        self.gone = gone


def download_limit(api_base_url: str, limit_mb: int = 0) -> int:
    """Bytes a bot may download: set, or 20 MB on Telegram's cloud and 2 GB self-hosted."""
    if limit_mb > 0:
        return limit_mb * 1024 * 1024
    cloud = api_base_url.rstrip("/") in ("https://api.telegram.org", "http://api.telegram.org")
    return CLOUD_LIMIT if cloud else LOCAL_LIMIT


class Telegram:
    """getFile and the download, over one HTTP client; never logs the URL (it holds the token)."""

    def __init__(self, api_base_url: str, token: str, limit: int,
                 client: httpx.AsyncClient | None = None) -> None:
        self.base = api_base_url.rstrip("/")
        self.token = token
        self.limit = limit
        self.http = client or httpx.AsyncClient(
            timeout=httpx.Timeout(60.0, connect=15.0), follow_redirects=False)

    async def aclose(self) -> None:
        await self.http.aclose()

    async def locate(self, file_id: str, known_size: int | None) -> tuple[str, int | None]:
        if known_size is not None and known_size > self.limit:
            raise FetchError("too_big", permanent=True)
        try:
            answer = await self.http.post(f"{self.base}/bot{self.token}/getFile",
                                          data={"file_id": file_id})
            body = answer.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise FetchError(f"getFile: {type(exc).__name__}") from None
        if not isinstance(body, dict):
            raise FetchError(f"getFile answered {answer.status_code}")
        if not body.get("ok"):
            text = str(body.get("description") or "").lower()
            code = body.get("error_code") or answer.status_code
            if code == 400 and "too big" in text:
                raise FetchError("too_big", permanent=True)
            if code == 400 and ("file_id" in text or "unavailable" in text):
                raise FetchError("gone", gone=True)
            raise FetchError(f"getFile answered {code}")
        result = body.get("result") or {}
        path = result.get("file_path")
        size = result.get("file_size")
        if not isinstance(path, str) or not path:
            raise FetchError("gone", gone=True)
        if isinstance(size, int) and size > self.limit:
            raise FetchError("too_big", permanent=True)
        return path, size if isinstance(size, int) else None

    @contextlib.asynccontextmanager
    async def open(self, path: str) -> AsyncIterator[tuple[AsyncIterator[bytes], str | None]]:
        """The file's bytes, and the MIME type the server gave (None for a local file)."""
        if path.startswith("/"):  # a self-hosted server in --local mode: the file is on disk
            local = Path(path)
            if not await asyncio.to_thread(local.is_file):
                raise FetchError("gone", gone=True)
            yield _read_local(local), None
            return
        try:
            async with self.http.stream("GET", f"{self.base}/file/bot{self.token}/{path}") as r:
                if r.status_code == 404:
                    raise FetchError("gone", gone=True)
                if r.status_code != 200:
                    raise FetchError(f"download answered {r.status_code}")
                yield r.aiter_bytes(BLOCK), r.headers.get("content-type")
        except httpx.HTTPError as exc:
            raise FetchError(f"download: {type(exc).__name__}") from None


async def _read_local(path: Path) -> AsyncIterator[bytes]:
    with path.open("rb") as fh:
        while block := await asyncio.to_thread(fh.read, BLOCK):
            yield block
