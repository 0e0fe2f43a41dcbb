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
from crmbridge.connectors.csv.dialect import CsvSettings, resolve_dialect
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

    def _header(self, object: str) -> tuple[Path, CsvSettings, list[str], int]:
        """The file, its dialect (delimiter detected when not set), column names and the line
        breaks inside the header."""
        path = self.location.existing(object)
        try:
            dialect = resolve_dialect(path, self.dialect)
            names, newlines = read_header(path, dialect)
        except CrmBridgeError as err:
            raise err.with_context(connection=self.name, object=object) from None
        except OSError as err:
            raise io_error(err, self.context(object)) from err
        return path, dialect, names, newlines

    def describe(self, object: str) -> ObjectSchema:
        """The columns of the header line, all ``string``; reads nothing else."""
        _, _, names, _ = self._header(object)
        return ObjectSchema(object, tuple(Field(n, FieldType.STRING) for n in names))

    def read(self, request: ReadRequest) -> Iterator[pa.RecordBatch]:
        self.check_read(request)
        path, dialect, names, newlines = self._header(request.object)
        schema = ObjectSchema(request.object, tuple(Field(n) for n in names))
        wanted = schema.select(request.fields).field_names
        batches = self._batches(request, path, dialect, names, newlines, wanted)
        return rebatch(batches, request.batch_size)

    def _batches(
        self,
        request: ReadRequest,
        path: Path,
        dialect: CsvSettings,
        names: list[str],
        newlines: int,
        wanted: list[str],
    ) -> Iterator[pa.RecordBatch]:
        context = self.context(request.object)
        for item in read_records(path, dialect, names, newlines):
            if isinstance(item, BadRecord):
                report_bad(request, item, context)
            elif item.num_rows:
                yield item.select(wanted)

    def open_sink(self, object: str) -> Sink:
        path = self.location.target(object)
        return CsvSink(path, resolve_dialect(path, self.dialect, look=self.dialect.append))
