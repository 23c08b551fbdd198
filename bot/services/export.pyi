# The module moved: bot/export/__init__.py (see bot/services/__init__.py).
from bot.export import *  # noqa: F403
