"""The questionnaire's shape, loaded from questionnaire.toml and checked once at start-up."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, Literal

QuestionType = Literal["single", "multi", "text", "date", "phone", "chinese_id", "attachments"]
QUESTION_TYPES: frozenset[str] = frozenset(
    ("single", "multi", "text", "date", "phone", "chinese_id", "attachments")
)
FORM_PATH = Path(__file__).with_name("questionnaire.toml")


class FormError(ValueError):
    """The form file is not valid; the message says where."""


@dataclass(frozen=True, slots=True)
class Option:
    code: str
    label: str  # English; also the gettext msgid


@dataclass(frozen=True, slots=True)
class Question:
    id: str
    type: QuestionType
    prompt: str  # English; also the gettext msgid
    short: str
    required: bool = True
    options: tuple[Option, ...] = ()
    when: tuple[tuple[str, frozenset[str]], ...] = ()
    must_be: str | None = None
    max_len: int = 1000
    media_to: str | None = None
    #: required only when an answer in an earlier part is one of these codes
    required_when: tuple[tuple[str, frozenset[str]], ...] = ()
    #: the answer that follows from an earlier one: ((question id, {its code: this code}), ...)
    infer: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = ()
    same_as_first: bool = False  # offer "Same as person 1" from the second person on
    year_buttons: bool = False  # a date asked with buttons for recent years
    typed_only: bool = False  # a voice message is not taken as the answer (names)

    def option(self, code: str) -> Option | None:
        return next((o for o in self.options if o.code == code), None)

    def inferred(self, answers: dict[str, Any]) -> str | None:
        """The answer that follows from earlier answers (a brother is a man), if one does."""
        for ref, pairs in self.infer:
            value = dict(pairs).get(str(answers.get(ref)))
            if value is not None:
                return value
        return None


@dataclass(frozen=True, slots=True)
class Group:
    id: str
    title: str
    questions: tuple[Question, ...]
    repeat: bool = False
    by_id: dict[str, Question] = field(default_factory=dict, compare=False, hash=False)

    def index_of(self, question_id: str) -> int:
        for i, q in enumerate(self.questions):
            if q.id == question_id:
                return i
        raise KeyError(question_id)


@dataclass(frozen=True, slots=True)
class Form:
    version: int
    notice_version: int
    groups: tuple[Group, ...]

    def group(self, group_id: str) -> Group:
        for g in self.groups:
            if g.id == group_id:
                return g
        raise KeyError(group_id)

    def question(self, group_id: str, question_id: str) -> Question:
        return self.group(group_id).by_id[question_id]

    @property
    def repeat_group(self) -> Group:
        return next(g for g in self.groups if g.repeat)


def _options(raw: Any, shared: dict[str, tuple[Option, ...]], where: str) -> tuple[Option, ...]:
    if raw is None:
        return ()
    if isinstance(raw, str):
        if raw not in shared:
            raise FormError(f"{where}: unknown option list {raw!r}")
        return shared[raw]
    opts = tuple(Option(code=str(o["code"]), label=str(o["label"])) for o in raw)
    codes = [o.code for o in opts]
    if len(set(codes)) != len(codes):
        raise FormError(f"{where}: duplicate option codes")
    for code in codes:
        # Option codes travel inside 64-byte callback data next to a short header.
        if not code.isascii() or len(code) > 24 or ":" in code:
            raise FormError(f"{where}: option code {code!r} must be short ASCII without ':'")
    return opts


def _question(raw: dict[str, Any], shared: dict[str, tuple[Option, ...]], group: str,
              earlier: dict[str, Question], before: dict[str, Question] | None = None
              ) -> Question:
    qid = str(raw["id"])
    where = f"{group}.{qid}"
    qtype = str(raw["type"])
    if qtype not in QUESTION_TYPES:
        raise FormError(f"{where}: unknown type {qtype!r}")
    options = _options(raw.get("options"), shared, where)
    if qtype in ("single", "multi") and not options:
        raise FormError(f"{where}: a {qtype} question needs options")
    when: list[tuple[str, frozenset[str]]] = []
    for ref, codes in dict(raw.get("when", {})).items():
        if ref not in earlier:
            raise FormError(f"{where}: 'when' refers to {ref!r}, not an earlier question here")
        valid = {o.code for o in earlier[ref].options}
        if not set(codes) <= valid:
            raise FormError(f"{where}: 'when' uses codes that {ref!r} does not have")
        when.append((ref, frozenset(codes)))
    required_when: list[tuple[str, frozenset[str]]] = []
    for ref, codes in dict(raw.get("required_when", {})).items():
        target = (before or {}).get(ref)
        if target is None:
            raise FormError(f"{where}: 'required_when' refers to {ref!r}, not an earlier part's")
        if not set(codes) <= {o.code for o in target.options}:
            raise FormError(f"{where}: 'required_when' uses codes that {ref!r} does not have")
        required_when.append((ref, frozenset(codes)))
    infer: list[tuple[str, tuple[tuple[str, str], ...]]] = []
    for ref, mapping in dict(raw.get("infer", {})).items():
        if ref not in earlier:
            raise FormError(f"{where}: 'infer' refers to {ref!r}, not an earlier question here")
        pairs = tuple((str(k), str(val)) for k, val in dict(mapping).items())
        if not {k for k, _ in pairs} <= {o.code for o in earlier[ref].options} or \
                not {val for _, val in pairs} <= {o.code for o in options}:
            raise FormError(f"{where}: 'infer' uses unknown codes")
        infer.append((ref, pairs))
    must_be = raw.get("must_be")
    if must_be is not None and not any(o.code == must_be for o in options):
        raise FormError(f"{where}: must_be {must_be!r} is not an option")
    return Question(
        id=qid,
        type=qtype,  # type: ignore[arg-type]  # checked against QUESTION_TYPES above
        prompt=str(raw["prompt"]).strip(),
        short=str(raw.get("short", raw["prompt"])).strip(),
        required=bool(raw.get("required", True)),
        options=options,
        when=tuple(when),
        must_be=must_be,
        max_len=int(raw.get("max_len", 1000)),
        media_to=raw.get("media_to"),
        required_when=tuple(required_when),
        infer=tuple(infer),
        same_as_first=bool(raw.get("same_as_first", False)),
        year_buttons=bool(raw.get("year_buttons", False)),
        typed_only=bool(raw.get("typed_only", False)),
    )


def parse_form(data: dict[str, Any]) -> Form:
    shared = {
        name: _options(spec["items"], {}, f"options.{name}")
        for name, spec in dict(data.get("options", {})).items()
    }
    groups: list[Group] = []
    before: dict[str, Question] = {}  # questions of earlier parts, for required_when
    for graw in data["groups"]:
        gid = str(graw["id"])
        by_id: dict[str, Question] = {}
        for qraw in graw["questions"]:
            q = _question(qraw, shared, gid, by_id, before)
            if q.id in by_id:
                raise FormError(f"{gid}: duplicate question id {q.id!r}")
            by_id[q.id] = q
        for q in by_id.values():
            if q.media_to is not None and q.media_to not in by_id:
                raise FormError(f"{gid}.{q.id}: media_to names no question in this part")
        before.update(by_id)
        groups.append(Group(id=gid, title=str(graw["title"]), questions=tuple(by_id.values()),
                            repeat=bool(graw.get("repeat", False)), by_id=by_id))
    if sum(g.repeat for g in groups) != 1:
        raise FormError("exactly one group must repeat (the missing person)")
    if not groups[-1].repeat:
        raise FormError("the repeated group must come last")
    return Form(version=int(data["version"]), notice_version=int(data["notice_version"]),
                groups=tuple(groups))


@cache
def load_form(path: Path = FORM_PATH) -> Form:
    with path.open("rb") as f:
        return parse_form(tomllib.load(f))
