"""The bot's ExtBot: long polling that one unreadable update cannot stop, and no parameter a
method does not have. The one module that relies on python-telegram-bot internals.

python-telegram-bot parses a whole getUpdates batch at once (`Update.de_list`). When one
update in it cannot be parsed (a Bot API change the library does not know yet, a malformed
object), the whole call raises, the Updater asks again with the same offset, gets the same
batch, and so on forever: nothing more is processed, for anyone. The library also logs the raw
batch, personal data included.

`ReadingBot.get_updates` parses the batch update by update instead. An update it cannot read is
logged with its update_id and its top-level field only (no content) and replaced by a bare
`Update(update_id)`, which no handler takes, so the offset moves past it and polling goes on
with the updates after it.

python-telegram-bot sends the parse_mode of its Defaults with every call that goes through its
`_send_message`, including methods that have no such parameter (editMessageReplyMarkup,
sendVideoNote, ...). Telegram ignores it today; `ReadingBot._post` leaves it out, and the
emulator refuses unknown parameters so that tests notice any other.

Internals used, all here: `Bot._post` (the one call every method makes; overridden, and called
by get_updates as the library's own get_updates does) and the shape of `Bot.get_updates` (its
read-timeout arithmetic is copied). tests/unit/test_ptb_adapter.py fails on a
python-telegram-bot release that changes either; pyproject.toml pins the tested minor release.
"""

from __future__ import annotations

import datetime as dtm
import logging
from collections.abc import Sequence
from typing import Any, cast

from telegram import Update
from telegram.ext import ExtBot
from telegram.request import BaseRequest

log = logging.getLogger(__name__)

JSONDict = dict[str, Any]
#: "Not given for this call" (python-telegram-bot's DEFAULT_NONE, through its public name).
DEFAULT_NONE: Any = BaseRequest.DEFAULT_NONE
_DEFAULT = type(DEFAULT_NONE)
#: Methods python-telegram-bot sends Defaults' parse_mode to although they have none.
NO_PARSE_MODE = frozenset(("editMessageReplyMarkup", "sendVideoNote", "sendSticker",
                           "sendLocation", "sendVenue", "sendContact", "sendDice"))


def read_update(data: JSONDict, bot: Any) -> tuple[Update | None, bool]:
    """(the update, True), or (a bare Update(update_id), False) when it cannot be read.

    (None, False) for something without an update_id, which cannot even be skipped by offset.
    """
    try:
        return Update.de_json(data, bot), True
    except Exception as exc:
        update_id = data.get("update_id") if isinstance(data, dict) else None
        if not isinstance(update_id, int):
            log.error("skipped an update without an update_id (%s)", type(exc).__name__)
            return None, False
        fields = [k for k in data if k != "update_id"] if isinstance(data, dict) else []
        # The field name is Telegram's vocabulary (message, my_chat_member...), never content.
        field = fields[0] if fields and str(fields[0]).isidentifier() else "?"
        log.error("skipped update %d (%s): it cannot be read (%s)", update_id,
                  str(field)[:40], type(exc).__name__)
        return Update(update_id), False


class ReadingBot(ExtBot[Any]):
    """ExtBot whose get_updates skips unreadable updates instead of failing the whole batch,
    and whose calls carry only parameters their method has."""

    skipped = 0  # updates replaced by a bare Update, in this process (class-wide, for tests)

    def __init__(self, token: str, *, get_updates_request: BaseRequest | None = None,
                 **kwargs: Any) -> None:
        super().__init__(token, get_updates_request=get_updates_request, **kwargs)
        # Its own read timeout, which long polls add their timeout to (as the library does).
        self._updates_read_timeout = (get_updates_request.read_timeout
                                      if get_updates_request is not None else 5.0)

    async def _post(self, endpoint: str, data: JSONDict | None = None, *args: Any,
                    **kwargs: Any) -> Any:
        if data is not None and endpoint in NO_PARSE_MODE:
            data.pop("parse_mode", None)
        return await super()._post(endpoint, data, *args, **kwargs)

    async def get_updates(
        self,
        offset: int | None = None,
        limit: int | None = None,
        timeout: float | dtm.timedelta | None = None,
        allowed_updates: Sequence[str] | None = None,
        *,
        read_timeout: Any = DEFAULT_NONE,
        write_timeout: Any = DEFAULT_NONE,
        connect_timeout: Any = DEFAULT_NONE,
        pool_timeout: Any = DEFAULT_NONE,
        api_kwargs: JSONDict | None = None,
    ) -> tuple[Update, ...]:
        # As Bot.get_updates (python-telegram-bot 22): the read timeout is the long poll's
        # timeout plus the request's own read timeout.
        data: JSONDict = {"timeout": timeout, "offset": offset, "limit": limit,
                          "allowed_updates": allowed_updates}
        if not isinstance(read_timeout, _DEFAULT):
            base: float = read_timeout or 0
        else:
            base = self._updates_read_timeout or 0
        if isinstance(timeout, dtm.timedelta):
            effective: float = base + timeout.total_seconds()
        else:
            effective = base + timeout if timeout else base
        result = cast("list[JSONDict]", await self._post(
            "getUpdates", data, read_timeout=effective, write_timeout=write_timeout,
            connect_timeout=connect_timeout, pool_timeout=pool_timeout, api_kwargs=api_kwargs))
        updates: list[Update] = []
        for raw in result or []:
            update, readable = read_update(raw, self)
            if not readable:
                ReadingBot.skipped += 1
            if update is None:
                continue
            if readable:
                self.insert_callback_data(update)
            updates.append(update)
        return tuple(updates)
