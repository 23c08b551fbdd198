"""Modules moved out of bot/services/ stay importable under their old names while parallel
branches merge (bot/services/__init__.py): the same module object, not a copy."""

from __future__ import annotations

import importlib

import pytest

from bot.services import MOVED


@pytest.mark.parametrize(("old", "new"), sorted(MOVED.items()))
def test_an_old_name_is_the_moved_module(old: str, new: str) -> None:
    assert importlib.import_module(old) is importlib.import_module(new)


def test_names_imported_from_old_paths_are_the_new_ones() -> None:
    from bot.export import export_cases
    from bot.export.sealed import case_opener
    from bot.services.export import export_cases as old_export
    from bot.services.outbox import ResilientRateLimiter, error_reason
    from bot.services.sealed_export import case_opener as old_opener
    from bot.telegram.errors import error_reason as new_reason
    from bot.telegram.retries import ResilientRateLimiter as NewLimiter

    assert old_export is export_cases and old_opener is case_opener
    assert ResilientRateLimiter is NewLimiter and error_reason is new_reason
