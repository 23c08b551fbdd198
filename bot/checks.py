"""`python -m bot check`: is this server ready to run the bot? One line per problem.

Checks the settings (already parsed by the caller), that the data and backup folders are
writable, that the database opens (read-only) with this code's schema (never migrating it: it
says "run migrate" instead), that the keys load, and that Telegram accepts
the token (getMe). Never prints the token: errors name the setting and the HTTP status only.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from bot.config import Settings
from bot.runner import webhook_problem

#: A webhook delivery error Telegram reports is a problem when it is this recent (seconds).
WEBHOOK_ERROR_WINDOW = 15 * 60


@dataclass
class CheckReport:
    """Problems found (one line each) and facts worth showing when all is well."""

    problems: list[str] = field(default_factory=list)
    facts: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def _writable(folder: Path) -> str | None:
    """None when files can be created in `folder` (made if missing), else the reason."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".check-{secrets.token_hex(4)}"
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.close(fd)
        probe.unlink()
    except OSError as exc:
        return exc.strerror or type(exc).__name__
    return None


async def _check_database(settings: Settings, report: CheckReport) -> None:
    """Opened read-only and never migrated: `check` runs beside the bot (Docker's health
    check every 5 minutes) and must not change the schema under it."""
    from bot.storage.db import Database, SchemaNotCurrent

    try:
        db = await Database.open_current(settings.db_path, read_only=True)
    except SchemaNotCurrent as exc:
        report.problems.append(f"BOT_DATA_DIR: {exc}")
        return
    except Exception as exc:
        report.problems.append(f"BOT_DATA_DIR: the database {settings.db_path} cannot be "
                               f"opened ({type(exc).__name__})")
        return
    try:
        report.facts.append(f"database schema version {await db.schema_version()}")
        await _check_vault(settings, db, report)
    finally:
        await db.close()


async def _check_vault(settings: Settings, db: Any, report: CheckReport) -> None:
    """The evidence vault (bot/evidence/): its folder, and its files by state."""
    from bot.evidence.vault import vault_dir
    from bot.storage.evidence import EvidenceRepository

    folder = vault_dir(settings.data_dir)
    if folder.exists() and (problem := _writable(folder)) is not None:
        report.problems.append(f"BOT_DATA_DIR: the evidence vault {folder} is not writable "
                               f"({problem})")
    repo = EvidenceRepository(db)
    states = await repo.by_state()
    report.facts.append(
        f"evidence vault: {states.get('stored', 0)} files "
        f"({await repo.stored_bytes() / 1_048_576:.1f} MB), {states.get('pending', 0)} being "
        f"fetched, {states.get('failed', 0)} could not be fetched")


def _check_keys(settings: Settings, report: CheckReport) -> None:
    from bot.services.crypto import PUBLIC_NAME, load_keyring

    if settings.public_key_file is None and settings.private_key_file is None \
            and not (settings.data_dir / "keys" / PUBLIC_NAME).exists():
        report.facts.append(f"keys: none yet; the first start generates them in "
                            f"{settings.data_dir / 'keys'}")
        return
    try:
        keys = load_keyring(settings.data_dir, settings.public_key_file,
                            settings.private_key_file, settings.draft_key_file, mode="check")
    except FileNotFoundError as exc:
        name = "BOT_PRIVATE_KEY_FILE" if settings.private_key_file else "BOT_PUBLIC_KEY_FILE"
        report.problems.append(f"{name}: {exc.filename or exc} is missing")
        return
    except Exception as exc:
        report.problems.append(f"BOT_PUBLIC_KEY_FILE: the keys cannot be loaded ({exc})")
        return
    report.facts.append("private key: offline (staff see non-identifying fields only)"
                        if keys.offline else "private key: on this server")
    from bot.crypto import draftkey
    from bot.services.crypto import DRAFT_NAME

    report.problems.extend(draftkey.problems(settings.data_dir, keys.offline,
                                             settings.draft_key_file,
                                             settings.data_dir / "keys" / DRAFT_NAME))
    if keys.signing is None:
        report.facts.append("backup signing key: none yet; the next start makes it")


async def _check_token(settings: Settings, report: CheckReport) -> None:
    if not settings.token:
        report.problems.append("BOT_TOKEN: not set (put the token from @BotFather in it)")
        return
    url = f"{settings.api_base_url}/bot{settings.token}/getMe"
    try:
        async with httpx.AsyncClient(timeout=15.0) as client:
            response = await client.get(url)
    except httpx.HTTPError as exc:
        report.problems.append(f"BOT_API_BASE_URL: cannot reach {settings.api_base_url} "
                               f"({type(exc).__name__})")
        return
    body: object = None
    with contextlib.suppress(ValueError):
        body = response.json()
    if response.status_code in (401, 404):
        report.problems.append(f"BOT_TOKEN: rejected by Telegram ({response.status_code} "
                               f"{_description(body, response.reason_phrase)})")
        return
    if response.status_code != 200 or not isinstance(body, dict) or not body.get("ok"):
        report.problems.append(f"BOT_API_BASE_URL: {settings.api_base_url} answered getMe with "
                               f"{response.status_code} {_description(body, 'not ok')}")
        return
    result = body.get("result")
    name = result.get("username") if isinstance(result, dict) else None
    report.facts.append(f"Telegram accepts the token (bot @{name}: publish this name at the "
                        f"office, relatives are told to check it)")
    if settings.webhook_url:
        await _check_webhook_delivery(settings, report)
    if settings.staff_chat_id is not None:
        await _check_staff_chat(settings, report)


