"""`backup` and `restore`: the database and the evidence vault's copy."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bot.cli.common import _err, _existing, _verify_key_path
from bot.config import Settings


async def backup(settings: Settings, output: Path | None, files: Path | None = None) -> int:
    """Take a consistent sealed backup of the database into `output` (the bot may run), and
    with `--files DIR` an incremental copy of the evidence vault (bot/evidence/backup_files)."""
    if output is None and files is None:
        _err("backup needs --output FILE (the database), --files DIR (the evidence vault), "
             "or both")
        return 2
    code = await _backup_db(settings, output) if output is not None else 0
    if code == 0 and files is not None:
        from bot.evidence.backup_files import MANIFEST, backup_files

        try:
            done = await asyncio.to_thread(backup_files, settings.data_dir, files)
        except OSError as exc:
            _err(f"files backup failed: {exc.strerror} ({exc.filename})")
            return 1
        print(f"evidence files backed up into {files}: {done.copied} new "
              f"({done.copied_bytes} bytes), {done.kept} already there, {done.removed} "
              f"erased from the vault removed; check with: cd {files} && sha256sum -c "
              f"{MANIFEST}")
    return code


async def _backup_db(settings: Settings, output: Path) -> int:
    """Take a consistent, signed age backup of the database into `output` (the bot may run)."""
    from bot.crypto.sealing import sealer_of
    from bot.services.backup import BackupError, take_backup
    from bot.services.crypto import load_keyring

    try:
        keys = load_keyring(settings.data_dir, settings.public_key_file,
                            settings.private_key_file, settings.draft_key_file, mode="cli")
    except (OSError, ValueError) as exc:
        _err(f"BOT_PUBLIC_KEY_FILE: the public key cannot be loaded ({exc})")
        return 2
    sealer = sealer_of(keys, settings)
    try:
        result = await take_backup(settings, sealer, output)
    except BackupError as exc:
        _err(f"backup failed: {exc}")
        return 1
    more = f" and {len(sealer.extra)} more recipient(s)" if sealer.extra else ""
    print(f"backup written: {result.path} ({result.size} bytes, schema version "
          f"{result.schema_version}, {result.cases} cases), encrypted (age) to the "
          f"organisation's public key{more}; signature in {result.path.name}.sig")
    return 0


def _confirm_restore(yes: bool) -> Callable[[Any], bool]:
    from bot.services.backup import BackupError

    def confirm(summary: Any) -> bool:
        for line in summary.lines():
            print(line)
        if yes:
            return True
        if not sys.stdin.isatty():
            raise BackupError("no terminal to confirm in: add --yes to restore from a script; "
                              "nothing was changed")
        answer = input("Replace the current database with this backup? The current one is "
                       "kept aside. [y/N] ")
        return answer.strip().lower() in ("y", "yes")

    return confirm


async def restore(settings: Settings, source: Path, key: Path | None,
                  verify_key: Path | None = None, allow_unsigned: bool = False,
                  yes: bool = False) -> int:
    """Replace the database by a checked backup (the bot must be stopped)."""
    from bot.crypto.agekeys import AgeKeyError, read_private_keys
    from bot.crypto.signing import SignatureError, load_verify_key
    from bot.runner import DataDirBusy, DataDirLock
    from bot.services.backup import BackupError, restore_from
    from bot.services.crypto import PRIVATE_NAME

    for problem in (_existing(key, "key file"), _existing(verify_key, "verify key")):
        if problem:
            _err(f"restore refused: {problem}; nothing was changed")
            return 1
    key_path = key
    for candidate in (settings.private_key_file, settings.data_dir / "keys" / PRIVATE_NAME):
        if key_path is None and candidate is not None and candidate.is_file():
            key_path = candidate
    if key_path is None:
        _err("restore needs the organisation's private key: pass --key FILE (for example "
             "from the offline computer's USB stick) or set BOT_PRIVATE_KEY_FILE; "
             "nothing was changed")
        return 1
    try:
        keys = read_private_keys(key_path)
        vk_path = _verify_key_path(verify_key, key_path.parent, settings.data_dir / "keys")
        vk = load_verify_key(vk_path) if vk_path is not None else None
    except (AgeKeyError, SignatureError) as exc:
        _err(f"restore refused: {exc}; nothing was changed")
        return 1
    lock = DataDirLock(settings.data_dir)
    try:
        lock.acquire()
    except DataDirBusy:
        _err(f"the bot is running on {settings.data_dir}: stop it first (systemctl stop "
             "atazhurt-bot, or docker compose stop bot); nothing was changed")
        return 1
    except OSError as exc:
        _err(f"BOT_DATA_DIR: {settings.data_dir} is not writable ({exc.strerror}); "
             "nothing was changed")
        return 2
    try:
        result = await asyncio.to_thread(restore_from, settings, source, keys, verify_key=vk,
                                         allow_unsigned=allow_unsigned,
                                         confirm=_confirm_restore(yes))
    except BackupError as exc:
        _err(f"restore refused: {exc}")
        return 1
    finally:
        lock.release()
    aside = f"; the previous database is now {result.moved_aside[0]}" if result.moved_aside \
        else ""
    print(f"restored {source} (taken {result.created_at or '?'}, schema version "
          f"{result.schema_version}, {result.cases} cases, "
          f"{'signed' if result.signed else 'UNSIGNED'}; draft key: {result.draft_key})"
          f"{aside}. Start the bot: migrations run at start-up.")
    return 0
