"""The pure questionnaire engine: form + draft state + one input -> new state and what to ask.

No Telegram, no database, no clock: the caller passes `now`, loads and saves the state, and
turns error codes and views into translated messages. Everything here is deterministic, which
is what lets the property tests walk thousands of journeys in seconds.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from typing import Any, Literal

import orjson

from bot.form import answers as ans
from bot.form.model import Form, Group, Question

StepKind = Literal["question", "confirm_id", "add_person", "review"]
MAX_PERSONS = 20
MAX_FILES_PER_PERSON = 20
MAX_FILE_MB = 20  # the Bot API lets a bot download at most 20 MB per file
_MIN_YEAR = 1900
#: The years offered as buttons for recent events (the mass detentions began in 2017).
EVENT_YEARS = tuple(str(y) for y in range(2016, 2023))


# --------------------------------------------------------------------------- state


@dataclass(frozen=True, slots=True)
class Position:
    step: StepKind
    block: str = ""  # "consent", "reporter", "person.0", "person.1", ...
    qid: str = ""

    @property
    def group_id(self) -> str:
        return self.block.split(".", 1)[0]


@dataclass(slots=True)
class DraftState:
    form_version: int
    pos: Position
    seq: int = 0
    answers: dict[str, dict[str, Any]] = field(default_factory=dict)
    history: list[Position] = field(default_factory=list)
    pending: list[str] | None = None  # a multi-choice selection being built
    pending_id: str | None = None  # a Chinese ID waiting for the relative's confirmation
    editing: bool = False  # came from the review: return there after this answer
    answered_at: dict[str, str] = field(default_factory=dict)  # consent answers only

    def to_json(self) -> str:
        # The same JSON as json.dumps(asdict(self), ensure_ascii=False, separators=(",", ":"))
        # (a property test holds them equal) at a fraction of the cost: asdict deep-copies every
        # answer, and the draft is written after each of them.
        return orjson.dumps({
            "form_version": self.form_version,
            "pos": _position_dict(self.pos),
            "seq": self.seq,
            "answers": self.answers,
            "history": [_position_dict(p) for p in self.history],
            "pending": self.pending,
            "pending_id": self.pending_id,
            "editing": self.editing,
            "answered_at": self.answered_at,
        }).decode()

    @classmethod
    def from_json(cls, raw: str | bytes) -> DraftState:
        data = orjson.loads(raw)
        data["pos"] = Position(**data["pos"])
        data["history"] = [Position(**p) for p in data["history"]]
        return cls(**data)

    def person_blocks(self) -> list[str]:
        return sorted((k for k in self.answers if "." in k), key=lambda k: int(k.split(".")[1]))


def _position_dict(p: Position) -> dict[str, str]:
    return {"step": p.step, "block": p.block, "qid": p.qid}


# --------------------------------------------------------------------------- inputs


@dataclass(frozen=True, slots=True)
class Text:
    text: str


@dataclass(frozen=True, slots=True)
class Media:
    kind: str  # photo, document, voice, video, video_note, audio
    file_id: str
    file_unique_id: str = ""
    size: int | None = None
    duration: int | None = None
    name: str | None = None
    mime: str | None = None

    def as_answer(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}


@dataclass(frozen=True, slots=True)
class Contact:
    phone: str


@dataclass(frozen=True, slots=True)
class Unsupported:
    kind: str  # sticker, location, animation, poll, ...


@dataclass(frozen=True, slots=True)
class Press:
    """A button press; `seq` ties it to the question it was shown with."""

    seq: int
    action: str
    arg: str = ""


Input = Text | Media | Contact | Unsupported | Press


# --------------------------------------------------------------------------- outputs


@dataclass(frozen=True, slots=True)
class Outcome:
    state: DraftState
    changed: bool = True
    error: str | None = None
    error_args: dict[str, Any] = field(default_factory=dict)
    # "declined" (consent refused), "submit", "toggled", "file_added", "media_saved", "stale"
    event: str | None = None


@dataclass(frozen=True, slots=True)
class View:
    """What the relative should see now."""

    step: StepKind
    seq: int
    block: str
    person_index: int | None
    question: Question | None
    answer: Any = None
    pending: tuple[str, ...] = ()
    can_back: bool = False
    can_skip: bool = False
    id_info: ans.ChineseIdInfo | None = None
    persons: int = 0
    same_as: Any = None  # the first person's answer, offered as "Same as person 1"


# --------------------------------------------------------------------------- helpers


def _group(form: Form, block: str) -> Group:
    return form.group(block.split(".", 1)[0])


def relevant(q: Question, block_answers: dict[str, Any]) -> bool:
    if q.type == "attachments" and block_answers.get(q.id):
        return True  # files sent at another question (a passport at the name) are kept
    for ref, codes in q.when:
        given = block_answers.get(ref)
        chosen = set(given) if isinstance(given, list) else {given}
        if not chosen & codes:
            return False
    return True


def is_required(q: Question, state: DraftState) -> bool:
    """Required always, or because of an answer in an earlier part (a name for the UN)."""
    if q.required:
        return True
    for ref, codes in q.required_when:
        for block_answers in state.answers.values():
            if ref in block_answers:
                given = block_answers[ref]
                chosen = set(given) if isinstance(given, list) else {given}
                if chosen & codes:
                    return True
    return False


def _first_from(form: Form, state: DraftState, block: str, start: int) -> Position | None:
    group = _group(form, block)
    answers = state.answers.get(block, {})
    for q in group.questions[start:]:
        if not relevant(q, answers):
            continue
        if q.infer and answers.get(q.id) is not None and answers.get(q.id) == q.inferred(answers):
            continue  # follows from an earlier answer (a brother is a man): not asked
        return Position("question", block, q.id)
    return None


def _after(form: Form, state: DraftState, block: str, qid: str) -> Position:
    """Where the journey goes after `qid` in `block` in a first pass."""
    group = _group(form, block)
    nxt = _first_from(form, state, block, group.index_of(qid) + 1)
    if nxt is not None:
        return nxt
    if group.repeat:
        return Position("add_person")
    gi = form.groups.index(group)
    for later in form.groups[gi + 1 :]:
        target = f"{later.id}.0" if later.repeat else later.id
        state.answers.setdefault(target, {})
        pos = _first_from(form, state, target, 0)
        if pos is not None:
            return pos
    return Position("review")


def missing_required(form: Form, state: DraftState) -> Position | None:
    """The first relevant required question without an answer, if any."""
    for block in [g.id for g in form.groups if not g.repeat] + state.person_blocks():
        answers = state.answers.get(block, {})
        for q in _group(form, block).questions:
            if is_required(q, state) and relevant(q, answers) and answers.get(q.id) is None:
                return Position("question", block, q.id)
    return None


#: Questions added in form version 2 to put optional details behind a "Yes": a draft begun on
#: version 1 answers them "yes", so that it goes on asking what it asked before.
_V2_GATES = {"reporter": "reporter_more", "person": "more_details"}


def upgrade(form: Form, state: DraftState) -> DraftState:
    """A draft begun on an older form, made to work on this one (every question id of the old
    form still exists; new required questions are asked before submitting)."""
    if state.form_version >= form.version:
        return state
    if state.form_version < 2:
        for block, answers in state.answers.items():
            gate = _V2_GATES.get(block.split(".", 1)[0])
            if gate is not None and gate in _group(form, block).by_id:
                answers.setdefault(gate, "yes")
    state.form_version = form.version
    return state


def start(form: Form) -> DraftState:
    first = form.groups[0]
    state = DraftState(form_version=form.version, pos=Position("question", first.id, ""))
    state.answers[first.id] = {}
    pos = _first_from(form, state, first.id, 0)
    assert pos is not None, "the first part of the form has no questions"
    state.pos = pos
    return state


def _enter(form: Form, state: DraftState, pos: Position) -> None:
    """Set up per-question scratch state when a question becomes current."""
    state.pos = pos
    state.pending = None
    state.pending_id = None
    if pos.step == "question":
        q = _group(form, pos.block).by_id[pos.qid]
        if q.type == "multi":
            current = state.answers.get(pos.block, {}).get(q.id)
            state.pending = list(current) if isinstance(current, list) else []


def _advance(form: Form, state: DraftState) -> None:
    """Move on after the current question was answered, skipped or kept."""
    pos = state.pos
    if state.editing:
        gap = missing_required(form, state)
        target = gap if gap is not None else Position("review")
        state.editing = gap is not None
        state.history.append(pos)
        _enter(form, state, target)
        return
    state.history.append(pos)
    _enter(form, state, _after(form, state, pos.block, pos.qid))


def _store(state: DraftState, q: Question, value: Any, now: datetime,
           form: Form | None = None) -> None:
    block = state.pos.block
    answers = state.answers.setdefault(block, {})
    answers[q.id] = value
    if block == "consent":
        state.answered_at[q.id] = now.isoformat(timespec="seconds")
    if form is not None:
        for other in _group(form, block).questions:
            if any(ref == q.id for ref, _ in other.infer):
                inferred = other.inferred(answers)
                if inferred is not None:
                    answers[other.id] = inferred


def _current_question(form: Form, state: DraftState) -> Question:
    return _group(form, state.pos.block).by_id[state.pos.qid]


# --------------------------------------------------------------------------- view


def view(form: Form, state: DraftState) -> View:
    pos = state.pos
    q = _current_question(form, state) if pos.step in ("question", "confirm_id") else None
    person = int(pos.block.split(".")[1]) if "." in pos.block else None
    id_info = None
    if pos.step == "confirm_id" and state.pending_id is not None:
        id_info = ans.chinese_id_info(state.pending_id, state.answers.get(pos.block, {}))
    answer = state.answers.get(pos.block, {}).get(q.id) if q is not None else None
    same_as = None
    if q is not None and q.same_as_first and person:
        same_as = state.answers.get(f"{form.repeat_group.id}.0", {}).get(q.id)
    return View(
        step=pos.step,
        seq=state.seq,
        block=pos.block,
        person_index=person,
        question=q,
        answer=answer,
        pending=tuple(state.pending or ()),
        can_back=bool(state.history) or state.editing,
        can_skip=q is not None and not is_required(q, state) and pos.step == "question",
        id_info=id_info,
        persons=len(state.person_blocks()),
        same_as=same_as,
    )


# --------------------------------------------------------------------------- apply


def _fail(state: DraftState, error: str, **args: Any) -> Outcome:
    return Outcome(state=state, changed=False, error=error, error_args=args)


def _done(state: DraftState, event: str | None = None) -> Outcome:
    state.seq += 1
    return Outcome(state=state, event=event)


def apply(form: Form, state: DraftState, inp: Input, now: datetime, *,
          max_file_mb: int = MAX_FILE_MB) -> Outcome:
    """Apply one input to a copy of `state`; the caller's state is never modified.

    `max_file_mb`: the largest file the bot can fetch (20 MB on Telegram's cloud Bot API,
    up to 2000 MB with a self-hosted Bot API server).
    """
    state = DraftState.from_json(state.to_json())
    if isinstance(inp, Press):
        if inp.seq != state.seq:
            return Outcome(state=state, changed=False, event="stale")
        return _press(form, state, inp, now)
    step = state.pos.step
    if step == "question":
        return _answer(form, state, inp, now, max_file_mb)
    if step == "confirm_id":
        if isinstance(inp, Text):
            # A fresh number typed while we wait for the confirmation replaces the pending one.
            state.pos = replace(state.pos, step="question")
            return _answer(form, state, inp, now, max_file_mb)
        return _fail(state, "use_buttons")
    if step == "add_person":
        return _fail(state, "use_buttons")
    return _fail(state, "use_buttons_review")


def _back(form: Form, state: DraftState) -> Outcome:
    if state.editing or (state.pos.step == "review" and not state.history):
        state.editing = False
        _enter(form, state, Position("review"))
        return _done(state)
    if not state.history:
        return _fail(state, "no_back")
    prev = state.history.pop()
    _enter(form, state, prev)
    return _done(state)


def _press(form: Form, state: DraftState, p: Press, now: datetime) -> Outcome:
    step = state.pos.step
    if p.action == "back":
        return _back(form, state)
    if step == "add_person":
        if p.action == "add":
            if len(state.person_blocks()) >= MAX_PERSONS:
                return _fail(state, "too_many_persons", limit=MAX_PERSONS)
            block = f"{form.repeat_group.id}.{len(state.person_blocks())}"
            state.answers[block] = {}
            state.history.append(state.pos)
            pos = _first_from(form, state, block, 0)
            assert pos is not None
            _enter(form, state, pos)
            return _done(state)
        if p.action == "finish":
            state.history.append(state.pos)
            _enter(form, state, Position("review"))
            return _done(state)
        return _fail(state, "use_buttons")
    if step == "review":
        return _review_press(form, state, p)
    if step == "confirm_id":
        q = _current_question(form, state)
        if p.action == "id_yes" and state.pending_id is not None:
            _store(state, q, state.pending_id, now)
            _advance(form, state)
            return _done(state)
        if p.action == "id_no":
            _enter(form, state, replace(state.pos, step="question"))
            return _done(state)
        return _fail(state, "use_buttons")
    return _question_press(form, state, p, now)


def _question_press(form: Form, state: DraftState, p: Press, now: datetime) -> Outcome:
    q = _current_question(form, state)
    block_answers = state.answers.setdefault(state.pos.block, {})
    if p.action == "skip":
        if is_required(q, state):
            return _fail(state, "required")
        if q.type != "attachments":  # files already sent are kept; Skip just moves on
            block_answers.pop(q.id, None)
        _advance(form, state)
        return _done(state)
    if p.action == "keep":
        if block_answers.get(q.id) is None:
            return _fail(state, "required")
        _advance(form, state)
        return _done(state)
    if p.action == "same" and q.same_as_first:
        first = state.answers.get(f"{form.repeat_group.id}.0", {}).get(q.id)
        if first is None or state.pos.block == f"{form.repeat_group.id}.0":
            return _fail(state, "use_buttons")
        _store(state, q, first, now, form)
        _advance(form, state)
        return _done(state)
    if q.type == "date" and q.year_buttons and p.action == "year":
        if not (p.arg.isdigit() and len(p.arg) == 4 and _MIN_YEAR <= int(p.arg) <= now.year):
            return _fail(state, "use_buttons")
        _store(state, q, p.arg, now, form)
        _advance(form, state)
        return _done(state, "year_only")
    if q.type == "date" and q.year_buttons and p.action == "earlier":
        return _fail(state, "type_year")
    if q.type == "single" and p.action == "opt":
        if q.option(p.arg) is None:
            return _fail(state, "use_buttons")
        if q.must_be is not None and p.arg != q.must_be:
            _store(state, q, p.arg, now)
            return _done(state, "declined")
        _store(state, q, p.arg, now, form)
        _advance(form, state)
        return _done(state)
    if q.type == "multi" and p.action == "tog":
        if q.option(p.arg) is None:
            return _fail(state, "use_buttons")
        chosen = set(state.pending or ())
        chosen ^= {p.arg}
        state.pending = [o.code for o in q.options if o.code in chosen]
        return _done(state, "toggled")
    if q.type == "multi" and p.action == "done":
        if not state.pending:
            if q.required:
                return _fail(state, "choose_one")
            block_answers.pop(q.id, None)
        else:
            _store(state, q, list(state.pending), now)
        _advance(form, state)
        return _done(state)
    if q.type == "date" and p.action == "unknown":
        _store(state, q, "unknown", now)
        _advance(form, state)
        return _done(state)
    if q.type == "attachments" and p.action == "done":
        if q.required and not block_answers.get(q.id):
            return _fail(state, "send_files")
        _advance(form, state)
        return _done(state)
    return _fail(state, "use_buttons")


def _review_press(form: Form, state: DraftState, p: Press) -> Outcome:
    if p.action == "submit":
        gap = missing_required(form, state)
        if gap is not None:
            state.editing = True
            state.history.append(state.pos)
            _enter(form, state, gap)
            return Outcome(state=_bump(state), error="required")
        return _done(state, "submit")
    if p.action == "edit":
        block, _, qid = p.arg.partition(":")
        if block not in state.answers:
            return _fail(state, "use_buttons")
        group = _group(form, block)
        q = group.by_id.get(qid)
        if q is None or not relevant(q, state.answers[block]) or group.id == "consent":
            return _fail(state, "use_buttons")
        state.editing = True
        state.history.append(state.pos)
        _enter(form, state, Position("question", block, qid))
        return _done(state)
    if p.action == "remove_person":
        blocks = state.person_blocks()
        if p.arg not in blocks or len(blocks) < 2:
            return _fail(state, "use_buttons")
        kept = [state.answers.pop(b) for b in blocks if b != p.arg]
        for b in blocks:
            state.answers.pop(b, None)
        for i, a in enumerate(kept):
            state.answers[f"{form.repeat_group.id}.{i}"] = a
        state.history = [h for h in state.history if "." not in h.block]
        return _done(state)
    if p.action == "add":
        state.pos = Position("add_person")
        return _press(form, state, p, datetime.min)
    return _fail(state, "use_buttons_review")


def _bump(state: DraftState) -> DraftState:
    state.seq += 1
    return state


def _answer(form: Form, state: DraftState, inp: Input, now: datetime,
            max_file_mb: int = MAX_FILE_MB) -> Outcome:
    q = _current_question(form, state)
    block_answers = state.answers.setdefault(state.pos.block, {})
    if isinstance(inp, Media) and (inp.size or 0) > max_file_mb * 1024 * 1024:
        return _fail(state, "file_too_big", limit=max_file_mb)
    if isinstance(inp, Media) and q.type == "attachments":
        files = list(block_answers.get(q.id) or [])
        if len(files) >= MAX_FILES_PER_PERSON:
            return _fail(state, "too_many_files", limit=MAX_FILES_PER_PERSON)
        files.append(inp.as_answer())
        _store(state, q, files, now)
        return _done(state, "file_added")
    voice = isinstance(inp, Media) and inp.kind in ("voice", "audio", "video_note")
    if voice and q.type == "text" and not q.typed_only:
        _store(state, q, {"voice": inp.as_answer()}, now)  # type: ignore[union-attr]
        _advance(form, state)
        return _done(state)
    if voice and q.typed_only:
        return _fail(state, "name_voice")
    files_to = q.media_to or _files_question(form, state.pos.block)
    if isinstance(inp, Media) and files_to is not None and q.type != "attachments":
        # A passport photographed at the name question is kept with the person's files.
        files = list(block_answers.get(files_to) or [])
        if len(files) >= MAX_FILES_PER_PERSON:
            return _fail(state, "too_many_files", limit=MAX_FILES_PER_PERSON)
        files.append(inp.as_answer())
        block_answers[files_to] = files
        return _done(state, "media_saved")
    if isinstance(inp, Contact) and q.type == "phone":
        inp = Text(inp.phone)
    if not isinstance(inp, Text):
        return _fail(state, _wrong_kind(q))
    return _typed(form, state, q, inp.text, now)


def _files_question(form: Form, block: str) -> str | None:
    """The attachments question of a part, where files sent elsewhere in it are kept."""
    return next((q.id for q in _group(form, block).questions if q.type == "attachments"), None)


def _wrong_kind(q: Question) -> str:
    if q.type in ("single", "multi"):
        return "use_buttons"
    if q.type == "attachments":
        return "send_files"
    if q.type == "text":
        return "type_text_or_voice"
    return "type_text"


def _typed(form: Form, state: DraftState, q: Question, text: str, now: datetime) -> Outcome:
    if q.type in ("single", "multi"):
        return _fail(state, "use_buttons")
    if q.type == "attachments":
        return _fail(state, "send_files")
    checked = ans.check_typed(q, text, now.date())
    if isinstance(checked, ans.Invalid):
        return _fail(state, checked.code, **checked.args)
    if q.type == "chinese_id":
        state.pending_id = str(checked.value)
        state.pos = replace(state.pos, step="confirm_id")
        return _done(state)
    _store(state, q, checked.value, now, form)
    _advance(form, state)
    year_only = q.year_buttons and isinstance(checked.value, str) and \
        checked.value.rstrip("~").isdigit()
    return _done(state, "typed_year" if year_only else "typed")


# --------------------------------------------------------------------------- results


@dataclass(frozen=True, slots=True)
class AnsweredBlock:
    block: str
    group: Group
    person_index: int | None
    items: tuple[tuple[Question, Any], ...]


def answered_blocks(form: Form, state: DraftState) -> list[AnsweredBlock]:
    """Every relevant question of every part with its answer (None when skipped)."""
    out = []
    for block in [g.id for g in form.groups if not g.repeat] + state.person_blocks():
        group = _group(form, block)
        answers = state.answers.get(block, {})
        items = tuple((q, answers.get(q.id)) for q in group.questions if relevant(q, answers))
        person = int(block.split(".")[1]) if "." in block else None
        out.append(AnsweredBlock(block, group, person, items))
    return out
