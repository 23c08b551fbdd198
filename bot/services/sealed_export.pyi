# The module moved: bot/export/sealed.py (see bot/services/__init__.py).
from bot.export.sealed import *  # noqa: F403
