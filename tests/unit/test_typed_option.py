"""A button's label typed out counts as the press: exactly, or one slip away."""

from __future__ import annotations

from bot.form.model import load_form
from bot.handlers.relative import typed_option
from bot.i18n import translator

FORM = load_form()
COUNTRY = FORM.question("reporter", "reporter_country")
HAPPENED = FORM.question("person", "what_happened")
NAME = FORM.question("person", "full_name")


def test_labels_in_the_relatives_language() -> None:
    kk, ru = translator("kk"), translator("ru")
    assert typed_option(kk, COUNTRY, kk._("Kazakhstan")) == "kz"
    assert typed_option(ru, COUNTRY, "  " + ru._("Kazakhstan").upper() + "!") == "kz"
    assert typed_option(ru, HAPPENED, ru._("Detained")) == "detained"


def test_close_spellings_and_not_close_ones() -> None:
    ru = translator("ru")
    label = ru._("Kyrgyzstan")
    assert typed_option(ru, COUNTRY, label[:-1]) == "kg"  # one letter short
    assert typed_option(ru, COUNTRY, "Алматы") is None
    assert typed_option(ru, COUNTRY, "") is None
    assert typed_option(ru, NAME, label) is None  # a typed question takes text as it is
