"""Streaming CSV parsing into string batches, with the lines that cannot be parsed set aside.

pyarrow's streaming reader does the work. Lines with the wrong number of fields reach its
``invalid_row_handler`` with their text and their record number; :class:`_LineCounter` turns
record numbers into physical line numbers (a quoted value can span lines). Two cases pyarrow
cannot report are handled here:

* a quote left open that runs past one block (pyarrow gives up with "straddling object"):
  the rest of the file is read line by line with the standard csv module, whose field size
  limit ends the broken record, which is reported, and parsing goes on at the next line;
* a quote left open in the last record of the file (both parsers would silently take the rest
  of the file as the value): the last record is re-checked and reported.
"""

from __future__ import annotations

import csv
import io
from collections import deque
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from crmbridge.connectors.base import BadRecord
from crmbridge.connectors.common.files import column_names, text_bytes
from crmbridge.connectors.csv.dialect import CsvSettings
from crmbridge.errors import ConfigError, FatalError

#: bytes pyarrow parses at a time; a record longer than this is parsed by the fallback.
#: pyarrow's streaming reader keeps a few dozen blocks in flight: 256 KiB keeps that under
#: 10 MB (1 MiB held 40 MB) and reads as fast.
BLOCK_SIZE = 1 << 18
#: rows per batch built by the line-by-line fallback
FALLBACK_BATCH = 10_000


def read_header(path: Path, dialect: CsvSettings) -> tuple[list[str], int]:
    """Column names (from the header, or col_1... when there is none) and the number of line
    breaks inside the header record. An empty file has no columns."""
    try:
        with open(path, encoding=dialect.python_encoding, newline="") as stream:
            reader = csv.reader(stream, **dialect.stdlib_format())
            for _ in range(dialect.skip_rows):
                next(reader, None)
            first = next(reader, None)
    except UnicodeDecodeError as err:
        raise _encoding_error(path, dialect) from err
    except csv.Error as err:
        raise ConfigError(f"cannot read the header line of {path.name!r}: {err}") from err
    if first is None:
        return [], 0
    newlines = sum(v.count("\n") for v in first) if dialect.header else 0
    return column_names(first, header=dialect.header), newlines


def read_records(
    path: Path, dialect: CsvSettings, names: list[str], header_newlines: int
) -> Iterator[pa.RecordBatch | BadRecord]:
    """Every record after the header as a batch of strings (all columns, in file order), and
    a BadRecord for each line that cannot be parsed, in between."""
    if not names:
        return
    lines = _LineCounter(dialect.skip_rows + (2 if dialect.header else 1), header_newlines)
    held: pa.RecordBatch | None = None  # the last rows are held back until the end is known
    stream = pa.input_stream(str(path))
    try:
        try:
            reader = pacsv.open_csv(stream, **_arrow_options(dialect, names, lines))
        except pa.ArrowInvalid as err:
            # pyarrow cannot skip a header that is not followed by a line break
            if "Could not skip" in str(err) and not _records_after_header(path, dialect):
                return
            raise _arrow_error(path, dialect, err) from err
        while True:
            try:
                batch = reader.read_next_batch()
            except StopIteration:
                break
            except UnicodeDecodeError as err:
                raise _encoding_error(path, dialect) from err
            except pa.ArrowInvalid as err:
                if "straddling" not in str(err):
                    raise _arrow_error(path, dialect, err) from err
                if held is not None:
                    yield _without_blank_rows(held)
                    held = None
                yield from _read_by_line(path, dialect, names, lines.next_line)
                return
            yield from lines.place(batch)
            if not batch.num_rows:
                continue
            if held is not None:
                yield _without_blank_rows(held)
            held = batch
    finally:
        stream.close()
    late = lines.finish()
    if held is not None:
        last = held.slice(held.num_rows - 1)
        if not late and _newlines(last, 0, 1):  # the last record spans lines: was it closed?
            bad = _unterminated(path, dialect, lines.line_of_last(last))
            if bad is not None:
                held = held.slice(0, held.num_rows - 1)
                late = [bad]
        yield _without_blank_rows(held)
    yield from late


