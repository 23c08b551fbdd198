"""Staff and admins shown by first name and @username (cards, history, lists), not numbers.

Names come from Telegram with every update a staff member sends; they are kept for staff and
admins only (bot/storage/people.py) and cached here, so the card and history renderers, which
are plain functions, can show them (staff_view.staff_ref).
"""

from __future__ import annotations

from weakref import WeakKeyDictionary

from telegram import Update
from telegram.ext import ContextTypes

from bot.handlers.common import Deps, deps, esc
from bot.storage.db import Database
from bot.storage.people import PeopleRepository, Profile

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
