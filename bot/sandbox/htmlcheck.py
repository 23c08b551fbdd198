"""Parses parse_mode=HTML text the way Telegram does, so the sandbox refuses what Telegram refuses.

The rules and error texts follow TDLib's HTML parser (the code behind the Bot API). One
deliberate difference: Telegram shows an '&' that starts no known entity literally, while the
sandbox refuses it (with `strict_entities`), because in this project it nearly always means a
user-provided string was not escaped.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

SIMPLE_TAGS: dict[str, str] = {
    "b": "bold",
    "strong": "bold",
    "i": "italic",
    "em": "italic",
    "u": "underline",
    "ins": "underline",
    "s": "strikethrough",
    "strike": "strikethrough",
    "del": "strikethrough",
    "code": "code",
    "pre": "pre",
    "tg-spoiler": "spoiler",
}
ALLOWED_TAGS = frozenset({*SIMPLE_TAGS, "a", "span", "blockquote", "tg-emoji"})
NAMED_ENTITIES = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}
_SPACES = " \t\r\n\f\v"


@dataclass(frozen=True)
class Entity:
    """A formatting span of the plain text; offsets count Python characters (code points)."""

    type: str
    offset: int
    length: int
    url: str | None = None
    language: str | None = None
    custom_emoji_id: str | None = None


class HtmlParseError(ValueError):
    """The markup is not something Telegram would accept; `detail` is Telegram's wording."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


@dataclass
class _OpenTag:
    name: str
    start: int
    url: str | None = None
    language: str | None = None
    emoji_id: str | None = None
    expandable: bool = False


