"""The connector contract: what every system (file, database, CRM) implements.

A connector is a class registered under the ``crmbridge.connectors`` entry point group. The
built-in ones register in crmbridge's own ``pyproject.toml`` exactly as a third-party plug-in
would in its own::

    [project.entry-points."crmbridge.connectors"]
    mysystem = "mypackage.connector:MySystemConnector"

A connector class declares

* ``settings_model``: a pydantic model of its connection settings. Secret fields are typed
  ``pydantic.SecretStr``; the connection store encrypts exactly those, and profiles may not
  hold them.
* ``capabilities()``: what it can do (see :class:`Capabilities`).

and implements the methods below. Data moves as ``pyarrow.RecordBatch`` es whose columns have
the Arrow types of :mod:`crmbridge.core.schema` (``Field.arrow_type``); a connector whose
system has no types (CSV) returns strings and declares the fields as ``string``.

Every connector must pass :mod:`crmbridge.testing.conformance`.

Lifecycle: the engine builds one instance per connection per run, calls ``open()`` before
anything else, and ``close()`` at the end whether the run succeeded or not. ``close()``
finalises writes (a file target is complete only after it). ``write`` may be called many
times, once per batch, in source order.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal, Self

import pyarrow as pa
from pydantic import BaseModel, ConfigDict
from sqlglot import exp

from crmbridge.core.outcomes import WriteMode, WriteResult
from crmbridge.core.schema import ROW_COLUMN, ObjectSchema
from crmbridge.errors import ErrorContext, UnsupportedOperationError

__all__ = [
    "ROW_COLUMN",
    "BadRecord",
    "Capabilities",
    "ConnectionInfo",
    "Connector",
    "ConnectorSettings",
    "ReadRequest",
    "Since",
    "WriteRequest",
]


class ConnectorSettings(BaseModel):
    """Base for a connector's settings model. Unknown keys are an error."""

    model_config = ConfigDict(extra="forbid", frozen=True)


@dataclass(frozen=True)
class Capabilities:
    """What a connector can do. Read by the engine to plan a run and by ``describe`` output."""

    read: bool = True
    write_modes: frozenset[WriteMode] = frozenset()
    #: reading only records changed since a cursor value (``ReadRequest.since``)
    incremental: bool = False
    #: ``lookup`` is implemented (needed for preview / dry run of update, upsert, delete)
    lookup: bool = False
    #: largest number of records one ``write`` call accepts; the engine splits larger batches
    max_batch_size: int | None = None
    #: the records it returns for deleted rows on request (``ReadRequest.include_deleted``)
    deleted: bool = False
    #: one line for docs and ``describe``: what filters it evaluates itself
    pushdown: str = "none"
    #: ``link`` is implemented (relate records, e.g. a CRM's relationships)
    links: bool = False
    #: when the engine may call ``create_object`` for a target that does not exist:
    #: "always" (files: the object is the file), "on_request" (SQL tables: when the profile
    #: says ``target.create: true``) or "never" (CRM modules)
    create_objects: Literal["always", "on_request", "never"] = "never"


@dataclass(frozen=True)
class Since:
    """Incremental read: records whose ``field`` is >= ``value`` (an overlap is the caller's)."""

    field: str
    value: Any


@dataclass(frozen=True)
class BadRecord:
    """A source record the connector could not parse (a malformed CSV line, invalid JSON)."""

    #: where it is in the source, e.g. the 1-based line number in a file
    position: int | None
    #: the raw text of the record, so nothing is lost
    raw: str
    #: why it could not be read
    reason: str


@dataclass(frozen=True)
class ReadRequest:
    object: str
    #: fields to return, in this order; None means every field
    fields: Sequence[str] | None = None
    #: a predicate the connector said it can evaluate (``can_push_down``); None: no filter
    filter: exp.Expression | None = None
    since: Since | None = None
    batch_size: int = 10_000
    include_deleted: bool = False
    #: called for each source record that cannot be parsed; the read goes on. When None the
    #: connector raises a RecordError for the first one instead.
    on_bad_record: Callable[[BadRecord], None] | None = None


@dataclass(frozen=True)
class WriteRequest:
    object: str
    #: columns named after target fields, typed per the target schema, plus ROW_COLUMN
    batch: pa.RecordBatch
    mode: WriteMode
    #: fields that identify a record for update / upsert / delete (and for insert duplicates)
    match_keys: Sequence[str] = ()
    #: update / upsert: the only fields written to records that already exist (a record that
    #: is created gets every field). None: every field of the batch. An empty list leaves
    #: existing records as they are (outcome unchanged).
    update_fields: Sequence[str] | None = None
    #: for the engine's messages
    context: ErrorContext = field(default_factory=ErrorContext)


