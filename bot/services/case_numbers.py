"""Case numbers a relative can read aloud: eight digits, random, with a Damm check digit.

Digits only, because a number is read the same way in Kazakh, Russian and English and typed on
any phone keypad; random, so that it reveals nothing about the relative or how many cases we
hold; a Damm check digit, so that any single wrong digit or swapped neighbours are caught.
Shown as ``4821-0736``; accepted with or without the hyphen or spaces.
"""

from __future__ import annotations

import re
import secrets

_DAMM = (
    (0, 3, 1, 7, 5, 9, 8, 6, 4, 2),
    (7, 0, 9, 2, 1, 5, 4, 8, 6, 3),
    (4, 2, 0, 6, 8, 7, 1, 3, 5, 9),
    (1, 7, 5, 0, 9, 8, 3, 4, 2, 6),
    (6, 1, 2, 3, 0, 4, 5, 9, 7, 8),
    (3, 6, 7, 4, 2, 0, 9, 5, 8, 1),
    (5, 8, 6, 9, 7, 2, 0, 1, 3, 4),
    (8, 9, 4, 5, 3, 6, 2, 0, 1, 7),
    (9, 4, 3, 8, 6, 1, 7, 2, 0, 5),
    (2, 5, 8, 1, 4, 3, 6, 7, 9, 0),
)


def damm_digit(digits: str) -> str:
    interim = 0
    for ch in digits:
        interim = _DAMM[interim][int(ch)]
    return str(interim)


def new_case_number() -> str:
    # The first digit is never 0, so the number survives spreadsheets that strip zeros.
    body = str(secrets.randbelow(9) + 1) + "".join(str(secrets.randbelow(10)) for _ in range(6))
    full = body + damm_digit(body)
    return f"{full[:4]}-{full[4:]}"


def parse_case_number(text: str) -> str | None:
    """The canonical ``NNNN-NNNN`` form, or None when it is not a valid case number."""
    digits = re.sub(r"[\s\-–—.]", "", text.strip().lstrip("#№"))
    if not re.fullmatch(r"[1-9]\d{7}", digits) or damm_digit(digits) != "0":
        return None
    return f"{digits[:4]}-{digits[4:]}"


def has_check_digit_mistake(text: str) -> bool:
    """Eight digits in the shape of a case number whose check digit does not fit: a digit is
    wrong or two are swapped (Damm catches both), rather than some other kind of text."""
    digits = re.sub(r"[\s\-–—.]", "", text.strip().lstrip("#№"))
    return bool(re.fullmatch(r"[1-9]\d{7}", digits)) and damm_digit(digits) != "0"
