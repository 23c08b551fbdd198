"""Moved to `bot.crypto.keyring`; this name stays so that older imports keep working."""

from bot.crypto.keyring import (
    DRAFT_NAME,
    MAGIC,
    PRIVATE_NAME,
    PUBLIC_NAME,
    DraftKeyLost,
    Keyring,
    NoPrivateKey,
    generate_keypair,
    load_keyring,
    open_sealed_file,
)

__all__ = ["DRAFT_NAME", "MAGIC", "PRIVATE_NAME", "PUBLIC_NAME", "DraftKeyLost", "Keyring",
           "NoPrivateKey", "generate_keypair", "load_keyring", "open_sealed_file"]
