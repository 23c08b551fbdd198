"""Staff and the evidence vault: what the card shows, verification levels, files from the vault.

Kept apart from staff.py so the card, which another module renders, needs only three calls:
`card_blocks` (the vault's state of every file and each person's verification level),
`card_rows` (a button per person to raise or lower the level) and `send_from_vault` (a file
sent again from the vault when Telegram no longer has it). `/verify NUMBER PERSON LEVEL`
sets a level by command.
"""

from __future__ import annotations

import asyncio
import io
import logging
import time
from typing import Any

from telegram import InlineKeyboardButton, InputFile, Message, Update
from telegram.error import TelegramError
from telegram.ext import ContextTypes

from bot.evidence.intake import wake_vault
from bot.evidence.vault import Custody, read_vault_file, vault_dir
from bot.handlers.access import button_data
from bot.handlers.common import Deps, button, esc
from bot.i18n import N_, Translator
from bot.services.crypto import NoPrivateKey
from bot.storage.evidence import LEVELS, EvidenceRepository, VaultRow, VerificationRepository
from bot.storage.staff import AuditLog, CaseInfo

log = logging.getLogger(__name__)

LEVEL_LABELS = {
    "reported": N_("reported"),
    "corroborated": N_("corroborated"),
    "documented": N_("documented"),
}
REASONS = {
    "too_big": N_("over the download limit"),
    "gone": N_("Telegram no longer has it"),
    "unreachable": N_("Telegram could not be reached for two weeks"),
    "unreadable": N_("its reference could not be read"),
}
UPLOAD_LIMIT = 50 * 1024 * 1024  # what a bot may send to Telegram's cloud


def level_label(t: Translator, level: str) -> str:
    return t._(LEVEL_LABELS[level]) if level in LEVEL_LABELS else level


def _size(n: int) -> str:
    return f"{n / 1_048_576:.1f} MB" if n >= 1_048_576 else f"{max(1, n // 1024)} KB"


def _custody(d: Deps, row: VaultRow) -> Custody | None:
    if row.custody is None:
        return None
    try:
        return Custody.from_bytes(d.keys.unseal(row.custody))
    except (NoPrivateKey, ValueError, TypeError):
        return None


async def card_blocks(d: Deps, t: Translator, case: CaseInfo,
                      files: list[tuple[str, dict[str, Any]]], labels: dict[str, str]
                      ) -> list[str]:
    """The vault's state of every file and each person's verification level."""
    levels = await VerificationRepository(d.db).levels(case.case_id)
    lines = ["<b>" + esc(t._("Verification")) + "</b>"]
    for person in range(1, case.persons_count + 1):
        lines.append(esc(t._("Missing person %(number)s") % {"number": person}) + ": "
                     + esc(level_label(t, levels.get(person, "reported"))))
    rows = await EvidenceRepository(d.db).for_case(case.case_id)
    if rows:
        lines.append("<b>" + esc(t._("Evidence vault")) + "</b>")
        by_unique = {str(m.get("file_unique_id") or m.get("file_id")): ref for ref, m in files}
        for row in rows:
            ref = by_unique.get(row.file_unique_id)
            what = labels.get(ref, "") if ref is not None else ""
            what = what or t._("file %(number)s") % {"number": row.file_row}
            if row.state == "stored":
                custody = _custody(d, row)
                detail = (f"{_size(custody.size)}, SHA-256 {custody.sha256[:16]}…"
                          if custody is not None else t._("sealed"))
                lines.append("🔐 " + esc(what) + ": " + esc(detail))
            elif row.state == "failed":
                reason = t._(REASONS[row.reason]) if row.reason in REASONS else row.reason
                lines.append("⚠️ " + esc(what) + ": " + esc(
                    t._("not in the vault (%(reason)s)") % {"reason": reason or "?"}))
            else:
                lines.append("⏳ " + esc(what) + ": " + esc(t._("being fetched")))
    return ["\n".join(lines)]


async def card_rows(d: Deps, t: Translator, case: CaseInfo
                    ) -> list[list[InlineKeyboardButton]]:
    """One button per person: the next verification level (documented goes back to reported)."""
    if case.status == "withdrawn":
        return []
    levels = await VerificationRepository(d.db).levels(case.case_id)
    rows = []
    for person in range(1, case.persons_count + 1):
        current = levels.get(person, "reported")
        target = LEVELS[(LEVELS.index(current) + 1) % len(LEVELS)]
        label = "🔎 " + t._("Person %(number)s: mark %(level)s") % {
            "number": person, "level": level_label(t, target)}
        rows.append([button(label, button_data(d, "ver", case.case_id, f"{person}.{target}"))])
    if any(r.state == "failed" for r in await EvidenceRepository(d.db).for_case(case.case_id)):
        rows.append([button("🔁 " + t._("Fetch the missing files again"),
                            button_data(d, "vretry", case.case_id))])
    return rows


