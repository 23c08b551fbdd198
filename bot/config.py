"""One settings object, read from the environment and an optional .env file (names are stable)."""

from __future__ import annotations

import json
import re
from datetime import time as dtime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

IdList = Annotated[frozenset[int], NoDecode]


class SettingsError(Exception):
    """A setting is missing or wrong; str() is one line saying what to fix."""

    def __init__(self, message: str, problems: list[str] | None = None) -> None:
        super().__init__(message)
        self.problems: list[str] = problems if problems is not None else [message]


class Settings(BaseSettings):
    """Every setting of the bot, from BOT_* variables (documented in deploy/.env.example)."""

    model_config = SettingsConfigDict(
        env_prefix="BOT_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    token: str = Field(default="", description="Bot token from @BotFather")
    api_base_url: str = "https://api.telegram.org"
    data_dir: Path = Path("data")
    admin_ids: IdList = frozenset()
    staff_ids: IdList = frozenset()
    staff_chat_id: int | None = None
    # The organisation's key pair (python -m bot keys generate). Neither set: generated in
    # BOT_DATA_DIR/keys on the first start. Only the public key set: the private key is
    # offline and staff see non-identifying fields only.
    public_key_file: Path | None = None
    private_key_file: Path | None = None
    # Where the draft key lives. With the private key offline it must not be on the data disk:
    # a file on tmpfs (lost at a reboot, which loses drafts in progress: the safe failure).
    # Not set: BOT_DATA_DIR/keys/draft.key with the private key on the server; in memory only
    # (drafts lost at every restart) with the private key offline. See docs/THREAT_MODEL.md.
    draft_key_file: Path | None = None
    # Drafts not touched for this many days are deleted (abandoned questionnaires).
    draft_retention_days: int = Field(default=14, ge=1, le=365)
    # Draft answered more than this long ago: the next message re-shows the question first.
    resume_after_hours: float = 6.0
    log_level: str = "INFO"
    # Webhook mode (python -m bot run --webhook, or BOT_WEBHOOK_URL set): Telegram POSTs
    # updates to this public https URL; a reverse proxy forwards them to LISTEN:PORT, same path.
    webhook_url: str = ""
    webhook_listen: str = "127.0.0.1"
    webhook_port: int = Field(default=8443, ge=1, le=65535)
    # Telegram sends it in X-Telegram-Bot-Api-Secret-Token; requests without it are refused.
    # At least 32 characters (openssl rand -hex 32 gives 64).
    webhook_secret: str = ""
    # Daily sealed backups (see deploy/README.md): where, how many to keep, when (UTC, HH:MM).
    backup_dir: Path | None = None
    backup_keep: int = Field(default=7, ge=1)
    # Broadcast messages per second; Telegram allows about 30 in all, and replies to
    # relatives need the rest.
    broadcast_rate: float = Field(default=25.0, gt=0, le=30)
    backup_time: str = "02:30"
    # Case work: the staff group's language (notices, /staffhelp there), the time zone staff
    # read times in, and how long a status notice waits so the change can be undone.
    staff_language: str = "ru"
    timezone: str = "Asia/Almaty"
    status_undo_seconds: int = Field(default=60, ge=0, le=3600)
    # Cards, answers, files and exports sent to staff are deleted from their chats after this
    # many hours (Telegram lets a bot delete its messages only while under 48 hours old).
    card_ttl_hours: float = Field(default=24.0, gt=0, le=47)
    # Submitted cases a relative may send in 24 hours; past it their draft waits.
    max_cases_per_day: int = Field(default=3, ge=1)
    # New-case alerts to the staff chat in an hour; past it, one digest an hour instead.
    alerts_per_hour: int = Field(default=30, ge=1)
    # More age recipients (age1..., e.g. a second key custodian's) that backups and sealed
    # exports are encrypted to, besides the organisation's public key; commas or spaces.
    backup_recipients: str = ""
    # The evidence vault (BOT_DATA_DIR/files): the largest file a bot may download, in MB.
    # 0: Telegram's limit, 20 MB on its cloud Bot API, 2000 MB on a self-hosted Bot API
    # server (any other BOT_API_BASE_URL).
    file_download_limit_mb: int = Field(default=0, ge=0, le=2000)
    # Who runs the bot, shown to relatives before consent, in /help and after a refusal.
    org_name: str = ""
    # The office's address, phone and hours per language: a JSON object {"kk": ..., "ru": ...,
    # "en": ...} ("\\n" for a new line), or one plain text for every language.
    org_contacts: Annotated[dict[str, str], NoDecode] = Field(default_factory=dict)

    @field_validator("admin_ids", "staff_ids", mode="before")
    @classmethod
    def _split_ids(cls, value: Any) -> Any:
        if isinstance(value, str):
            parts = [p.strip() for p in value.replace(";", ",").split(",") if p.strip()]
            try:
                return frozenset(int(p) for p in parts)
            except ValueError:
                raise ValueError("must be Telegram user ids separated by commas") from None
        return value

    @field_validator("staff_chat_id", "public_key_file", "private_key_file", "backup_dir",
                     "draft_key_file", mode="before")
    @classmethod
    def _empty_is_none(cls, value: Any) -> Any:
        return None if value == "" else value

    @field_validator("org_name")
    @classmethod
    def _org_name(cls, value: str) -> str:
        return value.strip()

    @field_validator("org_contacts", mode="before")
    @classmethod
    def _org_contacts(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        value = value.strip()
        if not value:
            return {}
        if not value.startswith(("{", "[")):
            return {"*": value.replace("\\n", "\n")}
        try:
            parsed = json.loads(value)
        except json.JSONDecodeError:
            raise ValueError('must be a JSON object like {"kk": "...", "ru": "...", "en": "..."} '
                             "or one plain text") from None
        if not isinstance(parsed, dict) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in parsed.items()):
            raise ValueError("must map languages to texts, like {\"kk\": \"...\", \"ru\": \"...\"}")
        unknown = sorted(set(parsed) - set(ORG_LANGUAGES))
        if unknown:
            raise ValueError(f"unknown language {unknown[0]!r}: use kk, ru and en")
        return {k: v.strip() for k, v in parsed.items() if v.strip()}

    def contacts_for(self, lang: str) -> str:
        """The office's contacts in `lang`; else in the language its readers know next best."""
        for code in (lang, *ORG_FALLBACK.get(lang, ()), "*"):
            if self.org_contacts.get(code):
                return self.org_contacts[code]
        return next(iter(self.org_contacts.values()), "")

    @field_validator("api_base_url")
    @classmethod
    def _strip_slash(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")

    @field_validator("token")
    @classmethod
    def _token_shape(cls, value: str) -> str:
        value = value.strip()
        if value and (":" not in value or not value.split(":", 1)[0].isdigit()):
            raise ValueError("does not look like a token from @BotFather (digits:letters)")
        return value

    @field_validator("webhook_url")
    @classmethod
    def _webhook_url(cls, value: str) -> str:
        value = value.strip()
        if not value:
            return ""
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be the public https:// address Telegram posts updates to")
        return value

    @field_validator("webhook_secret")
    @classmethod
    def _webhook_secret(cls, value: str) -> str:
        value = value.strip()
        if value and not _SECRET.fullmatch(value):
            raise ValueError(f"must be {MIN_SECRET}-256 characters of A-Z, a-z, 0-9, _ and - "
                             "(make one with: openssl rand -hex 32)")
        return value

    @field_validator("staff_language")
    @classmethod
    def _staff_language(cls, value: str) -> str:
        value = value.strip().lower()
        if value not in ("kk", "ru", "en"):
            raise ValueError("must be kk, ru or en")
        return value

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        value = value.strip()
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError("must be a time zone name such as Asia/Almaty") from None
        return value
    @field_validator("backup_recipients")
    @classmethod
    def _recipients(cls, value: str) -> str:
        from bot.crypto.agekeys import AgeKeyError, parse_recipients

        try:
            parse_recipients(value)
        except AgeKeyError as exc:
            raise ValueError(str(exc)) from None
        return value.strip()

    @field_validator("backup_time")
    @classmethod
    def _backup_time(cls, value: str) -> str:
        value = value.strip()
        try:
            dtime.fromisoformat(value)
        except ValueError:
            raise ValueError("must be a time of day as HH:MM (UTC)") from None
        return value

    @property
    def db_path(self) -> Path:
        return self.data_dir / "bot.sqlite3"

    @property
    def backup_path(self) -> Path:
        """Where the daily backups go: BOT_BACKUP_DIR, or BOT_DATA_DIR/backups."""
        return self.backup_dir if self.backup_dir is not None else self.data_dir / "backups"

    @property
    def webhook_path(self) -> str:
        """The path part of BOT_WEBHOOK_URL, which the local webhook server listens on."""
        return urlsplit(self.webhook_url).path.lstrip("/")


ORG_LANGUAGES = ("kk", "ru", "en")
#: Contacts missing in a language: Kazakh readers mostly read Russian, and the reverse.
ORG_FALLBACK = {"kk": ("ru", "en"), "ru": ("kk", "en"), "en": ("ru", "kk")}

#: Webhook secrets shorter than this are refused (a guessable token lets anyone post updates).
MIN_SECRET = 32
_SECRET = re.compile(rf"[A-Za-z0-9_-]{{{MIN_SECRET},256}}")


def load_settings(**overrides: Any) -> Settings:
    """Read settings, turning pydantic's report into one line per problem."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            name = "BOT_" + str(err["loc"][0]).upper() if err["loc"] else "settings"
            msg = str(err["msg"]).removeprefix("Value error, ")
            lines.append(f"{name}: {msg}")
        raise SettingsError("; ".join(lines), lines) from None
