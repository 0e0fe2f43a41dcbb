"""The ``access`` connector: a Microsoft Access file (.mdb, .accdb) as a read-only source.

Objects are the file's tables (system tables left out). Types come from the table design:
Text → string (with its length), Memo → text, Byte/Integer/Long Integer → integer,
Currency → decimal(19,4), Numeric → decimal(p,s), Single/Double → float, Date/Time → datetime
(Access stores no zone: read as UTC), Yes/No → boolean, OLE/Binary → text of hex digits.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import ClassVar, Self, TypeVar

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from crmbridge.connectors.access.mdbtools import DATE_FORMAT, UNDECODABLE_DATE, Mdb
from crmbridge.connectors.base import (
    ApplyRequest,
    BadRecord,
    Capabilities,
    ConnectionInfo,
    Connector,
    ConnectorSettings,
    ReadRequest,
)
from crmbridge.connectors.common.files import report_bad
from crmbridge.core.batches import rebatch
from crmbridge.core.outcomes import WriteResult
from crmbridge.core.schema import FieldType, ObjectSchema, unknown_name_error
from crmbridge.errors import (
    ConfigError,
    ConnectionFailedError,
    CrmBridgeError,
    ErrorContext,
    RemoteError,
    UnsupportedOperationError,
)

T = TypeVar("T")

READ_ONLY_MESSAGE = "MS Access files can be read, not written; choose a CSV, Excel or SQL target"


class AccessSettings(ConnectorSettings):
    """Settings of an ``access`` connection (see docs/connectors/access.md)."""

    #: the .mdb or .accdb file, relative to the profile's folder (inline) or, when saved,
    #: to the folder the connection was added from
    path: str

    def with_paths_resolved(self, base_dir: Path) -> Self:
        return self.model_copy(update={"path": str((base_dir / self.path).resolve())})

    #: text encoding of Access 97 (Jet 3) files; later versions store Unicode
    jet3_charset: str = "cp1252"


class AccessConnector(Connector):
    """A Microsoft Access file, read with mdbtools. Never written."""

    type_name = "access"
    settings_model: ClassVar[type[ConnectorSettings]] = AccessSettings
    writable: ClassVar[bool] = False

    def __init__(
        self, name: str, settings: ConnectorSettings, *, base_dir: Path | None = None
    ) -> None:
        super().__init__(name, settings, base_dir=base_dir)
        assert isinstance(settings, AccessSettings)
        self.path = (self.base_dir / settings.path).resolve()
        self.mdb = Mdb(self.path, jet3_charset=settings.jet3_charset)
        self._tables: list[str] | None = None
        self._schemas: dict[str, ObjectSchema] = {}
        self._version: str | None = None

    def context(self, object: str | None = None) -> ErrorContext:
        return ErrorContext(connection=self.name, object=object)

    # -- lifecycle and discovery -----------------------------------------------------------
    def open(self) -> None:
        """Check that the file exists and that mdbtools can read it."""
        if not self.path.is_file():
            raise ConnectionFailedError(
                f"Access file {str(self.path)!r} does not exist", context=self.context()
            )
        try:
            self._version = self.mdb.version()
        except RemoteError as err:
            raise ConfigError(
                f"{self.path.name!r} is not an Access file mdbtools can read ({err.message})",
                context=self.context(),
            ) from None
        except CrmBridgeError as err:
            raise err.with_context(connection=self.name) from None

    def close(self) -> None:
        self._tables = None
        self._schemas.clear()

    def capabilities(self) -> Capabilities:
        return Capabilities(write_modes=frozenset(), pushdown="none")

    def check(self) -> ConnectionInfo:
        if self._version is None:
            self.open()
        return ConnectionInfo(
            system="Microsoft Access",
            version=self._version,
            details={"path": str(self.path), "tables": str(len(self.objects()))},
        )

    def objects(self) -> list[str]:
        if self._tables is None:
            self._tables = self._call(self.mdb.tables)
        return list(self._tables)

    def describe(self, object: str) -> ObjectSchema:
        if object not in self._schemas:
            if object not in self.objects():
                raise unknown_name_error("object", object, self.objects(), context=self.context())
            fields = self._call(lambda: self.mdb.fields(object), object)
            keys = [f.name for f in fields if f.key]
            self._schemas[object] = ObjectSchema(
                object, fields, id_field=keys[0] if len(keys) == 1 else None
            )
        return self._schemas[object]

    def count(self, request: ReadRequest) -> int | None:
        self.describe(request.object)
        return self._call(lambda: self.mdb.count(request.object), request.object)

    def _call(self, action: Callable[[], T], object: str | None = None) -> T:
        try:
            return action()
        except CrmBridgeError as err:
            raise err.with_context(connection=self.name, object=object) from None

    # -- read --------------------------------------------------------------------------------
    def read(self, request: ReadRequest) -> Iterator[pa.RecordBatch]:
        if request.filter is not None or request.since is not None:
            raise UnsupportedOperationError(
                "access connections filter nothing themselves", context=self.context(request.object)
            )
        schema = self.describe(request.object)
        wanted = schema.select(request.fields).field_names
        return rebatch(self._batches(request, schema, wanted), request.batch_size)

    def _batches(
        self, request: ReadRequest, schema: ObjectSchema, wanted: list[str]
    ) -> Iterator[pa.RecordBatch]:
        context = self.context(request.object)
        invalid: list[BadRecord] = []
        done = 0  # rows of the table read so far, good or bad
        with self.mdb.export(request.object) as stream:
            reader = pacsv.open_csv(stream, **_csv_options(schema, invalid))
            for batch in reader:
                done += len(invalid)
                for bad in invalid:
                    report_bad(request, bad, context, unit="row")
                invalid.clear()
                typed, bad_dates = _with_dates(batch, schema.select(wanted), done)
                done += batch.num_rows
                for bad in bad_dates:
                    report_bad(request, bad, context, unit="row")
                if typed.num_rows:
                    yield typed
        for bad in invalid:
            report_bad(request, bad, context, unit="row")

    # -- write -------------------------------------------------------------------------------
    def apply(self, request: ApplyRequest) -> WriteResult:
        raise UnsupportedOperationError(READ_ONLY_MESSAGE, context=self.context(request.object))


def _csv_options(schema: ObjectSchema, invalid: list[BadRecord]) -> dict[str, object]:
    """pyarrow options for mdb-export's CSV; dates are read as text (see _with_dates)."""

    def on_invalid(row: pacsv.InvalidRow) -> str:
        position = row.number - 1 if row.number else None  # the header is record 1
        reason = f"expected {row.expected_columns} fields, found {row.actual_columns}"
        invalid.append(BadRecord(position, row.text, reason))
        return "skip"

    types = {
        f.name: pa.string() if f.type is FieldType.DATETIME else f.arrow_type for f in schema.fields
    }
    return {
        "read_options": pacsv.ReadOptions(
            column_names=schema.field_names, skip_rows=1, use_threads=False
        ),
        "parse_options": pacsv.ParseOptions(
            newlines_in_values=True, invalid_row_handler=on_invalid
        ),
        "convert_options": pacsv.ConvertOptions(
            column_types=types,
            null_values=[""],
            true_values=["TRUE"],
            false_values=["FALSE"],
            strings_can_be_null=True,
            quoted_strings_can_be_null=False,
        ),
    }