class _Parser:
    def __init__(self, markup: str, strict_entities: bool) -> None:
        self.s = markup
        self.n = len(markup)
        self.strict = strict_entities
        self.out: list[str] = []
        self.out_len = 0
        self.stack: list[_OpenTag] = []
        self.entities: list[Entity] = []

    def byte_offset(self, index: int) -> int:
        return len(self.s[:index].encode("utf-8", "surrogatepass"))

    def emit(self, text: str) -> None:
        self.out.append(text)
        self.out_len += len(text)

    def run(self) -> tuple[str, list[Entity]]:
        s, i = self.s, 0
        while i < self.n:
            c = s[i]
            if c == "&":
                i = self.entity(i)
            elif c != "<":
                j = i + 1
                while j < self.n and s[j] not in "&<":
                    j += 1
                self.emit(s[i:j])
                i = j
            elif i + 1 < self.n and s[i + 1] == "/":
                i = self.end_tag(i)
            else:
                i = self.start_tag(i)
        if self.stack:
            raise HtmlParseError(
                f'Can\'t find end tag corresponding to start tag "{self.stack[-1].name}"'
            )
        entities = sorted(self.entities, key=lambda e: (e.offset, -e.length))
        return "".join(self.out), entities

    def entity(self, i: int) -> int:
        decoded = decode_entity(self.s, i)
        if decoded is None:
            if self.strict:
                raise HtmlParseError(
                    f'Unescaped "&" at byte offset {self.byte_offset(i)}: write &amp; '
                    "(Telegram would show it literally; the sandbox insists)"
                )
            self.emit("&")
            return i + 1
        text, end = decoded
        self.emit(text)
        return end

    def start_tag(self, begin: int) -> int:
        s = self.s
        i = begin + 1
        while i < self.n and s[i] not in _SPACES and s[i] != ">":
            i += 1
        if i >= self.n:
            raise HtmlParseError(f"Unclosed start tag at byte offset {self.byte_offset(begin)}")
        name = s[begin + 1 : i].lower()
        if name not in ALLOWED_TAGS:
            raise HtmlParseError(
                f'Unsupported start tag "{name}" at byte offset {self.byte_offset(begin)}'
            )
        tag = _OpenTag(name=name, start=self.out_len)
        span_class: str | None = None
        while True:
            while i < self.n and s[i] in _SPACES:
                i += 1
            if i < self.n and s[i] == ">":
                break
            attr_begin = i
            while i < self.n and s[i] not in _SPACES and s[i] not in "=>":
                i += 1
            attr = s[attr_begin:i].lower()
            if not attr:
                raise HtmlParseError(
                    f'Empty attribute name in the tag "{name}" at byte offset '
                    f"{self.byte_offset(begin)}"
                )
            while i < self.n and s[i] in _SPACES:
                i += 1
            if i >= self.n:
                raise HtmlParseError(
                    f'Unclosed start tag "{name}" at byte offset {self.byte_offset(begin)}'
                )
            if s[i] != "=":
                if name == "blockquote" and attr == "expandable":
                    tag.expandable = True
                continue
            i += 1
            while i < self.n and s[i] in _SPACES:
                i += 1
            if i >= self.n:
                raise HtmlParseError(
                    f'Unclosed start tag "{name}" at byte offset {self.byte_offset(begin)}'
                )
            value, i = self.attribute_value(i)
            if i >= self.n:
                raise HtmlParseError(f"Unclosed start tag at byte offset {self.byte_offset(begin)}")
            if name == "a" and attr == "href":
                tag.url = value
            elif name == "code" and attr == "class" and value.startswith("language-"):
                tag.language = value[len("language-") :]
            elif name == "span" and attr == "class":
                span_class = value
            elif name == "tg-emoji" and attr == "emoji-id":
                tag.emoji_id = value
            elif name == "blockquote" and attr == "expandable":
                tag.expandable = True
        if name == "span" and span_class != "tg-spoiler":
            raise HtmlParseError(
                f'Tag "span" must have class "tg-spoiler" at byte offset {self.byte_offset(begin)}'
            )
        self.stack.append(tag)
        return i + 1

    def attribute_value(self, i: int) -> tuple[str, int]:
        s = self.s
        if s[i] not in "'\"":
            token_begin = i
            while i < self.n and ((s[i].isascii() and s[i].isalnum()) or s[i] in ".-"):
                i += 1
            if i < self.n and s[i] not in _SPACES and s[i] != ">":
                raise HtmlParseError(
                    f"Unexpected end of name token at byte offset {self.byte_offset(token_begin)}"
                )
            return s[token_begin:i].lower(), i
        quote = s[i]
        i += 1
        parts: list[str] = []
        while i < self.n and s[i] != quote:
            decoded = decode_entity(s, i) if s[i] == "&" else None
            if decoded is not None:
                parts.append(decoded[0])
                i = decoded[1]
            else:
                parts.append(s[i])
                i += 1
        if i < self.n:
            i += 1
        return "".join(parts), i

    def end_tag(self, begin: int) -> int:
        s = self.s
        if not self.stack:
            raise HtmlParseError(f"Unexpected end tag at byte offset {self.byte_offset(begin)}")
        i = begin + 2
        while i < self.n and s[i] not in _SPACES and s[i] != ">":
            i += 1
        end_name = s[begin + 2 : i].lower()
        while i < self.n and s[i] in _SPACES:
            i += 1
        if i >= self.n or s[i] != ">":
            raise HtmlParseError(f"Unclosed end tag at byte offset {self.byte_offset(begin)}")
        tag = self.stack.pop()
        if end_name and end_name != tag.name:
            raise HtmlParseError(
                f"Unmatched end tag at byte offset {self.byte_offset(begin)}, "
                f'expected "</{tag.name}>", found "</{end_name}>"'
            )
        self.close(tag)
        return i + 1

    def close(self, tag: _OpenTag) -> None:
        length = self.out_len - tag.start
        if length <= 0:
            return
        if tag.name == "tg-emoji":
            if not (tag.emoji_id or "").isdigit() or int(tag.emoji_id or "0") == 0:
                raise HtmlParseError("Invalid custom emoji identifier specified")
            self.entities.append(
                Entity("custom_emoji", tag.start, length, custom_emoji_id=tag.emoji_id)
            )
        elif tag.name == "a":
            url = tag.url if tag.url is not None else "".join(self.out)[tag.start :]
            if url and ("." in url or ":" in url):
                self.entities.append(Entity("text_link", tag.start, length, url=url))
        elif tag.name == "blockquote":
            kind = "expandable_blockquote" if tag.expandable else "blockquote"
            self.entities.append(Entity(kind, tag.start, length))
        elif tag.name == "span":
            self.entities.append(Entity("spoiler", tag.start, length))
        elif tag.name == "code" and tag.language:
            self.entities.append(Entity("code", tag.start, length, language=tag.language))
        elif tag.name == "pre":
            self.close_pre(tag.start, length)
        else:
            self.entities.append(Entity(SIMPLE_TAGS[tag.name], tag.start, length))

    def close_pre(self, start: int, length: int) -> None:
        # <pre><code class="language-x">…</code></pre> is one pre entity with a language.
        inner = self.entities[-1] if self.entities else None
        if (
            inner is not None
            and inner.type == "code"
            and inner.language
            and (inner.offset, inner.length) == (start, length)
        ):
            self.entities[-1] = Entity("pre", start, length, language=inner.language)
            return
        self.entities.append(Entity("pre", start, length))


