"""Values between the wire and the database, as SQL Server under Sage CRM treats them.

The database keeps datetimes as naive ``YYYY-MM-DD HH:MM:SS`` in the server's time zone. Answers
give them in server time or in UTC, as the "dates in UTC" setting says, without an offset; a
value sent with an offset is converted, one without is read in that same zone. Text longer than
its column is refused ("String or binary data would be truncated"), as SQL Server does; a
drop-down value must be one of its list's codes (matched case-insensitively, stored as listed).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo

from crmbridge.sandbox.sagecrm.entities import (
    CHECKBOX,
    DATETIME,
    DROPDOWN,
    DROPDOWNS,
    INT,
    NUMERIC,
    Column,
)
from crmbridge.sandbox.sagecrm.problems import ApiError

DB_FORMAT = "%Y-%m-%d %H:%M:%S"
UTC = dt.UTC


def now_db(zone: ZoneInfo) -> str:
    """The current time as the database keeps it (server time, whole seconds)."""
    return dt.datetime.now(zone).strftime(DB_FORMAT)


def parse_moment(text: str, zone: ZoneInfo) -> dt.datetime:
    """An aware datetime from ISO text; naive text is in ``zone``."""
    cleaned = text.strip().replace("Z", "+00:00")
    moment = dt.datetime.fromisoformat(cleaned)
    return moment if moment.tzinfo else moment.replace(tzinfo=zone)


def to_db(column: Column, value: Any, *, server: ZoneInfo, wire: ZoneInfo) -> Any:
    """``value`` as sent by a client, as the database stores it in ``column``.

    ``wire`` is the zone naive datetimes are read in. Raises ApiError for a value the column
    refuses.
    """
    if value is None or (isinstance(value, str) and value == "" and column.type != "text"):
        return None
    name = column.name
    if column.type == INT:
        try:
            if isinstance(value, bool):
                raise ValueError
            return int(str(value).strip())
        except ValueError:
            raise ApiError(f"Invalid integer value {value!r} for field {name}") from None
    if column.type == NUMERIC:
        try:
            number = Decimal(str(value).strip())
        except InvalidOperation:
            raise ApiError(f"Invalid numeric value {value!r} for field {name}") from None
        if not number.is_finite():
            raise ApiError(f"Invalid numeric value {value!r} for field {name}")
        return float(number)
    if column.type == DATETIME:
        try:
            moment = parse_moment(str(value), wire)
        except ValueError:
            raise ApiError(f"Invalid date value {value!r} for field {name}") from None
        return moment.astimezone(server).strftime(DB_FORMAT)
    if column.type == CHECKBOX:
        flag = str(value).strip().lower()
        if flag in ("y", "true", "1", "on"):
            return "Y"
        if flag in ("n", "false", "0", "off", ""):
            return None
        raise ApiError(f"Invalid checkbox value {value!r} for field {name}")
    text = str(value)
    if column.type == DROPDOWN and text:
        codes = DROPDOWNS.get(name, ())
        match = next((c for c in codes if c.lower() == text.lower()), None)
        if match is None:
            raise ApiError(
                f"Invalid value '{text}' for field {name}: not in its selection list "
                f"({', '.join(codes)})"
            )
        return match
    if column.length is not None and len(text) > column.length:
        raise ApiError(
            f"String or binary data would be truncated: field {name} holds {column.length} "
            f"characters, the value has {len(text)}"
        )
    return text


def from_db(column: Column, value: Any, *, server: ZoneInfo, wire: ZoneInfo) -> Any:
    """A stored value as a Python value for an answer (datetimes naive in ``wire``)."""
    if value is None:
        return None
    if column.type == DATETIME:
        moment = dt.datetime.strptime(str(value), DB_FORMAT).replace(tzinfo=server)
        return moment.astimezone(wire).replace(tzinfo=None)
    if column.type == NUMERIC:
        return Decimal(repr(float(value))).normalize()
    if column.type == INT:
        return int(value)
    return str(value)


def to_text(value: Any) -> str:
    """A Python answer value as XML / JSON text (datetimes ``YYYY-MM-DDTHH:MM:SS``)."""
    if isinstance(value, dt.datetime):
        return value.strftime("%Y-%m-%dT%H:%M:%S")
    if isinstance(value, Decimal):
        return format(value, "f")
    return str(value)


def to_json(value: Any) -> Any:
    """A Python answer value for a REST answer."""
    if isinstance(value, dt.datetime):
        return to_text(value)
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    return value
