"""One settings object, read from the environment and an optional .env file (names are stable)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

IdList = Annotated[frozenset[int], NoDecode]


class SettingsError(Exception):
    """A setting is missing or wrong; str() is one line saying what to fix."""


class Settings(BaseSettings):
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
    # Draft answered more than this long ago: the next message re-shows the question first.
    resume_after_hours: float = 6.0
    log_level: str = "INFO"

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

    @field_validator("staff_chat_id", "public_key_file", "private_key_file", mode="before")
    @classmethod
    def _empty_is_none(cls, value: Any) -> Any:
        return None if value == "" else value

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

    @property
    def db_path(self) -> Path:
        return self.data_dir / "bot.sqlite3"


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
        raise SettingsError("; ".join(lines)) from None
