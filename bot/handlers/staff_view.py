"""What staff see: announcements, case cards, histories and lists, as translated, escaped HTML.

Every block built here is balanced HTML that fits a message on its own; long free text is cut
into several blocks at line breaks (never inside an escape), so common.split_html can join
blocks into messages without ever passing Telegram's 4,096 characters or breaking a tag.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

from nacl.exceptions import CryptoError

from bot.casework.status import STAFF_LABELS
from bot.form.model import Form, Group, Question
from bot.handlers.common import esc
from bot.handlers.evidence import level_label
from bot.handlers.render import block_title, format_answer
from bot.i18n import LANGUAGE_NAMES, N_, Translator
from bot.services.crypto import NoPrivateKey
from bot.storage.staff import CaseEvent, CaseInfo

#: A block's budget, well under 4,096 so a header fits beside it, counted in UTF-16 units
#: (how Telegram counts) of the HTML (never shorter than the text shown).
BLOCK_LIMIT = 3800
#: Free-text answers longer than this get blocks of their own.
LONG_ANSWER = 300

STAFF_STATUS_LABELS = STAFF_LABELS  # moved to bot/casework/status.py

Reveal = Callable[[CaseEvent], dict[str, Any] | None]


def status_label(t: Translator, code: str) -> str:
    return t._(STAFF_STATUS_LABELS[code]) if code in STAFF_STATUS_LABELS else code


def prefecture_label(t: Translator, form: Form, code: str | None) -> str:
    if not code:
        return "—"
    option = form.repeat_group.by_id["prefecture"].option(code)
    return t._(option.label) if option else code


#: The time zone staff read times in (BOT_TIMEZONE; set_timezone at start-up).
_TIMEZONE: tzinfo = ZoneInfo("Asia/Almaty")


def set_timezone(name: str) -> None:
    global _TIMEZONE
    _TIMEZONE = ZoneInfo(name)


def when(t: Translator, iso: str) -> str:
    """A stored time in BOT_TIMEZONE, to the minute."""
    try:
        moment = datetime.fromisoformat(iso)
    except ValueError:
        return iso
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return t.format_local_time(moment, _TIMEZONE)


def staff_ref(user_id: int | None) -> str:
    """A staff member by first name and @username (HTML), as far as the bot knows them."""
    from bot.handlers.people import cached_name

    return cached_name(user_id) if user_id is not None else "—"


# ----------------------------------------------------------------------------- long text


def _units(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def escaped_chunks(text: str, budget: int) -> list[str]:
    """`text` escaped and cut into pieces of at most `budget` UTF-16 units each.

    Cuts fall on a line break when there is one in the second half of a piece (the break
    itself is dropped: the next message starts on a new line), else on a space, else anywhere
    between two characters, never inside an escape such as &amp;.
    """
    pieces: list[str] = []
    rest = text
    while rest:
        size = n = 0
        while n < len(rest):
            width = _units(esc(rest[n]))
            if size + width > budget:
                break
            size += width
            n += 1
        if n >= len(rest):
            pieces.append(esc(rest))
            break
        cut = rest.rfind("\n", 0, n)
        if cut > n // 2:
            pieces.append(esc(rest[:cut]))
            rest = rest[cut + 1:]
            continue
        space = rest.rfind(" ", 0, n)
        cut = space + 1 if space > n // 2 else max(n, 1)
        pieces.append(esc(rest[:cut]))
        rest = rest[cut:]
    return pieces


_QUOTE = ("<blockquote>", "</blockquote>")


def quote(text: str) -> str:
    """Someone's text as a quote: escaped, inside <blockquote>, so a relative's lines can never
    pass for the bot's own (a fake "Status: Verified" line, a header for another case)."""
    return f"{_QUOTE[0]}{esc(text)}{_QUOTE[1]}"


def text_blocks(head: str, text: str, limit: int = BLOCK_LIMIT) -> list[str]:
    """A heading (our HTML) followed by a relative's or staff member's text, quoted, in
    blocks."""
    extra = len(_QUOTE[0]) + len(_QUOTE[1])
    pieces = escaped_chunks(text, limit - _units(head) - 1 - extra) or [""]
    quoted = [f"{_QUOTE[0]}{p}{_QUOTE[1]}" for p in pieces]
    return [f"{head}\n{quoted[0]}", *quoted[1:]]


