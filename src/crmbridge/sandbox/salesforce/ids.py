"""Salesforce record ids: a 3-character key prefix, a sequence in base 62, and the
3-character case-safe suffix that turns the case-sensitive 15-character id into 18 characters.
"""

from __future__ import annotations

import re

_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_SUFFIX = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"
_ID = re.compile(r"[A-Za-z0-9]{15}(?:[A-Z0-5]{3})?")
#: the pod/instance characters of every id the sandbox makes
_POD = "5g"


def suffix(id15: str) -> str:
    """The case-safe suffix of a 15-character id: one character per 5, from the upper-case
    letters' positions read as a binary number (lowest bit first)."""
    out = ""
    for start in (0, 5, 10):
        bits = sum(1 << i for i, ch in enumerate(id15[start : start + 5]) if "A" <= ch <= "Z")
        out += _SUFFIX[bits]
    return out


def make_id(prefix: str, number: int) -> str:
    """The 18-character id of record ``number`` of the object whose key prefix is ``prefix``."""
    digits = ""
    while True:
        number, rest = divmod(number, 62)
        digits = _BASE62[rest] + digits
        if number == 0:
            break
    body = prefix + _POD + "0" * (10 - len(digits)) + digits
    return body + suffix(body)


def normalize(value: str) -> str | None:
    """The 18-character form of a 15- or 18-character id, or None when it is not an id
    (an 18-character id whose suffix does not match is not one either)."""
    if not _ID.fullmatch(value):
        return None
    body = value[:15]
    full = body + suffix(body)
    if len(value) == 18 and value[15:].upper() != full[15:]:
        return None
    return full