def _records_after_header(path: Path, dialect: CsvSettings) -> bool:
    """Does a non-empty record follow the skipped lines and the header?"""
    with open(path, encoding=dialect.python_encoding, newline="") as stream:
        reader = csv.reader(stream, **dialect.stdlib_format())
        for _ in range(dialect.skip_rows + (1 if dialect.header else 0)):
            next(reader, None)
        return any(any(value != "" for value in record) for record in reader)


def _arrow_options(
    dialect: CsvSettings, names: list[str], lines: _LineCounter
) -> dict[str, object]:
    return {
        "read_options": pacsv.ReadOptions(
            column_names=names,
            skip_rows=dialect.skip_rows + (1 if dialect.header else 0),
            encoding=dialect.arrow_encoding,
            block_size=BLOCK_SIZE,
            use_threads=False,  # needed for pyarrow to number invalid rows
        ),
        "parse_options": pacsv.ParseOptions(
            delimiter=dialect.separator,
            quote_char=dialect.quote_char,
            double_quote=dialect.escape_char is None,
            escape_char=dialect.escape_char or False,
            newlines_in_values=True,
            ignore_empty_lines=False,  # so that record numbers count blank lines too
            invalid_row_handler=lines.invalid_row,
        ),
        "convert_options": pacsv.ConvertOptions(
            column_types=dict.fromkeys(names, pa.string()),
            null_values=list(dialect.null_values),
            strings_can_be_null=True,
            quoted_strings_can_be_null=False,
        ),
    }


class _LineCounter:
    """Physical line numbers of the records pyarrow reports as invalid.

    pyarrow numbers records (1-based, counting skipped lines, the header and blank lines);
    record ``r`` starts on line ``r`` plus the line breaks inside the records before it. The
    handler may be called for a block before the previous block's rows are delivered, so bad
    records wait in ``pending`` until the good rows before them have been counted.
    """

    def __init__(self, first_record: int, extra: int) -> None:
        self.next_record = first_record  # record number of the next row not yet counted
        self.extra = extra  # line breaks inside the records before next_record
        self.pending: deque[tuple[int, str, str]] = deque()

    def invalid_row(self, row: pacsv.InvalidRow) -> str:
        found, wanted = row.actual_columns, row.expected_columns
        reason = f"expected {wanted} field{'s' if wanted != 1 else ''}, found {found}"
        if found < wanted and row.text.count("\n"):
            reason += " (a quote may be left open)"
        self.pending.append((row.number or self.next_record, row.text, reason))
        return "skip"

    @property
    def next_line(self) -> int:
        return self.next_record + self.extra

    def place(self, batch: pa.RecordBatch) -> list[BadRecord]:
        """Count ``batch`` (the next good rows); the bad records that come before its end."""
        done = 0
        placed: list[BadRecord] = []
        while self.pending and self.pending[0][0] - self.next_record <= batch.num_rows - done:
            number, text, reason = self.pending.popleft()
            gap = number - self.next_record
            self.extra += _newlines(batch, done, done + gap)
            done += gap
            placed.append(BadRecord(number + self.extra, text, reason))
            self.extra += text.count("\n")
            self.next_record = number + 1
        self.extra += _newlines(batch, done, batch.num_rows)
        self.next_record += batch.num_rows - done
        return placed

    def finish(self) -> list[BadRecord]:
        """The bad records after the last good row."""
        placed: list[BadRecord] = []
        while self.pending:
            number, text, reason = self.pending.popleft()
            placed.append(BadRecord(number + self.extra, text, reason))
            self.extra += text.count("\n")
        return placed

    def line_of_last(self, last: pa.RecordBatch) -> int:
        """The line the last counted row (``last``, one row) starts on."""
        return self.next_record - 1 + self.extra - _newlines(last, 0, 1)


