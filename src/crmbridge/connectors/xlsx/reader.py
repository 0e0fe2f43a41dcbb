"""Reading a worksheet: header, typed columns, rows that do not fit.

A sheet is read through fastexcel (``fast.py``: Arrow from native code, no Python per cell)
when that gives exactly what this module gives; otherwise row by row, with python-calamine,
as follows. calamine keeps the sheet's cells in compact native memory; Python values are made
one row at a time by ``iter_rows`` and turned into Arrow batches of ``batch_size`` rows.

Types are inferred from the first ``infer_rows`` data rows (:func:`infer_type`). A later cell
that does not fit its column's type makes its row a BadRecord (with the sheet's row number and
the row's cells as JSON), so nothing is changed or dropped without a report.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
from python_calamine import CalamineError, CalamineSheet, CalamineWorkbook

from crmbridge.connectors.base import BadRecord
from crmbridge.connectors.common.files import (
    MismatchError,
    column_names,
    convert_cell,
    infer_type,
    to_text,
)
from crmbridge.connectors.xlsx import fast
from crmbridge.connectors.xlsx.error_cells import (
    ERROR_MARK,
    column_letters,
    error_cells,
    sheet_marks,
)
from crmbridge.core.schema import Field, ObjectSchema
from crmbridge.errors import ConfigError

#: what the sheet's XML is scanned for: error cells, fastexcel's missing-value words
_MARKS = {"error": ERROR_MARK, "missing": fast.NA_MARK}


@dataclass(frozen=True)
class SheetOptions:
    header: bool = True
    skip_rows: int = 0
    infer_rows: int = 1000


def sheet_names(path: Path) -> list[str]:
    """The workbook's sheets, in workbook order."""
    with _open(path) as book:
        return list(book.sheet_names)


def _open(path: Path) -> CalamineWorkbook:
    try:
        return CalamineWorkbook.from_path(str(path))
    except CalamineError as err:
        raise ConfigError(f"{path.name!r} is not a readable .xlsx workbook: {err}") from err


def _rows(
    data: CalamineSheet, errors: dict[int, dict[int, str]]
) -> Iterator[tuple[int, list[Any]]]:
    """(sheet row number, cells) of every row that is not empty; a row holding an error
    cell (which calamine reads as empty) is never left out."""
    # iter_rows starts at the sheet's first row (empty rows above the data included)
    for number, cells in enumerate(data.iter_rows(), start=1):
        if number in errors or any(c != "" for c in cells):
            yield number, cells


def _header(rows: Iterator[tuple[int, list[Any]]], options: SheetOptions) -> list[Any] | None:
    """Skips ``skip_rows`` rows; returns the header cells (None when the sheet is empty)."""
    for _ in range(options.skip_rows):
        next(rows, None)
    if not options.header:
        return None
    item = next(rows, None)
    return item[1] if item else []


class SheetReader:
    """An open sheet: its schema (header and first rows, parsed once) and then its rows."""

    def __init__(self, path: Path, sheet: str, object: str, options: SheetOptions) -> None:
        self.path = path
        self.book: CalamineWorkbook | None = None
        #: the whole sheet, typed, when fastexcel read it
        self._table: pa.Table | None = None
        self._sample: list[tuple[int, list[Any]]] = []
        # the sheet's XML is scanned while fastexcel reads it (both in native code mostly)
        with ThreadPoolExecutor(max_workers=1) as pool:
            scan = pool.submit(sheet_marks, path, sheet, _MARKS)
            whole = None
            if not options.skip_rows:
                whole = fast.read_sheet(
                    path, sheet, object, header=options.header, infer_rows=options.infer_rows
                )
            found = scan.result()
        #: the error cells (calamine reads them as empty) by sheet row and column
        self._errors = error_cells(path, sheet, scanned=True) if "error" in found else {}
        #: read through fastexcel (else row by row)
        self.fast = whole is not None and not self._errors and not fast.missing_words(path, found)
        if whole is not None and self.fast:
            self.schema, self._table = whole
            return
        self.book = _open(path)
        try:
            data = self.book.get_sheet_by_name(sheet)
            #: the sheet column of the first cell calamine returns in a row (0 = A)
            self._first_column = data.start[1] if data.start else 0
            self._rows = _rows(data, self._errors)
            header = _header(self._rows, options)
            for item in self._rows:
                self._sample.append(item)
                if len(self._sample) >= options.infer_rows:
                    break
        except CalamineError as err:
            self.close()
            raise ConfigError(f"cannot read sheet {sheet!r} of {path.name!r}: {err}") from err
        cells = [c for _, c in self._sample]
        width = max([len(header or [])] + [len(c) for c in cells])
        raw_names = [to_text(c) for c in header or []] + [""] * (width - len(header or []))
        names = column_names(raw_names, header=options.header)
        self.schema = ObjectSchema(
            object,
            tuple(
                Field(name, infer_type(row[i] if i < len(row) else None for row in cells))
                for i, name in enumerate(names)
            ),
        )

    def close(self) -> None:
        self._table = None
        if self.book is not None:
            self.book.close()

    def records(self, batch_size: int) -> Iterator[pa.RecordBatch | BadRecord]:
        """Batches of every column of the schema; a BadRecord for each row with a cell that
        does not fit its column's type. Closes the workbook at the end."""
        if self._table is not None:
            table, self._table = self._table, None
            yield from table.to_batches(max_chunksize=batch_size)
            return
        schema = self.schema
        arrow_schema = schema.arrow_schema()
        columns: list[list[Any]] = [[] for _ in schema.fields]
        count = 0
        try:
            for number, cells in itertools.chain(self._sample, self._rows):
                if number in self._errors:
                    reason = self._error_reason(number, schema.fields)
                    yield BadRecord(number, _raw(schema.field_names, cells), reason)
                    continue
                converted = _convert_row(cells, schema.fields)
                if isinstance(converted, str):
                    yield BadRecord(number, _raw(schema.field_names, cells), converted)
                    continue
                for column, value in zip(columns, converted, strict=True):
                    column.append(value)
                count += 1
                if count == batch_size:
                    yield _batch(columns, arrow_schema)
                    columns, count = [[] for _ in schema.fields], 0
            if count:
                yield _batch(columns, arrow_schema)
        finally:
            self.close()

    def _error_reason(self, number: int, fields: Sequence[Field]) -> str:
        column, value = min(self._errors[number].items())
        index = column - self._first_column
        name = fields[index].name if 0 <= index < len(fields) else None
        where = f"field {name!r}: " if name else ""
        return f"{where}cell {column_letters(column)}{number} holds the Excel error {value}"


def _convert_row(cells: Sequence[Any], fields: Sequence[Field]) -> list[object] | str:
    """The row's values typed per ``fields``, or the reason one does not fit."""
    values: list[object] = []
    for i, field in enumerate(fields):
        cell = cells[i] if i < len(cells) else None
        try:
            values.append(convert_cell(cell, field.type))
        except MismatchError as err:
            return (
                f"field {field.name!r}: {to_text(cell)!r} is {err} "
                f"({field.type.value} inferred from the first rows)"
            )
    return values


def _raw(names: Sequence[str], cells: Sequence[Any]) -> str:
    return json.dumps(
        {n: to_text(c) for n, c in zip(names, cells, strict=False) if c != ""},
        ensure_ascii=False,
    )


def _batch(columns: list[list[Any]], schema: pa.Schema) -> pa.RecordBatch:
    arrays = [pa.array(c, f.type) for c, f in zip(columns, schema, strict=True)]
    return pa.RecordBatch.from_arrays(arrays, schema=schema)
