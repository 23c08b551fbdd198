"""`python -m bot run` with AIORateLimiter's overall limit lifted, for the benchmarks only.

    python -m tests.bench.uncapped_bot run

The shipped bot passes every call that names a chat through AIORateLimiter's overall limiter:
at most 30 such calls a second for the whole bot (Telegram's guidance for bulk messages).
Each step of the questionnaire costs about two of them (the next question, and marking the
answered one or taking its buttons off), so the bot answers at most ~14 actions a second
however fast its code is. This launcher runs the very same bot (bot.__main__.main) with
`overall_max_rate=0`, which AIORateLimiter documents as "no overall limit"; 429 handling,
the per-group limits and the network retries are unchanged. It shows what the code itself
can do, and what the bot would do if the cap were raised or dropped.
"""

from __future__ import annotations

import sys
from typing import Any

from telegram.ext import AIORateLimiter

_original_init = AIORateLimiter.__init__


def _init_without_overall_limit(self: AIORateLimiter, *args: Any, **kwargs: Any) -> None:
    kwargs["overall_max_rate"] = 0
    _original_init(self, *args, **kwargs)


def main() -> int:
    AIORateLimiter.__init__ = _init_without_overall_limit  # type: ignore[method-assign]
    from bot.__main__ import main as bot_main

    return bot_main(sys.argv[1:] or ["run"])


if __name__ == "__main__":
    sys.exit(main())
