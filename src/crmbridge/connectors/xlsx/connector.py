"""The ``xlsx`` connector: Excel workbooks in a folder (or one workbook).

An object is a sheet, named ``<file>#<sheet>``, e.g. ``contacts.xlsx#Leads``; ``<file>``
alone means the connection's ``sheet`` setting, or else the first sheet (when writing: the
``sheet`` setting, or else ``Sheet1``). ``objects()`` lists ``<file>#<sheet>`` for every sheet
of every workbook.
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
from crmbridge.connectors.xlsx.reader import SheetOptions, SheetReader, sheet_names
from crmbridge.connectors.xlsx.writer import XlsxWorkbook
from crmbridge.core.batches import rebatch
from crmbridge.core.schema import ObjectSchema, unknown_name_error
from crmbridge.errors import CrmBridgeError

SEPARATOR = "#"
DEFAULT_SHEET = "Sheet1"


class XlsxSettings(FileSettings):
    """Settings of an ``xlsx`` connection (see docs/connectors/xlsx.md)."""

    #: the sheet an object naming only the file means (default: the first sheet)
    sheet: str | None = None
    #: false: the first row is data and the columns are named col_1 ... col_n
    header: bool = True
    #: rows to skip before the header (a title ...); empty rows are never counted
    skip_rows: int = Field(default=0, ge=0)
    #: data rows describe() looks at to infer each column's type
    infer_rows: int = Field(default=1000, ge=1)


def split_object(object: str) -> tuple[str, str | None]:
    """("book.xlsx", "Sheet") from "book.xlsx#Sheet"; ("book.xlsx", None) from "book.xlsx"."""
    at = object.lower().find(".xlsx" + SEPARATOR)
    if at < 0:
        return object, None
    return object[: at + 5], object[at + 6 :]


class XlsxConnector(FileConnector):
    """Excel .xlsx workbooks: objects are their sheets (``file.xlsx#Sheet``)."""

    type_name = "xlsx"
    settings_model: ClassVar[type[ConnectorSettings]] = XlsxSettings
    extensions = (".xlsx",)
    system = "Excel workbooks"

    def __init__(
        self, name: str, settings: ConnectorSettings, *, base_dir: Path | None = None
    ) -> None:
        super().__init__(name, settings, base_dir=base_dir)
        self._workbooks: dict[Path, XlsxWorkbook] = {}
        #: the sheet describe() parsed, kept for the next read of the same unchanged file:
        #: calamine parses a whole sheet at once, so this halves the work of describe + read
        self._described: dict[str, tuple[SheetReader, float]] = {}

    @property
    def options(self) -> XlsxSettings:
        assert isinstance(self.settings, XlsxSettings)
        return self.settings

    @property
    def sheet_options(self) -> SheetOptions:
        o = self.options
        return SheetOptions(header=o.header, skip_rows=o.skip_rows, infer_rows=o.infer_rows)

    def file_of(self, object: str) -> str:
        return split_object(object)[0]

    def objects(self) -> list[str]:
        return [
            f"{name}{SEPARATOR}{sheet}"
            for name in self.location.names()
            for sheet in self._sheets(name, self.location.folder / name)
        ]

    def _sheets(self, object: str, path: Path) -> list[str]:
        try:
            return sheet_names(path)
        except CrmBridgeError as err:
            raise err.with_context(connection=self.name, object=object) from None
        except OSError as err:
            raise io_error(err, self.context(object)) from err

    def _sheet(self, object: str) -> tuple[Path, str]:
        """The workbook file and the sheet an object names; ConfigError suggesting close
        names when either does not exist."""
        file, sheet = split_object(object)
        if file in self.location.names():
            path = self.location.folder / file
            sheets = self._sheets(object, path)
            chosen = sheet or self.options.sheet or (sheets[0] if sheets else None)
            if chosen in sheets:
                return path, chosen
        raise unknown_name_error("object", object, self.objects(), context=self.context())

    def describe(self, object: str) -> ObjectSchema:
        """Columns from the header row; types inferred from the first ``infer_rows`` rows:
        integer, float, date, datetime, boolean, else string."""
        self._forget(object)
        reader = self._reader(object)
        self._described[object] = (reader, reader.path.stat().st_mtime)
        return reader.schema

    def _forget(self, object: str) -> None:
        kept = self._described.pop(object, None)
        if kept is not None:
            kept[0].close()

    def _reader(self, object: str) -> SheetReader:
        path, sheet = self._sheet(object)
        try:
            return SheetReader(path, sheet, object, self.sheet_options)
        except CrmBridgeError as err:
            raise err.with_context(connection=self.name, object=object) from None

    def read(self, request: ReadRequest) -> Iterator[pa.RecordBatch]:
        self.check_read(request)
        kept = self._described.pop(request.object, None)
        if kept is not None and kept[0].path.stat().st_mtime == kept[1]:
            reader = kept[0]
        else:
            if kept is not None:
                kept[0].close()
            reader = self._reader(request.object)
        try:
            wanted = reader.schema.select(request.fields).field_names
        except CrmBridgeError:
            reader.close()
            raise
        return rebatch(self._batches(request, reader, wanted), request.batch_size)

    def _batches(
        self, request: ReadRequest, reader: SheetReader, wanted: list[str]
    ) -> Iterator[pa.RecordBatch]:
        context = self.context(request.object)
        for item in reader.records(request.batch_size):
            if isinstance(item, BadRecord):
                report_bad(request, item, context, unit="row")
            elif item.num_rows:
                yield item.select(wanted)

    def open_sink(self, object: str) -> Sink:
        file, sheet = split_object(object)
        path = self.location.target(file)
        if path not in self._workbooks or self._workbooks[path].done:
            self._workbooks[path] = XlsxWorkbook(path)
        return self._workbooks[path].sheet(sheet or self.options.sheet or DEFAULT_SHEET)

    def close(self) -> None:
        try:
            super().close()
        finally:
            self._workbooks.clear()
            for object in list(self._described):
                self._forget(object)
