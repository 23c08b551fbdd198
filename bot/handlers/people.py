"""Staff and admins shown by first name and @username (cards, history, lists), not numbers."""

from __future__ import annotations

from telegram import Update
from telegram.ext import ContextTypes

from bot.handlers.common import Deps, deps, esc
from bot.storage.people import PeopleRepository, Profile


def display(profile: Profile | None, user_id: int) -> str:
    """`Aigerim (@aigerim)` as escaped HTML; the id only when Telegram never gave a name."""
    if profile is None or not (profile.first_name or profile.username):
        return f"<code>{user_id}</code>"
    parts = [esc(profile.first_name)] if profile.first_name else []
    if profile.username:
        parts.append(("(@%s)" if parts else "@%s") % esc(profile.username))
    return " ".join(parts)


async def staff_name(d: Deps, user_id: int | None) -> str:
    if user_id is None:
        return "—"
    return display(await PeopleRepository(d.db).get(user_id), user_id)


async def remember_staff(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Keep the names of a staff member or admin who acts (called by the access gate)."""
    user = update.effective_user
    if user is None or user.is_bot:
        return
    d = deps(context)
    await PeopleRepository(d.db).remember(user.id, user.first_name, user.username,
                                          d.now().isoformat(timespec="seconds"))
