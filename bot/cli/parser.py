"""The command line's parser: every command, its arguments and help texts."""

from __future__ import annotations

import argparse
import sys
from datetime import date
from pathlib import Path


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