def _with_dates(
    batch: pa.RecordBatch, wanted: ObjectSchema, before: int
) -> tuple[pa.RecordBatch, list[BadRecord]]:
    """The ``wanted`` columns of the batch, dates parsed (as UTC), without the rows holding a
    wanted date that cannot be read; those rows as BadRecords (positions from ``before`` + 1)."""
    columns: list[pa.Array] = []
    reasons: dict[int, str] = {}
    for field in wanted.fields:
        text = batch.column(field.name)
        if field.type is not FieldType.DATETIME:
            columns.append(text)
            continue
        parsed = pc.strptime(text, format=DATE_FORMAT, unit="us", error_is_null=True)
        failed = pc.and_(pc.is_null(parsed), pc.is_valid(text))
        for row in pc.indices_nonzero(failed).to_pylist():
            value = text[row].as_py()
            why = (
                "mdbtools cannot convert this date (it reads no date before 1899-12-30 "
                "nor very far in the future)"
                if value.startswith(UNDECODABLE_DATE)
                else "not a date"
            )
            reasons.setdefault(row, f"field {field.name!r}: {value!r}: {why}")
        columns.append(pc.cast(parsed, field.arrow_type))
    typed = pa.RecordBatch.from_arrays(columns, schema=wanted.arrow_schema())
    if not reasons:
        return typed, []
    rows = batch.to_pylist()
    bad = [
        BadRecord(before + row + 1, json.dumps(rows[row], ensure_ascii=False, default=str), why)
        for row, why in sorted(reasons.items())
    ]
    keep = pa.array([i not in reasons for i in range(batch.num_rows)])
    return typed.filter(keep), bad
