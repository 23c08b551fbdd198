"""The bot's live person index: built in memory from the sealed cases when the private key is
on the server, kept up to date as cases arrive or are erased, and never written to disk.

With the private key offline the index cannot be built (the names are sealed): `available`
is False, and /find and the duplicate check tell staff to use the offline command.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bot.casework.index import Match, PersonIndex, PersonRecord, records_of
from bot.storage.casework import CaseworkRepository, case_data_batches
from bot.storage.db import Database

log = logging.getLogger(__name__)

Unseal = Callable[[bytes], bytes]
#: Cases opened between two yields to the event loop while the index is built.
BUILD_BATCH = 250


@dataclass(frozen=True, slots=True)
class Duplicate:
    """Person `person` of the new case is possibly `match.record`."""

    person: int
    match: Match


class LiveIndex:
    def __init__(self, db: Database, unseal: Unseal, offline: bool) -> None:
        self._db = db
        self._unseal = unseal
        self.offline = offline
        self.index = PersonIndex()
        self._built = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def available(self) -> bool:
        return not self.offline

    def start(self) -> None:
        """Build in the background (a few seconds for 100,000 cases); searches wait for it."""
        if self._task is None and not self.offline:
            self._task = asyncio.get_running_loop().create_task(self._build())

    async def ready(self) -> bool:
        """Wait for the build; False with the private key offline."""
        if self.offline:
            return False
        self.start()
        await self._built.wait()
        return True

    async def _build(self) -> None:
        started = time.monotonic()
        try:
            # Small batches: opening a sealed case takes ~70 µs, and relatives' updates must
            # not wait behind more than ~20 ms of it while the index is built.
            async for batch in case_data_batches(self._db, batch=BUILD_BATCH):
                records: list[PersonRecord] = []
                for case_id, number, sealed in batch:
                    data = self._open(sealed)
                    if data is not None:
                        records += records_of(case_id, number, data)
                self.index.add(records)
                await asyncio.sleep(0)  # let relatives' updates through between batches
        finally:
            self._built.set()
        log.info("person index built: %d persons in %.1f s", len(self.index),
                 time.monotonic() - started)

    def _open(self, sealed: bytes) -> dict[str, Any] | None:
        try:
            data: dict[str, Any] = json.loads(self._unseal(sealed))
        except Exception:  # an unreadable case must not stop the index (no content logged)
            log.warning("a case could not be opened for the person index")
            return None
        return data

    async def add_case(self, case_id: int, number: str, data: dict[str, Any], now: str
                       ) -> list[Duplicate]:
        """Index a new case and record its persons' possible duplicates (as suggestions)."""
        if not await self.ready():
            return []
        records = records_of(case_id, number, data)
        found = [Duplicate(r.person, m) for r in records for m in self.index.matches(r)]
        self.index.add(records)
        await CaseworkRepository(self._db).add_links(
            [(case_id, d.person, d.match.record.case_id, d.match.record.person,
              d.match.certainty) for d in found], now)
        return found

    def remove_case(self, case_id: int) -> None:
        self.index.remove_case(case_id)
