"""An export worker process: ``python -m bot.export.worker``, started by export_cases.

It reads the cases of the key ranges it is given with its own read-only connection, unseals,
decodes and encodes them, and sends the encoded bytes back over its standard output; see
:func:`bot.export.workers.worker_main`.
"""

from __future__ import annotations

import sys

from bot.export.workers import worker_main

if __name__ == "__main__":
    sys.exit(worker_main())
