"""Reading JSON Lines: one JSON object per line, typed per the schema ``describe`` inferred.

Lines are read in chunks of ``batch_size``. A chunk is first handed whole to pyarrow's JSON
reader with the schema fixed (fast); when pyarrow refuses it (a line that is not JSON, a value
of another type, a field the schema does not have, a nested value), the chunk is read again
line by line with Python's json module, which sets each offending line aside as a BadRecord
and keeps the others. Both give the same rows for the lines they accept.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, BinaryIO

import pyarrow as pa
import pyarrow.json as pajson

from crmbridge.connectors.base import BadRecord
from crmbridge.connectors.common.files import CONVERTERS, MismatchError, infer_type, to_text
from crmbridge.core.schema import Field, FieldType, ObjectSchema

_BOM = b"\xef\xbb\xbf"


def numbered_lines(stream: BinaryIO) -> Iterator[tuple[int, bytes]]:
    """(1-based line number, line) for each line that is not blank; a leading BOM is dropped."""
    for number, line in enumerate(stream, start=1):
        if number == 1 and line.startswith(_BOM):
            line = line[len(_BOM) :]
        if line.strip():
            yield number, line


def infer_schema(name: str, path: Path, rows: int) -> ObjectSchema:
    """Fields (in order of first appearance) and types of the objects on the first ``rows``
    lines; a line that is not a JSON object is passed over."""
    values: dict[str, list[object]] = {}
    with open(path, "rb") as stream:
        for count, (_, line) in enumerate(numbered_lines(stream), start=1):
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict):
                for key, value in record.items():
                    values.setdefault(key, []).append(value)
            if count >= rows:
                break
    return ObjectSchema(
        name, tuple(Field(k, infer_type(v, empty_is_null=False)) for k, v in values.items())
    )


def read_records(
    path: Path, schema: ObjectSchema, batch_size: int
) -> Iterator[pa.RecordBatch | BadRecord]:
    """Batches of every field of ``schema``, and a BadRecord per line that does not fit."""
    arrow_schema = schema.arrow_schema()
    with open(path, "rb") as stream:
        chunk: list[tuple[int, bytes]] = []
        for item in numbered_lines(stream):
            chunk.append(item)
            if len(chunk) == batch_size:
                yield from _read_chunk(chunk, schema, arrow_schema)
                chunk = []
        if chunk:
            yield from _read_chunk(chunk, schema, arrow_schema)


def _read_chunk(
    chunk: Sequence[tuple[int, bytes]], schema: ObjectSchema, arrow_schema: pa.Schema
) -> Iterator[pa.RecordBatch | BadRecord]:
    fast = _with_pyarrow([line for _, line in chunk], arrow_schema)
    if fast is not None:
        yield fast
        return
    rows: list[dict[str, Any]] = []
    for number, line in chunk:
        try:
            rows.append(_parse_line(line, schema))
        except _LineError as err:
            yield BadRecord(number, line.decode("utf-8", "replace").rstrip("\r\n"), str(err))
    yield pa.RecordBatch.from_pylist(rows, schema=arrow_schema)


def _with_pyarrow(lines: Sequence[bytes], schema: pa.Schema) -> pa.RecordBatch | None:
    """The chunk parsed by pyarrow, or None when pyarrow finds anything wrong with it (or
    reads another number of records than there are lines, e.g. two objects on one line)."""
    if not schema.names:
        return None
    data = b"".join(line if line.endswith(b"\n") else line + b"\n" for line in lines)
    try:
        table = pajson.read_json(
            io.BytesIO(data),
            read_options=pajson.ReadOptions(use_threads=False, block_size=len(data)),
            parse_options=pajson.ParseOptions(
                explicit_schema=schema, unexpected_field_behavior="error"
            ),
        )
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
    if table.num_rows != len(lines) or table.schema != schema:
        return None
    return table.combine_chunks().to_batches()[0]


class _LineError(ValueError):
    """Why a line cannot be read."""


def _parse_line(line: bytes, schema: ObjectSchema) -> dict[str, Any]:
    try:
        record = json.loads(line)
    except ValueError as err:
        raise _LineError(f"not valid JSON: {err}") from None
    if not isinstance(record, dict):
        raise _LineError(f"not a JSON object but {type(record).__name__}")
    row: dict[str, Any] = {}
    for key, value in record.items():
        if not schema.has(key):
            raise _LineError(
                f"field {key!r} is not among the fields of the first lines; "
                "raise the connection's infer_rows to include it"
            )
        ftype = schema.field(key).type
        try:
            row[key] = _convert(value, ftype)
        except MismatchError as err:
            shown = json.dumps(value, ensure_ascii=False)
            raise _LineError(f"field {key!r}: {shown} is {err} ({ftype.value} expected)") from None
    return row


def _convert(value: object, ftype: FieldType) -> object:
    if value is None:
        return None
    if ftype is FieldType.STRING:
        if isinstance(value, dict | list):
            return json.dumps(value, ensure_ascii=False)
        return to_text(value)
    if isinstance(value, str):
        raise MismatchError("a text")
    if isinstance(value, dict | list):
        raise MismatchError("a nested value")
    return CONVERTERS[ftype](value)
