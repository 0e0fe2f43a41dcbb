"""Values between the wire (JSON bodies, CSV cells) and storage (SQLite).

Storage: text as text (an empty string is stored as NULL, as Salesforce does), booleans
0/1, numbers as numbers rounded to the field's scale, dates ``YYYY-MM-DD``, datetimes UTC
``YYYY-MM-DDTHH:MM:SS.mmmZ`` (fixed width, so text order is time order).
JSON answers show datetimes as ``2024-05-01T12:00:00.000+0000``; CSV as ``...000Z``.
"""

from __future__ import annotations

import datetime as dt
import re
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from crmbridge.sandbox.salesforce.errors import RecordRefusedError
from crmbridge.sandbox.salesforce.objects import NUMBER_TYPES, FieldDef

_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_DATETIME = re.compile(
    r"(\d{4}-\d{2}-\d{2})T(\d{2}):(\d{2}):(\d{2})(\.\d{1,3})?(Z|[+-]\d{2}:?\d{2})?"
)
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
#: a CSV cell that sets a field to null (an empty cell leaves it alone)
CSV_NULL = "#N/A"


class BadValueError(ValueError):
    """A value of the wrong type (JSON: the whole body is refused; CSV: the record is)."""


def stamp(moment: dt.datetime) -> str:
    """The stored form of an instant."""
    utc = moment.astimezone(dt.UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def parse_datetime(text: str) -> str | None:
    """The stored form of an ISO datetime text (``Z``, ``+hh:mm`` or ``+hhmm``), or None."""
    match = _DATETIME.fullmatch(text)
    if not match:
        return None
    day, hh, mm, ss, frac, zone = match.groups()
    try:
        base = dt.datetime.fromisoformat(f"{day}T{hh}:{mm}:{ss}")
    except ValueError:
        return None
    millis = int((frac or ".0")[1:].ljust(3, "0"))
    offset = dt.timedelta(0)
    if zone and zone != "Z":
        sign = -1 if zone[0] == "-" else 1
        digits = zone[1:].replace(":", "")
        offset = sign * dt.timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
    moment = base.replace(microsecond=millis * 1000, tzinfo=dt.timezone(offset))
    return stamp(moment)


def parse_date(text: str) -> str | None:
    if not _DATE.fullmatch(text):
        return None
    try:
        return dt.date.fromisoformat(text).isoformat()
    except ValueError:
        return None


def _number(fdef: FieldDef, value: Any) -> float | int:
    if isinstance(value, bool):
        raise BadValueError(value)
    try:
        number = Decimal(str(value).strip()) if isinstance(value, str) else Decimal(value)
    except (InvalidOperation, TypeError, ValueError):
        raise BadValueError(value) from None
    if not number.is_finite():
        raise BadValueError(value)
    if fdef.type == "int":
        if number != number.to_integral_value():
            raise BadValueError(value)
        result: float | int = int(number)
    else:
        rounded = number.quantize(Decimal(1).scaleb(-fdef.scale), rounding=ROUND_HALF_UP)
        result = float(rounded) if fdef.scale else float(int(rounded))
    digits = (fdef.precision or 18) - fdef.scale
    if abs(result) >= 10**digits:
        raise RecordRefusedError(
            "NUMBER_OUTSIDE_VALID_RANGE",
            f"{fdef.label}: value outside of valid range on numeric field: {value}",
            [fdef.name],
        )
    return result


def _boolean(value: Any) -> int:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return int(value.strip().lower() == "true")
    raise BadValueError(value)


def to_storage(fdef: FieldDef, value: Any) -> Any:
    """The stored form of a wire value (JSON value or CSV text already un-nulled).

    A value of the wrong type raises :class:`BadValueError`; one the field refuses (too long, not
    in a restricted picklist, out of range) raises :class:`RecordRefusedError`.
    """
    if value is None:
        return None
    kind = fdef.type
    if kind == "boolean":
        return _boolean(value)
    if kind in NUMBER_TYPES:
        return _number(fdef, value)
    if kind == "date":
        parsed = parse_date(value) if isinstance(value, str) else None
        if parsed is None:
            raise BadValueError(value)
        return parsed
    if kind == "datetime":
        parsed = parse_datetime(value) if isinstance(value, str) else None
        if parsed is None and isinstance(value, str):
            day = parse_date(value)
            parsed = f"{day}T00:00:00.000Z" if day else None
        if parsed is None:
            raise BadValueError(value)
        return parsed
    if isinstance(value, dict | list):
        raise BadValueError(value)
    text = value if isinstance(value, str) else _plain(value)
    if text == "":
        return None
    return _check_text(fdef, text)


def _plain(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _check_text(fdef: FieldDef, text: str) -> str:
    if fdef.length and len(text) > fdef.length:
        raise RecordRefusedError(
            "STRING_TOO_LONG",
            f"{fdef.label}: data value too large: {text[:80]} (max length={fdef.length})",
            [fdef.name],
        )
    if fdef.type == "email" and not _EMAIL.fullmatch(text):
        raise RecordRefusedError(
            "INVALID_EMAIL_ADDRESS", f"{fdef.label}: invalid email address: {text}", [fdef.name]
        )
    if fdef.type == "picklist" and fdef.restricted and text not in fdef.picklist:
        raise RecordRefusedError(
            "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
            f"{fdef.label}: bad value for restricted picklist field: {text}",
            [fdef.name],
        )
    return text


def json_type_name(fdef: FieldDef) -> str:
    """The type named in a JSON_PARSER_ERROR message."""
    return {"int": "int", "boolean": "boolean", "date": "date", "datetime": "datetime"}.get(
        fdef.type, "double" if fdef.type in NUMBER_TYPES else "string"
    )


def to_json(fdef: FieldDef, stored: Any) -> Any:
    """A stored value as a JSON answer shows it."""
    if stored is None:
        return None
    if fdef.type == "boolean":
        return bool(stored)
    if fdef.type == "int":
        return int(stored)
    if fdef.type in NUMBER_TYPES:
        return float(stored)
    if fdef.type == "datetime":
        return str(stored)[:-1] + "+0000"
    return stored


def to_csv(fdef: FieldDef, stored: Any) -> str:
    """A stored value as a Bulk API 2.0 CSV cell."""
    if stored is None:
        return ""
    if fdef.type == "boolean":
        return "true" if stored else "false"
    if fdef.type == "int":
        return str(int(stored))
    if fdef.type in NUMBER_TYPES:
        number = float(stored)
        return str(int(number)) if number.is_integer() and not fdef.scale else repr(number)
    return str(stored)


def from_csv(fdef: FieldDef, cell: str) -> Any:
    """A CSV cell in storage form: ``#N/A`` is NULL; text for text fields, parsed otherwise."""
    if cell == CSV_NULL:
        return None
    if fdef.type in ("boolean", "date", "datetime") or fdef.type in NUMBER_TYPES:
        return to_storage(fdef, cell.strip())
    return to_storage(fdef, cell)
