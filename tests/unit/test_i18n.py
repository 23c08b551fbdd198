"""Catalogs: complete in every language, nothing fuzzy, placeholders intact, plurals right."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from babel.messages.pofile import read_po

from bot.i18n import LANGUAGES, LOCALES_DIR, Translator, guess_language

ROOT = Path(__file__).resolve().parents[2]
PLACEHOLDER = re.compile(r"%\(\w+\)s")
TAG = re.compile(r"</?\w+[^>]*>")


def catalog(lang: str):  # type: ignore[no-untyped-def]
    with (LOCALES_DIR / lang / "LC_MESSAGES" / "messages.po").open("rb") as f:
        return read_po(f, locale=lang)


@pytest.mark.parametrize("lang", LANGUAGES)
def test_catalog_complete(lang: str) -> None:
    messages = [m for m in catalog(lang) if m.id]
    assert messages
    untranslated = [m.id for m in messages
                    if not (all(m.string) if isinstance(m.string, tuple) else m.string)]
    fuzzy = [m.id for m in messages if m.fuzzy]
    assert not untranslated, f"{lang}: {len(untranslated)} untranslated, e.g. {untranslated[:3]}"
    assert not fuzzy, f"{lang}: fuzzy entries {fuzzy[:3]}"
    for m in messages:
        ids = m.id if isinstance(m.id, tuple) else (m.id,)
        strings = m.string if isinstance(m.string, tuple) else (m.string,)
        for s in strings:
            assert set(PLACEHOLDER.findall(s)) == set(PLACEHOLDER.findall(ids[-1])), (lang, m.id)
            assert sorted(TAG.findall(s)) == sorted(TAG.findall(ids[0])), (lang, m.id)


def test_catalogs_match_the_code(tmp_path: Path) -> None:
    """Every string in the code and the form is in the catalogs (run `make messages`)."""
    pot = tmp_path / "fresh.pot"
    subprocess.run(
        [sys.executable, "-m", "babel.messages.frontend", "extract", "-F", "babel.cfg",
         "-k", "N_", "-k", "_", "-k", "gettext", "-k", "ngettext:1,2", "--no-wrap",
         "-o", str(pot), "."],
        cwd=ROOT, capture_output=True, text=True, check=True, env={"PYTHONPATH": str(ROOT)},
    )
    out = pot.read_text(encoding="utf-8")
    with (ROOT / "locales" / "messages.pot").open("rb") as f:
        known = {m.id if isinstance(m.id, str) else m.id[0] for m in read_po(f) if m.id}
    import io
    extracted = {m.id if isinstance(m.id, str) else m.id[0]
                 for m in read_po(io.BytesIO(out.encode())) if m.id}
    missing = extracted - known
    assert not missing, f"run `make messages`: {sorted(missing)[:5]}"
    for lang in LANGUAGES:
        ids = {m.id if isinstance(m.id, str) else m.id[0] for m in catalog(lang) if m.id}
        assert extracted <= ids, f"{lang} lacks {sorted(extracted - ids)[:5]}"


def test_plural_forms() -> None:
    ru = Translator("ru")
    forms = {n: ru.ngettext("%(count)s file", "%(count)s files", n) for n in (1, 2, 5, 21)}
    assert forms[1] == forms[21] and forms[2] != forms[5] and forms[1] != forms[5]
    assert Translator("en").ngettext("%(count)s file", "%(count)s files", 2) == "%(count)s files"


def test_dates_follow_the_locale() -> None:
    from datetime import date

    d = date(2018, 3, 12)
    assert "March" in Translator("en").format_date(d)
    assert "марта" in Translator("ru").format_date(d)
    assert "наурыз" in Translator("kk").format_date(d).lower()


@pytest.mark.parametrize(("code", "lang"), [("kk", "kk"), ("ru-RU", "ru"), ("uk", "ru"),
                                            ("en-US", "en"), ("de", "en"), (None, "ru")])
def test_guess_language(code: str | None, lang: str) -> None:
    assert guess_language(code) == lang