async def retry_files(context: ContextTypes.DEFAULT_TYPE, d: Deps, t: Translator,
                      case: CaseInfo) -> str:
    """Staff asked to fetch the files that could not be fetched (a limit raised, say)."""
    n = await EvidenceRepository(d.db).retry_failed(case.case_id, time.time())
    wake_vault(context.application)
    return t.ngettext("%(count)s file will be fetched again.",
                      "%(count)s files will be fetched again.", n) % {"count": n}


async def set_level(d: Deps, t: Translator, actor: int, case: CaseInfo, person: int,
                    level: str, now: str) -> str:
    """Set a person's level; returns what to tell the staff member."""
    if level not in LEVELS:
        return t._("The level is one of: reported, corroborated, documented.")
    if not 1 <= person <= case.persons_count:
        return t._("Case %(number)s has %(count)s missing persons.") % {
            "number": case.number, "count": case.persons_count}
    if case.status == "withdrawn":
        return t._("This case was withdrawn.")
    await VerificationRepository(d.db).set(case.case_id, person, level, actor, now)
    await AuditLog(d.db).record(actor, "verification",
                                {"case": case.number, "person": person, "level": level}, now)
    return t._("Case %(number)s, missing person %(person)s: %(level)s.") % {
        "number": case.number, "person": person, "level": level_label(t, level)}


async def on_verify_button(d: Deps, t: Translator, actor: int, case: CaseInfo, arg: str,
                           now: str) -> str:
    person, _, level = arg.partition(".")
    if not person.isdigit():
        return t._("This button is not valid.")
    return await set_level(d, t, actor, case, int(person), level, now)


async def verify_args(update: Update) -> tuple[str, int, str] | None:
    """(number text, person, level) of `/verify NUMBER PERSON LEVEL`, or None."""
    message = update.effective_message
    parts = (message.text or "").split() if message is not None else []
    if len(parts) != 4 or not parts[2].isdigit():
        return None
    return parts[1], int(parts[2]), parts[3].lower()


async def send_from_vault(context: ContextTypes.DEFAULT_TYPE, d: Deps, chat_id: int,
                          t: Translator, case: CaseInfo, media: dict[str, Any],
                          caption: str) -> tuple[str | None, Message | None]:
    """Send a case's file from the vault (Telegram lost it): (toast on failure, the message)."""
    unique = str(media.get("file_unique_id") or media.get("file_id"))
    row = next((r for r in await EvidenceRepository(d.db).for_case(case.case_id)
                if r.file_unique_id == unique and r.state == "stored"), None)
    if row is None:
        return t._("Telegram could not send this file, and it is not in the vault."), None
    private = d.keys.private
    if private is None:
        return t._("The files are sealed: the private key is kept offline."), None
    custody = _custody(d, row)
    if custody is not None and custody.size > UPLOAD_LIMIT:
        return t._("This file is too big to send in Telegram: export it with --with-files."), \
            None
    path = vault_dir(d.settings.data_dir) / row.vault_name
    try:
        data = await asyncio.to_thread(lambda: b"".join(read_vault_file(path, private)))
    except (OSError, ValueError) as exc:
        log.warning("a vault file could not be opened: %s", type(exc).__name__)
        return t._("The file in the vault could not be opened."), None
    name = str(media.get("name") or f"{media.get('kind') or 'file'}-{unique}")
    kind = str(media.get("kind") or "document")
    document = InputFile(io.BytesIO(data), filename=name)
    try:
        if kind == "photo":
            message = await context.bot.send_photo(chat_id, document, caption=esc(caption))
        else:  # voice, video and the rest as documents: the vault keeps no Telegram metadata
            message = await context.bot.send_document(chat_id, document, caption=esc(caption))
    except TelegramError as exc:
        log.warning("could not send a file from the vault: %s", type(exc).__name__)
        return t._("Telegram could not send this file."), None
    return None, message


async def stats_blocks(d: Deps, t: Translator) -> list[str]:
    """/stats: missing persons by verification level, and the vault's files by state."""
    n = t.format_number
    levels = await VerificationRepository(d.db).counts()
    blocks = ["<b>" + esc(t._("Missing persons by verification level")) + "</b>"]
    blocks += [f"• {esc(level_label(t, level))}: {n(levels.get(level, 0))}" for level in LEVELS]
    repo = EvidenceRepository(d.db)
    states = await repo.by_state()
    blocks.append("<b>" + esc(t._("Evidence vault")) + "</b>")
    blocks.append("• " + esc(t._("stored: %(count)s files, %(size)s") % {
        "count": n(states.get("stored", 0)), "size": _size(await repo.stored_bytes())}))
    blocks.append("• " + esc(t._("being fetched: %(count)s") % {
        "count": n(states.get("pending", 0))}))
    blocks.append("• " + esc(t._("could not be fetched: %(count)s") % {
        "count": n(states.get("failed", 0))}))
    return blocks
