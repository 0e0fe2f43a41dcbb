"""The ``jsonl`` connector: a folder of JSON Lines files (or one file).

Types are inferred from the first ``infer_rows`` lines; a later line that does not fit goes
to ``ReadRequest.on_bad_record`` with its line number and text, as does a line that is not a
JSON object.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import pyarrow as pa
from pydantic import Field

from crmbridge.connectors.base import BadRecord, ConnectorSettings, ReadRequest
from crmbridge.connectors.common.files import (
    FileConnector,
    FileSettings,
    Sink,
    io_error,
    report_bad,
)
from crmbridge.connectors.jsonl.reader import infer_schema, read_records
from crmbridge.connectors.jsonl.writer import JsonlSink
from crmbridge.core.batches import rebatch
from crmbridge.core.schema import ObjectSchema


class JsonlSettings(FileSettings):
    """Settings of a ``jsonl`` connection (see docs/connectors/jsonl.md)."""

    #: lines read by describe() to find the fields and their types
    infer_rows: int = Field(default=1000, ge=1)
    #: true: add to an existing file instead of replacing it
    append: bool = False


class JsonlConnector(FileConnector):
    """JSON Lines files: objects are the ``.jsonl`` / ``.ndjson`` files of the folder ``path``."""

    type_name = "jsonl"
    settings_model: ClassVar[type[ConnectorSettings]] = JsonlSettings
    extensions = (".jsonl", ".ndjson")
    system = "JSON Lines files"

    @property
    def options(self) -> JsonlSettings:
        assert isinstance(self.settings, JsonlSettings)
        return self.settings

    def _schema(self, object: str) -> tuple[Path, ObjectSchema]:
        path = self.location.existing(object)
        try:
            return path, infer_schema(object, path, self.options.infer_rows)
        except OSError as err:
            raise io_error(err, self.context(object)) from err

    def describe(self, object: str) -> ObjectSchema:
        """The fields of the first ``infer_rows`` lines, typed string, integer, float or
        boolean (nested objects and arrays are strings holding their JSON text)."""
        return self._schema(object)[1]

    def read(self, request: ReadRequest) -> Iterator[pa.RecordBatch]:
        self.check_read(request)
        path, schema = self._schema(request.object)
        wanted = schema.select(request.fields).field_names
        return rebatch(self._batches(request, path, schema, wanted), request.batch_size)

    def _batches(
        self, request: ReadRequest, path: Path, schema: ObjectSchema, wanted: list[str]
    ) -> Iterator[pa.RecordBatch]:
        context = self.context(request.object)
        for item in read_records(path, schema, request.batch_size):
            if isinstance(item, BadRecord):
                report_bad(request, item, context)
            elif item.num_rows:
                yield item.select(wanted)

    def open_sink(self, object: str) -> Sink:
        return JsonlSink(self.location.target(object), append=self.options.append)