def pack_lines(lines: Sequence[str], limit: int = BLOCK_LIMIT) -> list[str]:
    """Lines (each balanced HTML under the limit) joined into as few blocks as fit."""
    blocks: list[str] = []
    current: list[str] = []
    size = 0
    for line in lines:
        width = _units(line) + 1
        if current and size + width > limit:
            blocks.append("\n".join(current))
            current, size = [], 0
        current.append(line)
        size += width
    if current:
        blocks.append("\n".join(current))
    return blocks


# ----------------------------------------------------------------------------- announcements


def announcement(t: Translator, form: Form, case: CaseInfo, names: Sequence[str] = ()) -> str:
    lines = [
        "🆕 " + t._("<b>New case %(number)s</b>") % {"number": esc(case.number)},
        t._("Language: %(language)s")
        % {"language": esc(LANGUAGE_NAMES.get(case.language, case.language))},
        t.ngettext("%(count)s missing person", "%(count)s missing persons", case.persons_count)
        % {"count": case.persons_count},
        t._("Prefecture: %(prefecture)s")
        % {"prefecture": esc(prefecture_label(t, form, case.prefecture))},
        t.ngettext("%(count)s attachment", "%(count)s attachments", case.attachments_count)
        % {"count": case.attachments_count},
    ]
    if case.urgent:
        lines.insert(1, "🚨 " + t._("<b>Urgent:</b> the relative says a person is in danger now "
                                   "(illness, old age, a recent arrest)."))
    lines += [f"• {esc(name)}" for name in names]
    return "\n".join(lines)


# ----------------------------------------------------------------------------- the case card


def card_header(t: Translator, form: Form, case: CaseInfo) -> str:
    assignee = staff_ref(case.assignee_id) if case.assignee_id is not None else t._("nobody")
    return "\n".join([
        "📂 " + t._("<b>Case %(number)s</b>") % {"number": esc(case.number)},
        t._("Status: %(status)s") % {"status": esc(status_label(t, case.status))},
        t._("Assigned to: %(staff)s") % {"staff": assignee},
        t._("Submitted: %(date)s") % {"date": esc(when(t, case.submitted_at))},
        t._("Last change: %(date)s") % {"date": esc(when(t, case.updated_at))},
        t._("Language: %(language)s")
        % {"language": esc(LANGUAGE_NAMES.get(case.language, case.language))},
        t.ngettext("%(count)s missing person", "%(count)s missing persons", case.persons_count)
        % {"count": case.persons_count},
        t._("Prefecture: %(prefecture)s")
        % {"prefecture": esc(prefecture_label(t, form, case.prefecture))},
        t.ngettext("%(count)s attachment", "%(count)s attachments", case.attachments_count)
        % {"count": case.attachments_count},
    ])


FILE_KINDS = {
    "photo": N_("photo"),
    "document": N_("document"),
    "voice": N_("voice message"),
    "audio": N_("audio"),
    "video": N_("video"),
    "video_note": N_("video message"),
}


def kind_label(t: Translator, kind: Any) -> str:
    return t._(FILE_KINDS[kind]) if kind in FILE_KINDS else str(kind)


def _attachment_line(t: Translator, index: int, item: dict[str, Any]) -> str:
    name = item.get("name")
    label = f"{index + 1}. {kind_label(t, item.get('kind'))}" + (f": {name}" if name else "")
    return "📎 " + esc(label)


#: Labels from the staff's side where the questionnaire speaks to the relative ("Your name").
STAFF_SHORT = {
    "reporter_name": N_("Reporter's name"),
    "reporter_country": N_("Reporter's country of residence"),
    "reporter_city": N_("Reporter's city or village"),
    "reporter_citizenship": N_("Reporter's citizenship"),
    "reporter_phone": N_("Reporter's phone number"),
    "relation": N_("Relation to the reporter"),
}
STAFF_TITLES = {"reporter": N_("About the reporter")}


def staff_short(t: Translator, q: Question) -> str:
    return t._(STAFF_SHORT.get(q.id, q.short))


