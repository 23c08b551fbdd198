"""Moved to `bot.crypto.sealedfile`; this name stays so that older imports keep working."""

from bot.crypto.sealedfile import (
    CHUNK,
    MAGIC,
    SealedFileError,
    SealedReader,
    SealedWriter,
    is_sealed_stream,
    load_private_key,
    load_public_key,
    open_to_file,
    read_meta,
    seal_file,
    sealed_output,
)

__all__ = ["CHUNK", "MAGIC", "SealedFileError", "SealedReader", "SealedWriter",
           "is_sealed_stream", "load_private_key", "load_public_key", "open_to_file",
           "read_meta", "seal_file", "sealed_output"]
