"""Reading the vault: `export --with-files DIR` and the relative's copy of their data.

`export_case_files` writes every file of the exported cases from the vault (it needs neither
Telegram nor the bot's token: it works after the token is revoked or the account lost), as
``DIR/<case number>/<kind>-<file_unique_id><ext>`` (the name the export's attachment columns
refer to), checks each against the SHA-256 recorded when it was fetched, and writes
``DIR/SHA256SUMS`` in the format `sha256sum -c SHA256SUMS` checks (run it inside DIR). A file
the vault does not hold (not fetched: too big, gone; or from before the vault existed) is
fetched from Telegram when the token still works, else listed as not available.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from nacl.public import PrivateKey

from bot.evidence.vault import Custody, extract, vault_dir
from bot.export.files import DownloadReport, _download, file_name, find_media
from bot.storage.db import Database
from bot.storage.evidence import EvidenceRepository, VaultRow
from bot.storage.export_queries import iter_cases

_SAFE = re.compile(r"[^A-Za-z0-9_.-]+")
MANIFEST = "SHA256SUMS"


@dataclass
class FilesReport:
    from_vault: int = 0
    from_telegram: int = 0
    failed: list[str] = field(default_factory=list)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def custody_of(row: VaultRow, unseal: Callable[[bytes], bytes]) -> Custody | None:
    if row.custody is None:
        return None
    try:
        return Custody.from_bytes(unseal(row.custody))
    except (ValueError, TypeError, KeyError):
        return None


async def export_case_files(
    db: Database,
    *,
    data_dir: Path,
    private: PrivateKey,
    out_dir: Path,
    decode: Callable[[bytes], bytes],
    unseal: Callable[[bytes], bytes],
    api_base_url: str = "",
    token: str = "",
    since: str | None = None,
    until: str | None = None,
    status: str | None = None,
    lang: str | None = None,
    consent: str | None = None,
) -> FilesReport:
    """Write the files of the selected cases from the vault, and the SHA256SUMS manifest.

    The filters are the export's (`consent`: only the cases whose relatives gave that consent,
    see bot/storage/export_queries.py), so the files match the rows exported with them.
    """
    report = FilesReport()
    await asyncio.to_thread(out_dir.mkdir, parents=True, exist_ok=True, mode=0o700)
    repo = EvidenceRepository(db)
    folder = vault_dir(data_dir)
    sums: list[tuple[str, str]] = []
    http: httpx.AsyncClient | None = None
    try:
        async for case in iter_cases(db, since=since, until=until, status=status, lang=lang,
                                     consent=consent):
            try:
                data = json.loads(decode(case.data) or b"{}")
            except Exception:
                report.failed.append(f"{case.number}: answers could not be read")
                continue
            rows = {r.file_unique_id: r for r in await repo.for_case(case.case_id)}
            case_dir = out_dir / _SAFE.sub("_", case.number)
            seen: set[str] = set()
            medias = list(find_media(data))
            # Files sent later (answers to staff questions) are the case's too.
            listed = {str(m.get("file_unique_id") or m.get("file_id")) for m in medias}
            for extra in rows.values():
                custody = custody_of(extra, unseal)
                if extra.file_unique_id not in listed and custody is not None:
                    medias.append({"kind": custody.kind, "file_id": "",
                                   "file_unique_id": extra.file_unique_id,
                                   "name": custody.name})
            for media in medias:
                unique = str(media.get("file_unique_id") or media.get("file_id"))
                if unique in seen:
                    continue
                seen.add(unique)
                label = f"{case.number} {media.get('kind', 'file')}:{unique}"
                row = rows.get(unique)
                name = file_name(media)
                target = case_dir / name
                if row is not None and row.state == "stored":
                    await asyncio.to_thread(case_dir.mkdir, parents=True, exist_ok=True,
                                            mode=0o700)
                    try:
                        sha, _size = await asyncio.to_thread(
                            extract, folder / row.vault_name, target, private)
                    except (OSError, ValueError) as exc:
                        report.failed.append(f"{label}: the vault's copy cannot be opened "
                                             f"({type(exc).__name__})")
                        continue
                    custody = custody_of(row, unseal)
                    if custody is not None and custody.sha256 != sha:
                        report.failed.append(f"{label}: differs from the SHA-256 recorded "
                                             "when it was received")
                        continue
                    report.from_vault += 1
                    sums.append((sha, f"{case_dir.name}/{name}"))
                    continue
                why = (f"not in the vault ({row.reason or row.state})" if row is not None
                       else "not in the vault")
                if not token or not media.get("file_id"):
                    report.failed.append(f"{label}: {why}")
                    continue
                http = http or httpx.AsyncClient(timeout=httpx.Timeout(60.0, connect=15.0))
                got = DownloadReport()
                problem = await _download(http, api_base_url, token, media, case_dir, got)
                if problem:
                    report.failed.append(f"{label}: {why}; Telegram: {problem}")
                    continue
                for path in case_dir.glob(f"{_SAFE.sub('_', str(media.get('kind') or 'file'))}"
                                          f"-{_SAFE.sub('_', unique)[:80]}*"):
                    sums.append((await asyncio.to_thread(_sha256, path),
                                 f"{case_dir.name}/{path.name}"))
                    report.from_telegram += 1
                    break
    finally:
        if http is not None:
            await http.aclose()
    manifest = "".join(f"{sha}  {name}\n" for sha, name in sorted(sums, key=lambda s: s[1]))
    await asyncio.to_thread((out_dir / MANIFEST).write_text, manifest, "utf-8")
    return report


async def files_for_copy(db: Database, user_id: int, unseal: Callable[[bytes], bytes]
                         ) -> list[dict[str, Any]]:
    """What /mydata says about the relative's files: the vault's record of each."""
    rows = await db.fetchall(
        "SELECT f.file_row, f.file_unique_id, f.state, f.reason, f.custody, c.number"
        " FROM evidence_files f LEFT JOIN cases c ON c.case_id = f.case_id"
        " WHERE f.user_id = ? AND f.state != 'erase' ORDER BY f.file_row", (user_id,))
    out: list[dict[str, Any]] = []
    for r in rows:
        entry: dict[str, Any] = {"case": r[5], "file_unique_id": r[1], "state": r[2]}
        if r[3]:
            entry["reason"] = r[3]
        if r[4] is not None:
            try:
                custody = Custody.from_bytes(unseal(bytes(r[4])))
                entry.update(sha256=custody.sha256 or None, size=custody.size, mime=custody.mime,
                             received_at=custody.received_at, kind=custody.kind)
            except Exception:  # the private key is offline: the record is sealed
                entry["record"] = "sealed: only the organisation can open it, offline"
        out.append(entry)
    return out
