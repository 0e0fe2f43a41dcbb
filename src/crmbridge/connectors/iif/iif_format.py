"""IIF text: tab-separated rows, ``!`` header rows naming the columns, CRLF line ends.

Values are written as QuickBooks Desktop reads them: dates ``MM/DD/YYYY``, amounts with two
decimals (quantities and prices with up to five), ``Y``/``N`` for yes and no. A value may not
hold a tab or a line break (the format has no quoting).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

DATE_FORMAT = "%m/%d/%Y"


class IifValueError(ValueError):
    """A value that IIF cannot hold."""


def cell(value: Any, *, scale: int | None = None) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "Y" if value else "N"
    if isinstance(value, Decimal | int | float):
        number = Decimal(str(value))
        if scale is not None:
            text = format(number.quantize(Decimal(1).scaleb(-scale)), "f")
            return text.rstrip("0").rstrip(".") if scale > 2 and "." in text else text
        return format(number, "f")
    if isinstance(value, dt.date):
        return value.strftime(DATE_FORMAT)
    text = str(value)
    if any(c in text for c in "\t\r\n"):
        raise IifValueError("holds a tab or a line break, which IIF cannot carry")
    return text


def row(kind: str, values: list[str]) -> str:
    return "\t".join([kind, *values]) + "\r\n"


def parse_date(text: str) -> dt.date | None:
    return dt.datetime.strptime(text, DATE_FORMAT).date() if text else None


def parse_decimal(text: str) -> Decimal | None:
    return Decimal(text) if text else None


def parse_bool(text: str) -> bool | None:
    return {"Y": True, "N": False}.get(text.upper()) if text else None
