"""The dossier (python -m bot dossier --key) reads every WGEID answer of the questionnaire: a
relative answers them through the bot, the dossier written offline holds them, and its
"missing" box lists only what the relative skipped."""

from __future__ import annotations

from pathlib import Path

import docx

from bot.form.validators import chinese_id_check_char
from bot.sandbox.emulator import Emulator
from bot.services.crypto import generate_keypair
from tests.e2e.clitools import cli_env, run_cli
from tests.e2e.conftest import BotRunner
from tests.journeys import SKIP, Answer, multi, opt, report


def male_id() -> str:
    """A valid Chinese resident ID: Ili, 15 May 1980, a man."""
    first17 = "654002" + "19800515" + "001"
    return first17 + chinese_id_check_char(first17)


CONSENT: dict[str, Answer] = {
    "consent_store": opt("agree"), "consent_share": opt("yes"), "consent_reveal": opt("no"),
    "consent_publish": opt("anonymous")}
REPORTER: dict[str, Answer] = {
    "reporter_name": "Гүлжан Тохтасын", "reporter_country": opt("kz"), "reporter_more": opt("no")}
# Every WGEID question answered.
BROTHER: dict[str, Answer] = {
    "relation": opt("brother"), "full_name": "Ерлан Тохтасын", "prefecture": opt("ili"),
    "what_happened": multi("detained", "prison"), "happened_date": "04.2018",
    "taken_from": opt("police_summons"), "in_danger": opt("yes"), "more_details": opt("yes"),
    "chinese_name": "叶尔兰", "other_names": "Erlan Tokhtasynuly", "birth_date": "05.1980",
    "ethnicity": opt("kazakh"), "citizenship": opt("cn"), "occupation": "Teacher",
    "place": "Құлжа", "chinese_id": male_id(), "place_held": "Лагерь №3",
    "current_situation": opt("sentenced"), "situation_date": "2021", "sentence": "10 years",
    "charge": "Inciting separatism", "responsible": multi("police", "state_security"),
    "reasons_given": multi("religion", "apps"), "reasons": "He had WhatsApp",
    "last_contact": "12.03.2018", "steps_taken": multi("china_consulate", "un"),
    "steps_result": "Consulate in Almaty, May 2019: no answer",
    "links": "https://example.org/appeal-erlan", "reference_numbers": "Shahit 12345",
    "story": "He was called to the police station and did not come back.",
    "attachments": SKIP,
}
# Only the first questions, the date known to the season.
SISTER: dict[str, Answer] = {
    "relation": opt("sister"), "full_name": "王小明", "prefecture": opt("altay"),
    "what_happened": multi("no_contact"), "happened_date": "spring 2019",
    "taken_from": opt("other"), "taken_from_other": "Хоргос", "in_danger": opt("unknown"),
    "more_details": opt("no"),
}


def read(path: Path) -> str:
    """The dossier's paragraphs (the tables are read by `row`)."""
    paragraphs: list[str] = [p.text for p in docx.Document(str(path)).paragraphs]
    return "\n".join(paragraphs)


def row(path: Path, label: str) -> str:
    """The answer beside `label` in the dossier's tables."""
    doc = docx.Document(str(path))
    found: list[str] = [r.cells[1].text for t in doc.tables for r in t.rows
             if len(r.cells) == 2 and r.cells[0].text == label]
    assert len(found) == 1, (label, found)
    return found[0]


def missing_box(path: Path) -> list[str]:
    doc = docx.Document(str(path))
    box = doc.tables[-1].rows[0].cells[0]
    return [p.text for p in box.paragraphs]


