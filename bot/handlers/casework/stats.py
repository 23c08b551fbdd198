"""/stats about persons."""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass

from telegram.ext import ContextTypes

from bot.handlers.casework.base import _repo, live_index
from bot.handlers.common import Deps, esc
from bot.handlers.staff_view import status_label
from bot.i18n import Translator
from bot.storage.stats import persons_by_status

log = logging.getLogger(__name__)

# ----------------------------------------------------------------------------- /stats


@dataclass(frozen=True, slots=True)
class PersonStats:
    lines: list[str]
    years: list[tuple[int, int]]  # (year it happened, persons), for the chart


async def person_stats(context: ContextTypes.DEFAULT_TYPE, d: Deps, t: Translator
                       ) -> PersonStats:
    """/stats about persons: how many (and how many distinct once duplicates are linked), by
    status, and, when the names can be read, by what happened and by year."""
    n = t.format_number
    total, distinct = await _repo(d).persons_count()
    lines = ["<b>" + esc(t._("Missing persons: %(n)s (distinct persons: %(distinct)s)") % {
        "n": n(total), "distinct": n(distinct)}) + "</b>",
             "<b>" + esc(t._("Persons by status")) + "</b>"]
    lines += [f"• {esc(status_label(t, code))}: {n(count)}"
              for code, count in await persons_by_status(d.db)]
    index = live_index(context)
    if not await index.ready():
        lines.append(esc(t._("Counts by what happened and by year need the private key: it is "
                             "kept offline.")))
        return PersonStats(lines, [])
    happened: Counter[str] = Counter()
    years: Counter[int] = Counter()
    for record in index.index.records():
        happened.update(record.what_happened or ("unknown",))
        if record.happened_year is not None:
            years[record.happened_year] += 1
    question = d.form.repeat_group.by_id.get("what_happened")
    lines.append("<b>" + esc(t._("Persons by what happened")) + "</b>")
    for code, count in happened.most_common():
        option = question.option(code) if question is not None else None
        label = t._(option.label) if option is not None else t._("not given")
        lines.append(f"• {esc(label)}: {n(count)}")
    lines.append("<b>" + esc(t._("Persons by the year it happened")) + "</b>")
    lines += [f"• {year}: {n(count)}" for year, count in sorted(years.items())]
    return PersonStats(lines, sorted(years.items()))
