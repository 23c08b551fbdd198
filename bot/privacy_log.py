"""A logging filter that keeps what relatives wrote out of the logs, at every level.

Our own modules log only codes and counts. Libraries are another matter: at DEBUG,
python-telegram-bot logs every request and update it handles, with their text, and aiosqlite
logs the parameters of queries. For every record from outside `bot`, the message template is
kept and its arguments are withheld; exceptions keep their type and traceback, not their text.
The bot token is masked everywhere.
"""

from __future__ import annotations

import logging
import re
import traceback

_TOKEN = re.compile(r"\d{5,}:[A-Za-z0-9_-]{20,}")
OWN_LOGGERS = ("bot", "__main__")


class PrivacyFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        own = record.name == "bot" or record.name.startswith(OWN_LOGGERS)
        if not own:
            if record.args:
                record.msg = re.sub(r"%[-#0 +]*\d*(?:\.\d+)?[sdrifgx%]", "…", str(record.msg))
                record.args = None
            if record.exc_info and record.exc_info[1] is not None:
                exc = record.exc_info[1]
                frames = "".join(traceback.format_tb(exc.__traceback__))
                record.exc_text = f"{type(exc).__name__} (text withheld)\n{frames}"
                record.exc_info = None
        record.msg = _TOKEN.sub("<token>", str(record.msg))
        if isinstance(record.args, tuple):
            record.args = tuple(_TOKEN.sub("<token>", a) if isinstance(a, str) else a
                                for a in record.args)
        return True


def install(handler: logging.Handler) -> None:
    handler.addFilter(PrivacyFilter())
