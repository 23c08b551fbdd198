"""A dossier per missing person (.docx, English) for submissions to the UN Working Group on
Enforced or Involuntary Disappearances (WGEID), from the case, the vault and the chain of custody.

Laid out by the Working Group's required elements for a case to be transmitted: (1) identity,
(2) date and place of the disappearance (arrest, detention or abduction), (3) who is believed
responsible, (4) steps taken to find the person and their results, (5) the source, kept
confidential unless the relative consented to disclosure. Then the testimony (the story as
written; voice and video listed with duration and SHA-256), the evidence list with the hashes
recorded when each file was received, and a box listing any required element still missing.
Names appear as written (their original script) with a Latin transliteration where one is known.

Pure: `build_dossier` takes the opened case and the custody records and returns a python-docx
Document; `bot/__main__.py` (python -m bot dossier) reads the database with the private key
(BOT_PRIVATE_KEY_FILE, or --key FILE on the offline computer).
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from typing import Any

from docx import Document
from docx.document import Document as DocumentType
from docx.enum.text import WD_ALIGN_PARAGRAPH
from docx.oxml import OxmlElement
from docx.oxml.ns import qn
from docx.shared import Pt, RGBColor

from bot.evidence.vault import Custody
from bot.form.model import Form, Question
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


def transliterate(name: str) -> str | None:
    """A Latin spelling of a Cyrillic (Kazakh, Russian) or Uyghur Arabic-script name; None
    for other scripts (Chinese names are given as written)."""
    if re.search(r"[\u0400-\u04FF]", name):
        out = []
        for ch in name:
            low = ch.lower()
            if low in _CYRILLIC:
                latin = _CYRILLIC[low]
                out.append(latin.capitalize() if ch != low else latin)
            else:
                out.append(ch)
        return "".join(out)
    if any(ch in _UYGHUR for ch in name):
        words = "".join(_UYGHUR.get(ch, ch) for ch in name).split(" ")
        return " ".join(w[:1].upper() + w[1:] for w in words)
    return None


def _has_non_latin(text: str) -> bool:
    return any(ord(c) > 0x24F and c.isalpha() for c in text)


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
            return ", ".join(labels)
        if q.type == "date":
            return "unknown" if value == "unknown" else str(value)
        if isinstance(value, dict) and "voice" in value:
            return "voice message (see the testimony)"
        return str(value)

    def answer(self, answers: dict[str, Any], qid: str) -> str:
        q = self.person_q.get(qid)
        return self.value(q, answers.get(qid)) if q is not None else ""

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

    def name_line(self, name: str) -> str:
        latin = transliterate(name)
        if latin:
            return f"{latin} (original script: {name})"
        if _has_non_latin(name):
            return f"{name} (original script)"
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


def missing_elements(form: Form, person: dict[str, Any], items: list[EvidenceItem]
                     ) -> list[str]:
    """The WGEID's required elements (and what supports them) the case does not yet give."""
    missing = []
    if not person.get("full_name"):
        missing.append("Identity: the person's full name")
    if not person.get("birth_date") or person.get("birth_date") == "unknown":
        missing.append("Identity: date of birth (or age)")
    if not person.get("chinese_id"):
        missing.append("Identity: an identity document number (Chinese resident ID)")
    if not person.get("happened_date") or person.get("happened_date") == "unknown":
        missing.append("Date of the disappearance (at least month and year)")
    if not (person.get("place") or person.get("place_held")):
        missing.append("Place of the disappearance (county, town or village) or of detention")
    responsible = [r for r in person.get("responsible") or [] if r != "unknown"]
    if not responsible:
        missing.append("Who is believed responsible (State agents or those acting with "
                       "their support)")
    steps = [s for s in person.get("steps_taken") or [] if s != "none"]
    if not steps:
        missing.append("Steps taken to find the person (authorities, courts, others)")
    else:
        missing.append("Results of the steps taken (not asked by the questionnaire: ask the "
                       "relative)")
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

    w.heading("1. Identity of the disappeared person")
    name = str(person.get("full_name") or "")
    w.rows([
        ("Full name", w.name_line(name) if name else ""),
        ("Name in Chinese documents", str(person.get("chinese_name") or "")),
        ("Other names or spellings", w.name_line(str(person.get("other_names") or ""))
         if person.get("other_names") else ""),
        ("Gender", w.answer(person, "gender")),
        ("Date of birth", w.answer(person, "birth_date")),
        ("Ethnicity", w.answer(person, "ethnicity")),
        ("Citizenship", w.answer(person, "citizenship")),
        ("Occupation", str(person.get("occupation") or "")),
        ("Chinese resident ID number", str(person.get("chinese_id") or "")),
    ])

    w.heading("2. Date and place of the disappearance")
    w.rows([
        ("What happened", w.answer(person, "what_happened")),
        ("Date", w.answer(person, "happened_date")),
        ("Last known place: prefecture", w.answer(person, "prefecture")),
        ("Last known place: county, town or village", str(person.get("place") or "")),
        ("Where held", str(person.get("place_held") or "")),
        ("Date of last contact", w.answer(person, "last_contact")),
    ])

    w.heading("3. Who is believed responsible")
    w.rows([
        ("Believed responsible", w.answer(person, "responsible")),
        ("Reasons given", str(person.get("reasons") or "")),
    ])

    w.heading("4. Steps taken and their results")
    w.rows([
        ("Steps taken", w.answer(person, "steps_taken")),
        ("Results", "not recorded"),
    ])

    w.heading("5. Source of the information")
    disclose = consent.get("consent_publish") == "by_name"
    share = consent.get("consent_share") == "yes"
    relation = w.answer(person, "relation")
    if disclose:
        w.rows([
            ("Source", str(reporter.get("reporter_name") or "")),
            ("Relationship to the disappeared person", relation),
            ("Country of residence", w.value(form.group("reporter").by_id["reporter_country"],
                                             reporter.get("reporter_country"))),
            ("Confidentiality", "The source consented to the disclosure of their identity."),
        ])
    else:
        w.rows([
            ("Source", "A family member (identity withheld)"),
            ("Relationship to the disappeared person", relation),
            ("Confidentiality", "CONFIDENTIAL: the source has not consented to the disclosure "
                                "of their identity."),
        ])
    doc.add_paragraph(
        "Consent to share with international organisations: "
        + ("given" if share else "NOT given: do not transmit without asking the relative"))

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

    missing = missing_elements(form, person, items)
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
