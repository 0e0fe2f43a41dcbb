"""Writing batches as CSV text, vectorized: each column is formatted and quoted by Arrow
compute functions and the lines are joined without a Python loop over rows.

Values are formatted by :func:`crmbridge.connectors.common.files.format_column`. A null is an empty
cell; an empty text is written ``""`` so that it reads back as empty text, not null.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from crmbridge.connectors.common.files import AtomicFile, Sink, format_column, text_bytes
from crmbridge.connectors.csv.dialect import CsvSettings
from crmbridge.connectors.csv.reader import read_header
from crmbridge.errors import ConfigError

#: text a spreadsheet reads as a formula (OWASP's list: = + - @, tab, carriage return)
FORMULA_START = "^[=+\\-@\\t\\r]"


class CsvText:
    """Turns columns of text into CSV lines in one dialect."""

    def __init__(self, dialect: CsvSettings) -> None:
        self.dialect = dialect
        special = {dialect.separator, dialect.quote_char, "\n", "\r"}
        if dialect.escape_char:
            special.add(dialect.escape_char)
        self._needs_quotes = "[" + "".join(f"\\x{{{ord(c):x}}}" for c in sorted(special)) + "]"

    def values(self, column: pa.Array) -> pa.Array:
        """A column's values as CSV text; with ``escape_formulas``, text that a spreadsheet
        would run as a formula gets a leading apostrophe (numbers and dates are left alone)."""
        text = format_column(column)
        textual = pa.types.is_string(column.type) or pa.types.is_large_string(column.type)
        if not self.dialect.escape_formulas or not textual:
            return text
        risky = pc.match_substring_regex(text, FORMULA_START)
        if not pc.any(risky).as_py():
            return text
        return pc.if_else(risky, pc.binary_join_element_wise("'", text, ""), text)

    def quote(self, text: pa.Array) -> pa.Array:
        """Values quoted where needed (special characters, or empty so as not to read as null)."""
        q, esc = self.dialect.quote_char, self.dialect.escape_char
        needs = pc.or_(pc.match_substring_regex(text, self._needs_quotes), pc.equal(text, ""))
        if not pc.any(needs).as_py():
            return text
        inner = text
        if esc:
            inner = pc.replace_substring(inner, esc, esc + esc)
        inner = pc.replace_substring(inner, q, (esc or q) + q)
        quoted = pc.binary_join_element_wise(q, inner, q, "")
        return pc.if_else(needs, quoted, text)

    def lines(self, columns: Sequence[pa.Array]) -> pa.Array:
        """One CSV line (ending with a line feed) per row of ``columns`` (already text)."""
        quoted = [self.quote(column) for column in columns]
        joined = pc.binary_join_element_wise(
            *quoted, self.dialect.separator, null_handling="replace", null_replacement=""
        )
        return pc.binary_join_element_wise(joined, "\n", "")

    def header(self, names: Sequence[str]) -> bytes:
        data, failed = self.encode(self.lines([pa.array([n], pa.string()) for n in names]))
        if failed:
            raise ConfigError(f"the column names cannot be written in {self.dialect.encoding}")
        return data

    def encode(self, lines: pa.Array) -> tuple[bytes, list[int]]:
        """The lines as bytes in the dialect's encoding, without the lines that the encoding
        cannot represent; returns those lines' positions too."""
        data = text_bytes(lines)
        if self.dialect.is_utf8:
            return data, []
        try:
            return data.decode("utf-8").encode(self.dialect.encoding), []
        except UnicodeEncodeError:
            pass
        kept: list[bytes] = []
        failed: list[int] = []
        for i, line in enumerate(lines.to_pylist()):
            try:
                kept.append(line.encode(self.dialect.encoding))
            except UnicodeEncodeError:
                failed.append(i)
        return b"".join(kept), failed


class CsvSink(Sink):
    """A CSV file being written: header first (unless appending to a file that has one)."""

    def __init__(self, path: Path, dialect: CsvSettings) -> None:
        self.dialect = dialect
        self.text = CsvText(dialect)
        self.columns: list[str] | None = None
        if dialect.append and path.exists() and path.stat().st_size:
            if dialect.header:
                self.columns = read_header(path, dialect)[0]
            self._missing_newline = not _ends_with_newline(path)
        else:
            self._missing_newline = False
        self.file = AtomicFile(path, append=dialect.append)

    def write(self, batch: pa.RecordBatch) -> list[str | None]:
        out = self.file.stream
        if self._missing_newline:
            out.write(b"\n")
            self._missing_newline = False
        if self.columns is None:
            self.columns = batch.schema.names
            if self.dialect.header:
                out.write(self.text.header(self.columns))
        columns = self._align(batch)
        if not batch.num_rows:
            return []
        data, failed = self.text.encode(self.text.lines([self.text.values(c) for c in columns]))
        out.write(data)
        reasons: list[str | None] = [None] * batch.num_rows
        for i in failed:
            reasons[i] = self._unencodable(batch, i)
        return reasons

    def _align(self, batch: pa.RecordBatch) -> list[pa.Array]:
        """The batch's columns in the file's column order; a column the batch lacks is empty."""
        assert self.columns is not None
        unknown = [n for n in batch.schema.names if n not in self.columns]
        if unknown:
            raise ConfigError(
                f"the file's columns are {', '.join(self.columns)}; it has no column "
                f"{', '.join(repr(n) for n in unknown)}"
            )
        return [
            batch.column(n) if n in batch.schema.names else pa.nulls(batch.num_rows, pa.string())
            for n in self.columns
        ]

    def _unencodable(self, batch: pa.RecordBatch, row: int) -> str:
        for name, column in zip(batch.schema.names, batch.columns, strict=True):
            value = format_column(column.slice(row, 1))[0].as_py()
            if value is None:
                continue
            try:
                value.encode(self.dialect.encoding)
            except UnicodeEncodeError as err:
                char = value[err.start]
                return f"field {name!r}: {char!r} cannot be written in {self.dialect.encoding}"
        return f"cannot be written in {self.dialect.encoding}"  # pragma: no cover

    def commit(self) -> None:
        self.file.commit()

    def discard(self) -> None:
        self.file.discard()


def _ends_with_newline(path: Path) -> bool:
    with open(path, "rb") as stream:
        stream.seek(-1, 2)
        return stream.read(1) == b"\n"
