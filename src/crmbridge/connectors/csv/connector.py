"""The ``csv`` connector: a folder of CSV files (or one file), read as text.

Every column is ``string``: typing a CSV column is the engine's job (a profile's
``source.types``). Lines that cannot be parsed go to ``ReadRequest.on_bad_record`` with their
line number and text.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import pyarrow as pa

from crmbridge.connectors.base import BadRecord, ConnectorSettings, ReadRequest
from crmbridge.connectors.common.files import FileConnector, Sink, io_error, report_bad
from crmbridge.connectors.csv.dialect import CsvSettings
from crmbridge.connectors.csv.reader import read_header, read_records
from crmbridge.connectors.csv.writer import CsvSink
from crmbridge.core.batches import rebatch
from crmbridge.core.schema import Field, FieldType, ObjectSchema
from crmbridge.errors import CrmBridgeError


class CsvConnector(FileConnector):
    """CSV files: objects are the ``.csv`` / ``.tsv`` files of the folder ``path``."""

    type_name = "csv"
    settings_model: ClassVar[type[ConnectorSettings]] = CsvSettings
    extensions = (".csv", ".tsv")
    system = "CSV files"

    @property
    def dialect(self) -> CsvSettings:
        assert isinstance(self.settings, CsvSettings)
        return self.settings

    def _header(self, object: str) -> tuple[Path, list[str], int]:
        path = self.location.existing(object)
        try:
            names, newlines = read_header(path, self.dialect)
        except CrmBridgeError as err:
            raise err.with_context(connection=self.name, object=object) from None
        except OSError as err:
            raise io_error(err, self.context(object)) from err
        return path, names, newlines

    def describe(self, object: str) -> ObjectSchema:
        """The columns of the header line, all ``string``; reads nothing else."""
        _, names, _ = self._header(object)
        return ObjectSchema(object, tuple(Field(n, FieldType.STRING) for n in names))

    def read(self, request: ReadRequest) -> Iterator[pa.RecordBatch]:
        self.check_read(request)
        path, names, newlines = self._header(request.object)
        schema = ObjectSchema(request.object, tuple(Field(n) for n in names))
        wanted = schema.select(request.fields).field_names
        return rebatch(self._batches(request, path, names, newlines, wanted), request.batch_size)

    def _batches(
        self, request: ReadRequest, path: Path, names: list[str], newlines: int, wanted: list[str]
    ) -> Iterator[pa.RecordBatch]:
        context = self.context(request.object)
        for item in read_records(path, self.dialect, names, newlines):
            if isinstance(item, BadRecord):
                report_bad(request, item, context)
            elif item.num_rows:
                yield item.select(wanted)

    def open_sink(self, object: str) -> Sink:
        return CsvSink(self.location.target(object), self.dialect)
