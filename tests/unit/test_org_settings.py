"""BOT_ORG_NAME and BOT_ORG_CONTACTS: read per language, with a sensible fallback."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.config import Settings, SettingsError, load_settings
from bot.handlers.about import who_we_are
from bot.i18n import Translator


def test_contacts_per_language_with_fallback() -> None:
    s = Settings(org_contacts='{"kk": "Алматы\\nТел. 1", "ru": "Алматы\\nТел. 2"}')
    assert s.contacts_for("kk") == "Алматы\nТел. 1"
    assert s.contacts_for("ru") == "Алматы\nТел. 2"
    assert s.contacts_for("en") == "Алматы\nТел. 2"  # English readers get the Russian text
    assert Settings(org_contacts='{"ru": "Р"}').contacts_for("kk") == "Р"
    assert Settings(org_contacts='{"kk": "К"}').contacts_for("ru") == "К"


def test_one_plain_text_for_everyone_and_empty() -> None:
    s = Settings(org_contacts="Almaty, 1 Abay Ave\\n+7 727 000 00 00")
    assert s.contacts_for("kk") == s.contacts_for("en") == "Almaty, 1 Abay Ave\n+7 727 000 00 00"
    assert Settings(org_contacts="").contacts_for("kk") == ""
    assert Settings().contacts_for("ru") == "" and Settings().org_name == ""


@pytest.mark.parametrize("value", ['{"de": "x"}', '{"kk": 1}', '{"kk": "x"', '["kk"]'])
def test_bad_contacts_name_the_setting(value: str) -> None:
    with pytest.raises(SettingsError) as err:
        load_settings(org_contacts=value)
    assert "BOT_ORG_CONTACTS" in str(err.value)


def test_read_from_a_dotenv_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / ".env").write_text(
        "BOT_ORG_NAME=Атажұрт\n"
        "BOT_ORG_CONTACTS='{\"kk\": \"Алматы\\nДс-Жм 10-18\", \"en\": \"Almaty\"}'\n",
        encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    s = Settings()
    assert s.org_name == "Атажұрт"
    assert s.contacts_for("kk") == "Алматы\nДс-Жм 10-18"


def test_who_we_are_escapes_what_the_settings_say() -> None:
    s = Settings(org_name="A & <B>", org_contacts='{"en": "<script>"}')
    text = who_we_are(Translator("en"), s, "office_bot")
    assert "A &amp; &lt;B&gt;" in text and "&lt;script&gt;" in text and "@office_bot" in text


async def test_check_says_who_relatives_are_told_runs_the_bot(tmp_path: Path) -> None:
    from bot.checks import run_checks

    unset = await run_checks(Settings(data_dir=tmp_path / "a"), network=False)
    assert any("BOT_ORG_NAME and BOT_ORG_CONTACTS are not set" in f for f in unset.facts)
    assert not [p for p in unset.problems if "BOT_ORG" in p]  # a fact, not a problem
    s = Settings(data_dir=tmp_path / "b", org_name="Атажұрт",
                 org_contacts='{"kk": "Алматы", "ru": "Алматы"}')
    report = await run_checks(s, network=False)
    assert "who we are: Атажұрт; office contacts in kk, ru" in report.facts