def _group_blocks(t: Translator, form: Form, group: Group, block: str,
                  answers: dict[str, Any]) -> list[str]:
    """One part of the answers: short ones as lines, long free text in blocks of its own."""
    heading = (t._(STAFF_TITLES[block]) if block in STAFF_TITLES
               else block_title(t, form, block))
    title = f"<b>{esc(heading)}</b>"
    blocks: list[str] = []
    lines = [title]  # after a long answer the title repeats, so every block says whose it is
    for q in group.questions:
        if q.id not in answers:
            continue
        value = answers[q.id]
        label = esc(staff_short(t, q))
        if q.type == "attachments":
            lines.append(f"{label}: {format_answer(t, q, value)}")
            lines += [_attachment_line(t, i, item) for i, item in enumerate(value or [])]
        elif isinstance(value, str) and _is_free_text(q) and len(value) > LONG_ANSWER:
            blocks += pack_lines(lines) if len(lines) > 1 else []
            blocks += text_blocks(f"<b>{esc(heading)} · {label}</b>", value)
            lines = [title]
        elif q.type == "text" and isinstance(value, str):  # free text: quoted
            lines.append(f"{label}: {_QUOTE[0]}{format_answer(t, q, value)}{_QUOTE[1]}")
        else:
            lines.append(f"{label}: {format_answer(t, q, value)}")
    return blocks + (pack_lines(lines) if len(lines) > 1 else [])


def _is_free_text(q: Question) -> bool:
    return q.type in ("text", "phone", "chinese_id")


def answer_blocks(t: Translator, form: Form, data: dict[str, Any]) -> list[str]:
    """Every answer with its label in the staff member's language, free text as written."""
    blocks: list[str] = []
    for group in form.groups:
        if group.repeat:
            for i, person in enumerate(data.get("persons") or []):
                blocks += _group_blocks(t, form, group, f"{group.id}.{i}", person)
        else:
            blocks += _group_blocks(t, form, group, group.id, data.get(group.id) or {})
    return blocks


