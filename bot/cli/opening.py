"""`decrypt` and `duplicates`: opening sealed files on the offline computer."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

from bot.cli.common import _err, _existing, _Progress, _verify_key_path, _write_private


class _Peeked(Exception):
    def __init__(self, head: bytes) -> None:
        super().__init__("peeked")
        self.head = head


def _age_kind(source: Path, identities: Any) -> str:
    """'backup' or 'export', from the first decrypted bytes of an age file."""
    from bot.crypto.agefile import age_input

    try:
        with age_input(source, identities) as plain:
            raise _Peeked(plain.read(512))
    except _Peeked as peeked:
        head = peeked.head
    return "export" if head.lstrip().startswith(b"{") else "backup"


def decrypt(key: Path, source: Path, output: Path, verify_key: Path | None = None,
            allow_unsigned: bool = False) -> int:
    """Open a sealed export or backup with the private key, on an offline computer."""
    from bot.crypto.agefile import AgeFileError, is_age_file
    from bot.crypto.agekeys import AgeKeyError, read_private_keys
    from bot.crypto.signing import (
        SignatureError,
        load_verify_key,
        signature_path,
        verify_file,
    )
    from bot.services.backup import BackupError, _open_age_backup
    from bot.services.crypto import MAGIC, open_sealed_file
    from bot.services.export import ExportError
    from bot.services.sealed_export import EXPORT_KIND, open_sealed_export
    from bot.services.sealedfile import SealedFileError, is_sealed_stream, open_to_file, read_meta

    for problem in (_existing(key, "key file"), _existing(verify_key, "verify key")):
        if problem:
            _err(f"decrypt refused: {problem}")
            return 1
    try:
        keys = read_private_keys(key)
        if not source.is_file():
            _err(f"{source} does not exist")
            return 1
        with source.open("rb") as fh:
            head = fh.read(len(MAGIC))
        if not (is_age_file(source) or is_sealed_stream(source) or head == MAGIC):
            _err(f"{source} is not a sealed file written by this bot")
            return 1
        vk_path = _verify_key_path(verify_key, key.parent)
        signed_kind = None
        if signature_path(source).exists() and vk_path is not None:
            signed_kind = verify_file(source, load_verify_key(vk_path), None).kind
        elif not allow_unsigned:
            why = (f"no {signature_path(source).name} beside it" if is_age_file(source)
                   else "an older format, never signed")
            if vk_path is None and signature_path(source).exists():
                why = "no verify key to check it: pass --verify-key FILE"
            _err(f"{source} is not signed ({why}): if you are sure it is yours, add "
                 "--allow-unsigned")
            return 1
        if is_age_file(source):
            kind = signed_kind or _age_kind(source, keys.identities)
            if kind == EXPORT_KIND:
                progress = _Progress("decrypting", None)
                meta, result = asyncio.run(open_sealed_export(source, keys, output,
                                                              progress=progress))
                progress.done()
                print(f"wrote {result.rows} rows ({result.cases} cases, "
                      f"{meta.get('format')}) to {output}")
                return 0
            tmp = output.with_name(f".{output.name}.part")
            try:
                meta = _open_age_backup(source, keys, tmp)
                os.replace(tmp, output)
            finally:
                tmp.unlink(missing_ok=True)
            print(f"wrote the backup's database (made {meta.get('created_at', '?')}) to "
                  f"{output}")
            return 0
        private = keys.private
        assert private is not None
        if is_sealed_stream(source):
            meta = read_meta(source, private)
            if meta.get("kind") == EXPORT_KIND:
                progress = _Progress("decrypting", None)
                _, result = asyncio.run(open_sealed_export(source, keys, output,
                                                           progress=progress))
                progress.done()
                print(f"wrote {result.rows} rows ({result.cases} cases, "
                      f"{meta.get('format')}) to {output}")
            else:
                meta = open_to_file(source, output, private)
                print(f"wrote the {meta.get('kind', 'sealed')} content "
                      f"(made {meta.get('created_at', '?')}) to {output}")
            return 0
        try:
            plain = open_sealed_file(key, source.read_bytes())
        except ValueError as exc:
            _err(f"{source}: {exc}")
            return 1
        _write_private(output, plain)
        print(f"wrote {len(plain)} bytes to {output}")
        return 0
    except AgeKeyError as exc:
        _err(str(exc))
        return 1
    except (SealedFileError, ExportError, SignatureError, AgeFileError) as exc:
        _err(f"{source}: {exc}" if str(source) not in str(exc) else str(exc))
        return 1
    except BackupError as exc:
        _err(str(exc).removesuffix("; nothing was changed"))
        return 1
    except OSError as exc:
        _err(f"cannot write {output}: {exc.strerror}")
        return 1


def duplicates(key: Path, source: Path, output: Path) -> int:
    """Possible duplicates in an export, on the offline computer (bot/casework/offline.py).

    A sealed export is opened first exactly as `decrypt` opens it (signature checked), into a
    temporary folder that is removed afterwards."""
    import tempfile

    from bot.casework import offline

    if not source.is_file():
        _err(f"{source} does not exist")
        return 1
    with tempfile.TemporaryDirectory(prefix="duplicates-") as tmp:
        plain = source
        if not offline.is_plain_export(source):
            plain = Path(tmp) / "export"
            code = decrypt(key, source, plain)
            if code != 0:
                return code
            if not offline.is_plain_export(plain):
                _err(f"{source}: export as JSONL or CSV for duplicates (not XLSX)")
                return 1
        try:
            pairs = offline.write_report(plain, output)
        except (ValueError, KeyError) as exc:
            _err(f"{source}: not an export this bot wrote ({type(exc).__name__})")
            return 1
        except OSError as exc:
            _err(f"cannot write {output}: {exc.strerror}")
            return 1
    print(f"wrote {pairs} possible duplicates to {output}")
    return 0