def decode_entity(s: str, i: int) -> tuple[str, int] | None:
    """Decodes the character reference at s[i] == '&'; None if it is not one Telegram knows."""
    n = len(s)
    j = i + 1
    if j < n and s[j] == "#":
        j += 1
        base = 10
        if j < n and s[j] in "xX":
            base = 16
            j += 1
        digits_begin = j
        allowed = "0123456789abcdefABCDEF" if base == 16 else "0123456789"
        while j < n and s[j] in allowed:
            j += 1
        if j == digits_begin or j - digits_begin > 8:
            return None
        code = int(s[digits_begin:j], base)
        if code == 0 or code > 0x10FFFF or 0xD800 <= code <= 0xDFFF:
            return None
        if j < n and s[j] == ";":
            j += 1
        return chr(code), j
    name_begin = j
    while j < n and s[j].isascii() and s[j].isalpha():
        j += 1
    decoded = NAMED_ENTITIES.get(s[name_begin:j])
    if decoded is None:
        return None
    if j < n and s[j] == ";":
        j += 1
    return decoded, j


def parse_html(markup: str, *, strict_entities: bool = True) -> tuple[str, list[Entity]]:
    """Plain text and entities of `markup`, trimmed like Telegram trims a message.

    Raises HtmlParseError with Telegram's description (without the "Bad Request: can't parse
    entities: " prefix).
    """
    plain, entities = _Parser(markup, strict_entities).run()
    return trim(plain, entities)


def trim(plain: str, entities: list[Entity]) -> tuple[str, list[Entity]]:
    """Drops leading and trailing whitespace as Telegram does, keeping entities in place."""
    stripped = plain.strip()
    if stripped == plain:
        return plain, entities
    lead = len(plain) - len(plain.lstrip())
    kept: list[Entity] = []
    for entity in entities:
        begin = max(entity.offset - lead, 0)
        end = min(entity.offset + entity.length - lead, len(stripped))
        if end > begin:
            kept.append(replace(entity, offset=begin, length=end - begin))
    return stripped, kept


def utf16_len(text: str) -> int:
    """Length in UTF-16 code units, the unit of Bot API entity offsets."""
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def to_api_entities(plain: str, entities: list[Entity]) -> list[dict[str, object]]:
    """Entities as the Bot API writes them (offsets and lengths in UTF-16 code units)."""
    result: list[dict[str, object]] = []
    for entity in entities:
        offset = utf16_len(plain[: entity.offset])
        length = utf16_len(plain[entity.offset : entity.offset + entity.length])
        item: dict[str, object] = {"type": entity.type, "offset": offset, "length": length}
        if entity.url is not None:
            item["url"] = entity.url
        if entity.language is not None:
            item["language"] = entity.language
        if entity.custom_emoji_id is not None:
            item["custom_emoji_id"] = entity.custom_emoji_id
        result.append(item)
    return result


def from_api_entities(plain: str, raw: list[dict[str, object]]) -> list[Entity]:
    """Entities given by the bot in UTF-16 units, converted to code-point offsets."""
    starts: dict[int, int] = {}
    units = 0
    for index, char in enumerate(plain):
        starts[units] = index
        units += 2 if ord(char) > 0xFFFF else 1
    starts[units] = len(plain)
    result: list[Entity] = []
    for item in raw:
        offset, length = item.get("offset"), item.get("length")
        if not isinstance(offset, int) or not isinstance(length, int):
            continue
        begin, end = starts.get(offset), starts.get(offset + length)
        if begin is None or end is None or end <= begin:
            continue
        url, language, emoji = item.get("url"), item.get("language"), item.get("custom_emoji_id")
        result.append(
            Entity(
                str(item.get("type", "")),
                begin,
                end - begin,
                url=url if isinstance(url, str) else None,
                language=language if isinstance(language, str) else None,
                custom_emoji_id=emoji if isinstance(emoji, str) else None,
            )
        )
    return result
