"""The pure questionnaire engine: journeys, navigation, conditions, random-walk properties."""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.form import engine
from bot.form.engine import DraftState, Media, Press, Text, Unsupported
from bot.form.model import FormError, load_form, parse_form
from bot.form.validators import chinese_id_check_char

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
FORM = load_form()
GATES = ("reporter_more", "more_details")  # "Add more details?": yes, to reach every question


def valid_id(prefix: str = "654002", birth: str = "19750312", seq: str = "001") -> str:
    first17 = prefix + birth + seq
    return first17 + chinese_id_check_char(first17)


def step(state: DraftState, inp: engine.Input) -> engine.Outcome:
    return engine.apply(FORM, state, inp, NOW)


def press(state: DraftState, action: str, arg: str = "") -> DraftState:
    out = step(state, Press(state.seq, action, arg))
    assert out.error is None, (state.pos, action, arg, out.error)
    return out.state


def typed(state: DraftState, text: str) -> DraftState:
    out = step(state, Text(text))
    assert out.error is None, (state.pos, text, out.error)
    return out.state


def valid_input(state: DraftState) -> engine.Input:
    """Some valid answer for whatever the current step is."""
    v = engine.view(FORM, state)
    if v.step == "add_person":
        return Press(v.seq, "finish")
    if v.step == "confirm_id":
        return Press(v.seq, "id_yes")
    if v.step == "review":
        return Press(v.seq, "submit")
    q = v.question
    assert q is not None
    if q.type == "single":
        code = q.must_be or ("yes" if q.id in GATES else q.options[0].code)
        return Press(v.seq, "opt", code)
    if q.type == "multi":
        if v.pending:
            return Press(v.seq, "done")
        return Press(v.seq, "tog", q.options[0].code)
    return Text({
        "text": "Answer — Жауап — 回答",
        "date": "03.2018",
        "phone": "+7 701 123 45 67",
        "chinese_id": valid_id(),
        "attachments": "",
    }[q.type]) if q.type != "attachments" else Press(v.seq, "done")


def run_to_review(state: DraftState, limit: int = 200) -> DraftState:
    for _ in range(limit):
        if state.pos.step == "review":
            return state
        out = step(state, valid_input(state))
        assert out.error is None, (state.pos, out.error)
        state = out.state
    raise AssertionError("did not reach the review")


def test_full_journey_reaches_review_and_submits() -> None:
    state = run_to_review(engine.start(FORM))
    assert state.answers["consent"]["consent_store"] == "agree"
    assert state.answered_at["consent_store"].startswith("2026-11-26")
    assert len(state.person_blocks()) == 1
    person = state.answers["person.0"]
    assert person["full_name"] == "Answer — Жауап — 回答"
    assert person["birth_date"] == "2018-03"
    assert person["chinese_id"] == valid_id()
    out = step(state, Press(state.seq, "submit"))
    assert out.event == "submit" and out.error is None


def test_declining_consent_stops() -> None:
    state = engine.start(FORM)
    out = step(state, Press(state.seq, "opt", "decline"))
    assert out.event == "declined"


def walk_to(state: DraftState, qid: str, limit: int = 200) -> DraftState:
    """Valid answers until question `qid` is current (or the add-person prompt)."""
    for _ in range(limit):
        if state.pos.qid == qid or state.pos.step == "add_person":
            return state
        state = step(state, valid_input(state)).state
    raise AssertionError(f"never reached {qid}")


def visited(state: DraftState, codes: tuple[str, ...]) -> set[str]:
    state = walk_to(state, "what_happened")
    for code in codes:
        state = press(state, "tog", code)
    state = press(state, "done")
    seen = set()
    while state.pos.step != "add_person":
        seen.add(state.pos.qid)
        state = step(state, valid_input(state)).state
    return seen


def test_condition_hides_place_held_unless_detained() -> None:
    assert "place_held" not in visited(engine.start(FORM), ("no_contact",))
    assert "place_held" in visited(engine.start(FORM), ("camp",))


def test_back_returns_and_keeps_answers() -> None:
    state = walk_to(engine.start(FORM), "reporter_country")
    state = press(state, "back")
    assert state.pos.qid == "reporter_name"
    assert engine.view(FORM, state).answer == "Answer — Жауап — 回答"
    state = press(state, "keep")
    assert state.pos.qid == "reporter_country"


