"""`python -m bot broadcast`: queue news from the server's command line for the running bot.

    python -m bot broadcast --text kk=... --text ru=... --text en=... \\
        [--fallback ru] [--photo FILE] [--audience all|lang:kk|open-cases|status:S] [--yes]

The broadcast and every recipient are stored in the bot's database in one transaction; the
running bot notices it within a few seconds and sends it, and this command prints its progress
until it is done (--no-wait to return at once). `--cancel ID` stops one. Output is for the
operator, in English, like the rest of the command line.
"""

from __future__ import annotations

import argparse
import asyncio
import html
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bot.config import Settings
from bot.i18n import LANGUAGES
from bot.services.broadcast import (
    DEFAULT_RATE,
    Tally,
    message_html,
    visible_length,
    visible_text,
)
from bot.storage.broadcasts import Audience, BroadcastRepository, NewBroadcast
from bot.storage.db import Database, SchemaNotCurrent

TEXT_LIMIT = 4096
CAPTION_LIMIT = 1024
PHOTO_LIMIT = 10 * 2**20  # Telegram's limit for sendPhoto
WATCH_EVERY = 2.0


class CliError(Exception):
    """Wrong arguments: str() says what to fix."""


def add_broadcast_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the `broadcast` command to `python -m bot`'s sub-commands."""
    p: argparse.ArgumentParser = subparsers.add_parser(
        "broadcast", help="queue news for relatives, sent by the running bot",
        description="Queue a message for relatives, each in their language; the running bot "
                    "sends it. Relatives who turned updates off or blocked the bot are left out.")
    p.add_argument("--text", action="append", default=[], metavar="LANG=TEXT",
                   help="the message for one language (kk, ru or en); repeat for each language")
    p.add_argument("--fallback", choices=LANGUAGES,
                   help="whose text relatives get when their language has none "
                        "(default: ru if given, else the first given)")
    p.add_argument("--photo", type=Path, metavar="FILE",
                   help="a photo (JPEG or PNG, up to 10 MB) sent with the text as its caption")
    p.add_argument("--audience", default="all",
                   help="all (default), lang:kk|ru|en, open-cases, or status:CODE")
    p.add_argument("--html", action="store_true",
                   help="the texts are Telegram HTML (<b>, <i>, <a href>); default: plain text")
    p.add_argument("--yes", "-y", action="store_true", help="queue without asking")
    p.add_argument("--no-wait", action="store_true",
                   help="return once queued instead of printing progress until it is sent")
    p.add_argument("--cancel", type=int, metavar="ID", help="stop broadcast ID instead")
    return p


def parse_texts(items: list[str], as_html: bool) -> dict[str, str]:
    texts: dict[str, str] = {}
    for item in items:
        lang, sep, text = item.partition("=")
        lang = lang.strip().lower()
        if not sep or lang not in LANGUAGES:
            raise CliError(f"--text must be LANG=TEXT with LANG one of {', '.join(LANGUAGES)}")
        if lang in texts:
            raise CliError(f"--text {lang}= is given twice")
        if not text.strip():
            raise CliError(f"--text {lang}= is empty")
        texts[lang] = text.strip() if as_html else html.escape(text.strip(), quote=False)
    if not texts:
        raise CliError("give at least one --text LANG=TEXT")
    return texts


def choose_fallback(texts: dict[str, str], wanted: str | None) -> str:
    if wanted is not None:
        if wanted not in texts:
            raise CliError(f"--fallback {wanted}: there is no --text {wanted}=")
        return wanted
    return "ru" if "ru" in texts else next(lang for lang in LANGUAGES if lang in texts)


def check_lengths(texts: dict[str, str], fallback: str, with_photo: bool) -> None:
    limit = CAPTION_LIMIT if with_photo else TEXT_LIMIT
    for lang in LANGUAGES:
        length = visible_length(message_html(texts, fallback, lang))
        if length > limit:
            what = "a photo's caption" if with_photo else "a message"
            raise CliError(f"the {lang} message has {length} characters; {what} takes at most "
                           f"{limit}")


def read_photo(path: Path) -> bytes:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CliError(f"--photo {path}: {exc.strerror or type(exc).__name__}") from None
    if not data or len(data) > PHOTO_LIMIT:
        raise CliError(f"--photo {path}: must be 1 byte to 10 MB, it has {len(data)} bytes")
    return data


