"""The command line's commands, one module per group; `bot/__main__.py` parses and dispatches.

run.py (sandbox, migrate, check), keys.py, opening.py (decrypt, duplicates), backups.py
(backup, restore), export.py (export, dossier), broadcast.py, parser.py (every argument and help
text), common.py (the error line, the progress line, key paths).
"""