@dataclass(frozen=True)
class ConnectionInfo:
    """What ``crmbridge connection test`` prints: facts about the system reached."""

    system: str  # e.g. "PostgreSQL", "SugarCRM"
    version: str | None = None
    details: dict[str, str] = field(default_factory=dict)


class Connector(abc.ABC):
    """Base class of every connector. See the module docstring for the contract."""

    #: the registry name, e.g. "csv"; the ``type`` of a connection
    type_name: ClassVar[str]
    settings_model: ClassVar[type[ConnectorSettings]]
    #: can this connector be a target at all (Access cannot)
    writable: ClassVar[bool] = True

    def __init__(
        self, name: str, settings: ConnectorSettings, *, base_dir: Path | None = None
    ) -> None:
        self.name = name  # the connection's name, for messages
        self.settings = settings
        #: relative paths in settings are relative to this (the profile's folder or cwd)
        self.base_dir = base_dir or Path.cwd()

    # -- lifecycle -----------------------------------------------------------------------
    def open(self) -> None:  # noqa: B027 - optional hook
        """Connect / log in. Raise ConnectionFailedError with a clear, secret-free message."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Finish pending writes and release resources. Called once, also after a failure."""

    def __enter__(self) -> Self:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- discovery -----------------------------------------------------------------------
    @abc.abstractmethod
    def capabilities(self) -> Capabilities: ...

    def check(self) -> ConnectionInfo:
        """Reach the system and report what answered. Default: open() worked."""
        return ConnectionInfo(system=self.type_name)

    @abc.abstractmethod
    def objects(self) -> list[str]:
        """Names of the objects (tables, sheets, files, modules) this connection can see."""

    @abc.abstractmethod
    def describe(self, object: str) -> ObjectSchema:
        """Fields of ``object``. An unknown object is a ConfigError suggesting close names."""

    # -- read ----------------------------------------------------------------------------
    @abc.abstractmethod
    def read(self, request: ReadRequest) -> Iterator[pa.RecordBatch]:
        """Stream the object's records in batches of at most ``request.batch_size`` rows.

        Columns are ``request.fields`` in that order (or, when None, the schema's
        ``default_field_names``), typed per ``describe``.
        Never load the whole object into memory.
        """

    def can_push_down(self, object: str, predicate: exp.Expression) -> bool:
        """Can ``read`` evaluate ``predicate`` itself, with exactly the semantics of
        :mod:`crmbridge.core.expressions`? The engine asks once per top-level AND-ed part of a
        profile's filter and evaluates the parts refused here locally."""
        return False

    def count(self, request: ReadRequest) -> int | None:
        """How many records ``read(request)`` will yield, if cheap to know (for ETA)."""
        return None

    # -- write ---------------------------------------------------------------------------
    def lookup(
        self, object: str, match_keys: Sequence[str], keys: pa.RecordBatch, fields: Sequence[str]
    ) -> pa.RecordBatch:
        """Records of ``object`` whose ``match_keys`` equal a row of ``keys``.

        Returns the ``match_keys`` columns, the id field (if the object has one) and ``fields``,
        one row per existing record (duplicates in the target come back as several rows).
        Used for preview and dry run. Declared by ``Capabilities.lookup``.
        """
        raise UnsupportedOperationError(
            f"{self.type_name} connections cannot look records up",
            context=ErrorContext(connection=self.name, object=object),
        )

    def link(
        self, object: str, record_id: str, link_name: str, related_ids: Sequence[str]
    ) -> dict[str, bool]:
        """Relate record ``record_id`` of ``object`` to ``related_ids`` through ``link_name``;
        for each related id, whether the link exists afterwards (verified by reading it back).
        Declared by ``Capabilities.links``."""
        raise UnsupportedOperationError(
            f"{self.type_name} connections cannot link records",
            context=ErrorContext(connection=self.name, object=object),
        )

    def create_object(self, schema: ObjectSchema, match_keys: Sequence[str]) -> ObjectSchema:
        """Create ``schema.name`` with these fields (match keys unique); return its schema as
        ``describe`` will report it. Declared by ``Capabilities.create_objects``."""
        raise UnsupportedOperationError(
            f"{self.type_name} connections cannot create objects",
            context=ErrorContext(connection=self.name, object=schema.name),
        )

    def write(self, request: WriteRequest) -> WriteResult:
        """Apply ``request.batch`` in ``request.mode``; one outcome per input row, in order.

        A record-level problem (duplicate key on insert, missing record on update, a value the
        system refuses) is a ``rejected`` outcome with the reason, never an exception. Raise
        only for whole-call failures: RetryableError (transient) or a FatalError.
        The engine guarantees: the batch has no two rows with the same match key values,
        values fit the target schema (types, lengths, required), ``request.mode`` is in
        ``capabilities().write_modes``.
        """
        raise UnsupportedOperationError(
            f"{self.type_name} connections are read-only",
            context=ErrorContext(connection=self.name, object=request.object),
        )
