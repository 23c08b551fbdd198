"""Evidence that outlives Telegram: the vault, the chain of custody and the dossier.

- `vault`: every file a relative sends is fetched at once by a durable job, sealed to the
  organisation's public key while it streams (never plaintext on disk) and kept under
  BOT_DATA_DIR/files; the chain of custody (SHA-256 of the plaintext, size, MIME type, time
  received, Telegram's file_unique_id) is sealed in the database.
- `intake`: what the handlers call when a file arrives and when a case is submitted.
- `reading`: everything that reads the vault (card buttons, export --with-files, /mydata).
- `backup_files`: the incremental `python -m bot backup --files DIR`.
- `dossier`: one .docx per missing person, laid out for the UN Working Group (WGEID).
"""
