"""Writing batches as JSON Lines, vectorized: every value is turned into JSON text by Arrow
compute functions and the objects are assembled without a Python loop over rows.

Keys are the column names in column order; a null is ``null``; text is a JSON string; numbers
(integers, decimals, floats) are JSON numbers (a float that is not finite is ``null``);
booleans ``true``/``false``; dates and datetimes are strings as
:func:`crmbridge.connectors.common.files.format_column` writes them (ISO 8601, datetimes in UTC).
"""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from crmbridge.connectors.common.files import AtomicFile, Sink, format_column, text_bytes

_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t", "\b": "\\b", "\f": "\\f"}
_CONTROL = "[\\x{00}-\\x{1f}]"


def json_strings(text: pa.Array) -> pa.Array:
    """Text values as JSON string literals (quoted and escaped)."""
    out = pc.replace_substring(text, "\\", "\\\\")
    out = pc.replace_substring(out, '"', '\\"')
    if pc.any(pc.match_substring_regex(out, _CONTROL)).as_py():
        for char, escaped in _ESCAPES.items():
            out = pc.replace_substring(out, char, escaped)
        if pc.any(pc.match_substring_regex(out, _CONTROL)).as_py():
            for code in range(0x20):
                out = pc.replace_substring(out, chr(code), f"\\u{code:04x}")
    return pc.binary_join_element_wise('"', out, '"', "")


def json_values(values: pa.Array) -> pa.Array:
    """A column's values as JSON text; nulls stay null."""
    dtype = values.type
    if pa.types.is_boolean(dtype) or pa.types.is_integer(dtype) or pa.types.is_decimal(dtype):
        return pc.cast(values, pa.string())
    if pa.types.is_floating(dtype):
        finite = pc.is_finite(values)
        return pc.if_else(finite, pc.cast(values, pa.string()), pa.scalar(None, pa.string()))
    return json_strings(format_column(values))


def json_lines(batch: pa.RecordBatch) -> pa.Array:
    """One JSON object (ending with a line feed) per row of ``batch``."""
    members = [
        pc.binary_join_element_wise(
            json.dumps(name, ensure_ascii=False) + ":",
            pc.fill_null(json_values(column), "null"),
            "",
        )
        for name, column in zip(batch.schema.names, batch.columns, strict=True)
    ]
    if not members:
        return pa.array(["{}\n"] * batch.num_rows, pa.string())
    body = pc.binary_join_element_wise(*members, ",")
    return pc.binary_join_element_wise("{", body, "}\n", "")


class JsonlSink(Sink):
    """A JSON Lines file being written."""

    def __init__(self, path: Path, *, append: bool) -> None:
        if append and path.exists() and path.stat().st_size:
            with open(path, "rb") as stream:
                stream.seek(-1, 2)
                self._missing_newline = stream.read(1) != b"\n"
        else:
            self._missing_newline = False
        self.file = AtomicFile(path, append=append)

    def write(self, batch: pa.RecordBatch) -> list[str | None]:
        if self._missing_newline:
            self.file.stream.write(b"\n")
            self._missing_newline = False
        self.file.stream.write(text_bytes(json_lines(batch)))
        return [None] * batch.num_rows

    def commit(self) -> None:
        self.file.commit()

    def discard(self) -> None:
        self.file.discard()
