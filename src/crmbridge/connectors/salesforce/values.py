"""Values between Salesforce's wire formats and Arrow.

Reading: REST records (JSON) and Bulk API 2.0 results (CSV) become Arrow batches typed per the
schema; conversions of whole columns are Arrow casts. Writing: Arrow values become JSON values
(sObject Collections) or CSV cells (Bulk API 2.0, where ``#N/A`` sets a field to null).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from crmbridge.core.schema import Field, FieldType

#: a Bulk API 2.0 CSV cell that sets the field to null (an empty cell leaves it alone)
CSV_NULL = "#N/A"


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


def records_to_batch(records: Sequence[dict[str, Any]], fields: Sequence[Field]) -> pa.RecordBatch:
    """REST query records as a batch with ``fields`` (in that order)."""
    arrays = [_json_column([r.get(f.name) for r in records], f) for f in fields]
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
