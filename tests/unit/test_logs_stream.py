"""The bot's log handler follows sys.stderr (a command run in-process, then stderr replaced)."""

from __future__ import annotations

import io
import logging

import pytest

from bot.logs import StderrHandler, setup_logging


def test_the_handler_writes_to_the_current_stderr(monkeypatch: pytest.MonkeyPatch) -> None:
    root = logging.getLogger()
    before, level = list(root.handlers), root.level
    try:
        first = io.StringIO()
        monkeypatch.setattr("sys.stderr", first)
        setup_logging("INFO")
        first.close()  # the stream that was stderr at set-up is gone
        second = io.StringIO()
        monkeypatch.setattr("sys.stderr", second)
        logging.getLogger("bot.test").warning("vault: stored %s files", 3)
        assert "vault: stored 3 files" in second.getvalue()
        assert any(isinstance(h, StderrHandler) for h in root.handlers)
    finally:
        for handler in root.handlers[:]:
            if handler not in before:
                root.removeHandler(handler)
        root.setLevel(level)
