# The module moved: bot/telegram/polling.py (see bot/services/__init__.py).
from bot.telegram.polling import *  # noqa: F403
