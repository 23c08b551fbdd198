"""`keys generate`: the organisation's key pair and the backup signing pair."""

from __future__ import annotations

import sys
from pathlib import Path

from bot.cli.common import _err


def keys_generate(out: Path, passphrase: bool = False) -> int:
    """Write a new organisation key pair (and the backup signing pair) into `out`."""
    from bot.services.crypto import generate_keypair

    secret = None
    if passphrase:
        secret = _new_passphrase()
        if secret is None:
            return 1
    try:
        public, private = generate_keypair(out, secret)
    except FileExistsError:
        _err(f"keys already exist in {out}: refusing to overwrite them (move them first).")
        return 1
    except OSError as exc:
        _err(f"cannot write keys into {out}: {exc.strerror}")
        return 1
    print(f"public key:  {public}  (goes on the server: BOT_PUBLIC_KEY_FILE)")
    print(f"private key: {private}  (opens every case: keep it offline, make a second copy; "
          "see deploy/README.md)" + ("; protected by your passphrase" if secret else ""))
    print(f"signing key: {out / 'signing.key'}  (goes on the server, into BOT_DATA_DIR/keys/: "
          "it signs backups and exports)")
    print(f"verify key:  {out / 'verify.key'}  (stays with the private key: restore and "
          "decrypt check signatures with it)")
    return 0


def _new_passphrase() -> str | None:
    import getpass

    if not sys.stdin.isatty():
        _err("--passphrase needs a terminal to type the passphrase in")
        return None
    first = getpass.getpass("Passphrase for the private key: ")
    if len(first) < 12:
        _err("the passphrase is too short (at least 12 characters)")
        return None
    if getpass.getpass("The same passphrase again: ") != first:
        _err("the two passphrases differ: nothing was written")
        return None
    return first
