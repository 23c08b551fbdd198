"""The questionnaire engine's data: the draft state (and its JSON), the inputs a relative can
send, and what applying one returns or shows.

Pure and deterministic, like the rest of ``bot.form``; ``bot.form.engine`` re-exports every name.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import orjson

from bot.form import answers as ans
from bot.form.model import Question

StepKind = Literal["question", "confirm_id", "add_person", "review"]


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
