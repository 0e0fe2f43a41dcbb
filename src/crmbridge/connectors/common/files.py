"""What the file connectors (CSV, Excel, JSON Lines) share.

* :class:`FileLocation`: the connection's ``path`` (a folder or one file, relative to the
  connector's ``base_dir``) and the objects (file names) it holds.
* :class:`FileConnector`: the common connector: discovery, insert-only writes through
  :class:`Sink` s, which are completed by ``close()``.
* :class:`AtomicFile`: a target written under a temporary name and renamed into place.
* Small helpers: bad-record reporting, re-batching, column naming, Python-value typing.

A file target is an append-only sink: the first write of a run to an object creates (or
truncates) it, later writes of the run add to it, and ``close()`` finalises it.
"""

from __future__ import annotations

import abc
import contextlib
import datetime as dt
import hashlib
import json
import os
import uuid
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import IO, Any, ClassVar, Self

import pyarrow as pa
import pyarrow.compute as pc

from crmbridge.connectors.base import (
    ACTION_COLUMN,
    ID_COLUMN,
    OP_KEY_COLUMN,
    ROW_COLUMN,
    ApplyRequest,
    BadRecord,
    Capabilities,
    ConnectionInfo,
    Connector,
    ConnectorSettings,
    CreateIdentity,
    ReadRequest,
)
from crmbridge.core.outcomes import Outcome, WriteMode, WriteResult
from crmbridge.core.schema import FieldType, ObjectSchema, unknown_name_error
from crmbridge.errors import (
    ConfigError,
    CrmBridgeError,
    ErrorContext,
    FatalError,
    RecordError,
    UnsupportedOperationError,
)

#: marks the temporary files of targets being written; never listed as objects
TEMP_MARK = ".crmbridge-tmp-"


class FileSettings(ConnectorSettings):
    """Settings every file connection has."""

    #: a folder (objects are its files) or one file; relative to the profile's folder
    #: (inline) or, when saved, to the folder the connection was added from
    path: str = "."

    def with_paths_resolved(self, base_dir: Path) -> Self:
        return self.model_copy(update={"path": str((base_dir / self.path).resolve())})


# -- where the files are -------------------------------------------------------------------
class FileLocation:
    """The folder or single file a connection points at, and the file names (objects) in it.

    A path that exists is a folder or a file as it is; a path that does not exist yet is a
    file when it ends with one of ``extensions`` (a target about to be created), else a folder.
    """

    def __init__(
        self, connection: str, base_dir: Path, path: str, extensions: Sequence[str]
    ) -> None:
        self.connection = connection
        self.path = (base_dir / path).resolve()
        self.extensions = tuple(e.lower() for e in extensions)
        if self.path.exists():
            self.single = self.path.is_file()
        else:
            self.single = self.path.suffix.lower() in self.extensions
        self.folder = self.path.parent if self.single else self.path

    def context(self, object: str | None = None) -> ErrorContext:
        return ErrorContext(connection=self.connection, object=object)

    def check(self) -> None:
        """ConfigError when the folder or file does not exist (a path to correct; a target's
        folder is created by its first write, see :class:`AtomicFile`)."""
        if not self.path.exists():
            kind = "file" if self.single else "folder"
            raise ConfigError(f"{kind} {str(self.path)!r} does not exist", context=self.context())

    def names(self) -> list[str]:
        """The file names this connection can read, sorted."""
        if self.single:
            return [self.path.name] if self.path.is_file() else []
        self.check()
        return sorted(
            p.name
            for p in self.path.iterdir()
            if p.is_file()
            and p.suffix.lower() in self.extensions
            and not p.name.startswith(".")
            and TEMP_MARK not in p.name
        )

    def existing(self, name: str) -> Path:
        """The file called ``name``; an unknown name is a ConfigError suggesting close names."""
        known = self.names()
        if name not in known:
            raise unknown_name_error("object", name, known, context=self.context())
        return self.folder / name

    def target(self, name: str) -> Path:
        """Where to write the object ``name`` (a plain file name with a known extension)."""
        if self.single:
            if name != self.path.name:
                raise ConfigError(
                    f"this connection writes only {self.path.name!r}",
                    context=self.context(name),
                )
            return self.path
        if not name or Path(name).name != name or name.startswith("."):
            raise ConfigError(
                "an object of a file connection is a plain file name (no folder part)",
                context=self.context(name),
            )
        if Path(name).suffix.lower() not in self.extensions:
            raise ConfigError(
                f"the file name must end with {' or '.join(self.extensions)}",
                context=self.context(name),
            )
        return self.folder / name


