# The module moved: bot/telegram/http.py (see bot/services/__init__.py).
from bot.telegram.http import *  # noqa: F403