def test_gender_follows_from_the_relation_and_is_asked_otherwise() -> None:
    state = press(walk_to(engine.start(FORM), "relation"), "opt", "sister")
    assert "gender" not in visited(state, ("camp",))
    state = press(walk_to(engine.start(FORM), "relation"), "opt", "sister")
    state = walk_to(state, "what_happened")
    assert state.answers["person.0"]["gender"] == "female"
    state = press(walk_to(engine.start(FORM), "relation"), "opt", "grandparent")
    assert walk_to(state, "gender").pos.qid == "gender"


def test_same_as_person_1_and_year_buttons() -> None:
    state = walk_to(engine.start(FORM), "prefecture")
    state = press(state, "opt", "altay")
    state = walk_to(state, "happened_date")
    out = step(state, Press(state.seq, "year", "2018"))
    assert out.event == "year_only" and out.state.answers["person.0"]["happened_date"] == "2018"
    assert step(state, Press(state.seq, "earlier")).error == "type_year"
    state = walk_to(out.state, "__none__")
    state = press(state, "add")
    state = walk_to(state, "prefecture")
    assert engine.view(FORM, state).same_as == "altay"
    state = press(state, "same")
    assert state.answers["person.1"]["prefecture"] == "altay"


def test_reporter_name_required_when_shared_with_the_un() -> None:
    state = walk_to(engine.start(FORM), "reporter_name")
    assert state.answers["consent"]["consent_share"] == "yes"
    assert step(state, Press(state.seq, "skip")).error == "required"
    state = walk_to(engine.start(FORM), "consent_share")
    state = press(state, "opt", "no")
    state = walk_to(state, "reporter_name")
    assert step(state, Press(state.seq, "skip")).error is None


def test_stale_press_is_not_applied() -> None:
    state = engine.start(FORM)
    old_seq = state.seq
    state = press(state, "opt", "agree")
    out = step(state, Press(old_seq, "opt", "yes"))
    assert out.event == "stale" and not out.changed
    assert "consent_share" not in out.state.answers["consent"]


def test_two_persons_edit_and_remove() -> None:
    state = engine.start(FORM)
    while state.pos.step != "add_person":
        state = step(state, valid_input(state)).state
    state = press(state, "add")
    assert state.pos.block == "person.1"
    while state.pos.qid != "full_name":
        state = step(state, valid_input(state)).state
    state = typed(state, "Second <b>person</b> & co")
    state = run_to_review(state)
    assert len(state.person_blocks()) == 2
    assert state.answers["person.1"]["full_name"] == "Second <b>person</b> & co"
    state = press(state, "edit", "person.0:full_name")
    assert state.editing and state.pos.qid == "full_name"
    state = typed(state, "Corrected Name")
    assert state.pos.step == "review"
    assert state.answers["person.0"]["full_name"] == "Corrected Name"
    state = press(state, "remove_person", "person.0")
    assert state.person_blocks() == ["person.0"]
    assert state.answers["person.0"]["full_name"] == "Second <b>person</b> & co"


def test_wrong_kinds_of_input_give_errors_and_change_nothing() -> None:
    state = engine.start(FORM)
    for inp, code in [(Text("yes"), "use_buttons"), (Unsupported("sticker"), "use_buttons")]:
        out = step(state, inp)
        assert out.error == code and not out.changed
    while state.pos.qid != "full_name":
        state = step(state, valid_input(state)).state
    out = step(state, Media("photo", "F1"))  # a passport at the name: kept with the files
    assert out.event == "media_saved" and out.state.pos.qid == "full_name"
    assert out.state.answers["person.0"]["attachments"] == [
        {"kind": "photo", "file_id": "F1", "file_unique_id": ""}]
    out = step(state, Text("x" * 5000))
    assert out.error == "too_long" and out.error_args["limit"] == 300
    out = step(state, Media("voice", "V1", duration=12))  # a name is typed, not spoken
    assert out.error == "name_voice" and not out.changed


def test_date_errors() -> None:
    state = engine.start(FORM)
    while state.pos.qid != "birth_date":
        state = step(state, valid_input(state)).state
    assert step(state, Text("tomorrow-ish")).error == "date_format"
    assert step(state, Text("31.02.2018")).error == "date_invalid"
    assert step(state, Text("2099")).error == "date_future"
    assert typed(state, "12.03.1975").answers["person.0"]["birth_date"] == "1975-03-12"