async def _check_staff_chat(settings: Settings, report: CheckReport) -> None:
    """Can the bot reach BOT_STAFF_CHAT_ID (getChat), and is it a group?"""
    url = f"{settings.api_base_url}/bot{settings.token}/getChat"
    chat_id = settings.staff_chat_id
    try:
        async with httpx.AsyncClient(timeout=15.0) as client:
            response = await client.post(url, json={"chat_id": chat_id})
        body = response.json()
    except (httpx.HTTPError, ValueError) as exc:
        report.problems.append(f"BOT_STAFF_CHAT_ID: cannot ask Telegram about chat {chat_id} "
                               f"({type(exc).__name__})")
        return
    if response.status_code != 200 or not isinstance(body, dict) or not body.get("ok"):
        hint = ("add the bot to the staff group, or correct the id (a supergroup's id starts "
                "with -100; send /start@yourbot in the group and read it in the log, or ask "
                "@RawDataBot)")
        report.problems.append(f"BOT_STAFF_CHAT_ID: Telegram cannot reach chat {chat_id} "
                               f"({response.status_code} {_description(body, 'not ok')}): "
                               f"{hint}")
        return
    chat = body.get("result")
    kind = chat.get("type") if isinstance(chat, dict) else None
    if kind not in ("group", "supergroup"):
        report.problems.append(f"BOT_STAFF_CHAT_ID: chat {chat_id} is a {kind or 'chat'}, not "
                               "a group: use the id of the staff group")
        return
    report.facts.append(f"staff chat: a {kind} the bot can reach")


async def _check_webhook_delivery(settings: Settings, report: CheckReport) -> None:
    """In webhook mode: does Telegram report recent errors delivering updates to us?"""
    url = f"{settings.api_base_url}/bot{settings.token}/getWebhookInfo"
    try:
        async with httpx.AsyncClient(timeout=15.0) as client:
            body = (await client.get(url)).json()
    except (httpx.HTTPError, ValueError):
        return  # getMe worked: not worth a second line
    info = body.get("result") if isinstance(body, dict) else None
    if not isinstance(info, dict) or info.get("url") != settings.webhook_url:
        report.facts.append("webhook not registered yet (the bot registers it at start)")
        return
    last = info.get("last_error_date")
    waiting = int(info.get("pending_update_count") or 0)
    if isinstance(last, int) and time.time() - last < WEBHOOK_ERROR_WINDOW and waiting:
        message = str(info.get("last_error_message") or "unknown error")[:200]
        report.problems.append(f"BOT_WEBHOOK_URL: Telegram cannot deliver updates ({message}); "
                               f"{waiting} waiting")
    else:
        report.facts.append(f"webhook registered, {waiting} updates waiting")


def _check_org(settings: Settings, report: CheckReport) -> None:
    """Who relatives are told runs the bot (not a problem when unset: a fact to act on)."""
    if not settings.org_name and not settings.org_contacts:
        report.facts.append("who we are: BOT_ORG_NAME and BOT_ORG_CONTACTS are not set, so "
                            "relatives see no organisation name and no office")
        return
    languages = sorted(k for k in settings.org_contacts if k != "*") or (
        ["every language"] if settings.org_contacts else ["none"])
    report.facts.append(f"who we are: {settings.org_name or '(no BOT_ORG_NAME)'}; office "
                        f"contacts in {', '.join(languages)}")


def _description(body: object, default: str) -> str:
    if isinstance(body, dict) and isinstance(body.get("description"), str):
        return str(body["description"])[:200]
    return default


async def run_checks(settings: Settings, *, network: bool = True) -> CheckReport:
    """Run every check; the report's problems are one line each, naming the setting."""
    report = CheckReport()
    if settings.webhook_url and (problem := webhook_problem(settings)):
        report.problems.append(problem)
    elif settings.webhook_url:
        report.facts.append(f"mode: webhook at {settings.webhook_url} "
                            f"(listening on {settings.webhook_listen}:{settings.webhook_port})")
    else:
        report.facts.append("mode: long polling")
    _check_org(settings, report)
    data_problem = _writable(settings.data_dir)
    if data_problem is not None:
        report.problems.append(f"BOT_DATA_DIR: {settings.data_dir} is not writable "
                               f"({data_problem})")
    else:
        await _check_database(settings, report)
        _check_keys(settings, report)
    backup_problem = _writable(settings.backup_path) if data_problem is None \
        or settings.backup_dir is not None else None
    if backup_problem is not None:
        report.problems.append(f"BOT_BACKUP_DIR: {settings.backup_path} is not writable "
                               f"({backup_problem})")
    if network:
        await _check_token(settings, report)
    return report
