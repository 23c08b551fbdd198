"""Staff and admins shown by first name and @username (cards, history, lists), not numbers.

Names come from Telegram with every update a staff member sends; they are kept for staff and
admins only (bot/storage/people.py) and cached here, so the card and history renderers, which
are plain functions, can show them (staff_view.staff_ref).
"""

from __future__ import annotations

import hashlib
import logging
from weakref import WeakKeyDictionary

from telegram import Update
from telegram.error import TelegramError
from telegram.ext import ContextTypes

from bot.handlers.common import Deps, deps, esc
from bot.storage.db import Database
from bot.storage.people import PeopleRepository, Profile

log = logging.getLogger(__name__)

#: Per database (tests run several bots in one process): the known names.
_CACHES: WeakKeyDictionary[Database, dict[int, Profile]] = WeakKeyDictionary()
#: The cache of the bot that runs here (the renderers have no database at hand).
_CACHE: dict[int, Profile] = {}


def display(profile: Profile | None, user_id: int, *, html: bool = True) -> str:
    """`Aigerim (@aigerim)`, escaped for HTML unless `html` is False; the id when Telegram
    never gave a name."""
    if profile is None or not (profile.first_name or profile.username):
        return f"<code>{user_id}</code>" if html else str(user_id)
    quote = esc if html else str
    parts = [quote(profile.first_name)] if profile.first_name else []
    if profile.username:
        parts.append(("(@%s)" if parts else "@%s") % quote(profile.username))
    return " ".join(parts)


def cached_name(user_id: int) -> str:
    return display(_CACHE.get(user_id), user_id)


async def load_names(d: Deps) -> dict[int, Profile]:
    """Cache every known staff name once per database (a few rows)."""
    global _CACHE
    cache = _CACHES.get(d.db)
    if cache is None:
        cache = {p.user_id: p for p in await PeopleRepository(d.db).all()}
        _CACHES[d.db] = cache
    _CACHE = cache
    return cache


async def staff_name(d: Deps, user_id: int | None, *, html: bool = True) -> str:
    if user_id is None:
        return "—"
    cache = await load_names(d)
    return display(cache.get(user_id), user_id, html=html)


async def remember(d: Deps, user_id: int, first_name: str | None, username: str | None) -> None:
    cache = await load_names(d)
    known = cache.get(user_id)
    if known is not None and (known.first_name, known.username) == (first_name, username):
        return
    await PeopleRepository(d.db).remember(user_id, first_name, username,
                                          d.now().isoformat(timespec="seconds"))
    cache[user_id] = Profile(user_id, first_name, username)


async def remember_staff(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Keep the names of a staff member or admin who acts (the staff handlers call this)."""
    user = update.effective_user
    if user is None or user.is_bot:
        return
    await remember(deps(context), user.id, user.first_name, user.username)


# ----------------------------------------------------------------------------- @usernames
# /staff add @username: Telegram does not resolve a person's @username for a bot, so the bot
# keeps, for each person who wrote to it privately and never reported as a relative, a keyed
# hash of their @username (bot/storage/migrations/0045_username_tags.sql): enough to find
# someone an admin names, not enough to list who wrote to us by name.

#: Per database: the tag last written for each user (most updates then cost nothing).
_TAGS: WeakKeyDictionary[Database, dict[int, bytes | None]] = WeakKeyDictionary()
_TAGS_KEPT = 50_000


def username_tag(d: Deps, username: str) -> bytes:
    key = hashlib.blake2b(b"usernames", key=d.keys.button_secret, digest_size=32).digest()
    return hashlib.blake2b(username.lstrip("@").lower().encode("utf-8"), key=key,
                           digest_size=16).digest()


async def record_username(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """After the other handlers (the users row exists by then): keep the tag of the @username
    of whoever writes privately; never stops an update."""
    user, chat = update.effective_user, update.effective_chat
    if user is None or user.is_bot or chat is None or chat.type != "private":
        return
    d = deps(context)
    tag = username_tag(d, user.username) if user.username else None
    written = _TAGS.setdefault(d.db, {})
    if user.id in written and written[user.id] == tag:
        return
    if not await PeopleRepository(d.db).set_username_tag(user.id, tag):
        return  # not started yet (no users row): the next update tries again
    if len(written) >= _TAGS_KEPT:
        written.clear()
    written[user.id] = tag


async def find_by_username(context: ContextTypes.DEFAULT_TYPE, d: Deps, username: str
                           ) -> Profile | None:
    """The person an admin names by @username: a staff member or admin we know, or someone
    who started the bot (and did not report as a relative), checked with Telegram that the
    name is still theirs. None when unknown."""
    name = username.lstrip("@")
    known = await PeopleRepository(d.db).by_username(name)
    user_id = known.user_id if known is not None else \
        await PeopleRepository(d.db).user_by_username_tag(username_tag(d, name))
    if user_id is None:
        return None
    try:
        chat = await context.bot.get_chat(user_id)
    except TelegramError as exc:  # a staff member who never started the bot: as we know them
        log.info("could not check a username with Telegram: %s", type(exc).__name__)
        return known
    if (chat.username or "").lower() != name.lower():
        return None  # the name moved on to someone else since
    return Profile(user_id, chat.first_name, chat.username)
