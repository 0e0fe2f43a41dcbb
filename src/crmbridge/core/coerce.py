"""Converting a batch's columns to given types, rejecting (not crashing on) values that don't fit.

A text column whose every value has its type's plain form (``42``, ``2024-01-31``, ``2024-01-31
10:00:00``, ``12.50``, ``true``), and a number column whose every value fits the new type as it
is, is converted by Arrow (:func:`plain_cast`, the same values); one DuckDB query per batch
converts the other columns: a value that was present before and is NULL after did not convert,
and its record is reported as a :class:`Rejection`. The rules are those of ``try_cast`` in the
expression language (docs/expressions.md, "Conversions"): text must follow the type's one format
(``'0x1A'``, ``'1e3'`` and ``'12.5'`` are not integers), spaces around it are ignored, text
date-times without an offset are UTC, numbers are rounded half away from zero to the target's
scale (integers: no decimals).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

from crmbridge.core.duck import connect, duckdb_type
from crmbridge.core.expressions import KIND_WORDS, convert_sql, kind_of
from crmbridge.core.nested import describe as describe_nested
from crmbridge.core.nested import is_nested, json_sql
from crmbridge.core.outcomes import RejectCode
from crmbridge.core.schema import ROW_COLUMN


@dataclass(frozen=True)
class Rejection:
    """One record that cannot go on, and why."""

    row: int  # the record's ROW_COLUMN value
    field: str | None
    reason: str
    code: RejectCode = RejectCode.INVALID_VALUE


def _sql_type(dtype: pa.DataType) -> str:
    name = duckdb_type(dtype)
    if name is None:
        raise ValueError(f"no DuckDB type for {dtype}")
    return name


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def describe_type(dtype: pa.DataType) -> str:
    """What a value of ``dtype`` is, for messages: 'whole number', 'date (YYYY-MM-DD)'."""
    if is_nested(dtype):
        return describe_nested(dtype)
    name = _sql_type(dtype)
    if name.startswith("DECIMAL"):
        return f"decimal number (at most {dtype.precision - dtype.scale} digits before the point)"
    if name.endswith("[]"):
        return f"list (of {describe_type(dtype.value_type)})"
    return KIND_WORDS[kind_of(name)]


class Coercer:
    """Converts batches to fixed column types. Create once per run; not thread-safe."""

    def __init__(self, types: Mapping[str, pa.DataType]) -> None:
        self.types = dict(types)
        self._con = connect()

    def close(self) -> None:
        self._con.close()

    def __enter__(self) -> Coercer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @staticmethod
    def _convert(name: str, dtype: pa.DataType) -> str:
        if is_nested(dtype):  # JSON text of a declared record or list (core/nested.py)
            return json_sql(_quote(name), dtype)
        return convert_sql(_quote(name), _sql_type(dtype), try_=True)

    def apply(self, batch: pa.RecordBatch) -> tuple[pa.RecordBatch, list[Rejection]]:
        """``batch`` with the typed columns converted; records that did not convert are
        removed from it and returned as rejections (one per record, first failing field)."""
        todo = {
            name: dtype
            for name, dtype in self.types.items()
            if name in batch.schema.names and batch.schema.field(name).type != dtype
        }
        if not todo or batch.num_rows == 0:
            return batch, []
        # columns in their types' plain form are converted by Arrow, the rest by DuckDB
        plain = {n: plain_cast(batch.column(n), t) for n, t in todo.items()}
        done = {n: c for n, c in plain.items() if c is not None}
        todo = {n: t for n, t in todo.items() if n not in done}
        if not todo:
            return _with_columns(batch, done, self.types), []
        # only the converted columns go through DuckDB; the others are kept as they are
        selects = [f"{self._convert(n, dtype)} AS {_quote(n)}" for n, dtype in todo.items()]
        self._con.register("source", batch.select(list(todo)))
        try:
            converted = self._con.sql(f"SELECT {', '.join(selects)} FROM source").to_arrow_table()
        finally:
            self._con.unregister("source")
        failed = pa.array([False] * batch.num_rows)
        rejections: dict[int, Rejection] = {}
        rows = batch.column(ROW_COLUMN)
        for name, dtype in todo.items():
            lost = pc.and_(pc.is_valid(batch.column(name)), pc.is_null(converted.column(name)))
            lost = lost.combine_chunks() if isinstance(lost, pa.ChunkedArray) else lost
            if not pc.any(lost).as_py():
                continue
            for i in pc.indices_nonzero(lost).to_pylist():
                row = rows[i].as_py()
                if row not in rejections:
                    value = batch.column(name)[i].as_py()
                    rejections[row] = Rejection(
                        row, name, f"{value!r} is not a {describe_type(dtype)}"
                    )
            failed = pc.or_(failed, lost)
        for name, dtype in todo.items():
            done[name] = converted.column(name).combine_chunks().cast(dtype)
        out = _with_columns(batch, done, self.types)
        if rejections:
            out = out.filter(pc.invert(failed))
        return out, list(rejections.values())


def _with_columns(
    batch: pa.RecordBatch, columns: Mapping[str, pa.Array], types: Mapping[str, pa.DataType]
) -> pa.RecordBatch:
    """``batch`` with ``columns`` in place of its own (typed per ``types``)."""
    names = batch.schema.names
    return pa.RecordBatch.from_arrays(
        [columns[n] if n in columns else batch.column(n) for n in names],
        schema=pa.schema(
            [pa.field(n, types[n] if n in columns else batch.schema.field(n).type) for n in names]
        ),
    )


_YEAR = "(000[1-9]|00[1-9][0-9]|0[1-9][0-9]{2}|[1-9][0-9]{3})"
_ISO_DATE = f"{_YEAR}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])"
_ISO_TIME = "([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]([.][0-9]{1,6})?"


def _plain_form(dtype: pa.DataType) -> str | None:
    """The strict text form whose values Arrow converts to ``dtype`` exactly as the rules
    above do (a subset of what they accept); None: no such form."""
    if dtype == pa.int64():
        return "^-?[0-9]{1,18}$"
    if dtype == pa.bool_():
        return "^(true|false|TRUE|FALSE|True|False|1|0)$"
    if dtype == pa.date32():
        return f"^{_ISO_DATE}$"
    if pa.types.is_timestamp(dtype) and dtype.unit == "us" and dtype.tz in (None, "UTC"):
        return f"^{_ISO_DATE}[T ]{_ISO_TIME}$"  # no offset: UTC
    if pa.types.is_decimal128(dtype):
        whole = dtype.precision - dtype.scale
        if whole < 1:
            return None
        part = f"([.][0-9]{{1,{dtype.scale}}})?" if dtype.scale else ""
        return f"^-?[0-9]{{1,{whole}}}{part}$"
    return None


def plain_cast(column: pa.Array | pa.ChunkedArray, dtype: pa.DataType) -> pa.Array | None:
    """A text column converted by Arrow when every value has its type's plain form (the
    usual file: ``42``, ``2024-01-31``, ``2024-01-31 10:00:00``, ``12.50``), without the
    per-value checks of the general rules; None when a value has another form (the general
    rules then convert the column and explain what does not fit). A number converted to
    another number type is converted by Arrow when no value changes (``12.50`` to two
    decimals, a whole number to a wider type)."""
    if _is_number(column.type) and _is_number(dtype):
        try:
            return column.cast(dtype, safe=True)  # refuses to round, cut or overflow
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            return None  # the general rules round it or explain why it does not fit
    if not pa.types.is_string(column.type):
        return None
    form = _plain_form(dtype)
    if form is None:
        return None
    values = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    if pc.any(pc.invert(pc.match_substring_regex(values, form))).as_py():
        return None
    try:
        if pa.types.is_timestamp(dtype):
            return values.cast(pa.timestamp("us")).cast(dtype)
        return values.cast(dtype)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None  # e.g. 2024-02-30: the general rules reject it with the reason


def _is_number(dtype: pa.DataType) -> bool:
    return bool(pa.types.is_integer(dtype) or pa.types.is_decimal(dtype))
