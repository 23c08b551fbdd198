"""`python -m bot dossier`: write the dossiers (bot/evidence/dossier.py) from the database.

    python -m bot dossier --case 4821-0736 [--person 2] --output dossier.docx [--key FILE]
    python -m bot dossier --all --consent share --output DIR [--key FILE]

Needs the private key: BOT_PRIVATE_KEY_FILE, BOT_DATA_DIR/keys, or `--key FILE` on the offline
computer (with a copy of the database restored from a backup). Telegram is never contacted.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from nacl.exceptions import CryptoError
from nacl.public import PrivateKey, SealedBox

from bot.config import Settings
from bot.evidence.dossier import CaseFacts, EvidenceItem, build_dossier
from bot.evidence.reading import custody_of
from bot.export.files import find_media
from bot.form.model import load_form
from bot.services.case_numbers import parse_case_number
from bot.services.crypto import MAGIC, PRIVATE_NAME
from bot.services.sealedfile import SealedFileError, load_private_key
from bot.storage.db import Database, SchemaNotCurrent
from bot.storage.evidence import EvidenceRepository, VerificationRepository

KIND_LABELS = {"photo": "Photo", "document": "Document", "voice": "Voice message",
               "audio": "Audio", "video": "Video", "video_note": "Video message"}


class DossierError(Exception):
    """What went wrong, in one line."""


def _unsealer(private: PrivateKey) -> Any:
    box = SealedBox(private)

    def unseal(data: bytes) -> bytes:
        if not data.startswith(MAGIC):
            raise ValueError("not a sealed value")
        try:
            return box.decrypt(data[len(MAGIC):])
        except CryptoError:
            raise ValueError("this key cannot open the case") from None
    return unseal


def key_path(settings: Settings, key: Path | None) -> Path:
    for candidate in (key, settings.private_key_file, settings.data_dir / "keys" / PRIVATE_NAME):
        if candidate is not None and candidate.exists():
            return candidate
    raise DossierError("the dossier needs the organisation's private key: pass --key FILE "
                       "(on the offline computer) or set BOT_PRIVATE_KEY_FILE")


def person_items(person: dict[str, Any], rows: dict[str, Any], unseal: Any
                 ) -> list[EvidenceItem]:
    items: list[EvidenceItem] = []
    counts: dict[str, int] = {}
    story = person.get("story")
    story_ids = {str(story["voice"].get("file_unique_id"))} if isinstance(story, dict) \
        and isinstance(story.get("voice"), dict) else set()
    for media in find_media(person):
        unique = str(media.get("file_unique_id") or media.get("file_id"))
        kind = str(media.get("kind") or "file")
        counts[kind] = counts.get(kind, 0) + 1
        label = f"{KIND_LABELS.get(kind, kind)} {counts[kind]}"
        if unique in story_ids:
            label += " (the story)"
        elif media.get("name"):
            label += f" ({media['name']})"
        row = rows.get(unique)
        if row is None:
            items.append(EvidenceItem(label, "missing", "not in the vault", None))
            continue
        items.append(EvidenceItem(label, row.state, row.reason, custody_of(row, unseal)))
    return items


async def write_dossiers(settings: Settings, *, case: str | None, person: int | None,
                         all_cases: bool, consent: str | None, output: Path,
                         key: Path | None) -> list[Path]:
    """Write the dossiers; returns the files written."""
    try:
        private = load_private_key(key_path(settings, key))
    except SealedFileError as exc:
        raise DossierError(str(exc)) from None
    unseal = _unsealer(private)
    form = load_form()
    try:  # read only, never migrated here (say "run migrate" instead)
        db = await Database.open_current(settings.db_path, read_only=True)
    except SchemaNotCurrent as exc:
        raise DossierError(str(exc)) from None
    written: list[Path] = []
    try:
        if all_cases:
            if consent != "share":
                raise DossierError("--all needs --consent share: dossiers only for persons "
                                   "whose relative agreed to share with international "
                                   "organisations")
            rows = await db.fetchall(
                "SELECT case_id, number, submitted_at, status, data, form_version FROM cases"
                " WHERE consent_share = 'yes' AND status != 'withdrawn' ORDER BY case_id")
            await asyncio.to_thread(output.mkdir, parents=True, exist_ok=True, mode=0o700)
        else:
            number = parse_case_number(case or "")
            if number is None:
                raise DossierError(f"{case!r} is not a case number (like 4821-0736)")
            rows = await db.fetchall(
                "SELECT case_id, number, submitted_at, status, data, form_version FROM cases"
                " WHERE number = ?", (number,))
            if not rows:
                raise DossierError(f"there is no case {number}")
            if rows[0][3] == "withdrawn":
                raise DossierError(f"case {number} was withdrawn: its data is erased")
        for row in rows:
            case_id, number, submitted_at, status = int(row[0]), str(row[1]), str(row[2]), \
                str(row[3])
            try:
                data = json.loads(unseal(bytes(row[4])))
            except ValueError as exc:
                raise DossierError(f"case {number}: {exc}") from None
            persons = data.get("persons") or []
            if person is not None and not 1 <= person <= len(persons):
                raise DossierError(f"case {number} has {len(persons)} missing persons")
            vault = {r.file_unique_id: r for r in await EvidenceRepository(db).for_case(case_id)}
            levels = await VerificationRepository(db).levels(case_id)
            wanted = [person] if person is not None else list(range(1, len(persons) + 1))
            listed = {str(m.get("file_unique_id") or m.get("file_id")) for m in find_media(data)}
            later = [EvidenceItem("Sent in answer to a volunteer's question", r.state, r.reason,
                                  custody_of(r, unseal))
                     for u, r in vault.items() if u not in listed]
            for k in wanted:
                items = person_items(persons[k - 1], vault, unseal) + later
                doc = build_dossier(form, CaseFacts(number, submitted_at, status,
                                                     int(row[5] or 0)), data, k - 1,
                                    items, levels.get(k, "reported"))
                if all_cases:
                    target = output / f"{number}-{k}.docx"
                elif len(wanted) == 1:
                    target = output
                else:
                    target = output.with_name(f"{output.stem}-{k}{output.suffix or '.docx'}")
                await asyncio.to_thread(doc.save, str(target))
                target.chmod(0o600)
                written.append(target)
    finally:
        await db.close()
    return written
