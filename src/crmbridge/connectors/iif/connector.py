"""The ``iif`` connector: QuickBooks Desktop import files in a folder.

Its objects are the three kinds of :mod:`.kinds` (``customers.iif``, ``invoices.iif``,
``sales_receipts.iif``): a target writes (replaces) that file; a source reads it back.
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
from crmbridge.connectors.iif.kinds import KINDS, Kind
from crmbridge.connectors.iif.reader import read_records
from crmbridge.connectors.iif.writer import IifSink
from crmbridge.core.batches import rebatch
from crmbridge.core.schema import ObjectSchema, unknown_name_error


class IifSettings(FileSettings):
    """Settings of an ``iif`` connection (see docs/connectors/iif.md)."""

    #: QuickBooks Desktop reads IIF files in the Windows code page of US English
    encoding: str = Field("cp1252", description="text encoding of the files")


class IifConnector(FileConnector):
    """IIF files for QuickBooks Desktop: customers, invoices and sales receipts."""

    type_name = "iif"
    settings_model: ClassVar[type[ConnectorSettings]] = IifSettings
    extensions = (".iif",)
    system = "QuickBooks Desktop IIF files"

    @property
    def options(self) -> IifSettings:
        assert isinstance(self.settings, IifSettings)
        return self.settings

    def objects(self) -> list[str]:
        return list(KINDS)

    def kind(self, object: str) -> Kind:
        if object not in KINDS:
            raise unknown_name_error("object", object, KINDS, context=self.context())
        return KINDS[object]

    def describe(self, object: str) -> ObjectSchema:
        return self.kind(object).schema

    def read(self, request: ReadRequest) -> Iterator[pa.RecordBatch]:
        self.check_read(request)
        kind = self.kind(request.object)
        path = self.location.existing(request.object)
        wanted = kind.schema.select(request.fields)
        return rebatch(self._batches(request, kind, path, wanted), request.batch_size)

    def _batches(
        self, request: ReadRequest, kind: Kind, path: Path, wanted: ObjectSchema
    ) -> Iterator[pa.RecordBatch]:
        context = self.context(request.object)
        arrow = wanted.arrow_schema()
        rows: list[dict[str, object]] = []
        try:
            for item in read_records(
                self.location.folder / kind.object, kind, self.options.encoding
            ):
                if isinstance(item, BadRecord):
                    report_bad(request, item, context)
                    continue
                rows.append({n: item.get(n) for n in wanted.field_names})
                if len(rows) >= request.batch_size:
                    yield pa.RecordBatch.from_pylist(rows, schema=arrow)
                    rows = []
        except OSError as err:
            raise io_error(err, context) from err
        yield pa.RecordBatch.from_pylist(rows, schema=arrow)

    def open_sink(self, object: str) -> Sink:
        kind = self.kind(object)
        return IifSink(self.location.target(object), kind, self.options.encoding)
