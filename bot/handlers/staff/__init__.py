"""Staff follow-up in Telegram: new cases, case cards, workflow, questions, export, staff list.

Every command and button here sits behind the gate in access.py (bot/app.py's handler table
puts it in front of them), so no handler checks roles itself. Staff work in their private chat
with the bot and in the staff chat (BOT_STAFF_CHAT_ID); case content (cards, answers, files,
exports) goes only to private chats, the staff chat gets non-identifying notices. What staff
see is in their own language (the one they chose in the bot, English by default), with
everything relatives wrote shown exactly as written, as quotes.
"""

from __future__ import annotations

from bot.handlers.access import StaffCommand
from bot.handlers.casework import find_cmd
from bot.handlers.staff import alerts
from bot.handlers.staff.alerts import SHOW_NAMES_IN_ANNOUNCEMENTS, alert_text
from bot.handlers.staff.base import STAFF_CHAT_LANGUAGE, staff_language
from bot.handlers.staff.cards import (
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
    FOLLOW_UP,
    MAX_QUESTION,
    QUESTION_KIND,
    QUESTION_WAITS,
    answer_content,
    ask_cmd,
    on_relative_message,
    post_answer,
    question_outcome,
)
from bot.handlers.staff.workflow import (
    NOTIFY_STATUSES,
    assign_cmd,
    change_status,
    note_cmd,
    setstatus_cmd,
    status_notice,
    take,
    verify_cmd,
)
from bot.i18n import N_

__all__ = [
    "COMMANDS",
    "FOLLOW_UP",
    "LIST_NAMES",
    "MAX_QUESTION",
    "MAX_UPLOAD",
    "NOTIFY_STATUSES",
    "PAGE_SIZE",
    "QUESTION_KIND",
    "QUESTION_WAITS",
    "SHOW_NAMES_IN_ANNOUNCEMENTS",
    "STAFF_CHAT_LANGUAGE",
    "alert_text",
    "alerts",
    "announce_case",
    "answer_content",
    "card_keyboard",
    "change_status",
    "on_button",
    "on_pick",
    "on_relative_message",
    "post_answer",
    "question_outcome",
    "resend_file",
    "role_usages",
    "send_card",
    "staff_language",
    "status_notice",
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
    "verify": StaffCommand("staff", verify_cmd, N_(
        "/verify NUMBER PERSON LEVEL: a missing person's verification level: reported, "
        "corroborated (a second independent source) or documented (an official document or "
        "other evidence)")),
    "note": StaffCommand("staff", note_cmd, N_(
        "/note NUMBER TEXT: an internal note (relatives never see notes)")),
    "ask": StaffCommand("staff", ask_cmd, N_(
        "/ask NUMBER TEXT: send the relative a question; the answer comes back here")),
    "export": StaffCommand("staff", export_cmd, N_(
        "/export [full] [STATUS] [LANGUAGE] [share|publish] [SINCE] [UNTIL]: an XLSX without "
        "names, sent to your private chat; full: every answer (admins, after a warning); "
        "share or publish: only cases whose relatives agreed to it")),
    "staffhelp": StaffCommand("staff", staffhelp_cmd, N_("/staffhelp: these commands")),
    "find": StaffCommand("staff", find_cmd, N_(
        "/find TEXT: cases by a name in any script, a Chinese ID (or its last 6 characters), a "
        "phone number or a case number")),
    "staff": StaffCommand("admin", staff_cmd, N_(
        "/staff list | add [USER_ID or @username] | remove USER_ID or @username: who is staff "
        "(admins only); add alone opens Telegram's list of people, or forward a message from "
        "the person")),
}
