"""Writing sheets with openpyxl in write-only (streaming) mode.

One workbook per target file; each object written in the run (``file.xlsx#Sheet``) is a sheet
of it, with a header row and typed cells: numbers, booleans, dates and datetimes as Excel
dates (datetimes in UTC, without a zone: Excel has none), text always as text. (openpyxl
makes text starting with ``=`` a live formula and ``#N/A``-like text an error cell; such
values are written as explicit text cells, so CRM data never runs in a user's spreadsheet.)
The workbook is saved when the connection closes. Values Excel cannot hold are rejected, row
by row, before openpyxl sees them (openpyxl's streaming writer cannot recover from an error in
the middle of a row).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import ERROR_CODES

from crmbridge.connectors.common.files import AtomicFile, Sink
from crmbridge.errors import ConfigError

MAX_ROWS = 1_048_576  # rows in an Excel sheet, header included
MAX_TEXT = 32_767  # characters in a cell
MAX_EXACT_INTEGER = 2**53  # Excel numbers are doubles
FIRST_DATE = dt.date(1900, 3, 1)  # before it, Excel's 1900 calendar is not the real one
_FORBIDDEN_TITLE = set("[]:*?/\\")
_ILLEGAL_TEXT = "[\\x{00}-\\x{08}\\x{0b}\\x{0c}\\x{0e}-\\x{1f}]"


def check_sheet_title(title: str) -> None:
    """ConfigError unless Excel accepts ``title`` as a sheet name."""
    bad = sorted(_FORBIDDEN_TITLE & set(title))
    if not title or len(title) > 31 or bad or title.startswith("'") or title.endswith("'"):
        raise ConfigError(
            f"{title!r} cannot be an Excel sheet name: 1 to 31 characters, "
            "none of [ ] : * ? / \\, not starting or ending with an apostrophe"
        )


class XlsxWorkbook:
    """A workbook being written: its sheets, saved under a temporary name, renamed at commit."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.book = Workbook(write_only=True)
        self.sheets: dict[str, SheetSink] = {}
        self.done = False

    def sheet(self, title: str) -> SheetSink:
        if title not in self.sheets:
            check_sheet_title(title)
            self.sheets[title] = SheetSink(self, self.book.create_sheet(title))
        return self.sheets[title]

    def commit(self) -> None:
        if self.done:
            return
        self.done = True
        target = AtomicFile(self.path)
        try:
            self.book.save(target.stream)
        except BaseException:
            target.discard()
            raise
        target.commit()

    def discard(self) -> None:
        self.done = True


class SheetSink(Sink):
    """One sheet of an :class:`XlsxWorkbook`."""

    def __init__(self, workbook: XlsxWorkbook, sheet: object) -> None:
        self.workbook = workbook
        self.sheet = sheet
        self.columns: list[str] | None = None
        self.rows = 0

    def write(self, batch: pa.RecordBatch) -> list[str | None]:
        append: Callable[[list[object]], None] = self.sheet.append  # type: ignore[attr-defined]
        if self.columns is None:
            self.columns = batch.schema.names
            append([self.text(name) if _not_plain_text(name) else name for name in self.columns])
            self.rows = 1
        if batch.schema.names != self.columns:
            raise ConfigError(
                f"this sheet's columns are {', '.join(self.columns)}; a batch cannot bring "
                f"{', '.join(batch.schema.names)}"
            )
        reasons = refusals(batch)
        values = [self.cell_values(column) for column in batch.columns]
        for i, row in enumerate(zip(*values, strict=True)):
            if reasons[i] is None and self.rows >= MAX_ROWS:
                reasons[i] = f"an Excel sheet holds at most {MAX_ROWS:,} rows"
            if reasons[i] is None:
                append(list(row))
                self.rows += 1
        return reasons

    def commit(self) -> None:
        self.workbook.commit()

    def discard(self) -> None:
        self.workbook.discard()

    def text(self, value: str) -> WriteOnlyCell:
        """A cell holding ``value`` as text, whatever it looks like."""
        cell = WriteOnlyCell(self.sheet, value=value)
        cell.data_type = "s"
        return cell

    def cell_values(self, column: pa.Array) -> list[object]:
        """Python values openpyxl writes as typed cells (datetimes naive, in UTC); text that
        openpyxl would take for a formula or an error is an explicit text cell."""
        if pa.types.is_timestamp(column.type):
            column = pc.cast(column, pa.timestamp("us"))
        values: list[object] = column.to_pylist()
        if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
            special = pc.or_(
                pc.starts_with(column, "="), pc.is_in(column, pa.array(ERROR_CODES, pa.string()))
            )
            if pc.any(special).as_py():
                for i in pc.indices_nonzero(pc.fill_null(special, False)).to_pylist():
                    values[i] = self.text(str(values[i]))
        return values


def _not_plain_text(value: str) -> bool:
    """Would openpyxl store this text as something else (a formula, an error)?"""
    return value.startswith("=") or value in ERROR_CODES


def refusals(batch: pa.RecordBatch) -> list[str | None]:
    """Per row, why Excel cannot hold it (the first offending field), or None."""
    reasons: list[str | None] = [None] * batch.num_rows
    for name, column in zip(batch.schema.names, batch.columns, strict=True):
        for problem, mask in _problems(column):
            if pc.any(mask).as_py():
                for i in pc.indices_nonzero(pc.fill_null(mask, False)).to_pylist():
                    reasons[i] = reasons[i] or f"field {name!r}: {problem}"
    return reasons


def _problems(column: pa.Array) -> list[tuple[str, pa.Array]]:
    dtype = column.type
    if pa.types.is_string(dtype) or pa.types.is_large_string(dtype):
        return [
            (
                f"text longer than Excel's {MAX_TEXT:,} characters",
                pc.greater(pc.utf8_length(column), MAX_TEXT),
            ),
            (
                "control characters Excel cannot store",
                pc.match_substring_regex(column, _ILLEGAL_TEXT),
            ),
        ]
    if pa.types.is_integer(dtype):
        wide = pc.cast(column, pa.int64())
        too_big = pc.or_(pc.greater(wide, MAX_EXACT_INTEGER), pc.less(wide, -MAX_EXACT_INTEGER))
        return [("integer too large for an Excel number (15 digits)", too_big)]
    if pa.types.is_date(dtype):
        return [
            (
                "Excel cannot store dates before 1900-03-01",
                pc.less(column, pa.scalar(FIRST_DATE, dtype)),
            )
        ]
    if pa.types.is_timestamp(dtype):
        first = dt.datetime(1900, 3, 1, tzinfo=dt.UTC)
        return [
            ("Excel cannot store dates before 1900-03-01", pc.less(column, pa.scalar(first, dtype)))
        ]
    return []
