"""Whole numbers in text from users (query strings, form fields, page links): one parser.

`str.isdigit()` accepts '²' and '٣', and `int()` refuses '²' and anything past 4,300 digits,
so `int(x) if x.isdigit()` answered 500 for `?lab_id=²`; this never raises."""

from __future__ import annotations

INT_MAX = 2**31 - 1  # an id: PostgreSQL's INTEGER


def ascii_int(text: str, maximum: int = INT_MAX) -> int | None:
    """The number `text` spells in ASCII digits when it is at most `maximum`, else None."""
    if not (text.isascii() and text.isdigit()) or len(text) > len(str(maximum)):
        return None
    value = int(text)
    return value if value <= maximum else None
