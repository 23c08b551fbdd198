# The module moved: bot/export/files.py (see bot/services/__init__.py).
from bot.export.files import *  # noqa: F403
