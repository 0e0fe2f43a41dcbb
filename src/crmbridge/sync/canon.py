"""Values as a sync compares and remembers them: one text per value, the same for equal values.

A sync asks "did this field change since the last sync?" and "do both sides hold the same
value?". Both are answered on the **canonical text** of a value (:func:`canon`), computed per
column with Arrow:

* text as it is; the empty text is null (a CRM stores "" as null, a file has no null);
* numbers by value: ``5``, ``5.0`` and ``Decimal('5.000')`` are all ``5``; ``5.50`` is ``5.5``;
* date-times as the instant in UTC, to the second (``2026-03-01T09:30:00Z``): CRMs keep
  seconds, and a side's wall-clock times were made instants when read (:func:`instants`);
* dates ``2026-03-01``; booleans ``true`` / ``false``; lists their items joined.

The link table's *base* keeps these texts, so the base is small, exact, and independent of
the Python or database types that carried the values.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

#: joins the items of a list value
_ITEM_SEPARATOR = "\x1e"
#: integers that a float64 carries exactly
_EXACT_FLOAT = 2.0**53


def canon(values: pa.Array | pa.ChunkedArray) -> pa.Array:
    """The canonical text of each value (null stays null)."""
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    dtype = values.type
    if pa.types.is_null(dtype):
        return pa.nulls(len(values), pa.string())
    if pa.types.is_string(dtype) or pa.types.is_large_string(dtype):
        text = values.cast(pa.string())
        return pc.if_else(pc.equal(text, ""), pa.scalar(None, pa.string()), text)
    if pa.types.is_boolean(dtype):
        return pc.if_else(values, "true", "false")
    if pa.types.is_integer(dtype):
        return values.cast(pa.string())
    if pa.types.is_floating(dtype):
        floats = values.cast(pa.float64())
        whole = pc.and_(pc.equal(pc.floor(floats), floats), pc.less(pc.abs(floats), _EXACT_FLOAT))
        as_int = pc.if_else(whole, floats, pa.scalar(None, pa.float64())).cast(pa.int64())
        return pc.if_else(whole, as_int.cast(pa.string()), floats.cast(pa.string()))
    if pa.types.is_decimal(dtype):
        return _trim_decimal(values.cast(pa.string()))
    if pa.types.is_timestamp(dtype):
        moments = values if dtype.tz else pc.assume_timezone(values, "UTC")
        utc = moments.cast(pa.timestamp("us", tz="UTC"))
        seconds = pc.floor_temporal(utc, unit="second").cast(pa.timestamp("s", tz="UTC"))
        return pc.strftime(seconds, format="%Y-%m-%dT%H:%M:%SZ")
    if pa.types.is_date(dtype):
        return pc.strftime(values.cast(pa.date32()), format="%Y-%m-%d")
    if pa.types.is_list(dtype) or pa.types.is_large_list(dtype):
        items = values.cast(pa.list_(pa.string()))
        joined = pc.binary_join(items, _ITEM_SEPARATOR)
        return pc.if_else(pc.equal(joined, ""), pa.scalar(None, pa.string()), joined)
    return values.cast(pa.string())


def _trim_decimal(text: pa.Array) -> pa.Array:
    """``12.500`` -> ``12.5``, ``12.000`` -> ``12``, ``-0.0`` -> ``0``."""
    has_point = pc.match_substring(text, ".")
    trimmed = pc.replace_substring_regex(text, pattern=r"0+$", replacement="")
    trimmed = pc.replace_substring_regex(trimmed, pattern=r"\.$", replacement="")
    trimmed = pc.if_else(pc.equal(trimmed, "-0"), "0", trimmed)
    return pc.if_else(has_point, trimmed, text)


def instants(values: pa.Array, zone: str) -> pa.Array:
    """Date-times read from a side whose date-times are wall-clock times in ``zone`` (a
    MySQL DATETIME, a spreadsheet): the instants they mean, in UTC."""
    if zone == "UTC" or not pa.types.is_timestamp(values.type):
        return values
    wall = values.cast(pa.timestamp(values.type.unit))  # the wall-clock numbers as read
    return pc.assume_timezone(wall, zone).cast(pa.timestamp(values.type.unit, tz="UTC"))


def wall_clock(values: pa.Array, zone: str) -> pa.Array:
    """The reverse of :func:`instants`: instants as the wall-clock times a side in ``zone``
    keeps (labelled UTC, as connectors carry every date-time)."""
    if zone == "UTC" or not pa.types.is_timestamp(values.type):
        return values
    unit = values.type.unit
    local = pc.local_timestamp(values.cast(pa.timestamp(unit, tz=zone)))
    return pc.assume_timezone(local, "UTC").cast(values.type)


__all__ = ["canon", "instants", "wall_clock"]
