"""`export --with-files DIR`: download every attachment of the exported cases from Telegram.

Files are found in the opened answers (every object with a ``file_id``), fetched with getFile
and downloaded from ``{BOT_API_BASE_URL}/file/bot<token>/<file_path>`` into
``DIR/<case number>/<kind>-<file_unique_id><extension>``, the name the export's attachment
columns refer to (``kind:file_unique_id``). The extension is the one the relative's file had
only when it is on :data:`ALLOWED_EXTENSIONS` (documents, pictures, sound and video that staff
may open with a double click); any other (``.exe``, ``.lnk``, ``.hta``, ``.html``, ``.docm``
...) becomes ``.bin``. Files over Telegram's 20 MB download limit, or
that Telegram no longer has, are counted and listed by reference, never by content. Errors
never show the URL (it holds the token).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import httpx

from bot.storage.db import Database
from bot.storage.export_queries import iter_cases

MAX_DOWNLOAD = 20 * 1024 * 1024
_SAFE = re.compile(r"[^A-Za-z0-9_.-]+")
_EXT = {"photo": ".jpg", "voice": ".ogg", "video": ".mp4", "video_note": ".mp4",
        "audio": ".mp3", "animation": ".mp4"}
#: Extensions a downloaded file may keep; anything else is saved as ".bin" (security review L5).
ALLOWED_EXTENSIONS = frozenset((".jpg", ".jpeg", ".png", ".webp", ".pdf", ".ogg", ".oga", ".mp3",
                                ".m4a", ".mp4", ".mov", ".doc", ".docx", ".txt"))


@dataclass
class DownloadReport:
    """How many files were saved, and which could not be (by case number and reference)."""

    saved: int = 0
    skipped: int = 0  # already there from an earlier run
    failed: list[str] = field(default_factory=list)


def find_media(value: Any) -> Iterator[dict[str, Any]]:
    """Every attachment or voice answer (a dict with a ``file_id``) inside stored answers."""
    if isinstance(value, dict):
        if isinstance(value.get("file_id"), str):
            yield value
            return
        for item in value.values():
            yield from find_media(item)
    elif isinstance(value, list):
        for item in value:
            yield from find_media(item)


def file_name(media: dict[str, Any], file_path: str | None = None) -> str:
    """``<kind>-<file_unique_id><ext>``, with characters unsafe in file names replaced and
    ``<ext>`` from :data:`ALLOWED_EXTENSIONS` or ``.bin``."""
    kind = _SAFE.sub("_", str(media.get("kind") or "file"))
    ref = _SAFE.sub("_", str(media.get("file_unique_id") or media["file_id"]))[:80]
    ext = ""
    for candidate in (media.get("name"), file_path):
        if candidate:
            ext = PurePosixPath(str(candidate)).suffix.lower()
            if ext:
                break
    if ext not in ALLOWED_EXTENSIONS:
        ext = ".bin" if ext else _EXT.get(kind, ".bin")
    return f"{kind}-{ref}{ext}"


async def download_case_files(
    db: Database,
    *,
    api_base_url: str,
    token: str,
    out_dir: Path,
    decode: Callable[[bytes], bytes],
    since: str | None = None,
    until: str | None = None,
    status: str | None = None,
    lang: str | None = None,
    consent: str | None = None,
    client: httpx.AsyncClient | None = None,
) -> DownloadReport:
    """Download the attachments of the cases the filters select into `out_dir`."""
    report = DownloadReport()
    await asyncio.to_thread(out_dir.mkdir, parents=True, exist_ok=True, mode=0o700)
    own = client is None
    http = client or httpx.AsyncClient(timeout=httpx.Timeout(60.0, connect=15.0))
    try:
        async for case in iter_cases(db, since=since, until=until, status=status, lang=lang,
                                     consent=consent):
            try:
                data = json.loads(decode(case.data) or b"{}")
            except Exception:
                report.failed.append(f"{case.number}: answers could not be read")
                continue
            seen: set[str] = set()
            for media in find_media(data):
                ref = str(media.get("file_unique_id") or media["file_id"])
                if ref in seen:
                    continue
                seen.add(ref)
                problem = await _download(http, api_base_url, token, media,
                                          out_dir / _SAFE.sub("_", case.number), report)
                if problem:
                    report.failed.append(f"{case.number} {media.get('kind', 'file')}:{ref}: "
                                         f"{problem}")
    finally:
        if own:
            await http.aclose()
    return report


async def _download(http: httpx.AsyncClient, base: str, token: str, media: dict[str, Any],
                    folder: Path, report: DownloadReport) -> str | None:
    """Fetch one file; None when saved (or already there), else a short reason."""
    size = media.get("size")
    if isinstance(size, int) and size > MAX_DOWNLOAD:
        return "over Telegram's 20 MB download limit for bots"
    try:
        answer = await http.post(f"{base}/bot{token}/getFile",
                                 data={"file_id": str(media["file_id"])})
        body = answer.json()
    except (httpx.HTTPError, ValueError) as exc:
        return f"getFile failed ({type(exc).__name__})"
    if not isinstance(body, dict) or not body.get("ok"):
        description = body.get("description") if isinstance(body, dict) else None
        return f"Telegram: {str(description or answer.status_code)[:120]}"
    path = (body.get("result") or {}).get("file_path")
    if not isinstance(path, str) or not path:
        return "Telegram gave no file path"
    target = folder / file_name(media, path)
    if target.exists():
        report.skipped += 1
        return None
    await asyncio.to_thread(folder.mkdir, parents=True, exist_ok=True, mode=0o700)
    tmp = target.with_name(f".{target.name}.part")
    try:
        async with http.stream("GET", f"{base}/file/bot{token}/{path}") as response:
            if response.status_code != 200:
                return f"download answered {response.status_code}"
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as fh:
                async for block in response.aiter_bytes(1 << 16):
                    fh.write(block)
        os.replace(tmp, target)
    except httpx.HTTPError as exc:
        tmp.unlink(missing_ok=True)
        return f"download failed ({type(exc).__name__})"
    report.saved += 1
    return None
