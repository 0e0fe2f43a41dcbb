"""Values as the database driver returns them -> Arrow columns, exactly.

A value is carried unchanged into its field's Arrow type, or it is refused with the reason:
nothing is rounded, cut or guessed. ``1.5`` in an SQLite ``INTEGER`` column, a PostgreSQL
``numeric`` with more decimals than the field's scale, ``'infinity'`` or a date after 9999,
MariaDB's ``0000-00-00``, an unsigned 64-bit integer beyond the signed range: each is a
:class:`BadValue`, which the reader turns into a rejected record naming the field.

The reader selects the columns *raw* (see :func:`raw_column`): SQLAlchemy's result processing
is lossy for some types (MariaDB ``DOUBLE`` as a decimal rounded to 10 places, SQLite
decimals formatted to the column's scale) and raises for others (SQLite dates that are not
dates). psycopg raises for dates it cannot represent; :func:`register_postgres_loaders` makes
it return an :class:`Unreadable` value instead.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import decimal
import json
import math
import re
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import sqlalchemy as sa

from crmbridge.connectors.sql.types import field_type_of
from crmbridge.core.schema import DEFAULT_DECIMAL_PRECISION, DEFAULT_DECIMAL_SCALE, Field, FieldType

#: the range of crmbridge integers (Arrow int64)
MIN_INTEGER, MAX_INTEGER = -(2**63), 2**63 - 1

_INTEGER_TEXT = re.compile(r"[+-]?\d+")
_NUMBER_TEXT = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")
_FLOAT_WORDS = re.compile(r"[+-]?(inf|infinity|nan)", re.IGNORECASE)
_DATE_TEXT = re.compile(r"\d{4}-\d{2}-\d{2}")
_DATETIME_TEXT = re.compile(
    r"\d{4}-\d{2}-\d{2}([ T]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?)?(Z|[+-]\d{2}(:?\d{2})?)?"
)
_BOOLEAN_TEXT = {"1": True, "0": False, "true": True, "false": False, "t": True, "f": False}


@dataclass(frozen=True)
class Unreadable:
    """A stored value the driver cannot represent in Python (``'infinity'``, year 10000)."""

    text: str
    reason: str = "cannot be represented"

    def __str__(self) -> str:
        return self.text


@dataclass(frozen=True)
class BadValue:
    """A value of a column that does not fit its field: which row, which field, why."""

    row: int  #: index of the row in the rows converted
    field: str
    value: Any
    reason: str

    @property
    def problem(self) -> str:
        """``1.5 is not a whole number``."""
        shown = str(self.value)
        shown = shown if len(shown) <= 100 else shown[:100] + "..."
        if isinstance(self.value, str | Unreadable):
            shown = repr(shown)
        return f"{shown} {self.reason}"

    @property
    def message(self) -> str:
        """``field 'n': 1.5 is not a whole number``."""
        return f"field {self.field!r}: {self.problem}"


def raw_column(column: sa.ColumnElement[Any]) -> sa.ColumnElement[Any]:
    """``column`` selected without SQLAlchemy's result processing: the driver's own value,
    which :func:`to_arrow` converts exactly. Kept: SQLAlchemy's decoding of UUIDs (stored as
    hex text by some databases) and of the types crmbridge reads as text (MariaDB ``BIT``,
    JSON)."""
    if isinstance(column.type, sa.Uuid) or field_type_of(column.type) is None:
        return column
    return sa.type_coerce(column, sa.types.NullType()).label(column.name)


def to_arrow(values: Sequence[Any], field: Field) -> tuple[pa.Array, list[tuple[int, str]]]:
    """The values of one column as an Arrow array of ``field.arrow_type``, and the values that
    do not fit (index, reason); those are null in the array."""
    target = field.arrow_type
    kinds = {type(v) for v in values} - {type(None)}
    if kinds <= _EXACT_KINDS[field.type]:
        try:
            return pa.array(values, target), []
        except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
            pass  # out of range or scale: found and explained one by one below
    elif field.type is FieldType.BOOLEAN and kinds == {int}:
        integers = pa.array(values, pa.int64())
        if pc.all(pc.is_in(integers, pa.array([0, 1]))).as_py() is not False:
            return pc.cast(integers, pa.bool_()), []
    convert = _converter(field)
    out: list[Any] = []
    bad: list[tuple[int, str]] = []
    for i, value in enumerate(values):
        if value is None:
            out.append(None)
            continue
        try:
            out.append(convert(value))
        except _NotExactError as err:
            out.append(None)
            bad.append((i, str(err)))
    return pa.array(out, target), bad


#: the Python types a driver returns that go into a field's Arrow type unchanged
_EXACT_KINDS: dict[FieldType, set[type]] = {
    FieldType.INTEGER: {int},
    FieldType.FLOAT: {float},
    FieldType.DECIMAL: {decimal.Decimal, int},
    FieldType.BOOLEAN: {bool},
    FieldType.DATE: {dt.date},
    FieldType.DATETIME: {dt.datetime},
    **{t: {str} for t in FieldType if t.is_text},
}


class _NotExactError(ValueError):
    """The value does not fit the field; the message says why (``is not a whole number``)."""


def _converter(field: Field) -> Callable[[Any], Any]:
    ftype = field.type
    if ftype is FieldType.INTEGER:
        return _to_integer
    if ftype is FieldType.FLOAT:
        return _to_float
    if ftype is FieldType.DECIMAL:
        return _decimal_converter(field)
    if ftype is FieldType.BOOLEAN:
        return _to_boolean
    if ftype is FieldType.DATE:
        return _to_date
    if ftype is FieldType.DATETIME:
        return _to_datetime
    return _to_text


def _unreadable(value: Any) -> None:
    if isinstance(value, Unreadable):
        raise _NotExactError(value.reason)


def _to_integer(value: Any) -> int:
    _unreadable(value)
    if isinstance(value, str) and _INTEGER_TEXT.fullmatch(value.strip()):
        value = int(value.strip())
    if not _is_whole(value):
        raise _NotExactError("is not a whole number")
    number = int(value)
    if not MIN_INTEGER <= number <= MAX_INTEGER:
        raise _NotExactError(f"is beyond the integer range ({MIN_INTEGER} to {MAX_INTEGER})")
    return number


def _is_whole(value: Any) -> bool:
    if isinstance(value, int):
        return True
    if isinstance(value, float):
        return value.is_integer()
    if isinstance(value, decimal.Decimal):
        return value.is_finite() and value == value.to_integral()
    return False


def _to_float(value: Any) -> float:
    _unreadable(value)
    if isinstance(value, float):
        return value
    if isinstance(value, int | decimal.Decimal) and not isinstance(value, bool):
        number = float(value)
        if math.isfinite(number) and decimal.Decimal(repr(number)) != value:
            raise _NotExactError("cannot be represented exactly as a floating-point number")
        if not math.isfinite(number) and isinstance(value, int):
            raise _NotExactError("is beyond the floating-point range")
        return number
    if isinstance(value, str):
        text = value.strip()
        if _NUMBER_TEXT.fullmatch(text) or _FLOAT_WORDS.fullmatch(text):
            return float(text)
    raise _NotExactError("is not a number")


def _decimal_converter(field: Field) -> Callable[[Any], decimal.Decimal]:
    precision = field.precision or DEFAULT_DECIMAL_PRECISION
    scale = DEFAULT_DECIMAL_SCALE if field.scale is None else field.scale
    exponent = decimal.Decimal(1).scaleb(-scale)
    context = decimal.Context(prec=precision + 1, traps=[decimal.InvalidOperation])
    kind = f"decimal({precision},{scale})"

    def convert(value: Any) -> decimal.Decimal:
        _unreadable(value)
        number = _as_decimal(value)
        if not number.is_finite():
            raise _NotExactError(f"is not a finite number (the field is {kind})")
        if number != 0 and number.adjusted() >= precision - scale:
            raise _NotExactError(
                f"has more than {precision - scale} digits before the decimal point "
                f"(the field is {kind})"
            )
        exact = number.quantize(exponent, context=context)
        if exact != number:
            raise _NotExactError(f"has more than {scale} decimals (the field is {kind})")
        return exact

    return convert


def _as_decimal(value: Any) -> decimal.Decimal:
    if isinstance(value, decimal.Decimal):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return decimal.Decimal(value)
    if isinstance(value, float):
        # what the database meant: SQLite keeps decimals as doubles (12.1, not 12.0999...)
        return decimal.Decimal(repr(value)) if math.isfinite(value) else decimal.Decimal(value)
    if isinstance(value, str) and _NUMBER_TEXT.fullmatch(value.strip()):
        return decimal.Decimal(value.strip())
    raise _NotExactError("is not a number")


def _to_boolean(value: Any) -> bool:
    _unreadable(value)
    if isinstance(value, bool):
        return value
    if isinstance(value, int | decimal.Decimal) and value in (0, 1):
        return value == 1
    if isinstance(value, str) and value.strip().lower() in _BOOLEAN_TEXT:
        return _BOOLEAN_TEXT[value.strip().lower()]
    raise _NotExactError("is not a boolean (true/false or 1/0)")


def _to_date(value: Any) -> dt.date:
    _unreadable(value)
    if isinstance(value, dt.datetime):
        if value.time() != dt.time(0) or value.tzinfo is not None:
            raise _NotExactError("is a date-time, not a date")
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str) and _DATE_TEXT.fullmatch(value.strip()):
        with contextlib.suppress(ValueError):
            return dt.date.fromisoformat(value.strip())
    raise _NotExactError("is not a valid date")


def _to_datetime(value: Any) -> dt.datetime:
    _unreadable(value)
    if isinstance(value, str) and _DATETIME_TEXT.fullmatch(value.strip()):
        with contextlib.suppress(ValueError):
            value = dt.datetime.fromisoformat(value.strip())
    elif type(value) is dt.date:
        value = dt.datetime.combine(value, dt.time(0))
    if not isinstance(value, dt.datetime):
        raise _NotExactError("is not a valid date-time")
    if value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)  # naive date-times hold UTC
    try:
        return value.astimezone(dt.UTC)
    except OverflowError:
        raise _NotExactError("is beyond the date-time range (years 1 to 9999 in UTC)") from None


def _to_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, uuid.UUID | Unreadable):
        return str(value)
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, default=str)
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).hex()
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, float):
        return repr(value)
    return str(value)


# -- PostgreSQL (psycopg 3) ------------------------------------------------------------------
def register_postgres_loaders(dbapi_connection: Any) -> None:
    """Make a psycopg connection return :class:`Unreadable` for dates and date-times Python
    cannot hold (``infinity``, BC, after 9999) instead of failing the whole read."""
    from psycopg.types import datetime as pg

    adapters = dbapi_connection.adapters
    for name, base in (
        ("date", pg.DateLoader),
        ("timestamp", pg.TimestampLoader),
        ("timestamptz", pg.TimestamptzLoader),
    ):
        adapters.register_loader(name, _tolerant(base))


def _tolerant(base: type[Any]) -> type[Any]:
    from psycopg import DataError

    class Tolerant(base):  # type: ignore[misc]
        def load(self, data: Any) -> Any:
            try:
                return super().load(data)
            except DataError as err:
                text = bytes(data).decode("utf-8", "replace")
                return Unreadable(text, _why(str(err)))

    Tolerant.__name__ = f"Tolerant{base.__name__}"
    return Tolerant


def _why(message: str) -> str:
    """psycopg's 'date too large (after year 10K): ...' as a reason."""
    detail = message.split(":", 1)[0].strip()
    return f"cannot be represented ({detail}; dates run from year 1 to 9999)"
