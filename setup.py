"""Packaging details pyproject.toml cannot say: the catalogs in locales/ ship as bot.locales.

The translation catalogs stay in the top-level locales/ folder (where translators and
`make messages` find them) and are installed as the package ``bot.locales``: their .po sources
and the .mo files compiled from them while the wheel is built, so an installed bot speaks
Kazakh and Russian wherever it runs (bot/i18n.py loads them with importlib.resources).
The other package data (the questionnaire, the SQL migrations) is listed here too;
everything else is in pyproject.toml.
"""

from __future__ import annotations

from pathlib import Path

from setuptools import find_namespace_packages, setup
from setuptools.command.build_py import build_py

LOCALES = "bot.locales"


class BuildWithCatalogs(build_py):
    """build_py that compiles every locales/<lang>/LC_MESSAGES/*.po into a .mo beside it in
    the build, and leaves locales/'s helper scripts out of the package."""

    def find_package_modules(self, package: str, package_dir: str) -> list[tuple[str, str, str]]:
        modules = super().find_package_modules(package, package_dir)
        if package == LOCALES:
            return [m for m in modules if m[1] == "__init__"]
        return modules

    def run(self) -> None:
        super().run()
        from babel.messages.mofile import write_mo
        from babel.messages.pofile import read_po

        target = Path(self.build_lib, *LOCALES.split("."))
        for po in sorted(Path("locales").glob("*/LC_MESSAGES/*.po")):
            lang = po.parts[1]
            with po.open("rb") as fh:
                catalog = read_po(fh, locale=lang)
            mo = target / po.relative_to("locales").with_suffix(".mo")
            mo.parent.mkdir(parents=True, exist_ok=True)
            with mo.open("wb") as fh:
                write_mo(fh, catalog, use_fuzzy=False)


#: Each language's folder is a (data-only) package too: setuptools wants every folder it ships
#: named as one.
CATALOG_PACKAGES = [f"{LOCALES}.{p.parent.name}.LC_MESSAGES"
                                    for p in sorted(Path("locales").glob("*/LC_MESSAGES"))]

setup(
    packages=[*find_namespace_packages(include=["bot", "bot.*"], exclude=["*.__pycache__"]),
              LOCALES, *CATALOG_PACKAGES],
    package_dir={LOCALES: "locales"},
    package_data={"bot": ["form/*.toml", "storage/migrations/*.sql", "py.typed"],
                  **{name: ["*.po"] for name in CATALOG_PACKAGES}},
    cmdclass={"build_py": BuildWithCatalogs},
)
