"""Wire values <-> Arrow, and records of either API <-> rows keyed by the user's field names.

Dates come without an offset, in server time or UTC as the connection declares
(``dates_in_utc``); they are read as instants in UTC. A check box is true when it holds ``Y``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo

import pyarrow as pa

from crmbridge.connectors.sagecrm.fields import EntityMeta, short_name
from crmbridge.core.schema import Field, FieldType, ObjectSchema


def to_instant(value: Any, zone: ZoneInfo) -> dt.datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    if isinstance(value, dt.datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=zone)
        return moment.astimezone(dt.UTC)
    if isinstance(value, dt.date):
        return dt.datetime(value.year, value.month, value.day, tzinfo=zone).astimezone(dt.UTC)
    raise ValueError(f"not a date: {value!r}")


def decode(value: Any, field: Field, zone: ZoneInfo) -> Any:
    """One wire value as the Python value of ``field``'s Arrow type."""
    ftype = field.type
    if ftype is FieldType.BOOLEAN:
        return str(value).strip().upper() in ("Y", "TRUE", "1") if value is not None else False
    if value is None:
        return None
    if ftype is FieldType.INTEGER:
        return int(value) if value != "" else None
    if ftype is FieldType.DECIMAL:
        if value == "":
            return None
        try:
            number = Decimal(str(value))
        except InvalidOperation:
            return None
        return number.quantize(Decimal(1).scaleb(-(field.scale or 0)))
    if ftype is FieldType.FLOAT:
        return float(value)
    if ftype is FieldType.DATETIME:
        return to_instant(value, zone)
    return str(value)


def to_batch(
    rows: Sequence[Mapping[str, Any]], schema: ObjectSchema, zone: ZoneInfo
) -> pa.RecordBatch:
    """Rows keyed by field name as a batch with ``schema``'s fields and types."""
    arrays = [
        pa.array([decode(r.get(f.name), f, zone) for r in rows], f.arrow_type)
        for f in schema.fields
    ]
    return pa.RecordBatch.from_arrays(arrays, schema=schema.arrow_schema())


def from_typed(record: Mapping[str, Any], meta: EntityMeta) -> dict[str, Any]:
    """A typed SOAP record (unprefixed names, nested children) as a row by field name."""
    row = {name: record.get(name) for name in meta.columns}
    if not meta.children:
        return row
    chosen: dict[tuple[str, str | None], Mapping[str, Any]] = {}
    for kind in ("address", "person"):
        items = list(record.get(kind) or [])
        primary = record.get(f"primary{kind}id")
        pick = next(
            (c for c in items if primary is not None and c.get(f"{kind}id") == primary), None
        )
        if pick is None and kind == "address":
            pick = next((c for c in items if str(c.get("type", "")).lower() == "business"), None)
        if pick is None and items:
            pick = items[0]
        if pick is not None:
            chosen[(kind, None)] = pick
    for kind in ("phone", "email"):
        for item in record.get(kind) or []:
            key = (kind, str(item.get("type") or "").lower())
            chosen.setdefault(key, item)
    for name, child in meta.children.items():
        item = chosen.get((child.kind, child.type.lower() if child.type else None))
        row[name] = item.get(short_name(child.column)) if item else None
    return row


def from_columns(record: Mapping[str, Any], meta: EntityMeta) -> dict[str, Any]:
    """A REST record (prefixed column names) as a row by field name."""
    lowered = {k.lower(): v for k, v in record.items()}
    return {name: lowered.get(column.lower()) for name, column in meta.columns.items()}


def to_wire(value: Any, field: Field, zone: ZoneInfo) -> Any:
    """A Python value for a write: datetimes naive in the CRM's answer zone, check boxes
    ``Y`` / empty, decimals as they are."""
    if value is None:
        return None
    if field.type is FieldType.DATETIME and isinstance(value, dt.datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=dt.UTC)
        return moment.astimezone(zone).replace(tzinfo=None, microsecond=0)
    if field.type is FieldType.BOOLEAN:
        return "Y" if value else None
    return value


def stored_form(batch: pa.RecordBatch, schema: ObjectSchema) -> pa.RecordBatch:
    """``batch`` as the CRM keeps it: drop-down codes as the list spells them (the server
    matches them without case), date-times to the second, an unticked check box false."""
    columns = []
    for name in batch.schema.names:
        column = batch.column(name)
        field = schema.field(name) if schema.has(name) else None
        if field is None:
            columns.append(column)
            continue
        if field.type is FieldType.ENUM and field.allowed_values:
            listed = {v.lower(): v for v in field.allowed_values}
            values = [
                listed.get(v.lower(), v) if isinstance(v, str) else v for v in column.to_pylist()
            ]
            column = pa.array(values, column.type)
        elif field.type is FieldType.DATETIME:
            values = [
                v.replace(microsecond=0) if v is not None else None for v in column.to_pylist()
            ]
            column = pa.array(values, column.type)
        elif field.type is FieldType.BOOLEAN:
            column = pa.array([bool(v) for v in column.to_pylist()], column.type)
        columns.append(column)
    return pa.RecordBatch.from_arrays(columns, schema=batch.schema)
