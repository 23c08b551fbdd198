"""The command line: `python -m bot run | sandbox | migrate | check | keys | decrypt | backup |
restore | export | dossier | broadcast`.

Every failure is one line on stderr saying what to fix. Exit codes: 0 all well, 1 the
operation was refused or failed, 2 a wrong argument, setting or environment (a database that
needs `migrate` included), 130 interrupted. Installed, it is also the `atazhurt-bot` command.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from collections.abc import Callable, Coroutine
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from bot.config import Settings, SettingsError, load_settings
from bot.logs import setup_logging
from bot.runner import UPDATE_TYPES, run_bot

__all__ = ["UPDATE_TYPES", "main", "run_bot"]


def _setup_logging(level: str) -> None:
    """One line per event with its level; library arguments withheld; repeats counted."""
    setup_logging(level)


def _err(message: str) -> None:
    print(message, file=sys.stderr)


# ----------------------------------------------------------------------------- run, sandbox


#: The people of `sandbox --as`: (user id, first name, @username, language) per role.
SANDBOX_CAST = {"relative": (1, "Айгүл", None, "kk"), "staff": (2, "Arman", "arman", "ru"),
                "admin": (3, "Dana", "dana", "en")}
SANDBOX_GROUP = -1001


async def sandbox(settings: Settings, role: str | None = None) -> int:
    """Start the offline emulator, run the bot against it, and chat in this terminal.

    With `role` (relative, staff or admin) the sandbox has one person per role and a staff
    group, and the terminal can switch between them (/as) and write in the group (/group).
    """
    from bot.sandbox.emulator import Emulator
    from bot.sandbox.terminal import Cast, chat_in_terminal

    emulator = Emulator()
    await emulator.start()
    # Its own data folder, keys included: sandbox chats never mix with real cases.
    update: dict[str, Any] = {"token": emulator.token, "api_base_url": emulator.base_url,
                              "data_dir": settings.data_dir / "sandbox", "webhook_url": "",
                              "public_key_file": None, "private_key_file": None,
                              "draft_key_file": None}
    cast = None
    if role is not None:
        users = {r: emulator.user(uid, first_name=name, username=username, language_code=lang)
                 for r, (uid, name, username, lang) in SANDBOX_CAST.items()}
        group = emulator.group(SANDBOX_GROUP, title="Volunteers")
        group.state.known = True  # the bot was added to the staff group
        cast = Cast(users, group)
        update.update(admin_ids=frozenset({SANDBOX_CAST["admin"][0]}),
                      staff_ids=frozenset({SANDBOX_CAST["staff"][0]}),
                      staff_chat_id=SANDBOX_GROUP)
    local = settings.model_copy(update=update)
    stop = asyncio.Event()
    bot_task = asyncio.create_task(run_bot(local, webhook=False, stop=stop))
    print(f"Sandbox: a local Bot API emulator at {emulator.base_url}; data in "
          f"{local.data_dir}. Type /start. Numbers press buttons; /quit ends.")
    try:
        if cast is not None and role is not None:
            await chat_in_terminal(emulator, cast=cast, role=role)
        else:
            await chat_in_terminal(emulator)
    finally:
        stop.set()
        await bot_task
        await emulator.stop()
    return 0


async def migrate(settings: Settings) -> int:
    """Apply the database migrations not yet applied, and say which."""
    from bot.storage.db import Database

    db = await Database.open(settings.db_path, migrate=False)
    try:
        applied = await db.migrate()
        print(f"schema version {await db.schema_version()}; applied now: {applied or 'none'}")
    finally:
        await db.close()
    return 0


async def check(settings: Settings) -> int:
    """Validate the set-up; exit 0 only when all is well, else one line per problem."""
    from bot.checks import run_checks

    report = await run_checks(settings)
    if report.ok:
        print("ok: " + "; ".join(report.facts))
        return 0
    for problem in report.problems:
        _err(problem)
    return 2


# ----------------------------------------------------------------------------- keys, decrypt


def keys_generate(out: Path, passphrase: bool = False) -> int:
    """Write a new organisation key pair (and the backup signing pair) into `out`."""
    from bot.services.crypto import generate_keypair

    secret = None
    if passphrase:
        secret = _new_passphrase()
        if secret is None:
            return 1
    try:
        public, private = generate_keypair(out, secret)
    except FileExistsError:
        _err(f"keys already exist in {out}: refusing to overwrite them (move them first).")
        return 1
    except OSError as exc:
        _err(f"cannot write keys into {out}: {exc.strerror}")
        return 1
    print(f"public key:  {public}  (goes on the server: BOT_PUBLIC_KEY_FILE)")
    print(f"private key: {private}  (opens every case: keep it offline, make a second copy; "
          "see deploy/README.md)" + ("; protected by your passphrase" if secret else ""))
    print(f"signing key: {out / 'signing.key'}  (goes on the server, into BOT_DATA_DIR/keys/: "
          "it signs backups and exports)")
    print(f"verify key:  {out / 'verify.key'}  (stays with the private key: restore and "
          "decrypt check signatures with it)")
    return 0


def _new_passphrase() -> str | None:
    import getpass

    if not sys.stdin.isatty():
        _err("--passphrase needs a terminal to type the passphrase in")
        return None
    first = getpass.getpass("Passphrase for the private key: ")
    if len(first) < 12:
        _err("the passphrase is too short (at least 12 characters)")
        return None
    if getpass.getpass("The same passphrase again: ") != first:
        _err("the two passphrases differ: nothing was written")
        return None
    return first


def _existing(path: Path | None, what: str) -> str | None:
    """Why an explicitly given file cannot be used (None when it exists)."""
    if path is not None and not path.is_file():
        return f"the {what} {path} does not exist"
    return None


def _verify_key_path(explicit: Path | None, *beside: Path | None) -> Path | None:
    """--verify-key, else verify.key beside the private key (or in the given folders)."""
    from bot.crypto.signing import VERIFY_NAME

    if explicit is not None:
        return explicit
    for folder in beside:
        if folder is not None and (folder / VERIFY_NAME).is_file():
            return folder / VERIFY_NAME
    return None


class _Peeked(Exception):
    def __init__(self, head: bytes) -> None:
        super().__init__("peeked")
        self.head = head


def _age_kind(source: Path, identities: Any) -> str:
    """'backup' or 'export', from the first decrypted bytes of an age file."""
    from bot.crypto.agefile import age_input

    try:
        with age_input(source, identities) as plain:
            raise _Peeked(plain.read(512))
    except _Peeked as peeked:
        head = peeked.head
    return "export" if head.lstrip().startswith(b"{") else "backup"


def decrypt(key: Path, source: Path, output: Path, verify_key: Path | None = None,
            allow_unsigned: bool = False) -> int:
    """Open a sealed export or backup with the private key, on an offline computer."""
    from bot.crypto.agefile import AgeFileError, is_age_file
    from bot.crypto.agekeys import AgeKeyError, read_private_keys
    from bot.crypto.signing import (
        SignatureError,
        load_verify_key,
        signature_path,
        verify_file,
    )
    from bot.services.backup import BackupError, _open_age_backup
    from bot.services.crypto import MAGIC, open_sealed_file
    from bot.services.export import ExportError
    from bot.services.sealed_export import EXPORT_KIND, open_sealed_export
    from bot.services.sealedfile import SealedFileError, is_sealed_stream, open_to_file, read_meta

    for problem in (_existing(key, "key file"), _existing(verify_key, "verify key")):
        if problem:
            _err(f"decrypt refused: {problem}")
            return 1
    try:
        keys = read_private_keys(key)
        if not source.is_file():
            _err(f"{source} does not exist")
            return 1
        with source.open("rb") as fh:
            head = fh.read(len(MAGIC))
        if not (is_age_file(source) or is_sealed_stream(source) or head == MAGIC):
            _err(f"{source} is not a sealed file written by this bot")
            return 1
        vk_path = _verify_key_path(verify_key, key.parent)
        signed_kind = None
        if signature_path(source).exists() and vk_path is not None:
            signed_kind = verify_file(source, load_verify_key(vk_path), None).kind
        elif not allow_unsigned:
            why = (f"no {signature_path(source).name} beside it" if is_age_file(source)
                   else "an older format, never signed")
            if vk_path is None and signature_path(source).exists():
                why = "no verify key to check it: pass --verify-key FILE"
            _err(f"{source} is not signed ({why}): if you are sure it is yours, add "
                 "--allow-unsigned")
            return 1
        if is_age_file(source):
            kind = signed_kind or _age_kind(source, keys.identities)
            if kind == EXPORT_KIND:
                progress = _Progress("decrypting", None)
                meta, result = asyncio.run(open_sealed_export(source, keys, output,
                                                              progress=progress))
                progress.done()
                print(f"wrote {result.rows} rows ({result.cases} cases, "
                      f"{meta.get('format')}) to {output}")
                return 0
            tmp = output.with_name(f".{output.name}.part")
            try:
                meta = _open_age_backup(source, keys, tmp)
                os.replace(tmp, output)
            finally:
                tmp.unlink(missing_ok=True)
            print(f"wrote the backup's database (made {meta.get('created_at', '?')}) to "
                  f"{output}")
            return 0
        private = keys.private
        assert private is not None
        if is_sealed_stream(source):
            meta = read_meta(source, private)
            if meta.get("kind") == EXPORT_KIND:
                progress = _Progress("decrypting", None)
                _, result = asyncio.run(open_sealed_export(source, keys, output,
                                                           progress=progress))
                progress.done()
                print(f"wrote {result.rows} rows ({result.cases} cases, "
                      f"{meta.get('format')}) to {output}")
            else:
                meta = open_to_file(source, output, private)
                print(f"wrote the {meta.get('kind', 'sealed')} content "
                      f"(made {meta.get('created_at', '?')}) to {output}")
            return 0
        try:
            plain = open_sealed_file(key, source.read_bytes())
        except ValueError as exc:
            _err(f"{source}: {exc}")
            return 1
        _write_private(output, plain)
        print(f"wrote {len(plain)} bytes to {output}")
        return 0
    except AgeKeyError as exc:
        _err(str(exc))
        return 1
    except (SealedFileError, ExportError, SignatureError, AgeFileError) as exc:
        _err(f"{source}: {exc}" if str(source) not in str(exc) else str(exc))
        return 1
    except BackupError as exc:
        _err(str(exc).removesuffix("; nothing was changed"))
        return 1
    except OSError as exc:
        _err(f"cannot write {output}: {exc.strerror}")
        return 1


def duplicates(key: Path, source: Path, output: Path) -> int:
    """Possible duplicates in an export, on the offline computer (bot/casework/offline.py).

    A sealed export is opened first exactly as `decrypt` opens it (signature checked), into a
    temporary folder that is removed afterwards."""
    import tempfile

    from bot.casework import offline

    if not source.is_file():
        _err(f"{source} does not exist")
        return 1
    with tempfile.TemporaryDirectory(prefix="duplicates-") as tmp:
        plain = source
        if not offline.is_plain_export(source):
            plain = Path(tmp) / "export"
            code = decrypt(key, source, plain)
            if code != 0:
                return code
            if not offline.is_plain_export(plain):
                _err(f"{source}: export as JSONL or CSV for duplicates (not XLSX)")
                return 1
        try:
            pairs = offline.write_report(plain, output)
        except (ValueError, KeyError) as exc:
            _err(f"{source}: not an export this bot wrote ({type(exc).__name__})")
            return 1
        except OSError as exc:
            _err(f"cannot write {output}: {exc.strerror}")
            return 1
    print(f"wrote {pairs} possible duplicates to {output}")
    return 0


def _write_private(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.part")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.replace(tmp, path)


# ----------------------------------------------------------------------------- backups


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


# ----------------------------------------------------------------------------- export


class _Progress:
    """A progress line on stderr: rewritten in place on a terminal, every 10 s otherwise."""

    def __init__(self, verb: str, total: int | None) -> None:
        self.verb = verb
        self.total = total
        self.tty = sys.stderr.isatty()
        self.last = time.monotonic()
        self.shown = False
        self.count = 0

    def __call__(self, done: int) -> None:
        self.count = done
        now = time.monotonic()
        if now - self.last < (0.5 if self.tty else 10.0):
            return
        self.last = now
        of = f"/{self.total}" if self.total else ""
        pct = f" ({100 * done // self.total}%)" if self.total else ""
        line = f"{self.verb}: {done}{of} cases{pct}"
        if self.tty:
            sys.stderr.write("\r" + line)
        else:
            sys.stderr.write(line + "\n")
        sys.stderr.flush()
        self.shown = True

    def done(self) -> None:
        if self.shown and self.tty:
            sys.stderr.write("\n")
            sys.stderr.flush()


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


async def _broadcast(settings: Settings, args: argparse.Namespace) -> int:
    """`python -m bot broadcast`: queue news for the running bot (see broadcast_cli)."""
    from bot.services.broadcast_cli import queue_broadcast_from_cli

    return await queue_broadcast_from_cli(args, settings)


# ----------------------------------------------------------------------------- main


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("atazhurt-bot")
    except PackageNotFoundError:  # a checkout that was never installed
        return "unknown (not installed)"


def _prog() -> str:
    """How the user called us: `python -m bot` or the `atazhurt-bot` console script."""
    return "python -m bot" if sys.argv[0].endswith("__main__.py") else "atazhurt-bot"


def _day(value: str) -> str:
    """An argparse type: a calendar date as YYYY-MM-DD."""
    try:
        if len(value) == 10:
            date.fromisoformat(value)
            return value
    except ValueError:
        pass
    raise argparse.ArgumentTypeError(f"{value!r} is not a date as YYYY-MM-DD")


def _parser(argv: list[str]) -> tuple[argparse.ArgumentParser, argparse.ArgumentParser]:
    """The command line's parser, and its `export` sub-parser."""
    from bot.i18n import LANGUAGES
    from bot.storage.staff import FINISHED, STATUSES

    statuses = tuple(dict.fromkeys((*STATUSES, *FINISHED)))
    parser = argparse.ArgumentParser(
        prog=_prog(), description="Atazhurt bot: run it, check it, back it up, export cases.",
        epilog="Exit codes: 0 done; 1 the operation failed or was refused (nothing was "
               "changed unless it says so); 2 a wrong argument, setting or environment "
               "(including a database that needs `migrate`); 130 interrupted.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    run = sub.add_parser(
        "run", help="run the bot on Telegram (long polling by default)",
        description="Run the bot on Telegram until SIGTERM or Ctrl-C, finishing the answers "
                    "in hand first. Migrates the database at start. Long polling, or a webhook "
                    "when BOT_WEBHOOK_URL is set or --webhook is given.")
    run.add_argument("--webhook", action="store_true",
                     help="receive updates by webhook (BOT_WEBHOOK_URL, BOT_WEBHOOK_SECRET)")
    sandbox_parser = sub.add_parser(
        "sandbox", help="try the bot offline in this terminal",
        description="Start a local Bot API emulator and chat with the bot in this terminal "
                    "(numbers press buttons). Its data is kept apart, in BOT_DATA_DIR/sandbox.")
    sandbox_parser.add_argument(
        "--as", dest="role", choices=("relative", "staff", "admin"),
        help="play this role among a relative, a staff member and an admin, with a staff "
             "group (switch with /as ROLE, write in the group with /group TEXT)")
    sub.add_parser("migrate", help="apply database migrations and exit",
                   description="Apply the database migrations not yet applied (the bot does "
                               "this at every start; check, export and broadcast never do and "
                               "ask for this instead).")
    sub.add_parser("check", help="check settings, data folder, database and token",
                   description="Check the settings, that the data folder is writable, that the "
                               "database (opened read-only, never migrated) has this version's "
                               "schema, the keys, and that Telegram accepts the token. Prints "
                               "one line per problem; exit 0 only when all is well.")
    keys = sub.add_parser("keys", help="the organisation's key pair",
                          description="Make the organisation's keys.")
    keys_sub = keys.add_subparsers(dest="keys_command", required=True, metavar="{generate}")
    gen = keys_sub.add_parser(
        "generate", help="write a new key pair",
        description="Write a new organisation key pair in age's format (org_public.key, "
                    "org_private.key) and the backup signing pair (signing.key, verify.key).")
    gen.add_argument("--out", required=True, type=Path, metavar="DIR",
                     help="the folder to write the keys into (it must not hold keys yet)")
    gen.add_argument("--passphrase", action="store_true",
                     help="protect org_private.key with a passphrase typed in the terminal "
                          "(age's scrypt encryption; `age -d` asks for it too)")
    dec = sub.add_parser("decrypt", help="open a sealed export or backup (offline computer)",
                         description="Check the signature of a sealed export or backup and "
                                     "open it with the private key: an export becomes the "
                                     "spreadsheet, a backup its database.")
    dec.add_argument("--key", required=True, type=Path, metavar="FILE",
                     help="the organisation's private key, or an age identity file that the "
                          "file was encrypted to (a passphrase-protected one asks for it)")
    dec.add_argument("--input", required=True, type=Path, metavar="SEALED",
                     help="the sealed file (its signature FILE.sig beside it)")
    dec.add_argument("--output", required=True, type=Path, metavar="PLAIN",
                     help="where to write the opened export or database")
    dec.add_argument("--verify-key", type=Path, metavar="FILE",
                     help="the verify key that checks the signature (default: verify.key "
                          "beside --key)")
    dec.add_argument("--allow-unsigned", action="store_true",
                     help="open a file without a signature (older files); a wrong signature "
                          "is still refused")
    dup = sub.add_parser("duplicates", help="find persons reported twice in an export "
                         "(offline computer, when the bot cannot read names)",
                         description="Compare every missing person of an export (JSONL or "
                                     "CSV, sealed or opened) with those reported before, by "
                                     "the bot's rules: the same Chinese ID, or a similar name "
                                     "with the same prefecture and birth year within one. "
                                     "Writes a CSV of case and person numbers, never names.")
    dup.add_argument("--key", required=True, type=Path, metavar="FILE",
                     help="the organisation's private key")
    dup.add_argument("--input", required=True, type=Path, metavar="EXPORT",
                     help="an export, sealed or opened (JSONL or CSV)")
    dup.add_argument("--output", required=True, type=Path, metavar="REPORT",
                     help="the report: a CSV of case and person numbers, no names")
    bak = sub.add_parser("backup", help="write a sealed backup of the database",
                         description="Write a consistent backup while the bot runs: age, "
                                     "encrypted to the organisation's public key and "
                                     "BOT_BACKUP_RECIPIENTS, signed into FILE.sig.")
    bak.add_argument("--output", type=Path, metavar="FILE",
                     help="the backup file to write (FILE.sig is written beside it)")
    bak.add_argument("--files", type=Path, metavar="DIR",
                     help="also bring an incremental copy of the evidence vault up to date "
                          "(bot/evidence/backup_files.py)")
    res = sub.add_parser("restore", help="replace the database by a backup (bot stopped)",
                         description="Check a backup (signature, key, integrity, schema), "
                                     "show what it holds, ask, then put it in place of the "
                                     "database. Nothing is changed when anything is wrong.")
    res.add_argument("--input", required=True, type=Path, metavar="FILE",
                     help="the backup (its signature FILE.sig beside it)")
    res.add_argument("--key", type=Path, metavar="FILE",
                     help="the private key or an age identity the backup was encrypted to "
                          "(default: BOT_PRIVATE_KEY_FILE or BOT_DATA_DIR/keys); it must exist")
    res.add_argument("--verify-key", type=Path, metavar="FILE",
                     help="the verify key kept with the private key (default: verify.key "
                          "beside --key, then BOT_DATA_DIR/keys/verify.key)")
    res.add_argument("--allow-unsigned", action="store_true",
                     help="accept a backup without a signature (older backups); its draft "
                          "key is not installed, and a wrong signature is still refused")
    res.add_argument("--yes", action="store_true",
                     help="do not ask before replacing the database (for scripts)")
    exp = sub.add_parser(
        "export", help="export cases to CSV, XLSX or JSONL",
        description="Export the cases matching the filters to a file (written under a "
                    "temporary name and renamed when complete). Sealed to the public key when "
                    "the private key is offline. Never migrates the database.")
    exp.add_argument("--format", required=True, choices=("csv", "xlsx", "jsonl"),
                     help="xlsx for spreadsheets; csv and jsonl for programs")
    exp.add_argument("--output", required=True, type=Path, metavar="PATH",
                     help="the file to write (its folder must exist)")
    exp.add_argument("--since", type=_day, metavar="YYYY-MM-DD",
                     help="only cases submitted on or after this day")
    exp.add_argument("--until", type=_day, metavar="YYYY-MM-DD",
                     help="only cases submitted on or before this day")
    exp.add_argument("--status", choices=statuses, metavar="STATUS",
                     help=f"only cases with this status: {', '.join(statuses)}")
    exp.add_argument("--lang", choices=LANGUAGES, metavar="LANG",
                     help=f"only cases in this language: {', '.join(LANGUAGES)}")
    exp.add_argument("--consent", choices=("share", "publish"),
                     help="only cases whose relatives agreed to sharing with international "
                          "organisations (share) or to publication, by name or anonymously "
                          "(publish)")
    exp.add_argument("--with-files", type=Path, metavar="DIR",
                     help="also write the attachments (from the evidence vault) into DIR, "
                          "with a SHA256SUMS manifest")
    dos = sub.add_parser(
        "dossier", help="a .docx per missing person for the UN WGEID",
        description="Write one Word document per missing person for the UN Working Group on "
                    "Enforced or Involuntary Disappearances: its required elements, the "
                    "testimony, the evidence list with SHA-256 and what is still missing. "
                    "Needs the private key (here, or --key on the offline computer).")
    dos.add_argument("--case", metavar="NUMBER", help="the case, e.g. 4821-0736")
    dos.add_argument("--person", type=int, metavar="K",
                     help="only the K-th missing person of the case (default: each of them)")
    dos.add_argument("--all", action="store_true",
                     help="every case (with --consent share), one file per person into DIR")
    dos.add_argument("--consent", choices=("share",),
                     help="only persons whose relative agreed to share with international "
                          "organisations")
    dos.add_argument("--output", required=True, type=Path, metavar="FILE.docx|DIR",
                     help="the .docx to write (FILE-K.docx for several persons), or with --all "
                          "the folder")
    dos.add_argument("--key", type=Path, metavar="FILE",
                     help="the organisation's private key (default: BOT_PRIVATE_KEY_FILE or "
                          "BOT_DATA_DIR/keys)")
    if argv[:1] == ["broadcast"]:  # its parser imports the sender: only when it is used
        from bot.services.broadcast_cli import add_broadcast_parser

        add_broadcast_parser(sub)
    else:
        sub.add_parser("broadcast", help="queue news for relatives, sent by the running bot",
                       add_help=False)
    return parser, exp


