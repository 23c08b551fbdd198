"""Evidence that outlives Telegram: the vault, the chain of custody and the dossier.

- `vault`: every file a relative sends is fetched at once by a durable job, sealed to the
  organisation's public key while it streams (never plaintext on disk) and kept under
  BOT_DATA_DIR/files; the chain of custody (SHA-256 of the plaintext, size, MIME type, time
  received, Telegram's file_unique_id) is sealed in the database.
- `telegram_files` (getFile and downloads, with Telegram's limits) and `sealing` (a stream
  sealed and hashed on its way to disk, and read back) are the vault's two halves.
- `intake`: what the handlers call when a file arrives and when a case is submitted.
- `reading`: export --with-files and /mydata read the vault (the card: handlers/evidence.py).
- `backup_files`: the incremental `python -m bot backup --files DIR`.
- `dossier`: one .docx per missing person, laid out for the UN Working Group (WGEID).
"""