def _newlines(batch: pa.RecordBatch, start: int, stop: int) -> int:
    """Line breaks inside the values of rows ``start``..``stop`` (counted in the raw bytes)."""
    if stop <= start:
        return 0
    total = 0
    for column in batch.columns:
        total += text_bytes(column.slice(start, stop - start)).count(b"\n")
    return total


def _without_blank_rows(batch: pa.RecordBatch) -> pa.RecordBatch:
    """Drop rows whose every cell is empty (blank lines read as records)."""
    blank: pa.Array | None = None
    for column in batch.columns:
        if column.null_count == 0 and not pc.any(pc.equal(column, "")).as_py():
            return batch
        empty = pc.or_kleene(pc.is_null(column), pc.equal(column, ""))
        blank = empty if blank is None else pc.and_kleene(blank, empty)
    return batch if blank is None else batch.filter(pc.invert(blank))


def _unterminated(path: Path, dialect: CsvSettings, line: int) -> BadRecord | None:
    """The last record (starting on ``line``) when it ends inside an open quote."""
    with open(path, encoding=dialect.python_encoding, newline="") as stream:
        for _ in range(line - 1):
            stream.readline()
        tail = stream.read()
    if dialect.quote_char not in tail:
        return None
    try:
        list(csv.reader(io.StringIO(tail, newline=""), strict=True, **dialect.stdlib_format()))
    except csv.Error as err:
        if "unexpected end of data" in str(err):
            return BadRecord(line, tail, "a quote is left open until the end of the file")
    return None


def _read_by_line(
    path: Path, dialect: CsvSettings, names: list[str], first_line: int
) -> Iterator[pa.RecordBatch | BadRecord]:
    """The records from ``first_line`` on, parsed by the standard csv module (slower).

    Its field size limit (128 KiB) ends a value whose quote was left open; that record is
    reported and parsing starts again on the next line. It is strict: a quote followed by
    anything but a delimiter or a line end makes the record bad. It cannot tell a quoted
    empty value from an empty one: both are read as empty (null when "" is a null value).
    """
    nulls = set(dialect.null_values)
    with open(path, encoding=dialect.python_encoding, newline="") as stream:
        for _ in range(first_line - 1):
            stream.readline()
        consumed: list[str] = []
        reader = csv.reader(_recording(stream, consumed), strict=True, **dialect.stdlib_format())
        rows: list[list[str | None]] = []
        line = first_line
        while True:
            try:
                record = next(reader)
            except StopIteration:
                break
            except csv.Error as err:
                yield BadRecord(line, "".join(consumed), str(err))
            else:
                if len(record) == len(names):
                    rows.append([None if v in nulls else v for v in record])
                elif record:
                    found = len(record)
                    reason = f"expected {len(names)} fields, found {found}"
                    yield BadRecord(line, "".join(consumed), reason)
            line += sum(chunk.count("\n") for chunk in consumed)
            consumed.clear()
            if len(rows) == FALLBACK_BATCH:
                yield _string_batch(rows, names)
                rows = []
        if rows:
            yield _string_batch(rows, names)


def _recording(stream: TextIO, consumed: list[str]) -> Iterator[str]:
    for text in stream:
        consumed.append(text)
        yield text


def _string_batch(rows: list[list[str | None]], names: list[str]) -> pa.RecordBatch:
    columns = [pa.array(list(values), pa.string()) for values in zip(*rows, strict=True)]
    return _without_blank_rows(pa.RecordBatch.from_arrays(columns, names=names))


def _encoding_error(path: Path, dialect: CsvSettings) -> ConfigError:
    return ConfigError(
        f"{path.name!r} is not {dialect.encoding} text; set the connection's encoding "
        "(e.g. cp1252 or latin-1 for Windows exports)"
    )


def _arrow_error(path: Path, dialect: CsvSettings, err: pa.ArrowInvalid) -> FatalError:
    if "UTF8" in str(err) or "decode" in str(err).lower():
        return _encoding_error(path, dialect)
    return FatalError(f"cannot read {path.name!r}: {err}")
