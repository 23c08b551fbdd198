"""The translation catalogs, installed as the package ``bot.locales`` (see setup.py)."""