def files_of(data: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(reference, media) for every file a case holds: "<person>.<index>" or "<person>.story"."""
    out: list[tuple[str, dict[str, Any]]] = []
    for p, person in enumerate(data.get("persons") or []):
        for i, item in enumerate(person.get("attachments") or []):
            if isinstance(item, dict) and item.get("file_id"):
                out.append((f"{p}.{i}", item))
        story = person.get("story")
        if isinstance(story, dict) and isinstance(story.get("voice"), dict):
            out.append((f"{p}.story", story["voice"]))
    return out


def file_label(t: Translator, ref: str, media: dict[str, Any]) -> str:
    person, _, index = ref.partition(".")
    if index == "story":
        what = t._("story") + ", " + kind_label(t, media.get("kind") or "voice")
    else:
        what = f"{int(index) + 1}. {kind_label(t, media.get('kind'))}"
    return t._("Missing person %(number)s") % {"number": int(person) + 1} + f" · {what}"


# ----------------------------------------------------------------------------- history


EVENT_TEXTS = {
    "submitted": N_("submitted the report"),
    "status": N_("status: %(from)s → %(to)s"),
    "status_changed": N_("changed the status"),
    "assigned": N_("assigned to %(staff)s"),
    "unassigned": N_("no longer assigned"),
    "note": N_("internal note:"),
    "question": N_("asked the relative:"),
    "answer": N_("answered:"),
    "message": N_("wrote to the volunteers:"),
    "person_status": N_("missing person %(person)s: %(from)s → %(to)s"),
    "person_status_undone": N_("missing person %(person)s: %(from)s → %(to)s (undone)"),
    "status_undone": N_("undo, missing person %(person)s: back to %(to)s"),
    "undelivered": N_("the question could not be delivered"),
    "withdrawn": N_("erased their data: the case is withdrawn"),
    "verification": N_("changed a missing person's verification level"),
    "sealed": N_("(sealed: the private key is offline)"),
    "erased": N_("(erased)"),
}


def _who(t: Translator, event: CaseEvent) -> str:
    if event.actor_id is not None:
        return staff_ref(event.actor_id)
    return esc(t._("relative")) if event.kind in ("submitted", "answer", "message",
                                                  "withdrawn") \
        else esc(t._("bot"))


def event_text(t: Translator, key: str) -> str:
    """A history line's text (the key itself is not a message: keep it out of the catalogs)."""
    return t._(EVENT_TEXTS[key])


def _event_head(t: Translator, event: CaseEvent) -> str:
    head = f"• {esc(when(t, event.at))} · {_who(t, event)}: "
    kind, detail = event.kind, event.detail
    if kind == "status":
        if detail is None or ">" not in detail:  # erased with the relative's data
            return head + esc(event_text(t, "status_changed"))
        old, new = detail.split(">", 1)
        return head + esc(event_text(t, "status")
                          % {"from": status_label(t, old), "to": status_label(t, new)})
    if kind in ("person_status", "person_status_undone", "status_undone"):
        moves = [m.partition(":") for m in (detail or "").split(",") if ">" in m]
        if not moves:
            return head + esc(event_text(t, "status_changed"))
        return head + "; ".join(
            esc(event_text(t, kind) % {"person": person, "from": status_label(t, move[0]),
                                       "to": status_label(t, move[2])})
            for person, _, raw in moves for move in [raw.partition(">")])
    if kind == "assigned" and detail is not None:
        if not detail:
            return head + esc(event_text(t, "unassigned"))
        target = staff_ref(int(detail)) if detail.lstrip("-").isdigit() else esc(detail)
        return head + esc(event_text(t, "assigned")) % {"staff": target}
    if kind == "verification" and detail and ":" in detail:
        person, _, level = detail.partition(":")
        return head + esc(event_text(t, "verification")) + esc(
            f" ({t._('Missing person %(number)s') % {'number': person}}: "
            f"{level_label(t, level)})")
    if kind in EVENT_TEXTS:
        return head + esc(t._(EVENT_TEXTS[kind]))
    return head + esc(kind)


def _content(t: Translator, content: dict[str, Any]) -> str:
    """The text of a note, question or answer as written, or what kind of file it was."""
    if content.get("text") is not None:
        return str(content["text"])
    caption = content.get("caption")
    name = content.get("file_name")
    parts = [f"[{kind_label(t, content.get('kind'))}]"] + [str(x) for x in (name, caption) if x]
    return " ".join(parts)


def history_blocks(t: Translator, events: Sequence[CaseEvent], reveal: Reveal) -> list[str]:
    """The case's history, oldest first: who did what and when, with the exchange in full."""
    title = t._("History")
    lines = [f"<b>{esc(title)}</b>"]
    blocks: list[str] = []
    for event in events:
        head = _event_head(t, event)
        if event.kind not in ("note", "question", "answer", "message"):
            lines.append(head)
            continue
        try:
            content = reveal(event)
        except (NoPrivateKey, CryptoError, ValueError):  # key offline, or not ours
            content = None
            head += " " + esc(event_text(t, "sealed"))
        if content is None:
            if not event.detail:
                head += " " + esc(event_text(t, "erased"))
            lines.append(head)
            continue
        text = _content(t, content)
        if _units(head) + _units(esc(text)) < LONG_ANSWER * 2 and "\n" not in text:
            lines.append(f"{head} {quote(text)}")
            continue
        blocks += pack_lines(lines)
        blocks += text_blocks(head, text)
        lines = []
    return blocks + (pack_lines(lines) if lines else [])


# ----------------------------------------------------------------------------- lists


def list_line(t: Translator, form: Form, case: CaseInfo,
              persons: list[str] | None = None) -> str:
    """A case in /cases; with several persons, each person's status ("2 persons: in review,
    located"), `persons` being their status codes in person order."""
    submitted = when(t, case.submitted_at)
    if persons and len(persons) > 1 and case.status != "withdrawn":
        who = [esc(t.ngettext("%(count)s person: %(statuses)s",
                              "%(count)s persons: %(statuses)s", len(persons))
                   % {"count": len(persons),
                      "statuses": ", ".join(status_label(t, s) for s in persons)}),
               esc(submitted)]
    else:
        who = [esc(status_label(t, case.status)), esc(submitted),
               esc(t.ngettext("%(count)s person", "%(count)s persons", case.persons_count)
                   % {"count": case.persons_count})]
    parts = [
        f"<code>{esc(case.number)}</code>",
        *who,
        esc(prefecture_label(t, form, case.prefecture)),
    ]
    if case.assignee_id is not None:
        parts.append("👤 " + staff_ref(case.assignee_id))
    return " · ".join(parts)


LIST_FILTERS = {
    "open": N_("Open cases"),
    "all": N_("All cases"),
    "mine": N_("My cases"),
}


def filter_label(t: Translator, name: str) -> str:
    if name in LIST_FILTERS:
        return t._(LIST_FILTERS[name])
    return status_label(t, name)