def test_chinese_id_confirmation_and_mismatch() -> None:
    state = press(walk_to(engine.start(FORM), "relation"), "opt", "other_relative")
    state = press(walk_to(state, "gender"), "opt", "female")
    state = typed(walk_to(state, "birth_date"), "1960")
    state = walk_to(state, "chinese_id")
    bad = valid_id()[:-1] + ("0" if valid_id()[-1] != "0" else "1")
    assert step(state, Text(bad)).error == "id_checksum"
    state = typed(state, valid_id(prefix="654002", birth="19750312", seq="001"))
    v = engine.view(FORM, state)
    assert v.step == "confirm_id" and v.id_info is not None
    assert set(v.id_info.mismatches) >= {"birth_date", "gender"}  # 001: odd = male
    state = press(state, "id_no")
    assert state.pos.step == "question" and "chinese_id" not in state.answers["person.0"]
    state = typed(state, valid_id())
    state = press(state, "id_yes")
    assert state.answers["person.0"]["chinese_id"] == valid_id()


def test_attachments_collect_until_done() -> None:
    state = engine.start(FORM)
    while state.pos.qid != "story":
        state = step(state, valid_input(state)).state
    out = step(state, Media("photo", "P1", size=1000))
    assert out.event == "media_saved" and out.state.pos.qid == "story"
    state = typed(out.state, "Story\nwith lines")
    assert state.pos.qid == "attachments"
    for i in range(3):
        out = step(state, Media("document", f"D{i}", name="a.pdf"))
        assert out.event == "file_added"
        state = out.state
    assert step(state, Text("hi")).error == "send_files"
    big = step(state, Media("video", "V9", size=50 * 1024 * 1024))
    assert big.error == "file_too_big" and not big.changed
    state = press(state, "done")
    assert [f["file_id"] for f in state.answers["person.0"]["attachments"]] == [
        "P1", "D0", "D1", "D2"]


def test_form_file_checks() -> None:
    good = {"version": 1, "notice_version": 1, "groups": [
        {"id": "p", "title": "P", "repeat": True, "questions": [
            {"id": "a", "type": "single", "prompt": "A?", "options": [{"code": "x", "label": "X"}]},
            {"id": "b", "type": "text", "prompt": "B?", "when": {"a": ["x"]}}]}]}
    assert parse_form(good).groups[0].questions[1].when
    bad = {**good, "groups": [{**good["groups"][0], "questions": [  # type: ignore[dict-item]
        {"id": "b", "type": "text", "prompt": "B?", "when": {"a": ["x"]}}]}]}
    with pytest.raises(FormError):
        parse_form(bad)


# ----------------------------------------------------------------------------- properties

inputs = st.one_of(
    st.builds(Text, st.text(max_size=60)),
    st.builds(Text, st.sampled_from(["1975", "03.2018", "unknown", "+77011234567", valid_id(),
                                     "12345", "", " "])),
    st.builds(Media, st.sampled_from(["photo", "voice", "document", "video"]),
              st.text(min_size=1, max_size=8)),
    st.builds(Unsupported, st.sampled_from(["sticker", "location", "poll"])),
    st.tuples(st.sampled_from(["opt", "tog", "done", "skip", "back", "keep", "unknown", "add",
                               "finish", "submit", "edit", "id_yes", "id_no", "remove_person",
                               "bogus"]),
              st.text(max_size=20), st.booleans()),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(inputs, st.just("valid")), max_size=120))
def test_random_walks_never_break_the_draft(actions: list[object]) -> None:
    state = engine.start(FORM)
    for action in actions:
        if action == "valid":
            inp: engine.Input = valid_input(state)
        elif isinstance(action, tuple):
            name, arg, fresh = action
            if name == "opt" and state.pos.step == "question":
                q = engine.view(FORM, state).question
                if q is not None and q.options:
                    arg = q.options[len(arg) % len(q.options)].code
            inp = Press(state.seq if fresh else state.seq - 1, name, arg)
        else:
            inp = action  # type: ignore[assignment]
        before = state.to_json()
        out = step(state, inp)
        assert state.to_json() == before, "apply() must not modify its input"
        if not out.changed:
            assert out.state.to_json() == before
        else:
            assert out.state.seq > state.seq
        if out.event == "declined":
            return
        state = out.state
        assert DraftState.from_json(state.to_json()) == state
        assert state.to_json() == json.dumps(asdict(state), ensure_ascii=False,
                                             separators=(",", ":"))
        v = engine.view(FORM, state)  # every reachable state can be shown
        if v.question is not None:
            assert engine.relevant(v.question, state.answers.get(v.block, {}))
    # Whatever happened, a relative can still finish.
    state = run_to_review(state, limit=400)
    assert engine.missing_required(FORM, state) is None