async def queue_broadcast_from_cli(args: argparse.Namespace, settings: Settings) -> int:
    """Run `python -m bot broadcast`: 0 queued (or stopped), 1 refused, 2 wrong arguments
    or a database that is not migrated (never migrated here: the running bot uses it)."""
    try:
        db = await Database.open_current(settings.db_path)
    except SchemaNotCurrent as exc:
        print(f"broadcast: {exc}", file=sys.stderr)
        return 2
    try:
        repo = BroadcastRepository(db, settings.staff_ids | settings.admin_ids)
        if args.cancel is not None:
            return await _cancel(repo, args.cancel)
        try:
            texts = parse_texts(args.text, args.html)
            fallback = choose_fallback(texts, args.fallback)
            audience = Audience.parse(args.audience)
            photo = read_photo(args.photo) if args.photo is not None else None
            check_lengths(texts, fallback, photo is not None)
        except (CliError, ValueError) as exc:
            print(f"broadcast: {exc}", file=sys.stderr)
            return 2
        sizes = await repo.audience_sizes(audience)
        total = sum(sizes.values())
        _print_preview(texts, fallback, audience, sizes, photo is not None)
        if not total:
            print("Nobody is in this audience: nothing was queued.", file=sys.stderr)
            return 1
        if not args.yes and not _confirm(total):
            print("Nothing was queued.")
            return 1
        queued = await repo.queue(NewBroadcast(audience=audience, texts=texts,
                                               fallback=fallback, photo=photo), _now())
        assert queued is not None
        broadcast_id, count = queued
        minutes = count / DEFAULT_RATE / 60
        print(f"Queued broadcast #{broadcast_id} for {count} relatives; the running bot sends "
              f"it (about {max(minutes, 0.1):.1f} min). Stop it with: python -m bot broadcast "
              f"--cancel {broadcast_id}")
        if not _bot_running(settings):
            print("No bot is running on this data folder now: it will be sent when the bot "
                  "starts.")
        if args.no_wait:
            return 0
        return await _watch(repo, broadcast_id)
    finally:
        await db.close()


def _print_preview(texts: dict[str, str], fallback: str, audience: Audience,
                   sizes: dict[str, int], with_photo: bool) -> None:
    print(f"Audience: {audience.code}; recipients: {sum(sizes.values())}"
          + ("; with a photo" if with_photo else ""))
    for lang in LANGUAGES:
        note = "" if lang in texts else f" (no {lang} text: they get the {fallback} text)"
        print(f"  {lang}: {sizes.get(lang, 0)} recipients{note}")
    for lang in LANGUAGES:
        if sizes.get(lang):
            print(f"--- {lang} readers see:\n{visible_text(message_html(texts, fallback, lang))}")


def _confirm(total: int) -> bool:
    if not sys.stdin.isatty():
        print("Add --yes to queue a broadcast without a terminal to confirm in.",
              file=sys.stderr)
        return False
    answer = input(f"Queue this broadcast for {total} relatives? [y/N] ")
    return answer.strip().lower() in ("y", "yes")


def _bot_running(settings: Settings) -> bool:
    """True when a bot process holds the data folder's lock (bot/runner.py takes it)."""
    try:
        from bot.runner import DataDirBusy, DataDirLock
    except ImportError:  # pragma: no cover - older layouts
        return True
    lock = DataDirLock(settings.data_dir)
    try:
        lock.acquire()
    except DataDirBusy:
        return True
    except OSError:
        return True
    lock.release()
    return False


async def _cancel(repo: BroadcastRepository, broadcast_id: int) -> int:
    if await repo.cancel(broadcast_id, _now()):
        print(f"Broadcast #{broadcast_id} is stopped: relatives still waiting for it will not "
              "get it (the bot stops within a second).")
        return 0
    b = await repo.get(broadcast_id)
    state = b.state if b is not None else "not found"
    print(f"Broadcast #{broadcast_id} cannot be stopped: {state}.", file=sys.stderr)
    return 1


async def _watch(repo: BroadcastRepository, broadcast_id: int) -> int:
    """Print progress until the broadcast ends; Ctrl-C stops watching, not sending."""
    shown = ""
    started = time.monotonic()
    try:
        while True:
            b = await repo.get(broadcast_id)
            tally = Tally.of(await repo.counts(broadcast_id))
            line = (f"#{broadcast_id} {b.state if b else '?'}: sent {tally.sent}, blocked "
                    f"{tally.blocked}, failed {tally.failed}, remaining {tally.remaining}")
            if line != shown:
                print(line, flush=True)
                shown = line
            if b is None or b.state in ("done", "cancelled"):
                break
            await asyncio.sleep(WATCH_EVERY)
    except (KeyboardInterrupt, asyncio.CancelledError):
        print(f"Stopped watching; the bot keeps sending broadcast #{broadcast_id}.")
        return 0
    reasons = await repo.failure_reasons(broadcast_id)
    for reason, count in reasons:
        print(f"  failed {count}: {reason}")
    print(f"Done in {time.monotonic() - started:.0f} s.")
    return 0


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
