"""Key files in age's format (and the older base64 one), so the standard `age` tool can use them.

The organisation's key pair is an X25519 pair, the same kind of key age uses: its public key
written as an age recipient (`age1...`) and its private key as an age identity
(`AGE-SECRET-KEY-1...`) are the very same 32 bytes in bech32. So one key pair seals cases in the
database (libsodium sealed boxes) and encrypts backups and offline exports (age), and
`age -d -i org_private.key FILE` opens those files without this codebase.

Key files written before this release hold the raw key in base64; they are read as well.
A private key file may be protected by a passphrase (age's scrypt-encrypted identity, as
`age-keygen | age -p > key.age` or `python -m bot keys generate --passphrase` writes it).
"""

from __future__ import annotations

import base64
import binascii
import getpass
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pyrage
from nacl.public import PrivateKey, PublicKey

RECIPIENT_HRP = "age"
IDENTITY_HRP = "age-secret-key-"
_CHARSET = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
_GEN = (0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3)
_ENCRYPTED_HEADS = (b"age-encryption.org/v1", b"-----BEGIN AGE ENCRYPTED FILE-----")


class AgeKeyError(ValueError):
    """A key file or recipient cannot be used; str() is one line saying why."""


# ----------------------------------------------------------------------------- bech32 (BIP 173)


def _polymod(values: list[int]) -> int:
    chk = 1
    for value in values:
        top = chk >> 25
        chk = (chk & 0x1FFFFFF) << 5 ^ value
        for i, gen in enumerate(_GEN):
            if (top >> i) & 1:
                chk ^= gen
    return chk


def _hrp_expand(hrp: str) -> list[int]:
    return [ord(c) >> 5 for c in hrp] + [0] + [ord(c) & 31 for c in hrp]


def _convert(data: bytes | list[int], frombits: int, tobits: int, pad: bool) -> list[int]:
    acc = bits = 0
    out = []
    maxv = (1 << tobits) - 1
    for value in data:
        acc = (acc << frombits) | value
        bits += frombits
        while bits >= tobits:
            bits -= tobits
            out.append((acc >> bits) & maxv)
    if pad and bits:
        out.append((acc << (tobits - bits)) & maxv)
    elif not pad and (bits >= frombits or (acc << (tobits - bits)) & maxv):
        raise AgeKeyError("bad padding in a bech32 string")
    return out


def bech32_encode(hrp: str, data: bytes) -> str:
    """bech32 of `data` with the human-readable part `hrp` (lower case)."""
    words = _convert(data, 8, 5, True)
    poly = _polymod([*_hrp_expand(hrp), *words, 0, 0, 0, 0, 0, 0]) ^ 1
    checksum = [(poly >> 5 * (5 - i)) & 31 for i in range(6)]
    return hrp + "1" + "".join(_CHARSET[w] for w in words + checksum)


def bech32_decode(text: str) -> tuple[str, bytes]:
    """(hrp, data) of a bech32 string; AgeKeyError when it is not one."""
    if text.lower() != text and text.upper() != text:
        raise AgeKeyError("mixed case in a bech32 string")
    text = text.lower()
    pos = text.rfind("1")
    if pos < 1 or len(text) - pos < 7:
        raise AgeKeyError("not a bech32 string")
    hrp, rest = text[:pos], text[pos + 1:]
    try:
        words = [_CHARSET.index(c) for c in rest]
    except ValueError:
        raise AgeKeyError("not a bech32 string") from None
    if _polymod([*_hrp_expand(hrp), *words]) != 1:
        raise AgeKeyError("bad bech32 checksum")
    return hrp, bytes(_convert(words[:-6], 5, 8, False))


def recipient_of(public: PublicKey) -> str:
    """The organisation's public key as an age recipient (age1...)."""
    return bech32_encode(RECIPIENT_HRP, bytes(public))


def identity_of(private: PrivateKey) -> str:
    """The organisation's private key as an age identity (AGE-SECRET-KEY-1...)."""
    return bech32_encode(IDENTITY_HRP, bytes(private)).upper()


# ----------------------------------------------------------------------------- reading


