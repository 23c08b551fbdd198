"""Where the handlers meet the vault: a file arrives, a case is submitted, the worker's life.

`note_file` queues the fetch as soon as the relative's file is accepted as an answer (the job
row holds the file_id sealed with the server key, which the bot needs to fetch it);
`attach_case_files` runs inside the case's transaction, so the files belong to the case if
and only if the case exists (and a file whose job was lost to a crash gets one there);
`start_vault` starts the worker with the application (bot/lifecycle.py), like the outbox.
"""

from __future__ import annotations

import json
import time
from datetime import datetime
from typing import TYPE_CHECKING, Any

from bot.context import AnyApp, BotData, bot_data
from bot.evidence.vault import Telegram, VaultWorker, download_limit, vault_dir
from bot.export.files import find_media
from bot.storage.evidence import EvidenceRepository

if TYPE_CHECKING:
    from bot.form.engine import Media
    from bot.handlers.common import Deps



def _ref(d: Deps, media: dict[str, Any], date: datetime | None) -> bytes:
    ref = {k: media.get(k) for k in ("file_id", "kind", "size", "mime", "name", "duration")
           if media.get(k) is not None}
    if date is not None:
        ref["date"] = date.isoformat(timespec="seconds")
    return d.keys.seal_draft(json.dumps(ref, ensure_ascii=False).encode())


def _unique(media: dict[str, Any]) -> str:
    return str(media.get("file_unique_id") or media.get("file_id"))


async def note_file(app: AnyApp, d: Deps, user_id: int, media: Media,
                    date: datetime | None) -> None:
    """Queue the fetch of a file the relative just sent (accepted as an answer)."""
    answer = media.as_answer()
    await EvidenceRepository(d.db).enqueue(
        user_id, _unique(answer), _ref(d, answer, date),
        d.now().isoformat(timespec="seconds"), time.time())
    wake_vault(app)


async def note_answer_file(app: AnyApp, d: Deps, user_id: int, case_id: int,
                           content: dict[str, Any], date: datetime | None) -> None:
    """A file in a relative's answer to a staff question: into the vault, with its case."""
    if not content.get("file_id"):
        return
    media = {**content, "name": content.get("file_name")}
    await EvidenceRepository(d.db).enqueue_for_case(
        user_id, case_id, _unique(media), _ref(d, media, date), d.now_iso(), time.time())
    wake_vault(app)


async def attach_case_files(conn: Any, d: Deps, user_id: int, case_id: int,
                            data: dict[str, Any]) -> None:
    """In the case's transaction: every file of the case is the case's, fetched or queued."""
    seen: set[str] = set()
    files: list[tuple[str, bytes]] = []
    for media in find_media(data):
        unique = _unique(media)
        if unique not in seen:
            seen.add(unique)
            files.append((unique, _ref(d, media, None)))
    await EvidenceRepository.attach(conn, user_id, case_id, files,
                                    d.now().isoformat(timespec="seconds"), time.time())


def vault_worker(app: AnyApp) -> VaultWorker | None:
    data = app.bot_data
    return data.vault if isinstance(data, BotData) else None


def wake_vault(app: AnyApp) -> None:
    worker = vault_worker(app)
    if worker is not None:
        worker.wake()


def make_worker(app: AnyApp, d: Deps) -> VaultWorker:
    s = d.settings
    telegram = Telegram(s.api_base_url, s.token,
                        download_limit(s.api_base_url, s.file_download_limit_mb))
    return VaultWorker(EvidenceRepository(d.db), telegram, vault_dir(s.data_dir), d.keys.public,
                       open_ref=d.keys.unseal_draft, seal_custody=d.keys.seal,
                       is_running=lambda: bool(app.running), now=lambda: d.now())


async def _run(app: AnyApp, worker: VaultWorker) -> None:
    try:
        await worker.run()
    finally:
        await worker.telegram.aclose()
        data = bot_data(app)
        if data.vault is worker:
            data.vault = None


async def start_vault(app: AnyApp) -> VaultWorker:
    """Start the worker (after `app.start()`); it ends when the application stops."""
    data = bot_data(app)
    if data.vault is None:
        assert data.deps is not None
        worker = make_worker(app, data.deps)
        data.vault = worker
        # A task of the application: app.stop() waits for it, and it ends once not running.
        app.create_task(_run(app, worker), name="vault-worker")
    return data.vault


async def stop_vault(app: AnyApp) -> None:
    """Stop the worker (a download in flight is cut short and retried at the next start)."""
    worker = vault_worker(app)
    if worker is not None:
        worker.stop()
