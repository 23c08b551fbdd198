"""How this server writes backups and sealed exports: to whom (age recipients), signed by what."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pyrage
from nacl.public import PublicKey
from nacl.signing import SigningKey

from bot.crypto.agekeys import parse_recipients, recipient_of


@dataclass(frozen=True)
class Sealer:
    """The recipients of a file (the organisation's key first), the signing key, the draft key."""

    recipients: list[Any]
    signing: SigningKey | None
    draft_key: bytes | None = None
    extra: list[str] = field(default_factory=list)  # the other recipients, for messages


def sealer_for(public: PublicKey, signing: SigningKey | None, draft_key: bytes | None = None,
               more_recipients: str = "") -> Sealer:
    """The organisation's key plus BOT_BACKUP_RECIPIENTS (say, a second key custodian)."""
    org = pyrage.x25519.Recipient.from_str(recipient_of(public))
    extra = parse_recipients(more_recipients)
    return Sealer([org, *extra], signing, draft_key, [str(r) for r in extra])


def sealer_of(keys: Any, settings: Any) -> Sealer:
    """The sealer of a loaded Keyring and Settings."""
    return sealer_for(keys.public, keys.signing, keys.draft_key, settings.backup_recipients)
