"""Reading a whole sheet through fastexcel: calamine to Arrow in native code, no Python per cell.

The result must be exactly what the row-by-row reader (``reader.py``) gives, so this path
only takes sheets where it can be sure of that and returns None for the others, which the
row-by-row reader then reads:

* ``skip_rows`` is set, or the sheet holds error cells (both need the row-by-row reader);
* a text cell reads as one of fastexcel's "missing value" words (``NA``, ``n/a``, ``null``,
  ``nan`` ...: :data:`NA_MARK`): fastexcel would make it an empty cell (or NaN) of a number,
  date or boolean column, where the row-by-row reader reports the row;
* a column mixes kinds of cells anywhere in the sheet (fastexcel's strict inference over every
  row: text in a number column, a number in a text column ...), or holds durations;
* the type inferred from the first ``infer_rows`` rows does not hold for every row (a ``2.5``
  below whole numbers, a time below dates at midnight, a column empty in the first rows): the
  row-by-row reader reports those rows;
* a header name that fastexcel's renaming of repeated names makes ambiguous.
"""

from __future__ import annotations

import re
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from crmbridge.connectors.common.files import column_names
from crmbridge.connectors.xlsx.error_cells import shared_strings_hold
from crmbridge.core.schema import Field, FieldType, ObjectSchema

#: fastexcel's name of a column without a header cell
_UNNAMED = "__UNNAMED__"
_REPEATED = re.compile(r"(.+)_[0-9]+")
#: a text fastexcel reads as a missing value (or NaN) in a typed column, as it ends a cell's
#: text in the XML (``>n/a</``, XML-escaped)
NA_MARK = re.compile(
    rb">(?:#N/A(?: N/A)?|#NA|-1\.#IND|-1\.#QNAN|-NaN|-nan|1\.#IND|1\.#QNAN|&lt;NA&gt;"
    rb"|N/A|NA|NULL|NaN|None|n/a|nan|null)</"
)


def missing_words(path: Path, found: set[str]) -> bool:
    """Does the workbook hold a text fastexcel would read as missing? ``found``: the marks
    the sheet's own XML holds (``error_cells.sheet_marks``), ``"missing"`` for NA_MARK."""
    return "missing" in found or shared_strings_hold(path, NA_MARK)


def read_sheet(
    path: Path, sheet: str, object: str, *, header: bool, infer_rows: int
) -> tuple[ObjectSchema, pa.Table] | None:
    """The sheet's schema and every non-empty data row, typed; None: read it row by row."""
    try:
        import fastexcel
    except ImportError:
        return None
    try:
        loaded = fastexcel.read_excel(str(path)).load_sheet(
            sheet,
            header_row=0 if header else None,
            schema_sample_rows=2**31 - 1,  # every row: a mix anywhere is found, not coerced
            dtype_coercion="strict",
        )
        names = [c.name for c in loaded.available_columns()]
        generated = [c.column_name_from == "generated" for c in loaded.available_columns()]
        table = pa.Table.from_batches([loaded.to_arrow()])
    except Exception:  # fastexcel cannot give this sheet as the connector reads it
        return None
    if table.num_columns == 0 or _ambiguous(names):
        return None
    raw = ["" if g or not header else n for n, g in zip(names, generated, strict=True)]
    table = _without_empty_rows(table)
    sample = table.slice(0, infer_rows)
    fields, columns = [], []
    for name, values, seen in zip(
        column_names(raw, header=header), table.columns, sample.columns, strict=True
    ):
        typed = _typed(values, seen)
        if typed is None:
            return None
        fields.append(Field(name, typed[0]))
        columns.append(typed[1])
    schema = ObjectSchema(object, tuple(fields))
    return schema, pa.Table.from_arrays(columns, schema=schema.arrow_schema())


def _ambiguous(names: list[str]) -> bool:
    """fastexcel names a repeated header ``a_1``: is some name both that and a real one?"""
    present = set(names)
    return any((m := _REPEATED.fullmatch(n)) and m.group(1) in present for n in names)


def _without_empty_rows(table: pa.Table) -> pa.Table:
    """Empty text cells as nulls, and the rows with nothing in them left out."""
    columns = [
        pc.if_else(pc.equal(c, ""), pa.scalar(None, c.type), c) if pa.types.is_string(c.type) else c
        for c in table.columns
    ]
    table = pa.Table.from_arrays(columns, names=table.column_names)
    if not columns:
        return table
    filled = pc.is_valid(columns[0])
    for column in columns[1:]:
        filled = pc.or_(filled, pc.is_valid(column))
    return table.filter(filled)


def _typed(
    values: pa.ChunkedArray, seen: pa.ChunkedArray
) -> tuple[FieldType, pa.ChunkedArray] | None:
    """The column's type as the first rows (``seen``) infer it, and its values in that type;
    None when some value does not fit it (or when the first rows hold no value)."""
    dtype = values.type
    if seen.null_count == len(seen):
        # the first rows infer text; later values would need the row-by-row reader's text
        if values.null_count == len(values):
            return FieldType.STRING, pa.chunked_array([pa.nulls(len(values), pa.string())])
        return None
    if pa.types.is_boolean(dtype):
        return FieldType.BOOLEAN, values
    if pa.types.is_string(dtype):
        return FieldType.STRING, values
    if pa.types.is_integer(dtype):
        return FieldType.INTEGER, pc.cast(values, pa.int64())
    if pa.types.is_floating(dtype):
        if not _all_whole(seen):
            return FieldType.FLOAT, pc.cast(values, pa.float64())
        if not _all_whole(values) or pc.max(pc.abs(values)).as_py() >= 2**63:
            return None
        return FieldType.INTEGER, pc.cast(values, pa.int64())
    if pa.types.is_timestamp(dtype):
        utc = pc.cast(pc.cast(values, pa.timestamp("us")), pa.timestamp("us", tz="UTC"))
        if not _all_midnight(seen):
            return FieldType.DATETIME, utc
        if not _all_midnight(values):
            return None
        return FieldType.DATE, pc.cast(pc.cast(values, pa.timestamp("s")), pa.date32())
    if pa.types.is_date(dtype):
        return FieldType.DATE, pc.cast(values, pa.date32())
    return None  # durations, times of day: text, as the row-by-row reader writes it


def _all_whole(values: pa.ChunkedArray) -> bool:
    return bool(pc.all(pc.equal(pc.floor(values), values)).as_py() is not False)


def _all_midnight(values: pa.ChunkedArray) -> bool:
    midnight = pc.equal(pc.cast(pc.floor_temporal(values, unit="day"), values.type), values)
    return bool(pc.all(midnight).as_py() is not False)
