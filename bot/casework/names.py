"""Names in any script made comparable: Cyrillic, Latin, Chinese characters, Arabic script.

A relative writes a name the way they know it («Нұрлан», "Nurlan", «نۇرلان», 努尔兰); staff
search in whichever script their keyboard has. Every name is folded to a plain Latin key:
Chinese characters through pypinyin, every other script through anyascii, then a few
spelling habits that differ between transliterations (kh/h, gh/g, q/k, zh/j, y/i, doubled letters)
are merged, so the fuzzy comparison (rapidfuzz) only has to forgive real differences.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

from anyascii import anyascii
from pypinyin import lazy_pinyin

#: Uyghur and Kazakh in the Arabic script write every vowel, but anyascii reads the script as
#: Arabic, where alef is a silent carrier and ى a final "a": read them as these alphabets do.
_ARABIC_SCRIPT_VOWELS = str.maketrans({
    "ا": "a", "ى": "i", "ئ": "", "ە": "e", "ې": "e", "ۆ": "o", "ۈ": "u", "ۇ": "u",
    "ٴ": "", "ۋ": "v",
})
#: Spellings that differ only by transliteration habit, merged in this order.
_FOLDS: tuple[tuple[str, str], ...] = (
    ("dzh", "j"), ("zh", "j"), ("kh", "h"), ("gh", "g"), ("q", "k"),
    ("y", "i"), ("w", "v"), ("ts", "c"), ("ph", "f"),
)
_HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+")
_SPLIT = re.compile(r"[^a-z]+")
_DOUBLE = re.compile(r"(.)\1+")


def _latin(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).translate(_ARABIC_SCRIPT_VOWELS)
    # A run of Chinese characters is one name part: its syllables join into one word.
    text = _HAN.sub(lambda m: " " + "".join(lazy_pinyin(m.group(0))) + " ", text)
    return anyascii(text).lower()


def fold_word(word: str) -> str:
    """Merge transliteration habits until nothing changes (a fold can make another's input)."""
    while True:
        before = word
        for old, new in _FOLDS:
            word = word.replace(old, new)
        word = _DOUBLE.sub(r"\1", word)
        if word == before:
            return word


def name_key(text: str) -> str:
    """The folded Latin form of a name: words in order, separated by single spaces."""
    return " ".join(fold_word(w) for w in _SPLIT.split(_latin(text)) if w)


def name_keys(values: Iterable[object]) -> tuple[str, ...]:
    """Distinct non-empty keys of the texts among `values` (a voice message is no name)."""
    keys: list[str] = []
    for value in values:
        if not isinstance(value, str):
            continue
        for part in re.split(r"[,;/\n]+", value):
            key = name_key(part)
            if key and key not in keys:
                keys.append(key)
    return tuple(keys)
