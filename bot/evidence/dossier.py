"""A dossier per missing person (.docx, English) for submissions to the UN Working Group on
Enforced or Involuntary Disappearances (WGEID), from the case, the vault and the chain of custody.

Laid out by the Working Group's required elements for a case to be transmitted: (1) identity,
(2) date and place of the disappearance (arrest, detention or abduction), (3) who is believed
responsible, (4) steps taken to find the person, with their results and when, (5) the source:
named only when the relative agreed to share the case with the UN, and marked confidential
towards the Government of China unless the relative agreed that the UN may reveal it. Besides:
an urgent note when the person is in danger now, the current situation (as of a date, sentence,
charge), earlier reference numbers and links, the testimony (the story as written; voice and
video listed with duration and SHA-256), the evidence list with the hashes recorded when each
file was received, and a box listing the required elements still missing. Dates are the form's
EDTF codes in words ("2019-21": spring 2019, "197X": the 1970s, "1975~": about 1975). Names
and places appear as written with a Latin spelling beside them: Chinese characters in pinyin,
Kazakh Cyrillic and Uyghur Arabic script by their usual romanisations, other scripts through
anyascii. Cases answered on form version 1 (no "taken from", no steps' results) still work.

Pure: `build_dossier` takes the opened case and the custody records and returns a python-docx
Document; `bot/__main__.py` (python -m bot dossier) reads the database with the private key
(BOT_PRIVATE_KEY_FILE, or --key FILE on the offline computer).
"""

from __future__ import annotations

import io
import re
import unicodedata
from dataclasses import dataclass
from typing import Any

from anyascii import anyascii
from docx import Document
from docx.document import Document as DocumentType
from docx.enum.text import WD_ALIGN_PARAGRAPH
from docx.oxml import OxmlElement
from docx.oxml.ns import qn
from docx.shared import Pt, RGBColor
from pypinyin import lazy_pinyin

from bot.evidence.vault import Custody
from bot.form.model import Form, Question
from bot.form.validators import AUTUMN, SPRING, SUMMER, WINTER, PartialDate
from bot.i18n import translator

_CYRILLIC = dict(zip(
    "абвгдеёжзийклмнопрстуфхцчшщъыьэюяәғқңөұүһі",
    ["a", "b", "v", "g", "d", "e", "yo", "zh", "z", "i", "y", "k", "l", "m", "n", "o", "p", "r",
     "s", "t", "u", "f", "kh", "ts", "ch", "sh", "shch", "", "y", "", "e", "yu", "ya", "ä", "gh",
     "q", "ng", "ö", "u", "ü", "h", "i"], strict=True))


#: Uyghur Arabic script to Uyghur Latin (ULY); the hamza carrier (ئ) is not written.
_UYGHUR = {"ا": "a", "ە": "e", "ب": "b", "پ": "p", "ت": "t", "ج": "j", "چ": "ch", "خ": "x",
           "د": "d", "ر": "r", "ز": "z", "ژ": "zh", "س": "s", "ش": "sh", "غ": "gh", "ف": "f",
           "ق": "q", "ك": "k", "گ": "g", "ڭ": "ng", "ل": "l", "م": "m", "ن": "n", "ھ": "h",
           "و": "o", "ۇ": "u", "ۆ": "ö", "ۈ": "ü", "ۋ": "w", "ې": "ë", "ى": "i", "ي": "y",
           "ئ": ""}


def _has_non_latin(text: str) -> bool:
    return any(ord(c) > 0x24F and c.isalpha() for c in text)


_HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+")


_OTHER_SCRIPT = re.compile(r"[^\u0000-\u024f]+")


def _pinyin(run: str, *, split_family_name: bool) -> str:
    """A run of Chinese characters in pinyin. A Han name: the family name (first syllable),
    then the given name's syllables joined ("叶尔兰" -> "Ye Erlan"); a place, or one part of a
    name transcribed with a middle dot ("努尔兰·托合塔森"): one word ("Nuerlan")."""
    syllables = [s for s in lazy_pinyin(run) if s.strip()]
    if len(syllables) < 2 or not split_family_name:
        return "".join(syllables).capitalize()
    return f"{syllables[0].capitalize()} {''.join(syllables[1:]).capitalize()}"


