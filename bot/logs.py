"""Logging set-up: one line per event, with a level, and repeated errors counted, not spammed.

When Telegram or the network is down, python-telegram-bot reports the same failure every few
seconds. `RepeatFilter` lets the first record of a kind through, then counts identical records
(same logger, level and message) for `window` seconds; the next one after that carries a
"(repeated N times in the last Ns)" suffix. `OneLineFormatter` folds tracebacks onto the
record's line, so every event is one line in journald or `docker compose logs`.
"""

from __future__ import annotations

import logging
import sys
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class RepeatFilter(logging.Filter):
    """Let through at most one identical WARNING-or-worse record per `window` seconds."""

    def __init__(self, window: float = 60.0, *, min_level: int = logging.WARNING,
                 max_keys: int = 1000, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.window = window
        self.min_level = min_level
        self.max_keys = max_keys
        self._clock = clock
        # key -> (when the last record of this kind was let through, records held back since)
        self._seen: OrderedDict[tuple[str, int, str], tuple[float, int]] = OrderedDict()

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < self.min_level:
            return True
        try:
            text = record.getMessage()
        except Exception:  # a malformed record: let the handler report it as usual
            return True
        key = (record.name, record.levelno, text)
        now = self._clock()
        seen = self._seen.get(key)
        if seen is not None and now - seen[0] < self.window:
            self._seen[key] = (seen[0], seen[1] + 1)
            return False
        if seen is not None and seen[1]:
            record.msg = f"{text} (repeated {seen[1]} times in the last {now - seen[0]:.0f}s)"
            record.args = None
        self._seen[key] = (now, 0)
        self._seen.move_to_end(key)
        while len(self._seen) > self.max_keys:
            self._seen.popitem(last=False)
        return True


class NetworkNoiseFilter(logging.Filter):
    """Telegram network errors (timeouts, connection failures) lose their traceback.

    They are expected when Telegram or the network is down and say nothing about our code:
    the record keeps its message plus the error's type, e.g. "... (NetworkError)".
    """

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if exc is not None and _is_network_error(exc):
            record.msg = f"{record.getMessage()} ({type(exc).__name__})"
            record.args = None
            record.exc_info = None
            record.exc_text = None
        return True


def _is_network_error(exc: BaseException) -> bool:
    try:
        from telegram.error import BadRequest, NetworkError
    except ImportError:  # pragma: no cover - python-telegram-bot is a dependency
        return False
    return isinstance(exc, NetworkError) and not isinstance(exc, BadRequest)


class OneLineFormatter(logging.Formatter):
    """A formatter whose output never spans lines (tracebacks are folded with " | ")."""

    def format(self, record: logging.LogRecord) -> str:
        return " | ".join(line for line in super().format(record).splitlines() if line.strip())


class StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever `sys.stderr` is at the time of each record, not the stream it was at
    set-up (a replaced or closed stderr, as under pytest's capture after a command ran
    in-process, would otherwise fail every later record with "I/O operation on closed file")."""

    def __init__(self) -> None:
        logging.Handler.__init__(self)

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, _value: Any) -> None:
        pass


def setup_logging(level: str) -> None:
    """Log to stderr, one line per event, without personal data and without repeats.

    Installs the privacy filter (library arguments and exception texts withheld, token
    masked) before the repeat filter, so repeats are recognised on the cleaned text.
    """
    root = logging.getLogger()
    root.setLevel(getattr(logging, level.upper(), logging.INFO))
    handler = next((h for h in root.handlers if getattr(h, "_bot_handler", False)), None)
    if handler is None:
        handler = StderrHandler()
        handler._bot_handler = True  # type: ignore[attr-defined]
        handler.setFormatter(OneLineFormatter(FORMAT))
        handler.addFilter(NetworkNoiseFilter())
        _install_privacy_filter(handler)
        handler.addFilter(RepeatFilter())
        root.addHandler(handler)
    # httpx logs every request URL at INFO, and URLs carry the bot token.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("httpcore").setLevel(logging.WARNING)
    # The job scheduler announces every job it adds at INFO.
    logging.getLogger("apscheduler").setLevel(logging.WARNING)


def _install_privacy_filter(handler: logging.Handler) -> None:
    from bot import privacy_log

    privacy_log.install(handler)