# -- writing -------------------------------------------------------------------------------
class AtomicFile:
    """A binary file written under a temporary name in the same folder, renamed by commit().

    With ``append`` the existing file is written to in place instead (not atomic).
    """

    def __init__(self, path: Path, *, append: bool = False) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self.appending = append and path.exists()
        self.temp = (
            path
            if self.appending
            else path.with_name(f".{path.name}{TEMP_MARK}{uuid.uuid4().hex[:8]}")
        )
        self.stream: IO[bytes] = open(self.temp, "ab" if self.appending else "wb")  # noqa: SIM115

    def commit(self) -> None:
        """Flush, close and move the file into place."""
        self.stream.close()
        if not self.appending:
            os.replace(self.temp, self.path)

    def discard(self) -> None:
        """Close and remove the temporary file (the target is left as it was)."""
        self.stream.close()
        if not self.appending:
            self.temp.unlink(missing_ok=True)


class Sink(abc.ABC):
    """An object being written during a run."""

    @abc.abstractmethod
    def write(self, batch: pa.RecordBatch) -> list[str | None]:
        """Write the rows; returns, per row, None when written or the reason it was refused."""

    @abc.abstractmethod
    def commit(self) -> None:
        """Complete the file (rename it into place)."""

    @abc.abstractmethod
    def discard(self) -> None:
        """Give up: remove what was written, leave the target as it was."""


def write_result(reasons: Sequence[str | None]) -> WriteResult:
    """created for each None, rejected with the reason otherwise; target ids are null."""
    if not any(reasons):
        return WriteResult.uniform(len(reasons), Outcome.CREATED)
    outcomes = [Outcome.REJECTED.value if r else Outcome.CREATED.value for r in reasons]
    return WriteResult.build(outcomes, reasons=reasons)