def _cyrillic(text: str) -> str:
    out = []
    for ch in text:
        low = ch.lower()
        if low in _CYRILLIC:
            latin = _CYRILLIC[low]
            out.append(latin.capitalize() if ch != low else latin)
        else:
            out.append(ch)
    return "".join(out)


def transliterate(name: str, *, place: bool = False) -> str | None:
    """A Latin spelling of a name in another script, or None if it is already Latin: Chinese
    characters in pinyin (pypinyin), Cyrillic (Kazakh, Russian) and Uyghur Arabic script by
    their usual romanisations, any other script through anyascii. Symbols that are no letters
    (emoji) are left out."""
    if not _has_non_latin(name):
        return None
    split = not place and not re.search(r"[·•・‧]", name)
    text = _HAN.sub(lambda m: " " + _pinyin(m.group(0), split_family_name=split) + " ", name)
    if not split:
        text = re.sub(r"[·•・‧]", " ", text)
    text = _cyrillic(text)
    if any(ch in _UYGHUR for ch in text):
        words = "".join(_UYGHUR.get(ch, ch) for ch in text).split(" ")
        text = " ".join(w[:1].upper() + w[1:] for w in words)
    text = "".join(ch for ch in text  # emoji and pictographs, not letterlike signs (№)
                   if unicodedata.category(ch) != "So" or ord(ch) < 0x2300)
    text = _OTHER_SCRIPT.sub(lambda m: anyascii(m.group(0)), text)
    latin = re.sub(r"\s+", " ", text).strip()
    latin = re.sub(r"\s+([,.;)])", r"\1", latin)
    return latin or None


def is_chinese(text: str) -> bool:
    return bool(_HAN.search(text))


_SEASONS = {SPRING: "spring", SUMMER: "summer", AUTUMN: "autumn", WINTER: "winter"}
_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August",
           "September", "October", "November", "December")


def describe_date(value: object) -> str:
    """A stored date in English words: "2019-21" is "spring 2019", "197X" "the 1970s",
    "1975~" "about 1975", "2018-03" "March 2018", "2018-03-12" "12 March 2018"; "unknown" is
    "not known". Anything else (an older form's text) is returned as it was stored."""
    if value is None or value == "":
        return ""
    text = str(value)
    if text == "unknown":
        return "not known"
    try:
        d = PartialDate.from_iso(text)
    except ValueError:
        return text
    if d.decade:
        words = f"the {d.year}s"
    elif d.season is not None:
        words = f"{_SEASONS[d.season]} {d.year}"
    elif d.month is None:
        words = str(d.year)
    elif d.day is None:
        words = f"{_MONTHS[d.month - 1]} {d.year}"
    else:
        words = f"{d.day} {_MONTHS[d.month - 1]} {d.year}"
    return f"about {words}" if d.approx else words


def _date_precision(value: object) -> str | None:
    """decade, year, season, month or day; None if not given, not known or not a date."""
    if not value or value == "unknown":
        return None
    try:
        return PartialDate.from_iso(str(value)).precision
    except ValueError:
        return None


@dataclass(frozen=True, slots=True)
class EvidenceItem:
    """One file of the case as the dossier lists it (from the vault's chain of custody)."""

    label: str
    state: str  # stored, failed, pending
    reason: str | None
    custody: Custody | None


@dataclass(frozen=True, slots=True)
class CaseFacts:
    number: str
    submitted_at: str
    status: str
    form_version: int = 0  # the questionnaire version the case was answered on (0: not known)


#: Person questions whose answers are places or names: given in Latin beside the original.
_PLACE_IDS = ("place", "place_held", "taken_from_other")


