"""The pure questionnaire engine: form + draft state + one input -> new state and what to ask.

No Telegram, no database, no clock: the caller passes `now`, loads and saves the state, and
turns error codes and views into translated messages. Everything here is deterministic, which
is what lets the property tests walk thousands of journeys in seconds.

The engine is split by idea: ``bot.form.state`` holds the draft state, inputs and outcomes,
``bot.form.navigation`` where the journey goes and what it shows, and this module applies one
input. Every public name of the three is importable from here (``engine.apply``,
``engine.view``, ``engine.DraftState``, ``engine.Press``, ...).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any

from bot.form import answers as ans
from bot.form.model import Form, Question
from bot.form.navigation import (
    AnsweredBlock,
    advance,
    answered_blocks,
    current_question,
    enter,
    first_from,
    group_of,
    is_required,
    missing_required,
    relevant,
    start,
    store,
    upgrade,
    view,
)
from bot.form.state import (
    Contact,
    DraftState,
    Input,
    Media,
    Outcome,
    Position,
    Press,
    StepKind,
    Text,
    Unsupported,
    View,
)

__all__ = [
    "EVENT_YEARS",
    "MAX_FILES_PER_PERSON",
    "MAX_FILE_MB",
    "MAX_PERSONS",
    "AnsweredBlock",
    "Contact",
    "DraftState",
    "Input",
    "Media",
    "Outcome",
    "Position",
    "Press",
    "StepKind",
    "Text",
    "Unsupported",
    "View",
    "answered_blocks",
    "apply",
    "is_required",
    "missing_required",
    "relevant",
    "start",
    "upgrade",
    "view",
]

MAX_PERSONS = 20
MAX_FILES_PER_PERSON = 20
MAX_FILE_MB = 20  # the Bot API lets a bot download at most 20 MB per file
_MIN_YEAR = 1900
#: The years offered as buttons for recent events (the mass detentions began in 2017).
EVENT_YEARS = tuple(str(y) for y in range(2016, 2023))



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
        enter(form, state, Position("review"))
        return _done(state)
    if not state.history:
        return _fail(state, "no_back")
    prev = state.history.pop()
    enter(form, state, prev)
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
            pos = first_from(form, state, block, 0)
            assert pos is not None
            enter(form, state, pos)
            return _done(state)
        if p.action == "finish":
            state.history.append(state.pos)
            enter(form, state, Position("review"))
            return _done(state)
        return _fail(state, "use_buttons")
    if step == "review":
        return _review_press(form, state, p)
    if step == "confirm_id":
        q = current_question(form, state)
        if p.action == "id_yes" and state.pending_id is not None:
            store(state, q, state.pending_id, now)
            advance(form, state)
            return _done(state)
        if p.action == "id_no":
            enter(form, state, replace(state.pos, step="question"))
            return _done(state)
        return _fail(state, "use_buttons")
    return _question_press(form, state, p, now)


def _question_press(form: Form, state: DraftState, p: Press, now: datetime) -> Outcome:
    q = current_question(form, state)
    block_answers = state.answers.setdefault(state.pos.block, {})
    if p.action == "skip":
        if is_required(q, state):
            return _fail(state, "required")
        if q.type != "attachments":  # files already sent are kept; Skip just moves on
            block_answers.pop(q.id, None)
        advance(form, state)
        return _done(state)
    if p.action == "keep":
        if block_answers.get(q.id) is None:
            return _fail(state, "required")
        advance(form, state)
        return _done(state)
    if p.action == "same" and q.same_as_first:
        first = state.answers.get(f"{form.repeat_group.id}.0", {}).get(q.id)
        if first is None or state.pos.block == f"{form.repeat_group.id}.0":
            return _fail(state, "use_buttons")
        store(state, q, first, now, form)
        advance(form, state)
        return _done(state)
    if q.type == "date" and q.year_buttons and p.action == "year":
        if not (p.arg.isdigit() and len(p.arg) == 4 and _MIN_YEAR <= int(p.arg) <= now.year):
            return _fail(state, "use_buttons")
        store(state, q, p.arg, now, form)
        advance(form, state)
        return _done(state, "year_only")
    if q.type == "date" and q.year_buttons and p.action == "earlier":
        return _fail(state, "type_year")
    if q.type == "single" and p.action == "opt":
        if q.option(p.arg) is None:
            return _fail(state, "use_buttons")
        if q.must_be is not None and p.arg != q.must_be:
            store(state, q, p.arg, now)
            return _done(state, "declined")
        store(state, q, p.arg, now, form)
        advance(form, state)
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
            store(state, q, list(state.pending), now)
        advance(form, state)
        return _done(state)
    if q.type == "date" and p.action == "unknown":
        store(state, q, "unknown", now)
        advance(form, state)
        return _done(state)
    if q.type == "attachments" and p.action == "done":
        if q.required and not block_answers.get(q.id):
            return _fail(state, "send_files")
        advance(form, state)
        return _done(state)
    return _fail(state, "use_buttons")


def _review_press(form: Form, state: DraftState, p: Press) -> Outcome:
    if p.action == "submit":
        gap = missing_required(form, state)
        if gap is not None:
            state.editing = True
            state.history.append(state.pos)
            enter(form, state, gap)
            return Outcome(state=_bump(state), error="required")
        return _done(state, "submit")
    if p.action == "edit":
        block, _, qid = p.arg.partition(":")
        if block not in state.answers:
            return _fail(state, "use_buttons")
        group = group_of(form, block)
        q = group.by_id.get(qid)
        if q is None or not relevant(q, state.answers[block]) or group.id == "consent":
            return _fail(state, "use_buttons")
        state.editing = True
        state.history.append(state.pos)
        enter(form, state, Position("question", block, qid))
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
    q = current_question(form, state)
    block_answers = state.answers.setdefault(state.pos.block, {})
    if isinstance(inp, Media) and (inp.size or 0) > max_file_mb * 1024 * 1024:
        return _fail(state, "file_too_big", limit=max_file_mb)
    if isinstance(inp, Media) and q.type == "attachments":
        files = list(block_answers.get(q.id) or [])
        if len(files) >= MAX_FILES_PER_PERSON:
            return _fail(state, "too_many_files", limit=MAX_FILES_PER_PERSON)
        files.append(inp.as_answer())
        store(state, q, files, now)
        return _done(state, "file_added")
    voice = isinstance(inp, Media) and inp.kind in ("voice", "audio", "video_note")
    if voice and q.type == "text" and not q.typed_only:
        store(state, q, {"voice": inp.as_answer()}, now)  # type: ignore[union-attr]
        advance(form, state)
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
    return next((q.id for q in group_of(form, block).questions if q.type == "attachments"), None)


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
    store(state, q, checked.value, now, form)
    advance(form, state)
    year_only = q.year_buttons and isinstance(checked.value, str) and \
        checked.value.rstrip("~").isdigit()
    return _done(state, "typed_year" if year_only else "typed")
