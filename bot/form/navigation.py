"""Where a draft is and where it goes: which questions are relevant and required, the next
question after an answer, what the relative sees now (``view``) and the answered summary.

Pure and deterministic; ``bot.form.engine`` applies inputs with these and re-exports the public
names.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bot.form import answers as ans
from bot.form.model import Form, Group, Question
from bot.form.state import DraftState, Position, View

# --------------------------------------------------------------------------- helpers


def group_of(form: Form, block: str) -> Group:
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


def first_from(form: Form, state: DraftState, block: str, start: int) -> Position | None:
    group = group_of(form, block)
    answers = state.answers.get(block, {})
    for q in group.questions[start:]:
        if not relevant(q, answers):
            continue
        if q.infer and answers.get(q.id) is not None and answers.get(q.id) == q.inferred(answers):
            continue  # follows from an earlier answer (a brother is a man): not asked
        return Position("question", block, q.id)
    return None


def next_position(form: Form, state: DraftState, block: str, qid: str) -> Position:
    """Where the journey goes after `qid` in `block` in a first pass."""
    group = group_of(form, block)
    nxt = first_from(form, state, block, group.index_of(qid) + 1)
    if nxt is not None:
        return nxt
    if group.repeat:
        return Position("add_person")
    gi = form.groups.index(group)
    for later in form.groups[gi + 1 :]:
        target = f"{later.id}.0" if later.repeat else later.id
        state.answers.setdefault(target, {})
        pos = first_from(form, state, target, 0)
        if pos is not None:
            return pos
    return Position("review")


def missing_required(form: Form, state: DraftState) -> Position | None:
    """The first relevant required question without an answer, if any."""
    for block in [g.id for g in form.groups if not g.repeat] + state.person_blocks():
        answers = state.answers.get(block, {})
        for q in group_of(form, block).questions:
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
            if gate is not None and gate in group_of(form, block).by_id:
                answers.setdefault(gate, "yes")
    state.form_version = form.version
    return state


def start(form: Form) -> DraftState:
    first = form.groups[0]
    state = DraftState(form_version=form.version, pos=Position("question", first.id, ""))
    state.answers[first.id] = {}
    pos = first_from(form, state, first.id, 0)
    assert pos is not None, "the first part of the form has no questions"
    state.pos = pos
    return state


def enter(form: Form, state: DraftState, pos: Position) -> None:
    """Set up per-question scratch state when a question becomes current."""
    state.pos = pos
    state.pending = None
    state.pending_id = None
    if pos.step == "question":
        q = group_of(form, pos.block).by_id[pos.qid]
        if q.type == "multi":
            current = state.answers.get(pos.block, {}).get(q.id)
            state.pending = list(current) if isinstance(current, list) else []


def advance(form: Form, state: DraftState) -> None:
    """Move on after the current question was answered, skipped or kept."""
    pos = state.pos
    if state.editing:
        gap = missing_required(form, state)
        target = gap if gap is not None else Position("review")
        state.editing = gap is not None
        state.history.append(pos)
        enter(form, state, target)
        return
    state.history.append(pos)
    enter(form, state, next_position(form, state, pos.block, pos.qid))


def store(state: DraftState, q: Question, value: Any, now: datetime,
           form: Form | None = None) -> None:
    block = state.pos.block
    answers = state.answers.setdefault(block, {})
    answers[q.id] = value
    if block == "consent":
        state.answered_at[q.id] = now.isoformat(timespec="seconds")
    if form is not None:
        for other in group_of(form, block).questions:
            if any(ref == q.id for ref, _ in other.infer):
                inferred = other.inferred(answers)
                if inferred is not None:
                    answers[other.id] = inferred


def current_question(form: Form, state: DraftState) -> Question:
    return group_of(form, state.pos.block).by_id[state.pos.qid]


# --------------------------------------------------------------------------- view


def view(form: Form, state: DraftState) -> View:
    pos = state.pos
    q = current_question(form, state) if pos.step in ("question", "confirm_id") else None
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
        group = group_of(form, block)
        answers = state.answers.get(block, {})
        items = tuple((q, answers.get(q.id)) for q in group.questions if relevant(q, answers))
        person = int(block.split(".")[1]) if "." in block else None
        out.append(AnsweredBlock(block, group, person, items))
    return out