class _Writer:
    def __init__(self, form: Form) -> None:
        self.form = form
        self.t = translator("en")
        self.person_q = form.repeat_group.by_id
        self.doc: DocumentType = Document()
        style = self.doc.styles["Normal"]
        style.font.name = "Arial"
        style.font.size = Pt(10.5)

    def value(self, q: Question, value: Any) -> str:
        if value is None or value == "" or value == []:
            return ""
        if q.type == "single":
            option = q.option(str(value))
            return self.t._(option.label) if option else str(value)
        if q.type == "multi" and isinstance(value, list):
            labels = []
            for code in value:
                option = q.option(str(code))
                labels.append(self.t._(option.label) if option else str(code))
            return "; ".join(labels)
        if q.type == "date":
            return describe_date(value)
        if isinstance(value, dict) and "voice" in value:
            return "voice message (see the testimony)"
        return str(value)

    def answer(self, answers: dict[str, Any], qid: str) -> str:
        q = self.person_q.get(qid)
        if q is None:  # a question of another form version: the stored text as it is
            value = answers.get(qid)
            return describe_date(value) if qid.endswith("_date") else str(value or "")
        return self.value(q, answers.get(qid))

    def text(self, answers: dict[str, Any], qid: str) -> str:
        """A typed answer; a voice message instead of text is said so."""
        value = answers.get(qid)
        if isinstance(value, dict):
            return "voice message (see the testimony)" if "voice" in value else ""
        return str(value or "").strip()

    def heading(self, text: str, level: int = 1) -> None:
        self.doc.add_heading(text, level=level)

    def rows(self, rows: list[tuple[str, str]]) -> None:
        table = self.doc.add_table(rows=0, cols=2)
        table.style = "Table Grid"
        for label, text in rows:
            cells = table.add_row().cells
            cells[0].text = label
            cells[1].text = text or "—"
            for run in cells[0].paragraphs[0].runs:
                run.bold = True

    def name_line(self, name: str, *, place: bool = False) -> str:
        """The name in Latin with the original beside it ("Ye Erlan (pinyin; original script:
        叶尔兰)"), or as written if it is Latin already."""
        name = name.strip()
        if not name:
            return ""
        latin = transliterate(name, place=place)
        if latin and latin != name:
            how = "pinyin; " if is_chinese(name) else ""
            return f"{latin} ({how}original script: {name})"
        return name

    def box(self, title: str, lines: list[str]) -> None:
        table = self.doc.add_table(rows=1, cols=1)
        table.style = "Table Grid"
        cell = table.rows[0].cells[0]
        shading = OxmlElement("w:shd")
        shading.set(qn("w:val"), "clear")
        shading.set(qn("w:fill"), "FFF2CC")
        cell._tc.get_or_add_tcPr().append(shading)
        head = cell.paragraphs[0].add_run(title)
        head.bold = True
        head.font.color.rgb = RGBColor(0x9C, 0x00, 0x06)
        for line in lines:
            cell.add_paragraph(line, style="List Bullet")


def _given(value: Any) -> bool:
    if isinstance(value, dict):
        return bool(value)
    return value not in (None, "", [], "unknown")


def missing_elements(form: Form, person: dict[str, Any], items: list[EvidenceItem],
                     data: dict[str, Any] | None = None, form_version: int = 0) -> list[str]:
    """The WGEID's required elements (and what supports them) the case does not yet give."""
    missing = []
    old_form = 0 < form_version < 2 or (form_version == 0 and "taken_from" not in person)
    ask = "not asked by questionnaire version 1: ask the relative" if old_form \
        else "ask the relative"
    if not _given(person.get("full_name")):
        missing.append("Identity: the person's full name")
    if not _given(person.get("birth_date")):
        missing.append("Identity: date of birth (or age)")
    if not _given(person.get("chinese_id")):
        missing.append("Identity: an identity document number (Chinese resident ID)")
    happened = person.get("happened_date")
    precision = _date_precision(happened)
    if not _given(happened):
        missing.append("Date of the disappearance (at least month and year)")
    elif precision in ("decade", "year", "season"):
        missing.append(f"Date of the disappearance: the month (only {describe_date(happened)}"
                       " is known)")
    has_town = any(_given(person.get(k)) for k in _PLACE_IDS)
    if not has_town:
        if _given(person.get("prefecture")) and person.get("prefecture") != "outside":
            missing.append("Place of the disappearance: the county, town or village (only the "
                           "prefecture is known)")
        else:
            missing.append("Place of the disappearance (county, town or village) or of "
                           "detention")
    if not _given(person.get("taken_from")):
        missing.append("Where the person was taken from or last seen"
                       + (f" ({ask})" if old_form else ""))
    responsible = [r for r in person.get("responsible") or [] if r != "unknown"]
    if not responsible:
        missing.append("Who is believed responsible (State agents or those acting with "
                       "their support)")
    steps = [s for s in person.get("steps_taken") or [] if s != "none"]
    if not steps:
        missing.append("Steps taken to find the person (authorities, courts, others)")
    elif not _given(person.get("steps_result")):
        missing.append(f"Results of the steps taken and when they were taken ({ask})")
    if data is not None:
        consent = data.get("consent") or {}
        reporter = data.get("reporter") or {}
        if consent.get("consent_share") != "yes":
            missing.append("Source: the relative's consent to share the case with the UN "
                           "(not given: do not transmit)")
        elif not _given(reporter.get("reporter_name")):
            missing.append("Source: the name of the person reporting (the UN needs it; "
                           "it stays confidential)")
    if any(i.state != "stored" for i in items):
        missing.append("Evidence: some files could not be secured (see the evidence list)")
    return missing


