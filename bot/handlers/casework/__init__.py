"""Staff case work in Telegram: a status per missing person with an undo window, the needs_info
question, consent enforced, /find, possible duplicates, and relatives' messages to the volunteers.

Notices to the relative name whom they concern ("your brother Nurlan"), are held in the outbox
for UNDO_SECONDS (BOT_STATUS_UNDO_SECONDS) so the staff member can undo a change before anything
is sent, and are never sent for a move backwards in the workflow.

By idea: base (shared), statuses (per-person statuses, notices, undo, consent), conversation
(questions, replies, relatives' messages), find, duplicates, card, stats.
"""

from bot.handlers.casework.base import (
    QUESTION_KIND,
    build_index,
    forget_cases,
    live_index,
)
from bot.handlers.casework.card import (
    card_buttons,
    card_top,
    on_button,
    person_chooser,
    set_from_button,
)
from bot.handlers.casework.conversation import (
    ask_for_question,
    ask_reply,
    on_prompt_reply,
    post_relative_message,
    prompt_reply,
    send_question,
)
from bot.handlers.casework.duplicates import check_new_case, decide_link, link_line, link_lines
from bot.handlers.casework.find import find_cmd, mistake_text
from bot.handlers.casework.stats import PersonStats, person_stats
from bot.handlers.casework.statuses import (
    apply_status,
    consent_refusal,
    notice_text,
    person_lines,
    persons_label,
    relative_language,
    told,
    undo_change,
    whom,
)

__all__ = [
    "QUESTION_KIND", "PersonStats", "apply_status", "ask_for_question", "ask_reply",
    "build_index", "card_buttons", "card_top", "check_new_case", "consent_refusal",
    "decide_link", "find_cmd", "forget_cases", "link_line", "link_lines", "live_index",
    "mistake_text", "notice_text", "on_button", "on_prompt_reply", "person_chooser",
    "person_lines", "person_stats", "persons_label", "post_relative_message", "prompt_reply",
    "relative_language", "send_question", "set_from_button", "told", "undo_change", "whom",
]
