# The module moved: bot/export/xlsx.py (see bot/services/__init__.py).
from bot.export.xlsx import *  # noqa: F403