def _parse(argv: list[str]) -> argparse.Namespace:
    """Parse, then refuse what argparse cannot see: a date range that is empty by design."""
    parser, export_parser = _parser(argv)
    args = parser.parse_args(argv)
    if args.command == "export" and args.since and args.until and args.since > args.until:
        export_parser.error(f"argument --since: {args.since} is after --until {args.until}; "
                            "--since must be on or before --until")
    return args


def main(argv: list[str] | None = None) -> int:
    """Parse the command line, load settings when the command needs them, and run it."""
    os.umask(0o077)  # the database, keys, backups and exports: readable by this user only
    argv = sys.argv[1:] if argv is None else argv
    args = _parse(argv)
    try:
        if args.command == "keys":
            setup_logging("WARNING")
            return keys_generate(args.out, args.passphrase)
        if args.command == "decrypt":
            setup_logging("WARNING")
            return decrypt(args.key, args.input, args.output, args.verify_key,
                           args.allow_unsigned)
        if args.command == "duplicates":
            setup_logging("WARNING")
            return duplicates(args.key, args.input, args.output)
        try:
            settings = load_settings()
        except SettingsError as exc:
            if args.command == "check":
                for problem in exc.problems:
                    _err(problem)
            else:
                _err(f"Bad setting: {exc}")
            return 2
        # check speaks in problem lines only; the others log as the bot does.
        _setup_logging("WARNING" if args.command == "check" and settings.log_level.upper()
                       in ("INFO", "DEBUG") else settings.log_level)
        commands: dict[str, Callable[[], Coroutine[Any, Any, int]]] = {
            "run": lambda: run_bot(settings, webhook=True if args.webhook else None),
            "sandbox": lambda: sandbox(settings, args.role),
            "migrate": lambda: migrate(settings),
            "check": lambda: check(settings),
            "backup": lambda: backup(settings, args.output, args.files),
            "restore": lambda: restore(settings, args.input, args.key, args.verify_key,
                                       args.allow_unsigned, args.yes),
            "export": lambda: export(settings, args),
            "dossier": lambda: dossier(settings, args),
            "broadcast": lambda: _broadcast(settings, args),
        }
        return int(asyncio.run(commands[args.command]()))
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