class FileConnector(Connector):
    """Base of the file connectors: objects are files of ``extensions`` under ``path``."""

    settings_model: ClassVar[type[ConnectorSettings]] = FileSettings
    #: file name endings this connector lists as objects, e.g. (".csv",)
    extensions: ClassVar[tuple[str, ...]]
    #: shown by ``check``
    system: ClassVar[str]

    def __init__(
        self, name: str, settings: ConnectorSettings, *, base_dir: Path | None = None
    ) -> None:
        super().__init__(name, settings, base_dir=base_dir)
        assert isinstance(settings, FileSettings)
        self.location = FileLocation(name, self.base_dir, settings.path, self.extensions)
        self._sinks: dict[str, Sink] = {}

    def context(self, object: str | None = None) -> ErrorContext:
        return ErrorContext(connection=self.name, object=object)

    # -- discovery -----------------------------------------------------------------------
    def capabilities(self) -> Capabilities:
        return Capabilities(
            write_modes=frozenset({WriteMode.INSERT}),
            pushdown="none",
            create_objects="always",
            # a run writes the file under a temporary name, renamed into place at the end
            atomic=True,
            create_identity=CreateIdentity.NONE,
        )

    def read_order(self, request: ReadRequest) -> tuple[str, ...] | None:
        return ()  # a file reads in the same order every time

    def file_of(self, object: str) -> str:
        """The file name of ``object`` (a sheet names its workbook: ``book.xlsx#Sheet``)."""
        return object

    def fingerprint(self, object: str) -> str | None:
        """The file's size and SHA-256 (read in 1 MiB blocks; about 1 GB/s)."""
        path = self.location.existing(self.file_of(object))
        digest = hashlib.sha256()
        with path.open("rb") as handle:
            while block := handle.read(1 << 20):
                digest.update(block)
        return f"{path.stat().st_size}:{digest.hexdigest()}"

    def create_object(self, schema: ObjectSchema, match_keys: Sequence[str]) -> ObjectSchema:
        """A file target needs no preparation: its first write creates it (and checks the name)."""
        return schema

    def check(self) -> ConnectionInfo:
        self.location.check()
        return ConnectionInfo(
            system=self.system,
            details={"path": str(self.location.path), "objects": str(len(self.objects()))},
        )

    def objects(self) -> list[str]:
        return self.location.names()

    def check_read(self, request: ReadRequest) -> None:
        """Refuse what a file connector never offers (it declares no pushdown, no cursor)."""
        if request.filter is not None or request.since is not None:
            raise UnsupportedOperationError(
                f"{self.type_name} connections filter nothing themselves",
                context=self.context(request.object),
            )

    # -- write ---------------------------------------------------------------------------
    @abc.abstractmethod
    def open_sink(self, object: str) -> Sink:
        """Start writing ``object`` (called on the first write to it in a run)."""

    def apply(self, request: ApplyRequest) -> WriteResult:
        actions = set(request.ops.column(ACTION_COLUMN).to_pylist())
        if actions - {"create"}:
            raise UnsupportedOperationError(
                f"a {self.type_name} file is an append-only target: only insert is possible, "
                f"not {', '.join(sorted(actions - {'create'}))}",
                context=self.context(request.object),
            )
        batch = request.ops
        internal = [ROW_COLUMN, ACTION_COLUMN, ID_COLUMN, OP_KEY_COLUMN]
        batch = batch.drop_columns([n for n in internal if n in batch.schema.names])
        try:
            sink = self._sinks.get(request.object)
            if sink is None:
                sink = self._sinks[request.object] = self.open_sink(request.object)
            reasons = sink.write(batch)
        except CrmBridgeError as err:
            raise err.with_context(connection=self.name, object=request.object) from None
        except OSError as err:
            raise io_error(err, self.context(request.object)) from err
        return write_result(reasons)

    def close(self) -> None:
        """Complete every file written in this run; one that fails is removed, not half-done."""
        sinks, self._sinks = self._sinks, {}
        failure: CrmBridgeError | None = None
        for object, sink in sinks.items():
            try:
                sink.commit()
            except (OSError, CrmBridgeError) as err:
                if failure is None:
                    failure = (
                        err.with_context(connection=self.name, object=object)
                        if isinstance(err, CrmBridgeError)
                        else io_error(err, self.context(object))
                    )
                with contextlib.suppress(OSError):
                    sink.discard()
        if failure is not None:
            raise failure


def io_error(err: OSError, context: ErrorContext) -> FatalError:
    """A file system failure (disk full, permission denied ...) as a FatalError."""
    where = f" {str(err.filename)!r}" if err.filename else ""
    return FatalError(f"cannot access{where}: {err.strerror or err}", context=context)


# -- reading -------------------------------------------------------------------------------
def report_bad(
    request: ReadRequest, bad: BadRecord, context: ErrorContext, *, unit: str = "line"
) -> None:
    """Hand a record that cannot be read to ``request.on_bad_record``; without one, raise."""
    if request.on_bad_record is not None:
        request.on_bad_record(bad)
        return
    raw = bad.raw if len(bad.raw) <= 200 else bad.raw[:200] + "..."
    raise RecordError(
        f"{unit} {bad.position}: {bad.reason}: {raw!r}", context=context.merge(record=bad.position)
    )


def column_names(raw: Sequence[object], *, header: bool) -> list[str]:
    """Column names from a header row: blanks become col_<n>, repeats get _2, _3 ...

    Without a header the columns are col_1 ... col_n.
    """
    names: list[str] = []
    seen: set[str] = set()
    for i, value in enumerate(raw, start=1):
        name = str(value).strip() if header and value not in (None, "") else f"col_{i}"
        unique, n = name, 1
        while unique in seen:
            n += 1
            unique = f"{name}_{n}"
        seen.add(unique)
        names.append(unique)
    return names


