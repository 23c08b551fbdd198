"""The command line: `python -m bot run | sandbox | migrate | check | keys | decrypt | backup |
restore | export | dossier | broadcast`.

Every failure is one line on stderr saying what to fix. Exit codes: 0 all well, 1 the
operation was refused or failed, 2 a wrong argument, setting or environment (a database that
needs `migrate` included), 130 interrupted. Installed, it is also the `atazhurt-bot` command.
The commands themselves live in bot/cli/ (one module per group); this module dispatches.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Callable, Coroutine
from typing import Any

from bot.cli.backups import _backup_db, _confirm_restore, backup, restore
from bot.cli.broadcast import _broadcast
from bot.cli.common import _err, _existing, _Progress, _verify_key_path, _write_private
from bot.cli.export import _audit_export, _download_files, dossier, export
from bot.cli.keys import _new_passphrase, keys_generate
from bot.cli.opening import _age_kind, _Peeked, decrypt, duplicates
from bot.cli.parser import _day, _parse, _parser, _prog, _version
from bot.cli.run import SANDBOX_CAST, SANDBOX_GROUP, check, migrate, sandbox
from bot.config import SettingsError, load_settings
from bot.logs import setup_logging
from bot.runner import UPDATE_TYPES, run_bot

__all__ = [
    "SANDBOX_CAST",
    "SANDBOX_GROUP",
    "UPDATE_TYPES",
    "_Peeked",
    "_Progress",
    "_age_kind",
    "_audit_export",
    "_backup_db",
    "_broadcast",
    "_confirm_restore",
    "_day",
    "_download_files",
    "_existing",
    "_new_passphrase",
    "_parse",
    "_parser",
    "_prog",
    "_verify_key_path",
    "_version",
    "_write_private",
    "backup",
    "check",
    "decrypt",
    "dossier",
    "duplicates",
    "export",
    "keys_generate",
    "main",
    "migrate",
    "restore",
    "run_bot",
    "sandbox",
]


def _setup_logging(level: str) -> None:
    """One line per event with its level; library arguments withheld; repeats counted."""
    setup_logging(level)



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
