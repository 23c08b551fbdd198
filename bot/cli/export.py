"""`export` (cases to CSV, XLSX or JSONL, --with-files) and `dossier` (.docx per person)."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bot.cli.common import _err, _Progress
from bot.config import Settings


async def export(settings: Settings, args: argparse.Namespace) -> int:
    """Export cases; sealed to the public key when the private key is offline."""
    from bot.crypto.sealing import sealer_of
    from bot.export import ExportError, export_cases
    from bot.export.sealed import case_opener, write_sealed_export
    from bot.form.model import load_form
    from bot.services.crypto import load_keyring
    from bot.storage.db import Database, SchemaNotCurrent
    from bot.storage.export_queries import count_cases

    output = Path(args.output)
    filters = {"since": args.since, "until": args.until, "status": args.status,
               "lang": args.lang, "consent": args.consent}
    if not output.parent.is_dir():  # before anything else is opened
        _err(f"export: cannot write {output}: the folder {output.parent} does not exist")
        return 2
    try:
        # Never migrated here: the running bot uses this database (say "run migrate" instead).
        db = await Database.open_current(settings.db_path)
    except SchemaNotCurrent as exc:
        _err(f"export: {exc}")
        return 2
    try:
        keys = load_keyring(settings.data_dir, settings.public_key_file,
                            settings.private_key_file, settings.draft_key_file, mode="cli")
    except (OSError, ValueError) as exc:
        _err(f"BOT_PUBLIC_KEY_FILE: the keys cannot be loaded ({exc})")
        await db.close()
        return 2
    if keys.offline and args.with_files:
        _err("--with-files needs the private key on this server (the attachments' references "
             "are sealed); export without it, or download the files where the key is.")
        await db.close()
        return 1
    try:
        try:
            total = await count_cases(db, **filters)
        except ValueError as exc:
            _err(f"export: {exc}")
            return 1
        progress = _Progress("exporting", total)
        detail: dict[str, Any] = {"format": args.format, "via": "cli",
                                  "filters": {k: v for k, v in filters.items() if v}}
        try:
            if keys.offline:
                sealed = output if output.name.endswith(".sealed") \
                    else output.with_name(output.name + ".sealed")
                result = await write_sealed_export(db, sealer_of(keys, settings),
                                                   fmt=args.format,
                                                   output=sealed, progress=progress, **filters)
                progress.done()
                detail.update(cases=result.cases, sealed=True)
                print(f"the private key is offline: wrote {result.cases} cases, sealed, to "
                      f"{sealed}. On the offline computer: python -m bot decrypt --key "
                      f"org_private.key --input {sealed.name} --output {output.name}")
            else:
                private = keys.private
                assert private is not None
                # Level 1: XLSX about a third faster to write than the default 6, for a file
                # about 38 % bigger (tests/bench/bench_export.py --level); no upload limit here.
                done = await export_cases(db, load_form(), fmt=args.format, output=output,
                                          decode=case_opener(private), progress=progress,
                                          deflate_level=1, **filters)
                progress.done()
                detail.update(rows=done.rows, cases=done.cases, sealed=False)
                print(f"exported {done.rows} rows ({done.cases} cases) to {output}")
                if args.with_files:
                    files = await _download_files(settings, db, Path(args.with_files),
                                                  case_opener(private), filters)
                    detail["files"] = files
        except (ValueError, ExportError) as exc:
            progress.done()
            _err(f"export failed: {exc}")
            return 1
        except OSError as exc:
            progress.done()
            # The file is written under a temporary name: name the one the user asked for.
            _err(f"export: cannot write {output}: {exc.strerror or type(exc).__name__}")
            return 1
        await _audit_export(db, detail)
    finally:
        await db.close()
    return 0


async def _download_files(settings: Settings, db: Any, folder: Path,
                          decode: Callable[[bytes], bytes], filters: dict[str, Any]) -> int:
    """The attachments from the evidence vault (bot/evidence/reading.py), with SHA256SUMS."""
    from bot.evidence.reading import MANIFEST, export_case_files
    from bot.services.crypto import load_keyring

    keys = load_keyring(settings.data_dir, settings.public_key_file, settings.private_key_file,
                        settings.draft_key_file, mode="cli")
    assert keys.private is not None
    report = await export_case_files(
        db, data_dir=settings.data_dir, private=keys.private, out_dir=folder, decode=decode,
        unseal=keys.unseal, api_base_url=settings.api_base_url, token=settings.token,
        **filters)
    print(f"attachments: {report.from_vault} from the vault, {report.from_telegram} from "
          f"Telegram, {len(report.failed)} not available, into {folder} (check them with: "
          f"cd {folder} && sha256sum -c {MANIFEST})")
    for line in report.failed[:50]:
        _err(f"  not available: {line}")
    if len(report.failed) > 50:
        _err(f"  ... and {len(report.failed) - 50} more")
    return report.from_vault + report.from_telegram


async def _audit_export(db: Any, detail: dict[str, Any]) -> None:
    """Record the export (format, filters, counts; no content) in the staff audit log."""
    try:
        from bot.storage.staff import AuditLog
    except ImportError:  # staff follow-up not installed in this version
        return
    now = datetime.now(UTC).isoformat(timespec="seconds")
    await AuditLog(db).record(None, "export", detail, now)


async def dossier(settings: Settings, args: argparse.Namespace) -> int:
    """One .docx per missing person for the UN Working Group (bot/evidence/dossier.py)."""
    from bot.evidence.dossier_cli import DossierError, write_dossiers

    if bool(args.case) == bool(args.all):
        _err("dossier needs --case NUMBER or --all --consent share")
        return 2
    try:
        written = await write_dossiers(settings, case=args.case, person=args.person,
                                       all_cases=args.all, consent=args.consent,
                                       output=args.output, key=args.key)
    except DossierError as exc:
        _err(f"dossier: {exc}")
        return 1
    print(f"wrote {len(written)} dossier(s): " + ", ".join(str(p) for p in written[:10])
          + (" ..." if len(written) > 10 else ""))
    return 0
