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


# ----------------------------------------------------------------------------- kk and ru


@pytest.mark.parametrize("lang", ["kk", "ru"])
def test_kk_and_ru_fully_translated(lang: str) -> None:
    """Every kk and ru entry has its own translation: none empty, fuzzy or left in English."""
    problems = []
    for m in catalog(lang):
        if not m.id:
            continue
        ids = m.id if isinstance(m.id, tuple) else (m.id,)
        strings = m.string if isinstance(m.string, tuple) else (m.string,)
        if m.fuzzy:
            problems.append(("fuzzy", ids[0]))
        elif not all(strings) or len(strings) < (2 if isinstance(m.id, tuple) else 1):
            problems.append(("untranslated", ids[0]))
        elif any(s in ids for s in strings) and re.search(r"[A-Za-z]{2}",
                                                          PLACEHOLDER.sub("", ids[0])):
            problems.append(("left in English", ids[0]))
    assert not problems, f"{lang}: {len(problems)} entries, e.g. {problems[:5]}"


# Forms the glossary (/work/shared/GLOSSARY.md, noted in the catalogs' translator comments)
# rules out, with the reason; each is a regular expression over every translation.
FORBIDDEN = {
    "kk": [
        (r"кері\s+қайтарыл", "withdrawn is «кері қайтарып алынды»; «кері қайтарылды» = sent back"),
        (r"кері\s+қайтару\b", "«кері қайтару» = to give or send back, not to undo or withdraw"),
        # (search results may be «табылды»; a person's status never is)
        (r"адам табыл|^Табылды$", "located is «қайда екені белгілі болды», never «табылды»"),
        (r"жоғалу\s+жөніндегі", "the UN body: «Күштеп немесе еріксіз жоғалтулар жөніндегі»"),
        (r"\bжиенім\b", "grandchild is «немерем / жиен немерем»; «жиен» alone is a nephew"),
        (r"\bесімдер(імен|сіз)\b", "publishing: «аты-жөнімен» / «аты-жөнін атамай»"),
        (r"\bСІМ\b", "no abbreviation for the foreign ministry"),
        (r"Әскери-құрылыс", "6590 is «Корпус (бинтуан) қалалары»"),
        (r"«Бастау»", "no Telegram client shows «Бастау»: «Start» («Запустить»)"),
    ],
    "ru": [
        (r"\bнайден(а|\(а\))?(?![а-я])", "located is «известно, где находится», never «найден»"),
        (r"производственно-строительного", "6590 is «Синьцзянского корпуса (бинтуань)»"),
        (r"«Старт»", "the Russian Telegram button is «Запустить»"),
        (r"Последнее место", "«Последнее известное место»"),
    ],
}


@pytest.mark.parametrize("lang", ["kk", "ru"])
def test_glossary_forbidden_forms_are_absent(lang: str) -> None:
    found = []
    for m in catalog(lang):
        strings = m.string if isinstance(m.string, tuple) else (m.string,)
        for s in strings:
            for pattern, why in FORBIDDEN[lang]:
                if re.search(pattern, s or ""):
                    found.append((why, s[:60]))
    assert not found, found


def test_glossary_status_located_and_withdrawn() -> None:
    """"located" never says found, in any language; "withdrawn" is the relative's act."""
    from bot.handlers.relative import STATUS_LABELS
    from bot.handlers.staff_view import STAFF_STATUS_LABELS

    for msgid in (STATUS_LABELS["located"], STAFF_STATUS_LABELS["located"]):
        assert "found" not in msgid.lower()
        assert "белгілі" in Translator("kk")._(msgid)
        assert "известно" in Translator("ru")._(msgid).lower()
    for msgid in (STATUS_LABELS["withdrawn"], STAFF_STATUS_LABELS["withdrawn"]):
        assert "кері қайтарып алынды" in Translator("kk")._(msgid).lower()
        assert "отозвано" in Translator("ru")._(msgid).lower()
    for m in catalog("en"):
        assert not re.search(r"\b(has|have|was|were|been) found\b", str(m.id)), m.id


# The glossary's prefecture table (kk, ru, en), as on the buttons.
PREFECTURES = {
    "urumqi": ("Үрімжі", "Урумчи", "Urumqi"),
    "karamay": ("Қарамай", "Карамай", "Karamay"),
    "turpan": ("Тұрпан", "Турфан", "Turpan"),
    "hami": ("Құмыл (Баркөл)", "Хами (Кумул, Баркёль)", "Hami (Kumul, Barkol)"),
    "changji": ("Санжы", "Чанцзи", "Changji"),
    "bortala": ("Бұратала", "Боро-Тала", "Bortala"),
    "bayingolin": ("Баянғол", "Баян-Гол", "Bayingolin"),
    "aksu": ("Ақсу", "Аксу", "Aksu"),
    "kizilsu": ("Қызылсу", "Кызылсу", "Kizilsu"),
    "kashgar": ("Қашқар", "Кашгар", "Kashgar"),
    "hotan": ("Хотан", "Хотан", "Hotan"),
    "ili": ("Іле (Құлжа)", "Или (Кульджа)", "Ili (Ghulja)"),
    "tacheng": ("Тарбағатай (Шәуешек)", "Тарбагатай (Чугучак)", "Tacheng (Tarbagatay)"),
    "altay": ("Алтай", "Алтай", "Altay"),
    "xpcc": ("Корпус (бинтуан) қалалары", "Города Синьцзянского корпуса (бинтуань)",
             "Xinjiang Corps (bingtuan) cities"),
}


