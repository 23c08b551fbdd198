"""Services: case numbers, broadcast, crypto, the outbox: logic above storage, below handlers.

Modules that moved to a package of their own are still importable under their old names here
(``bot.services.polling`` is ``bot.telegram.polling``, the same module object), so code written
against the old paths keeps working while parallel branches are merged; a ``.pyi`` next to each
old name tells mypy the same. New code imports the new paths. Remove an entry (and its
``.pyi``) once nothing imports the old name.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
from types import ModuleType

MOVED = {
    "bot.services.telegram_http": "bot.telegram.http",
    "bot.services.polling": "bot.telegram.polling",
    "bot.services.export": "bot.export",
    "bot.services.xlsx_stream": "bot.export.xlsx",
    "bot.services.sealed_export": "bot.export.sealed",
    "bot.services.files": "bot.export.files",
}


class _MovedModules(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Imports an old module name as the module at its new place."""

    def find_spec(self, fullname: str, path: object = None,
                  target: ModuleType | None = None) -> importlib.machinery.ModuleSpec | None:
        if fullname not in MOVED:
            return None
        return importlib.util.spec_from_loader(fullname, self)

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        return importlib.import_module(MOVED[spec.name])

    def exec_module(self, module: ModuleType) -> None:
        pass  # already executed under its new name


if not any(isinstance(f, _MovedModules) for f in sys.meta_path):
    sys.meta_path.insert(0, _MovedModules())
