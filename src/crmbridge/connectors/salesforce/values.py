"""Values between Salesforce's wire formats and Arrow.

Reading: REST records (JSON) and Bulk API 2.0 results (CSV) become Arrow batches typed per the
schema; conversions of whole columns are Arrow casts. Writing: Arrow values become JSON values
(sObject Collections) or CSV cells (Bulk API 2.0, where ``#N/A`` sets a field to null).

**Stored form** (:func:`stored_form`): what Salesforce keeps of a value it is sent, so that a
value compares equal to what a query returns after the save: empty text is null, datetimes
keep milliseconds, and ids are in their canonical 18-character form (:func:`canonical_id`).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from crmbridge.core.schema import Field, FieldType

#: a Bulk API 2.0 CSV cell that sets the field to null (an empty cell leaves it alone)
CSV_NULL = "#N/A"
#: a Bulk API 2.0 CSV cell that leaves the field alone
CSV_UNSET = ""
_SUFFIX = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"
_ID_BODY = re.compile(r"[A-Za-z0-9]{15}")


def canonical_id(text: str) -> str | None:
    """The 18-character form of a record id, as Salesforce returns it; None when ``text`` is
    not an id. A 15-character id is case-sensitive and gets its suffix; an 18-character one is
    case-insensitive: its suffix says which letters of the first 15 are upper case."""
    if len(text) == 15 and _ID_BODY.fullmatch(text):
        suffix = ""
        for start in (0, 5, 10):
            bits = sum(1 << i for i, ch in enumerate(text[start : start + 5]) if ch.isupper())
            suffix += _SUFFIX[bits]
        return text + suffix
    if len(text) != 18 or not _ID_BODY.fullmatch(text[:15]):
        return None
    body: list[str] = []
    for part, code in enumerate(text[15:].upper()):
        bits = _SUFFIX.find(code)
        if bits < 0:
            return None
        for i, ch in enumerate(text[part * 5 : part * 5 + 5]):
            body.append(ch.upper() if bits >> i & 1 else ch.lower())
    return "".join(body) + text[15:].upper()


def canonical_ids(values: pa.Array) -> pa.Array:
    """``canonical_id`` of each value (values that are no ids stay as they are)."""
    distinct = pc.unique(values.drop_null()).to_pylist()
    changed = {v: c for v in distinct if (c := canonical_id(v)) is not None and c != v}
    if not changed:
        return values
    return pa.array(
        [changed.get(v, v) if v is not None else None for v in values.to_pylist()], pa.string()
    )


def stored_form(batch: pa.RecordBatch, fields: Sequence[Field]) -> pa.RecordBatch:
    """``batch`` with the columns of ``fields`` as Salesforce stores them (module docstring)."""
    types = {f.name: f.type for f in fields}
    for i, name in enumerate(batch.schema.names):
        kind = types.get(name)
        column = batch.column(i)
        if kind is None or column.null_count == len(column):
            continue
        if kind is FieldType.ID and pa.types.is_string(column.type):
            column = canonical_ids(column)
        if kind.is_text and pa.types.is_string(column.type):
            empty = pc.equal(column, "")
            column = pc.if_else(empty, pa.scalar(None, pa.string()), column)
        elif kind is FieldType.DATETIME and pa.types.is_timestamp(column.type):
            column = pc.floor_temporal(column, unit="millisecond")
        batch = batch.set_column(i, batch.schema.field(i), column)
    return batch


def _from_text(strings: pa.Array, field: Field) -> pa.Array:
    """A column of texts as the field's Arrow type (empty text is null)."""
    target = field.arrow_type
    strings = strings.cast(pa.string())
    cleaned = pc.if_else(pc.equal(strings, ""), pa.scalar(None, pa.string()), strings)
    if field.type.is_text:
        return cleaned
    if field.type is FieldType.BOOLEAN:
        return pc.equal(pc.utf8_lower(cleaned), "true")
    return pc.cast(cleaned, target)


def _json_column(values: list[Any], field: Field) -> pa.Array:
    ftype = field.type
    if ftype.is_text or ftype in (FieldType.DATE, FieldType.DATETIME):
        strings = pa.array([None if v is None else str(v) for v in values], pa.string())
        return _from_text(strings, field) if not ftype.is_text else strings
    if ftype is FieldType.DECIMAL:
        numbers = [None if v is None else Decimal(repr(v) if isinstance(v, float) else str(v))
                   for v in values]  # fmt: skip
        scale = Decimal(1).scaleb(-(field.scale or 0))
        return pa.array(
            [None if n is None else n.quantize(scale) for n in numbers], field.arrow_type
        )
    if ftype is FieldType.INTEGER:
        return pa.array([None if v is None else int(v) for v in values], pa.int64())
    if ftype is FieldType.FLOAT:
        return pa.array(values, pa.float64())
    return pa.array(values, field.arrow_type)


def _value(record: dict[str, Any], name: str) -> Any:
    """The value of ``name`` in a REST record; ``Account.Ext_Id__c`` is inside the related
    record ``Account`` (null when there is none)."""
    if name in record or "." not in name:
        return record.get(name)
    relationship, _, rest = name.partition(".")
    related = record.get(relationship)
    return _value(related, rest) if isinstance(related, dict) else None


def records_to_batch(records: Sequence[dict[str, Any]], fields: Sequence[Field]) -> pa.RecordBatch:
    """REST query records as a batch with ``fields`` (in that order)."""
    arrays = [_json_column([_value(r, f.name) for r in records], f) for f in fields]
    schema = pa.schema([pa.field(f.name, f.arrow_type) for f in fields])
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


def csv_to_batches(
    text: bytes, fields: Sequence[Field], names: Sequence[str]
) -> list[pa.RecordBatch]:
    """Bulk query results (CSV with a header of ``names``) as batches with ``fields``."""
    schema = pa.schema([pa.field(f.name, f.arrow_type) for f in fields])
    if not text.strip():
        return []
    table = pacsv.read_csv(
        io.BytesIO(text),
        read_options=pacsv.ReadOptions(use_threads=False),
        convert_options=pacsv.ConvertOptions(
            column_types={n: pa.string() for n in names},
            strings_can_be_null=False,
            quoted_strings_can_be_null=False,
        ),
    )
    arrays = [_from_text(table.column(f.name).combine_chunks(), f) for f in fields]
    if table.num_rows == 0:
        return []
    return [pa.RecordBatch.from_arrays(arrays, schema=schema)]


# -- writing ------------------------------------------------------------------------------
def json_value(value: Any) -> Any:
    """An Arrow value (as Python) in a JSON body."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dt.datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=dt.UTC)
        return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.") + (
            f"{moment.microsecond // 1000:03d}Z"
        )
    if isinstance(value, dt.date):
        return value.isoformat()
    if value == "":
        return None
    return value


def csv_cell(value: Any) -> str:
    """An Arrow value (as Python) as a Bulk API 2.0 CSV cell (null and '' are ``#N/A``)."""
    value = json_value(value)
    if value is None:
        return CSV_NULL
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def csv_text(header: Sequence[str], rows: Sequence[Sequence[str]]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue().encode("utf-8")


def csv_rows(text: str) -> tuple[list[str], list[list[str]]]:
    """(header, rows) of a CSV text."""
    rows = [r for r in csv.reader(io.StringIO(text, newline="")) if r]
    return (rows[0] if rows else []), rows[1:]