def test_prefectures_follow_the_glossary() -> None:
    from bot.form.model import load_form

    question = load_form().repeat_group.by_id["prefecture"]
    for code, names in PREFECTURES.items():
        option = question.option(code)
        assert option is not None, code
        for lang, name in zip(("kk", "ru", "en"), names, strict=True):
            assert Translator(lang)._(option.label) == name, (code, lang)


def test_glossary_decisions_are_noted_for_translators() -> None:
    """The entries where the glossary decided a term say so in the kk and ru catalogs."""
    for lang in ("kk", "ru"):
        notes = {m.id: " ".join(m.user_comments) for m in catalog(lang) if m.id}
        for msgid in ("withdrawn", "Withdrawn", "Located", "Grandchild",
                      "Xinjiang Corps (bingtuan) cities", "Hami (Kumul, Barkol)"):
            assert "Glossary" in notes.get(msgid, ""), (lang, msgid)


@pytest.mark.parametrize("lang", ["kk", "ru"])
def test_buttons_fit_a_small_phone(lang: str) -> None:
    """Option buttons get a row of their own when long (common.rows_of), where about 35-40
    Cyrillic characters show; the Back | Keep | Skip row holds three short labels."""
    from bot.form.model import load_form

    t = Translator(lang)
    labels = {t._(o.label) for g in load_form().groups for q in g.questions for o in q.options}
    assert max(labels, key=len) and all(len(label) <= 40 for label in labels), \
        sorted(labels, key=len)[-3:]
    for msgid in ("Back", "Keep", "Skip"):
        assert len(t._(msgid)) <= 12, (msgid, t._(msgid))


# The translation review's corrections (K1-K20, R1-R6): a catalog merge that doubles an entry
# can bring the old text back silently, so each is checked by a part of its corrected text.
REVIEWED = {
    "kk": {
        "withdrawn": "кері қайтарып алынды",  # K1
        "Withdrawn": "Кері қайтарып алынды",  # K2
        "erased their data: the case is withdrawn": "іс кері қайтарып алынды",  # K3
        "Grandchild": "Немерем / жиен немерем",  # K5
        "May we share your case with international organisations, such as the UN Working Group "
        "on Enforced or Involuntary Disappearances?": "жоғалтулар жөніндегі жұмыс тобына",  # K6
        "Where is or was the person held? The name or address of the camp, prison or detention "
        "centre, if you know it.": "Білсеңіз, лагерьдің",  # K7
        "The name as written in Chinese documents, in Chinese characters, if you know it.":
            "Білсеңіз, Қытай құжаттарында",  # K8
        "Other names or spellings of the name, if any.": "басқаша жазылуы болса, жазыңыз",  # K9
        "The county, town or village, if you know it.": "Білсеңіз, ауданын",  # K10
        "The Chinese resident ID number of the missing person (18 characters), if you know it.":
            "Білсеңіз, жоғалған адамның",  # K11
        "Other names or spellings": "Басқа аттары не басқаша жазылуы",  # K12
        "Yes, with the names of the missing people": "аты-жөнімен",  # K13 (label reworded)
        "Yes, without names": "аты-жөнін атамай",  # K14
        "State security": "Қауіпсіздік органдары",  # K15
        "a volunteer is working on it": "онымен ерікті айналысып жатыр",  # K16
        "You have sent the most files we can take for one person (%(limit)s).":
            "ең көбі %(limit)s файл қабылдай аламыз",  # K17
        "Keep": "Өзгертпеу",  # K18
        "Delete everything you have sent us: the report in progress, your submitted cases and "
        "your answers to volunteers? This cannot be undone.": "қалпына келтіру мүмкін",  # K19
        "I cannot write to you privately. Open a private chat with me, press Start, then try "
        "again.": "«Start» («Запустить»)",  # K20
    },
    "ru": {
        "Last known place: prefecture": "Последнее известное место: округ",  # R1
        "Last known place: county, town or village": "Последнее известное место: уезд",  # R2
        "Xinjiang Corps (bingtuan) cities": "Города Синьцзянского корпуса (бинтуань)",  # R3
        "Keep": "Не менять",  # R4
        "<b>Cases: %(n)s</b>": "Всего дел",  # R5
        "I cannot write to you privately. Open a private chat with me, press Start, then try "
        "again.": "нажмите «Запустить» (Start)",  # R6
    },
}


@pytest.mark.parametrize("lang", ["kk", "ru"])
def test_the_reviews_corrections_stay(lang: str) -> None:
    t = Translator(lang)
    wrong = {msgid: t._(msgid) for msgid, part in REVIEWED[lang].items()
             if part not in t._(msgid)}
    assert not wrong, wrong
