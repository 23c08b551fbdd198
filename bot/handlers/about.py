"""Who runs this bot: the organisation, its office, and how to tell this bot from an impostor.

Shown before consent, in /help and after a relative declines consent, from BOT_ORG_NAME and
BOT_ORG_CONTACTS. Impostor bots are a real risk for this community: the bot's @username is the
one thing a relative can compare with what the office publishes (on its door, its page, its
leaflets), so it is always named.
"""

from __future__ import annotations

from bot.config import Settings
from bot.handlers.common import esc
from bot.i18n import N_, Translator

ABOUT_ORG = N_(
    "<b>Who we are</b>\n"
    "This bot belongs to %(org)s. Our volunteers take reports about family members who "
    "disappeared in Xinjiang, read every report and answer you here."
)
ABOUT = N_(
    "<b>Who we are</b>\n"
    "This bot takes reports about family members who disappeared in Xinjiang. Volunteers read "
    "every report and answer you here."
)
OFFICE = N_("<b>Our office.</b> You can also come in person or call us:")
CHECK = N_(
    "How to check that this bot is really ours: its name must be exactly @%(bot)s, as our "
    "office publishes it. A bot with any other name, even a similar one, is not ours."
)


def who_we_are(t: Translator, settings: Settings, bot_username: str | None) -> str:
    """The organisation, its office in the reader's language, and the bot's own @username."""
    if settings.org_name:
        parts = [t._(ABOUT_ORG) % {"org": f"<b>{esc(settings.org_name)}</b>"}]
    else:
        parts = [t._(ABOUT)]
    contacts = office(t, settings)
    if contacts:
        parts.append(contacts)
    if bot_username:
        parts.append("🔒 " + t._(CHECK) % {"bot": esc(bot_username)})
    return "\n\n".join(parts)


def office(t: Translator, settings: Settings) -> str:
    """The office's address, phone and hours (empty when BOT_ORG_CONTACTS is not set)."""
    contacts = settings.contacts_for(t.lang)
    return f"{t._(OFFICE)}\n{esc(contacts)}" if contacts else ""