def build_dossier(form: Form, case: CaseFacts, data: dict[str, Any], index: int,
                  items: list[EvidenceItem], level: str) -> DocumentType:
    """The dossier of the `index`-th (0-based) missing person of the case."""
    w = _Writer(form)
    persons = data.get("persons") or []
    person: dict[str, Any] = persons[index]
    reporter: dict[str, Any] = data.get("reporter") or {}
    consent: dict[str, Any] = data.get("consent") or {}
    doc = w.doc
    title = doc.add_heading(f"Case {case.number} — missing person {index + 1} of "
                            f"{len(persons)}", level=0)
    title.alignment = WD_ALIGN_PARAGRAPH.LEFT
    doc.add_paragraph(
        "Prepared for the UN Working Group on Enforced or Involuntary Disappearances. "
        f"Report received {case.submitted_at[:10]}; verification level: {level}.")
    danger = person.get("in_danger")
    if danger == "yes":
        urgent = doc.add_paragraph().add_run(
            "URGENT: the relative says the person is in danger now (illness, old age, a recent "
            "arrest). Consider the urgent action procedure.")
        urgent.bold = True
        urgent.font.color.rgb = RGBColor(0x9C, 0x00, 0x06)

    w.heading("1. Identity of the disappeared person")
    w.rows([
        ("Full name", w.name_line(w.text(person, "full_name"))),
        ("Name in Chinese documents", w.name_line(w.text(person, "chinese_name"))),
        ("Other names or spellings", w.name_line(w.text(person, "other_names"))),
        ("Gender", w.answer(person, "gender")),
        ("Date of birth", w.answer(person, "birth_date")),
        ("Ethnicity", w.answer(person, "ethnicity")),
        ("Citizenship", w.answer(person, "citizenship")),
        ("Occupation", w.text(person, "occupation")),
        ("Chinese resident ID number", w.text(person, "chinese_id")),
    ])

    w.heading("2. Date and place of the disappearance")
    taken = w.answer(person, "taken_from")
    if _given(person.get("taken_from_other")):
        taken = f"{taken}: {w.name_line(w.text(person, 'taken_from_other'), place=True)}"
    w.rows([
        ("What happened", w.answer(person, "what_happened")),
        ("Date of the disappearance", w.answer(person, "happened_date")),
        ("Taken from or last seen", taken),
        ("Last known place: prefecture", w.answer(person, "prefecture")),
        ("Last known place: county, town or village",
         w.name_line(w.text(person, "place"), place=True)),
        ("Where held", w.name_line(w.text(person, "place_held"), place=True)),
        ("Date of last contact", w.answer(person, "last_contact")),
        ("In danger now", {"yes": "YES (urgent)", "no": "No",
                           "unknown": "Not known"}.get(str(danger), "")),
    ])

    w.heading("3. Who is believed responsible")
    w.rows([
        ("Believed responsible", w.answer(person, "responsible")),
        ("Reasons given", w.answer(person, "reasons_given")),
        ("Reasons given, in the relative's words", w.text(person, "reasons")),
    ])

    w.heading("4. Steps taken and their results")
    steps = [s for s in person.get("steps_taken") or [] if s != "none"]
    if "steps_result" in person or not steps:
        result = w.text(person, "steps_result") or ("not given" if steps else "")
    else:
        result = "not asked (older questionnaire)"
    w.rows([
        ("Steps taken", w.answer(person, "steps_taken")),
        ("When, and the answer received", result),
    ])

    w.heading("Current situation")
    w.rows([
        ("Situation now", w.answer(person, "current_situation")),
        ("Known as of", w.answer(person, "situation_date")),
        ("Sentence", w.text(person, "sentence")),
        ("Charge", w.text(person, "charge")),
    ])

    w.heading("5. Source of the information")
    share = consent.get("consent_share") == "yes"
    reveal = share and consent.get("consent_reveal") == "yes"
    relation = w.answer(person, "relation")
    country = w.value(form.group("reporter").by_id["reporter_country"],
                      reporter.get("reporter_country"))
    if share:
        w.rows([
            ("Source", w.name_line(w.text(reporter, "reporter_name"))),
            ("Relationship to the disappeared person", relation),
            ("Country of residence", country),
            ("Confidentiality",
             "The source agreed that the Working Group may reveal their identity to the "
             "Government of China." if reveal else
             "CONFIDENTIAL: the source's identity must not be revealed to the Government of "
             "China (the source did not agree)."),
        ])
    else:
        w.rows([
            ("Source", "A family member (identity withheld)"),
            ("Relationship to the disappeared person", relation),
            ("Confidentiality", "CONFIDENTIAL: the source has not agreed to share the case "
                                "with international organisations."),
        ])
    doc.add_paragraph(
        "Consent to share with international organisations: "
        + ("given" if share else "NOT given: do not transmit without asking the relative"))

    w.heading("References and links")
    w.rows([
        ("Earlier reference numbers (Atazhurt, Shahit, WGEID)",
         w.text(person, "reference_numbers")),
        ("Published appeals and news", w.text(person, "links")),
    ])

    w.heading("Testimony")
    story = person.get("story")
    recordings = [i for i in items if i.custody is not None
                  and i.custody.kind in ("voice", "video", "video_note", "audio")]
    if isinstance(story, str) and story.strip():
        for paragraph in story.strip().split("\n"):
            doc.add_paragraph(paragraph)
    elif not recordings:
        doc.add_paragraph("No written testimony.")
    for item in recordings:
        c = item.custody
        assert c is not None
        seconds = int(c.duration or 0)
        doc.add_paragraph(
            f"{item.label}: {c.kind.replace('_', ' ')}, duration {seconds // 60}:{seconds % 60:02d}"
            f", SHA-256 {c.sha256 or '(not secured)'}", style="List Bullet")

    w.heading("Evidence list")
    if items:
        table = doc.add_table(rows=1, cols=6)
        table.style = "Table Grid"
        for cell, text in zip(table.rows[0].cells, ("File", "Type", "Size (bytes)",
                                                    "Received (UTC)", "SHA-256",
                                                    "Telegram file_unique_id"), strict=True):
            cell.text = text
        for item in items:
            c = item.custody
            sha = (c.sha256 if c is not None and c.sha256 else
                   f"not secured ({item.reason or item.state})")
            cells = table.add_row().cells
            values = (item.label, c.mime if c else "", str(c.size) if c else "",
                      c.received_at if c else "", sha, c.file_unique_id if c else "")
            for cell, text in zip(cells, values, strict=True):
                cell.text = text
        doc.add_paragraph(
            "Each SHA-256 was computed from the file as the bot received it from Telegram and "
            "recorded at that moment; a file matching it is unchanged since.")
    else:
        doc.add_paragraph("No files were sent for this person.")

    missing = missing_elements(form, person, items, data, case.form_version)
    doc.add_paragraph()
    if missing:
        w.box("Required elements still missing", missing)
    else:
        w.box("Required elements: all present", [])
    return doc


def to_bytes(doc: DocumentType) -> bytes:
    buf = io.BytesIO()
    doc.save(buf)
    return buf.getvalue()
