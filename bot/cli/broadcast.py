"""`broadcast`: queue news for the running bot (parser and sender: bot.services.broadcast_cli)."""

from __future__ import annotations

import argparse

from bot.config import Settings


async def _broadcast(settings: Settings, args: argparse.Namespace) -> int:
    """`python -m bot broadcast`: queue news for the running bot (see broadcast_cli)."""
    from bot.services.broadcast_cli import queue_broadcast_from_cli

    return await queue_broadcast_from_cli(args, settings)
