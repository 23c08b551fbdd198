"""What the case-work handlers share: repositories, the clock, the person index."""

from __future__ import annotations

import logging

from telegram.ext import ContextTypes

from bot.casework.live import LiveIndex
from bot.context import bot_data
from bot.handlers.common import Deps, deps
from bot.storage.casework import CaseworkRepository
from bot.storage.staff import Workflow

log = logging.getLogger(__name__)


QUESTION_KIND = "staff_question"  # the outbox kind whose hook records a question's message


def _repo(d: Deps) -> CaseworkRepository:
    return CaseworkRepository(d.db, d.keys.seal_draft, d.keys.unseal_draft)


def _wf(d: Deps) -> Workflow:
    return Workflow(d.db, d.keys.seal, d.keys.unseal)


def _now(d: Deps) -> str:
    return d.now().isoformat(timespec="seconds")


def live_index(context: ContextTypes.DEFAULT_TYPE) -> LiveIndex:
    """The person index of this bot, started on first use (see bot/casework/live.py)."""
    app = context.application
    data = bot_data(app)
    index = data.person_index
    if index is None:
        d = deps(context)
        index = LiveIndex(d.db, d.keys.unseal, d.keys.offline)
        data.person_index = index
        index.start()
    return index


def forget_cases(context: ContextTypes.DEFAULT_TYPE, case_ids: list[int]) -> None:
    """Erased cases leave the in-memory index at once (nothing of them may be found)."""
    index = bot_data(context.application).person_index
    if index is not None:
        for case_id in case_ids:
            index.remove_case(case_id)



async def build_index(context: ContextTypes.DEFAULT_TYPE) -> None:
    """The start-up job that builds the person index (without waiting for it)."""
    live_index(context)
