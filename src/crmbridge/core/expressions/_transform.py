"""Evaluating a filter and mappings over Arrow batches with DuckDB, one query per batch."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import TracebackType
from typing import Self

import duckdb
import pyarrow as pa
from sqlglot import exp

from crmbridge.core.duck import connect, duckdb_type
from crmbridge.core.expressions._check import check_names, result_type
from crmbridge.core.expressions._errors import ExpressionError, expression_error
from crmbridge.core.expressions._evaluate import (
    INPUT,
    clean_message,
    freeze_clock,
    internal_names,
    render,
)
from crmbridge.core.expressions._syntax import column_path
from crmbridge.core.schema import ROW_COLUMN


@dataclass
class RowError:
    """A row that could not be evaluated; it is left out of the result."""

    row: int  #: the row's ROW_COLUMN value
    field: str | None  #: output field whose expression failed; None: the filter
    message: str  #: e.g. 'Could not convert string "abc" to DECIMAL(12,2) ...'


@dataclass
class TransformResult:
    batch: pa.RecordBatch  #: rows kept by the filter: the outputs in order, then ROW_COLUMN
    errors: list[RowError] = field(default_factory=list)


@dataclass(frozen=True)
class _Output:
    name: str
    sql: str  # DuckDB SQL, cast to the output type when one was given


class BatchTransform:
    """Filter and map Arrow batches: ``outputs`` (field -> expression over input columns) are
    evaluated for the rows where ``filter`` is TRUE, in one DuckDB query per batch.

    The expressions are checked and compiled once, here; current_date and current_timestamp
    are fixed here too. ``input_schema`` must contain ROW_COLUMN, which is passed through.
    When given, ``output_types`` casts an output (a value that does not convert is a
    RowError). A row whose evaluation fails becomes a RowError and the other rows go on.
    Use as a context manager, or call :meth:`close`.
    """

    def __init__(
        self,
        input_schema: pa.Schema,
        outputs: Mapping[str, exp.Expression],
        filter: exp.Expression | None = None,
        output_types: Mapping[str, pa.DataType] | None = None,
    ) -> None:
        if ROW_COLUMN not in input_schema.names:
            raise ExpressionError(f"the input batches have no {ROW_COLUMN} column")
        if ROW_COLUMN in outputs:
            raise ExpressionError(f"{ROW_COLUMN} cannot be an output field")
        self._input_schema = input_schema
        self._names = internal_names(input_schema.names)
        now = datetime.now(UTC)
        types = dict(output_types or {})
        self._outputs = [
            _Output(name, self._compile(name, tree, types.get(name), now))
            for name, tree in outputs.items()
        ]
        self._filter = self._compile_filter(filter, now) if filter is not None else None
        select = [f"{out.sql} AS o{i}" for i, out in enumerate(self._outputs)]
        select.append(f'"{self._names[ROW_COLUMN]}" AS row_')
        self._sql = f"SELECT {', '.join(select)} FROM {INPUT}"
        if self._filter is not None:
            self._sql += f" WHERE {self._filter}"
        self._con = connect()
        self._closed = False
        internal = input_schema.empty_table().rename_columns(list(self._names.values()))
        self._empty_result = self._query(self._sql, internal)
        result_types = self._empty_result.schema.types[:-1]
        self.output_schema = pa.schema(
            [
                pa.field(out.name, types.get(out.name, dtype))
                for out, dtype in zip(self._outputs, result_types, strict=True)
            ]
            + [input_schema.field(ROW_COLUMN)]
        )
        #: the input column of each output, when every output is one unchanged
        self._direct = self._columns_taken(outputs) if self._filter is None else None

    def _columns_taken(self, outputs: Mapping[str, exp.Expression]) -> list[str] | None:
        taken = []
        for tree, out in zip(outputs.values(), self.output_schema, strict=False):
            path = column_path(tree) if isinstance(tree, exp.Column) else ()
            if len(path) != 1 or self._input_schema.field(path[0]).type != out.type:
                return None
            taken.append(path[0])
        return taken

    def _compile(
        self, name: str, tree: exp.Expression, dtype: pa.DataType | None, now: datetime
    ) -> str:
        what = f"mapping for {name!r}"
        check_names(tree, self._names, what=what)
        result_type(tree, self._input_schema, what=what)
        sql = render(freeze_clock(tree, now), self._names)
        if dtype is None:
            return sql
        target = duckdb_type(dtype)
        if target is None:
            raise expression_error(f"cannot convert to the Arrow type {dtype}", tree, what)
        return f"CAST({sql} AS {target})"

    def _compile_filter(self, tree: exp.Expression, now: datetime) -> str:
        check_names(tree, self._names, what="filter")
        dtype = result_type(tree, self._input_schema, what="filter")
        if not (pa.types.is_boolean(dtype) or pa.types.is_null(dtype)):
            raise expression_error(
                f"a filter must be a condition (true or false), not {dtype}", tree, "filter"
            )
        return render(freeze_clock(tree, now), self._names)

    # -- evaluation ------------------------------------------------------------------------
    def apply(self, batch: pa.RecordBatch) -> TransformResult:
        """Filter and map ``batch`` (which has the input schema)."""
        if self._closed:
            raise ExpressionError("the transform is closed")
        expected = self._input_schema
        if batch.schema.names != expected.names or batch.schema.types != expected.types:
            raise ExpressionError(
                f"batch columns {batch.schema} differ from the input schema {expected} "
                "the transform was compiled for"
            )
        if self._direct is not None:
            arrays = [_whole(batch.column(name)) for name in [*self._direct, ROW_COLUMN]]
            return TransformResult(pa.RecordBatch.from_arrays(arrays, schema=self.output_schema))
        errors: list[RowError] = []
        parts = self._evaluate(batch.rename_columns(list(self._names.values())), errors)
        table = pa.concat_tables(parts or [self._empty_result])
        table = table.rename_columns(self.output_schema.names).cast(self.output_schema)
        return TransformResult(_one_batch(table), errors)

    def _evaluate(self, batch: pa.RecordBatch, errors: list[RowError]) -> list[pa.Table]:
        """Results of ``batch``. When DuckDB fails on it, find the failing rows with one TRY
        query, report each and evaluate the others; when TRY cannot tell, split the batch in
        halves, recursively, down to the single rows that fail."""
        try:
            return [self._query(self._sql, batch)]
        except duckdb.Error as err:
            if batch.num_rows == 0:
                raise ExpressionError(clean_message(err, self._names)) from err
            failing = self._locate(batch)
            if failing is not None:
                errors.extend(self._row_error(batch, i, failing[i]) for i in failing)
                keep = pa.array([i not in failing for i in range(batch.num_rows)])
                return self._evaluate(batch.filter(keep), errors)
            if batch.num_rows == 1:
                errors.extend(e for e in [self._diagnose(batch, err)] if e is not None)
                return []
            half = batch.num_rows // 2
            return self._evaluate(batch.slice(0, half), errors) + self._evaluate(
                batch.slice(half), errors
            )

    def _locate(self, batch: pa.RecordBatch) -> dict[int, int] | None:
        """Failing rows: row index -> the expression that fails (0: the filter, i: output i).
        None when no failing row can be told (TRY catches conversion, range and division
        errors, which are what data causes)."""
        whens = [f"WHEN {_fails(out.sql)} THEN {i}" for i, out in enumerate(self._outputs, 1)]
        if self._filter is not None:
            whens[:0] = [
                f"WHEN {_fails(self._filter)} THEN 0",
                f"WHEN NOT COALESCE(TRY({self._filter}), FALSE) THEN NULL",
            ]
        if not whens:
            return None
        try:
            sql = f"SELECT CASE {' '.join(whens)} END FROM {INPUT}"
            found = self._query(sql, batch).column(0).to_pylist()
        except duckdb.Error:
            return None
        failing = {i: which for i, which in enumerate(found) if which is not None}
        return failing or None

    def _row_error(self, batch: pa.RecordBatch, index: int, which: int) -> RowError:
        """The RowError of row ``index``, whose expression ``which`` fails, with DuckDB's
        message for it."""
        sql = self._filter if which == 0 else self._outputs[which - 1].sql
        field = None if which == 0 else self._outputs[which - 1].name
        row_id = self._row_id(batch, index)
        try:
            self._query(f"SELECT {sql} FROM {INPUT}", batch.slice(index, 1))
        except duckdb.Error as err:
            return RowError(row_id, field, self._message(err))
        return RowError(row_id, field, "could not be evaluated")  # pragma: no cover

    def _diagnose(self, row: pa.RecordBatch, err: duckdb.Error) -> RowError | None:
        """The RowError of a single row that fails in a way TRY cannot place: evaluate the
        filter, then each output, alone. None when the filter drops the row anyway."""
        row_id = self._row_id(row, 0)
        if self._filter is not None:
            try:
                keep = self._query(f"SELECT {self._filter} FROM {INPUT}", row).column(0)[0]
            except duckdb.Error as filter_err:
                return RowError(row_id, None, self._message(filter_err))
            if keep.as_py() is not True:
                return None
        for out in self._outputs:
            try:
                self._query(f"SELECT {out.sql} FROM {INPUT}", row)
            except duckdb.Error as out_err:
                return RowError(row_id, out.name, self._message(out_err))
        return RowError(row_id, None, self._message(err))

    def _row_id(self, batch: pa.RecordBatch, index: int) -> int:
        column = batch.column(self._input_schema.get_field_index(ROW_COLUMN))
        return int(column[index].as_py())

    def _message(self, err: duckdb.Error) -> str:
        return clean_message(err, self._names)

    def _query(self, sql: str, data: pa.RecordBatch | pa.Table) -> pa.Table:
        self._con.register(INPUT, data)
        try:
            return self._con.sql(sql).to_arrow_table()
        finally:
            self._con.unregister(INPUT)

    # -- lifecycle -------------------------------------------------------------------------
    def close(self) -> None:
        """Release the DuckDB connection. Idempotent."""
        self._closed = True
        self._con.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _whole(column: pa.Array | pa.ChunkedArray) -> pa.Array:
    return column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column


def _fails(sql: str) -> str:
    """SQL that is TRUE when evaluating ``sql`` raises an error (IS NULL is never NULL)."""
    return f"(TRY({sql} IS NULL) IS NULL)"


def _one_batch(table: pa.Table) -> pa.RecordBatch:
    batches = table.combine_chunks().to_batches()
    if batches:
        return batches[0]
    return pa.RecordBatch.from_pylist([], schema=table.schema)
