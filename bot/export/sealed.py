"""Exports when the private key is offline: sealed on the server, opened on an offline computer.

With only the public key on the server, case answers cannot be read there, and no plaintext
may be written there either. So `python -m bot export` writes the matching cases *still
sealed* (each case's sealed answers in base64, with the readable columns) into one age file
encrypted to the organisation's public key (and BOT_BACKUP_RECIPIENTS), signed beside it
(FILE.sig): its content is JSON lines, the first one the export's metadata, so
`age -d -i org_private.key FILE` shows it with the standard tool. Files of the older format
(`bot.services.sealedfile`) are still opened, for one release.
`python -m bot decrypt --key PRIVATE` on the offline computer opens that file, rebuilds the
cases in a working database next to the output (holding only what the server's database holds:
sealed answers), and runs the very same export code with the private key, so the
CSV/XLSX/JSONL is exactly what a key-on-server export gives.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from nacl.exceptions import CryptoError
from nacl.public import PrivateKey, PublicKey, SealedBox

from bot.crypto.agefile import AgeFileError, age_input, age_output, is_age_file
from bot.crypto.agekeys import PrivateKeys
from bot.crypto.keyring import MAGIC as SEALED_VALUE
from bot.crypto.sealedfile import SealedFileError, SealedReader
from bot.crypto.sealing import Sealer, sealer_for
from bot.storage.db import Database
from bot.storage.export_queries import CaseRow, iter_case_batches
from bot.storage.snapshot import load_case_rows, remove_side_files

EXPORT_KIND = "export"


@dataclass(frozen=True, slots=True)
class SealedExportResult:
    """What a sealed export wrote."""

    path: Path
    cases: int


class CaseOpener:
    """The `decode` for export_cases: opens a case's sealed answers with the private key.

    Picklable (it carries the raw private key), so large exports unseal in worker processes
    of this machine: it is :func:`bot.export.parallel_safe`.
    """

    parallel_safe = True

    def __init__(self, private: PrivateKey) -> None:
        self._private = private
        self._box = SealedBox(private)

    def __reduce__(self) -> tuple[Any, ...]:
        return (_opener_from_bytes, (bytes(self._private),))

    def __call__(self, data: bytes) -> bytes:
        if not data:
            return b"{}"  # withdrawn by the relative (/delete): exported without answers
        if not data.startswith(SEALED_VALUE):
            return data  # stored as plain JSON before sealing was introduced
        try:
            return bytes(self._box.decrypt(data[len(SEALED_VALUE):]))
        except CryptoError:
            raise ValueError("this key cannot open the case") from None


def _opener_from_bytes(raw: bytes) -> CaseOpener:
    return CaseOpener(PrivateKey(raw))


def case_opener(private: PrivateKey) -> Callable[[bytes], bytes]:
    """The `decode` for export_cases: opens a case's sealed answers with the private key."""
    return CaseOpener(private)


def _row_json(row: CaseRow) -> bytes:
    values: dict[str, Any] = row._asdict()
    values["data"] = base64.b64encode(row.data).decode("ascii")
    return json.dumps(values, ensure_ascii=False, separators=(",", ":")).encode("utf-8") + b"\n"


async def write_sealed_export(
    db: Database,
    sealer: Sealer | PublicKey,
    *,
    fmt: str,
    output: Path,
    since: str | None = None,
    until: str | None = None,
    status: str | None = None,
    lang: str | None = None,
    consent: str | None = None,
    progress: Callable[[int], None] | None = None,
) -> SealedExportResult:
    """Write the matching cases, still sealed, into the signed age file `output`."""
    if isinstance(sealer, PublicKey):
        sealer = sealer_for(sealer, None)
    meta = {
        "kind": EXPORT_KIND,
        "format": fmt,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "filters": {"since": since, "until": until, "status": status, "lang": lang,
                    "consent": consent},
        "columns": list(CaseRow._fields),
    }
    cases = 0
    with age_output(output, sealer.recipients, sealer.signing, EXPORT_KIND) as writer:
        writer.write(json.dumps(meta, ensure_ascii=False).encode("utf-8") + b"\n")
        async for batch in iter_case_batches(db, since=since, until=until, status=status,
                                             lang=lang, consent=consent):
            writer.write(b"".join(_row_json(row) for row in batch))
            cases += len(batch)
            if progress is not None:
                progress(cases)
    return SealedExportResult(output, cases)


def _rows(lines: Iterator[bytes], columns: list[str]) -> Iterator[dict[str, Any]]:
    for line in lines:
        if not line.strip():
            continue
        try:
            values = json.loads(line)
        except ValueError:
            raise SealedFileError("the sealed export is damaged (a row is not JSON)") from None
        if not isinstance(values, dict) or set(values) - set(columns):
            raise SealedFileError("the sealed export is damaged (unexpected columns)")
        values["data"] = base64.b64decode(values.get("data") or "")
        yield values


def _age_lines(fh: Any) -> Iterator[bytes]:
    for line in fh:
        yield line.rstrip(b"\n")


async def open_sealed_export(
    source: Path,
    private: PrivateKeys | PrivateKey,
    output: Path,
    *,
    fmt: str | None = None,
    progress: Callable[[int], None] | None = None,
) -> tuple[dict[str, Any], Any]:
    """Turn a sealed export into the plain CSV/XLSX/JSONL at `output`; (metadata, result).

    `fmt` overrides the format chosen when the export was made. The working database (sealed
    answers only) lives next to `output` while this runs and is deleted after. The caller
    checks the signature first.
    """
    from bot.export import FORMATS, export_cases
    from bot.form.model import load_form
    from bot.services.backup import _as_keys

    keys = _as_keys(private)
    if keys.private is None:
        raise SealedFileError("the key file holds no key that opens cases")
    work = output.with_name(f".{output.name}.{secrets.token_hex(6)}.work.sqlite3")
    db: Database | None = None
    try:
        fd = os.open(work, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.close(fd)
        db = await Database.open(work)
        if is_age_file(source):
            try:
                with age_input(source, keys.identities) as plain:
                    lines = _age_lines(plain)
                    meta = _meta(next(lines, b""))
                    await load_case_rows(db, _rows(lines, _columns(meta)))
            except AgeFileError as exc:
                raise SealedFileError(str(exc)) from None
        else:
            with source.open("rb") as fh:
                reader = SealedReader(fh, keys.private)
                meta = reader.meta
                _meta_kind(meta)
                await load_case_rows(db, _rows(reader.lines(), _columns(meta)))
        chosen = fmt or str(meta.get("format") or "csv")
        if chosen not in FORMATS:
            raise SealedFileError(f"unknown export format {chosen!r} in the sealed export")
        result = await export_cases(db, load_form(), fmt=chosen,
                                    output=output, decode=case_opener(keys.private),
                                    progress=progress, deflate_level=1)
        return meta, result
    finally:
        if db is not None:
            await db.close()
        remove_side_files(work)
        work.unlink(missing_ok=True)


def _meta(line: bytes) -> dict[str, Any]:
    try:
        meta = json.loads(line)
    except ValueError:
        raise SealedFileError("this file is not a sealed export written by this bot") from None
    if not isinstance(meta, dict):
        raise SealedFileError("this file is not a sealed export written by this bot")
    _meta_kind(meta)
    return meta


def _meta_kind(meta: dict[str, Any]) -> None:
    if meta.get("kind") != EXPORT_KIND:
        raise SealedFileError(f"this sealed file is a {meta.get('kind', 'file')}, not an export")


def _columns(meta: dict[str, Any]) -> list[str]:
    return [str(c) for c in meta.get("columns") or []]