async def test_dossier_holds_every_wgeid_answer(emulator: Emulator, tmp_path: Path) -> None:
    public, private = generate_keypair(tmp_path / "offline")
    runner = BotRunner(emulator, tmp_path / "data", public_key_file=public)
    await runner.start()
    try:
        number = await report(emulator.user(5301), "en", BROTHER, SISTER,
                              answers={**CONSENT, **REPORTER})
    finally:
        await runner.stop()
    env = cli_env(token="999:REVOKED", api_base_url=emulator.base_url,
                  data_dir=str(tmp_path / "data"), public_key_file=str(public))
    out = tmp_path / "dossier.docx"
    rc, _stdout, err = await run_cli("dossier", "--case", number, "--output", str(out),
                                     "--key", str(private), env=env, cwd=tmp_path)
    assert rc == 0, err
    first, second = tmp_path / "dossier-1.docx", tmp_path / "dossier-2.docx"

    text = read(first)
    assert "URGENT: the relative says the person is in danger now" in text
    assert row(first, "Full name") == "Erlan Tokhtasyn (original script: Ерлан Тохтасын)"
    assert row(first, "Name in Chinese documents") == "Ye Erlan (pinyin; original script: 叶尔兰)"
    assert row(first, "Other names or spellings") == "Erlan Tokhtasynuly"
    assert row(first, "Gender") == "Man"  # inferred from "brother"
    assert row(first, "Date of birth") == "May 1980"
    assert row(first, "Chinese resident ID number") == male_id()
    assert row(first, "Occupation") == "Teacher"
    assert row(first, "What happened") == "Detained; Prison, sentenced"
    assert row(first, "Date of the disappearance") == "April 2018"
    assert row(first, "Taken from or last seen") == "Called to the police"
    assert row(first, "Last known place: prefecture") == "Ili (Ghulja)"
    assert row(first, "Last known place: county, town or village") == \
        "Qulzha (original script: Құлжа)"
    assert row(first, "Where held") == "Lager No3 (original script: Лагерь №3)"
    assert row(first, "Date of last contact") == "12 March 2018"
    assert row(first, "In danger now") == "YES (urgent)"
    assert row(first, "Believed responsible") == "Police; State security"
    assert row(first, "Reasons given") == \
        "Religious practice; Foreign apps (WhatsApp and others)"
    assert row(first, "Reasons given, in the relative's words") == "He had WhatsApp"
    assert row(first, "Steps taken") == \
        "Appealed to the Chinese consulate; Appealed to the UN"
    assert row(first, "When, and the answer received") == \
        "Consulate in Almaty, May 2019: no answer"
    assert row(first, "Situation now") == "Sentenced, in prison"
    assert row(first, "Known as of") == "2021"
    assert row(first, "Sentence") == "10 years"
    assert row(first, "Charge") == "Inciting separatism"
    assert row(first, "Earlier reference numbers (Atazhurt, Shahit, WGEID)") == "Shahit 12345"
    assert row(first, "Published appeals and news") == "https://example.org/appeal-erlan"
    # The relative agreed to share with the UN (so the UN gets their name) but not that the UN
    # may name them to China.
    assert row(first, "Source") == "Gülzhan Tokhtasyn (original script: Гүлжан Тохтасын)"
    assert row(first, "Relationship to the disappeared person") == "Brother"
    assert row(first, "Confidentiality").startswith(
        "CONFIDENTIAL: the source's identity must not be revealed to the Government of China")
    assert "Consent to share with international organisations: given" in text
    assert "He was called to the police station and did not come back." in text
    assert missing_box(first) == ["Required elements: all present"]

    text = read(second)
    assert "URGENT" not in text
    assert row(second, "Full name") == "Wang Xiaoming (pinyin; original script: 王小明)"
    assert row(second, "Gender") == "Woman"
    assert row(second, "Date of the disappearance") == "spring 2019"
    assert row(second, "Taken from or last seen") == \
        "Somewhere else: Khorgos (original script: Хоргос)"
    assert row(second, "In danger now") == "Not known"
    assert row(second, "Situation now") == "—"
    assert missing_box(second) == [
        "Required elements still missing",
        "Identity: date of birth (or age)",
        "Identity: an identity document number (Chinese resident ID)",
        "Date of the disappearance: the month (only spring 2019 is known)",
        "Who is believed responsible (State agents or those acting with their support)",
        "Steps taken to find the person (authorities, courts, others)",
    ]
