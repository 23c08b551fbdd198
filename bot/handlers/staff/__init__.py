"""Staff follow-up in Telegram: new cases, case cards, workflow, questions, export, staff list.

Every command and button here sits behind the gate in access.py (registered together through
`register`), so no handler checks roles itself. Staff work in their private chat with the bot
and in the staff chat (BOT_STAFF_CHAT_ID); what they see is in their own language (the one they
chose in the bot, English by default), with everything relatives wrote shown exactly as written.
"""

from __future__ import annotations

from typing import cast

from telegram import Update
from telegram.ext import ContextTypes, MessageHandler, filters

from bot.handlers import access
from bot.handlers.access import StaffCommand
from bot.handlers.casework import find_cmd
from bot.handlers.common import Deps, deps
from bot.handlers.staff import alerts
from bot.handlers.staff.base import STAFF_CHAT_LANGUAGE, staff_language
from bot.handlers.staff.cards import (
    SHOW_NAMES_IN_ANNOUNCEMENTS,
    alert_text,
    announce_case,
    card_keyboard,
    case_cmd,
    on_button,
    resend_file,
    send_card,
)
from bot.handlers.staff.export import MAX_UPLOAD, export_cmd
from bot.handlers.staff.lists import LIST_NAMES, PAGE_SIZE, cases_cmd
from bot.handlers.staff.members import on_pick, role_usages, staff_cmd, staffhelp_cmd
from bot.handlers.staff.questions import (
    ANSWER_KINDS,
    FOLLOW_UP,
    MAX_QUESTION,
    QUESTION_KIND,
    QUESTION_WAITS,
    _question_outcome,
    answer_content,
    ask_cmd,
    on_relative_message,
    post_answer,
)
from bot.handlers.staff.workflow import (
    NOTIFY_STATUSES,
    assign_cmd,
    change_status,
    note_cmd,
    setstatus_cmd,
    status_notice,
    take,
)
from bot.i18n import N_
from bot.services import takeback
from bot.services.outbox import register_outbox_hook

__all__ = [
    "ANSWER_KINDS", "COMMANDS", "FOLLOW_UP", "LIST_NAMES", "MAX_QUESTION", "MAX_UPLOAD",
    "NOTIFY_STATUSES", "PAGE_SIZE", "QUESTION_KIND", "QUESTION_WAITS",
    "SHOW_NAMES_IN_ANNOUNCEMENTS", "STAFF_CHAT_LANGUAGE", "announce_case", "answer_content",
    "card_keyboard", "change_status", "on_button", "on_relative_message", "post_answer",
    "register", "resend_file", "role_usages", "send_card", "staff_language", "status_notice",
    "take",
]

# ----------------------------------------------------------------------------- wiring


COMMANDS: dict[str, StaffCommand] = {
    "case": StaffCommand("staff", case_cmd, N_(
        "/case NUMBER: the case with every answer, its files and its history")),
    "cases": StaffCommand("staff", cases_cmd, N_(
        "/cases [open|all|mine|STATUS] [PAGE]: list cases")),
    "assign": StaffCommand("staff", assign_cmd, N_(
        "/assign NUMBER USER_ID|me|none: give a case to a staff member")),
    "setstatus": StaffCommand("staff", setstatus_cmd, N_(
        "/setstatus NUMBER [PERSON] STATUS [QUESTION]: every missing person or one; new, "
        "in_review, needs_info (with the question to send), verified, referred, located or "
        "closed")),
    "note": StaffCommand("staff", note_cmd, N_(
        "/note NUMBER TEXT: an internal note (relatives never see notes)")),
    "ask": StaffCommand("staff", ask_cmd, N_(
        "/ask NUMBER TEXT: send the relative a question; the answer comes back here")),
    "export": StaffCommand("staff", export_cmd, N_(
        "/export [full] [STATUS] [LANGUAGE] [SINCE] [UNTIL]: an XLSX without names, sent to "
        "your private chat; full: every answer (admins, after a warning)")),
    "staffhelp": StaffCommand("staff", staffhelp_cmd, N_("/staffhelp: these commands")),
    "find": StaffCommand("staff", find_cmd, N_(
        "/find TEXT: cases by a name in any script, a Chinese ID (or its last 6 characters), a "
        "phone number or a case number")),
    "staff": StaffCommand("admin", staff_cmd, N_(
        "/staff list | add [USER_ID] | remove USER_ID: who is staff (admins only); add alone "
        "opens Telegram's list of people, or forward a message from the person")),
}


async def _staff_reply(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A staff member's reply to a prompt of ours; any other reply is the relative's."""
    from bot.handlers import relative
    from bot.handlers.casework import on_prompt_reply

    user = update.effective_user
    if user is not None and access.has_role(await access.role_of(deps(context), user.id),
                                            "staff") and await on_prompt_reply(update, context):
        return
    await relative.on_message(update, context)


async def _build_index(context: ContextTypes.DEFAULT_TYPE) -> None:
    from bot.handlers.casework import live_index

    live_index(context)


def deps_of(app: access.AnyApp) -> Deps:
    return cast(Deps, app.bot_data["deps"])


def register(app: access.AnyApp) -> None:
    """The gate, the staff handlers behind it, and the hooks the relative's journey calls."""
    access.register(app, COMMANDS, on_button)
    alerts.install(app, alert_text)
    takeback.install(app)
    app.bot_data["on_case_submitted"] = announce_case
    app.bot_data["relative_message_hook"] = on_relative_message
    # A staff member's reply to the bot's prompt (the needs_info question, a Reply to a
    # relative): ahead of the relative's journey, which gets every other reply.
    app.add_handler(MessageHandler(filters.ChatType.PRIVATE & filters.REPLY
                                   & filters.UpdateType.MESSAGE & ~filters.COMMAND,
                                   _staff_reply))
    register_outbox_hook(app, QUESTION_KIND, _question_outcome)
    if app.job_queue is not None:  # the person index is built in memory at start-up
        app.job_queue.run_once(_build_index, 0, name="person-index")
    d = deps_of(app)
    if d.settings.admin_ids:  # /staff add: a picked user or a forwarded message (admins only)
        app.add_handler(MessageHandler(
            filters.ChatType.PRIVATE & filters.User(user_id=d.settings.admin_ids)
            & (filters.StatusUpdate.USERS_SHARED | filters.FORWARDED), on_pick))
