"""Babel extractor for questionnaire.toml: every prompt, label and title becomes a msgid."""

from __future__ import annotations

import tomllib
from collections.abc import Iterator
from typing import IO, Any

from bot.form.model import parse_form


def extract_form(fileobj: IO[bytes], keywords: Any, comment_tags: Any, options: Any
                 ) -> Iterator[tuple[int, str | None, str, list[str]]]:
    raw = fileobj.read()
    text = raw.decode("utf-8")
    form = parse_form(tomllib.loads(text))

    def line_of(needle: str) -> int:
        first = needle.split("\n", 1)[0][:40]
        pos = text.find(first)
        return text.count("\n", 0, pos) + 1 if pos >= 0 else 1

    seen: set[str] = set()
    for group in form.groups:
        items: list[tuple[str, str]] = [(group.title, f"title of part {group.id}")]
        for q in group.questions:
            items.append((q.prompt, f"question {group.id}.{q.id}"))
            items.append((q.short, f"short label of {group.id}.{q.id}"))
            items += [(o.label, f"answer {o.code} of {q.id}") for o in q.options]
        for message, comment in items:
            if message in seen:
                continue
            seen.add(message)
            yield line_of(message), None, message, [comment]