# -- Arrow columns as text ------------------------------------------------------------------
def format_column(values: pa.Array | pa.ChunkedArray) -> pa.Array:
    """The column's values as text; nulls stay null.

    Integers and decimals in plain notation, floats as Arrow prints them (shortest form),
    booleans ``true``/``false``, dates ``YYYY-MM-DD``, datetimes ISO 8601 in UTC with a ``Z``
    (``2024-03-01T14:30:00Z``, with microseconds only when there are some).
    """
    dtype = values.type
    if pa.types.is_timestamp(dtype):  # "2024-03-01 14:30:00.000000" in UTC, then ISO
        text = pc.cast(pc.cast(values, pa.timestamp("us")), pa.string())
        text = pc.if_else(pc.ends_with(text, ".000000"), pc.utf8_slice_codeunits(text, 0, 19), text)
        text = pc.replace_substring(text, " ", "T", max_replacements=1)
        return pc.binary_join_element_wise(text, "Z", "")
    if pa.types.is_string(dtype):
        return values
    return pc.cast(values, pa.string())


def text_bytes(values: pa.Array) -> bytes:
    """The UTF-8 bytes of every value of a string array, one after the other (no copy per row)."""
    if not len(values):
        return b""
    _, offsets, data = values.buffers()
    bounds = pa.Array.from_buffers(
        pa.int32(), len(values) + 1, [None, offsets], offset=values.offset
    )
    first, last = bounds[0].as_py(), bounds[-1].as_py()
    return data.slice(first, last - first).to_pybytes() if last > first else b""


# -- Python values to typed columns (Excel cells, JSON values) ------------------------------
class MismatchError(ValueError):
    """A value does not fit its column's type."""


def infer_type(values: Iterable[object], *, empty_is_null: bool = True) -> FieldType:
    """The narrowest FieldType holding every non-null value; string when mixed or none.

    Integral floats count as integers (Excel stores every number as a float)."""
    kinds = {_kind(v) for v in values if v is not None and (v != "" or not empty_is_null)}
    if not kinds:
        return FieldType.STRING
    if kinds == {"bool"}:
        return FieldType.BOOLEAN
    if kinds == {"int"}:
        return FieldType.INTEGER
    if kinds <= {"int", "float"}:
        return FieldType.FLOAT
    if kinds == {"date"}:
        return FieldType.DATE
    if kinds <= {"date", "datetime"}:
        return FieldType.DATETIME
    return FieldType.STRING


def _kind(value: object) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "int" if value.is_integer() else "float"
    if isinstance(value, dt.datetime):
        return "datetime"
    if isinstance(value, dt.date):
        return "date"
    return "other"


def to_text(value: object) -> str:
    """A value as text: ISO dates, true/false, integral floats without '.0', JSON for the rest."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return str(int(value))
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return str(value)
    return json.dumps(value, ensure_ascii=False, default=str)


def _to_integer(value: object) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        if not -(2**63) <= value < 2**63:
            raise MismatchError("out of the integer range")
        return value
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**63:
        return int(value)
    raise MismatchError("not an integer")


def _to_float(value: object) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool):
        try:
            return float(value)
        except OverflowError:
            raise MismatchError("out of the float range") from None
    raise MismatchError("not a number")


def _to_boolean(value: object) -> bool:
    if isinstance(value, bool):
        return value
    raise MismatchError("not a boolean")


def _to_date(value: object) -> dt.date:
    if isinstance(value, dt.datetime):
        if value.time() != dt.time(0):
            raise MismatchError("a date-time where a date is expected")
        return value.date()
    if isinstance(value, dt.date):
        return value
    raise MismatchError("not a date")


def _to_datetime(value: object) -> dt.datetime:
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)
    if isinstance(value, dt.date):
        return dt.datetime(value.year, value.month, value.day, tzinfo=dt.UTC)
    raise MismatchError("not a date-time")


CONVERTERS: dict[FieldType, Callable[[Any], object]] = {
    FieldType.STRING: to_text,
    FieldType.INTEGER: _to_integer,
    FieldType.FLOAT: _to_float,
    FieldType.BOOLEAN: _to_boolean,
    FieldType.DATE: _to_date,
    FieldType.DATETIME: _to_datetime,
}


def convert_cell(value: object, ftype: FieldType) -> object:
    """``value`` as ``ftype`` (None and "" are null); raises MismatchError when it does not fit."""
    if value is None or value == "":
        return None
    return CONVERTERS[ftype](value)