def parse_recipients(text: str) -> list[pyrage.x25519.Recipient]:
    """age recipients (age1...) separated by commas, spaces or lines; '#' starts a comment."""
    out = []
    for line in text.replace(",", "\n").splitlines():
        for word in line.split("#", 1)[0].split():
            try:
                hrp, raw = bech32_decode(word)
            except AgeKeyError:
                hrp, raw = "", b""
            if hrp != RECIPIENT_HRP or len(raw) != 32:
                raise AgeKeyError(f"{word[:12]}... is not an age recipient (age1...)")
            out.append(pyrage.x25519.Recipient.from_str(word.lower()))
    return out


def _lines(text: str) -> list[str]:
    return [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.strip().startswith("#")]


def public_key_from_text(text: str, where: str) -> PublicKey:
    """An organisation public key from a key file's text: age1... or base64 (older files)."""
    lines = _lines(text)
    if len(lines) == 1 and lines[0].lower().startswith(RECIPIENT_HRP + "1"):
        hrp, raw = bech32_decode(lines[0])
        if hrp == RECIPIENT_HRP and len(raw) == PublicKey.SIZE:
            return PublicKey(raw)
    raw = _base64(lines, where)
    if len(raw) != PublicKey.SIZE:
        raise AgeKeyError(f"{where} is not a public key file written by this bot")
    return PublicKey(raw)


def _base64(lines: list[str], where: str) -> bytes:
    try:
        return base64.b64decode("".join(lines), validate=True)
    except (binascii.Error, ValueError):
        raise AgeKeyError(f"{where} is not a key file written by this bot") from None


def ask_passphrase(path: Path) -> str:
    """Ask for the passphrase of a protected key file on the terminal."""
    if not sys.stdin.isatty():
        raise AgeKeyError(f"{path} is protected by a passphrase: run this in a terminal to "
                          "type it")
    return getpass.getpass(f"Passphrase for {path}: ")


@dataclass(frozen=True)
class PrivateKeys:
    """What a private key file holds: age identities, and the organisation's key among them."""

    identities: list[pyrage.x25519.Identity]
    private: PrivateKey | None  # the first X25519 key, also usable for sealed boxes


def private_keys_from_text(text: str, where: str) -> PrivateKeys:
    """Identities in a private key file's text: AGE-SECRET-KEY-1 lines, or base64 (older)."""
    lines = _lines(text)
    if lines and all(ln.upper().startswith(IDENTITY_HRP.upper() + "1") for ln in lines):
        raws = []
        for line in lines:
            hrp, raw = bech32_decode(line)
            if hrp != IDENTITY_HRP or len(raw) != PrivateKey.SIZE:
                raise AgeKeyError(f"{where} holds a line that is not an age identity")
            raws.append(raw)
    else:
        raw = _base64(lines, where)
        if len(raw) != PrivateKey.SIZE:
            raise AgeKeyError(f"{where} is not a private key file written by this bot")
        raws = [raw]
    keys = [PrivateKey(raw) for raw in raws]
    identities = [pyrage.x25519.Identity.from_str(identity_of(k)) for k in keys]
    return PrivateKeys(identities, keys[0])


def read_private_keys(path: Path,
                      passphrase: Callable[[Path], str] | None = None) -> PrivateKeys:
    """Read a private key file; a passphrase-protected one asks `passphrase(path)`."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise AgeKeyError(f"cannot read the key file {path}: {exc.strerror}") from None
    if data.lstrip().startswith(_ENCRYPTED_HEADS):
        ask = passphrase if passphrase is not None else ask_passphrase
        try:
            data = pyrage.passphrase.decrypt(data, ask(path))
        except pyrage.DecryptError:
            raise AgeKeyError(f"{path}: wrong passphrase, or not a key file") from None
    try:
        text = data.decode("ascii")
    except UnicodeDecodeError:
        raise AgeKeyError(f"{path} is not a key file written by this bot") from None
    return private_keys_from_text(text, str(path))


def read_public_key(path: Path) -> PublicKey:
    """Read an organisation public key file (age1... or base64)."""
    try:
        text = path.read_text("ascii")
    except OSError as exc:
        raise AgeKeyError(f"cannot read the key file {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise AgeKeyError(f"{path} is not a key file written by this bot") from None
    return public_key_from_text(text, str(path))


def identity_file_text(private: PrivateKey, created: str) -> str:
    """A private key file as age-keygen writes one (comments, then the identity)."""
    return (f"# created: {created}\n# public key: {recipient_of(private.public_key)}\n"
            f"{identity_of(private)}\n")
