"""Languages: gettext catalogs, the user's locale, and Babel formatting.

The catalogs are the package ``bot.locales`` (the top-level locales/ folder, installed under
that name by setup.py, with .mo files compiled when the wheel is built), read with
importlib.resources; run from a checkout that is not installed, they are read from locales/
directly. A catalog is compiled in memory at start-up when no fresh .mo file is there, so a
checkout with only .po files always works.
"""

from __future__ import annotations

import gettext
import importlib.resources
import io
import logging
from datetime import date, datetime, tzinfo
from functools import cache
from importlib.resources.abc import Traversable
from pathlib import Path

from babel.core import Locale
from babel.dates import format_date, format_datetime, format_skeleton, format_time
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_decimal

log = logging.getLogger(__name__)

LANGUAGES: tuple[str, ...] = ("kk", "ru", "en")
LANGUAGE_NAMES = {"kk": "Қазақша", "ru": "Русский", "en": "English"}


def _locales_dir() -> Traversable:
    try:
        return importlib.resources.files("bot.locales")
    except ModuleNotFoundError:  # a checkout run without being installed
        return Path(__file__).resolve().parent.parent / "locales"


LOCALES_DIR = _locales_dir()
DOMAIN = "messages"

# People from Kyrgyzstan, Uzbekistan, Ukraine and so on most often read Russian better than
# English. Kazakh-speakers often run Telegram in Russian, which is why the language chooser
# lists Kazakh first whatever the guess (relative.language_keyboard).
_RUSSIAN_READERS = {"ru", "uk", "be", "ky", "uz", "tg", "tk", "az", "hy", "ka", "mn"}


def guess_language(code: str | None) -> str:
    base = (code or "").split("-")[0].lower()
    if base in LANGUAGES:
        return base
    if base in _RUSSIAN_READERS:
        return "ru"
    return "en" if base else "ru"


def _fresh(mo: Traversable, po: Traversable) -> bool:
    """Whether the compiled catalog may be used: there, and not older than its source."""
    if not mo.is_file():
        return False
    if not po.is_file() or not (isinstance(mo, Path) and isinstance(po, Path)):
        return True
    return mo.stat().st_mtime >= po.stat().st_mtime


def _load(lang: str, locales_dir: Traversable) -> gettext.NullTranslations:
    folder = locales_dir / lang / "LC_MESSAGES"
    po, mo = folder / f"{DOMAIN}.po", folder / f"{DOMAIN}.mo"
    if _fresh(mo, po):
        with mo.open("rb") as f:
            return gettext.GNUTranslations(f)
    if not po.is_file():
        log.warning("no catalog for %s; showing English", lang)
        return gettext.NullTranslations()
    with po.open("rb") as f:
        catalog = read_po(f, locale=lang)
    buf = io.BytesIO()
    write_mo(buf, catalog, use_fuzzy=False)
    buf.seek(0)
    return gettext.GNUTranslations(buf)


class Translator:
    """Everything language-dependent for one language: messages, plurals and formats."""

    def __init__(self, lang: str, locales_dir: Traversable = LOCALES_DIR) -> None:
        self.lang = lang
        self.locale = Locale.parse(lang)
        self._t = _load(lang, locales_dir) if lang != "en" or (locales_dir / "en").is_dir() \
            else gettext.NullTranslations()

    def _(self, message: str) -> str:
        return self._t.gettext(message)

    gettext = _

    def ngettext(self, singular: str, plural: str, n: int) -> str:
        return self._t.ngettext(singular, plural, n)

    def format_date(self, value: date) -> str:
        return format_date(value, format="long", locale=self.locale)

    def format_year_month(self, value: date) -> str:
        return format_skeleton("yMMMM", value, locale=self.locale)

    def format_datetime(self, value: datetime) -> str:
        return format_datetime(value, format="medium", locale=self.locale)

    def format_local_time(self, value: datetime, tz: tzinfo) -> str:
        """Date and time in `tz`, to the minute (staff read when, not the seconds)."""
        local = value.astimezone(tz)
        return (format_date(local.date(), format="medium", locale=self.locale) + ", "
                + format_time(local, format="short", locale=self.locale))

    def format_number(self, value: int | float) -> str:
        return format_decimal(value, locale=self.locale)


@cache
def translator(lang: str) -> Translator:
    return Translator(lang if lang in LANGUAGES else "en")


def N_(message: str) -> str:
    """Mark a string for extraction without translating it here."""
    return message
