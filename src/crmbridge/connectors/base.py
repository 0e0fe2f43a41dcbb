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

A connector may remember what it learned about its system between runs (a CRM's modules and
fields, say) in ``cache_dir``: a folder of its own per saved connection, which the connection
store sets on the instances it makes (``<crmbridge home>/cache/<connection>``) and removes with
the connection. It is None for connections written inline in a profile: then nothing is
remembered. A connector creates the folder when it first writes there, keeps nothing secret in
it, and must work the same when the folder is gone (``crmbridge describe --refresh`` removes it).

Lifecycle: the engine builds one instance per connection per run, calls ``open()`` before
anything else, and ``close()`` at the end whether the run succeeded or not. ``close()``
finalises writes (a file target is complete only after it).

Writing is **match, then plan, then apply** (ARCHITECTURE.md). For each batch the engine asks
the target to ``match`` the batch's keys (candidate records with their id, version and current
values, in the target's stored form); :mod:`crmbridge.core.plan` turns that into one operation
per record (create, update, delete, unchanged, rejected); a dry run stops there, a real run
hands the operations to ``apply``. Key equality is decided by :mod:`crmbridge.core.identity`
alone: a connector's ``match`` may return more candidates than match (a superset), never fewer.
``apply`` may be called many times, once per batch, in source order, and must be repeatable:
called again with the same operations (a retry, a resumed run: ``attempt > 1``) it confirms what
is already applied instead of applying it twice.
"""

from __future__ import annotations

import abc
import enum
import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Self

import pyarrow as pa
from pydantic import BaseModel, ConfigDict

from crmbridge.core.identity import KeyRule
from crmbridge.core.outcomes import WriteMode, WriteResult
from crmbridge.core.plan import ACTION_COLUMN, ID_COLUMN, OP_KEY_COLUMN, VERSION_COLUMN
from crmbridge.core.schema import ROW_COLUMN, ObjectSchema
from crmbridge.errors import ErrorContext, UnsupportedOperationError

if TYPE_CHECKING:
    from sqlglot import exp

__all__ = [
    "ACTION_COLUMN",
    "ID_COLUMN",
    "OP_KEY_COLUMN",
    "ROW_COLUMN",
    "VERSION_COLUMN",
    "ApplyRequest",
    "BadRecord",
    "Capabilities",
    "ConnectionInfo",
    "Connector",
    "ConnectorSettings",
    "CreateIdentity",
    "DeleteReporting",
    "MatchRequest",
    "ReadRequest",
    "Since",
]


class ConnectorSettings(BaseModel):
    """Base for a connector's settings model. Unknown keys are an error."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    def with_paths_resolved(self, base_dir: Path) -> Self:
        """These settings with every relative file or folder path made absolute against
        ``base_dir``. The connection store calls it when a connection is saved, so a saved
        connection names the same files for every command, wherever it is run from. A
        connector whose settings hold paths overrides it; the default changes nothing."""
        return self


class CreateIdentity(enum.StrEnum):
    """How a created record can be recognised again (after a lost answer, a crash)."""

    #: the create carries an id chosen by crmbridge (``OP_KEY_COLUMN``): SugarCRM
    #: ``new_with_id``, an idempotency key (QuickBooks ``requestId``), an external id
    CLIENT_ID = "client_id"
    #: the match keys (or the primary key) identify it: a SQL table with a unique key
    KEY = "key"
    #: nothing does: only an atomic target (``Capabilities.atomic``) may say so
    NONE = "none"


class DeleteReporting(enum.StrEnum):
    """How a source tells that a record was deleted (for change capture and sync)."""

    #: it cannot: deletes are found only by a full read of the object
    NONE = "none"
    #: with ``ReadRequest.include_deleted`` deleted records are returned, their
    #: ``ObjectSchema.deleted_field`` true (a soft-delete flag, a tombstone)
    FLAG = "flag"


@dataclass(frozen=True)
class Capabilities:
    """What a connector can do. Read by the engine to plan a run and by ``describe`` output.

    The engine checks a profile against these when it loads: a setting the source or target
    cannot honour is a profile error, not a surprise during the run."""

    read: bool = True
    write_modes: frozenset[WriteMode] = frozenset()
    #: ``read`` honours ``ReadRequest.since`` itself (else the engine filters locally)
    incremental: bool = False
    #: ``match`` is implemented (needed by every mode but a keyless insert, by references,
    #: links and previews)
    match: bool = False
    #: largest number of operations one ``apply`` call accepts; the engine splits larger batches
    max_batch_size: int | None = None
    #: how deleted records are reported on read (``ReadRequest.include_deleted``)
    deletes: DeleteReporting = DeleteReporting.NONE
    #: how a created record is recognised again (see :class:`CreateIdentity`)
    create_identity: CreateIdentity = CreateIdentity.KEY
    #: writes become visible only when the connector is closed at the end of a run (files
    #: written under a temporary name): a crashed run applied nothing, so a resumed run
    #: starts over instead of continuing
    atomic: bool = False
    #: one line for docs and ``describe``: what filters it evaluates itself
    pushdown: str = "none"
    #: ``link`` is implemented (relate records, e.g. a CRM's relationships)
    links: bool = False
    #: ``match`` may run on one thread while ``apply`` writes on another (the engine then
    #: plans the next batch while the current one is written)
    concurrent_match: bool = False
    #: when the engine may call ``create_object`` for a target that does not exist:
    #: "always" (files: the object is the file), "on_request" (SQL tables: when the profile
    #: says ``target.create: true``) or "never" (CRM modules)
    create_objects: Literal["always", "on_request", "never"] = "never"


@dataclass(frozen=True)
class Since:
    """Incremental read: the records whose ``field`` is >= ``value`` (an overlap is the
    caller's), returned in ``(field, key)`` order when ``key`` is given. A connector pages such
    a read by keyset (``(field, key) > (last field, last key)``), never by offset, so a record
    changed during the read is neither skipped nor shifted onto a page already read."""

    field: str
    value: Any
    key: str | None = None


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
    #: resume: only the records after this position of the read's order (the values of the
    #: fields :meth:`Connector.read_order` names, of the last record already processed)
    after: tuple[Any, ...] | None = None
    batch_size: int = 10_000
    include_deleted: bool = False
    #: called for each source record that cannot be parsed; the read goes on. When None the
    #: connector raises a RecordError for the first one instead.
    on_bad_record: Callable[[BadRecord], None] | None = None


@dataclass(frozen=True)
class MatchRequest:
    """Which records of ``object`` have these key values?"""

    object: str
    #: the key fields
    keys: Sequence[str]
    #: the key values to find, one row each (distinct, no nulls), typed per the schema
    values: pa.RecordBatch
    #: how each key compares (:mod:`crmbridge.core.identity`): a connector fetches candidates
    #: accordingly (e.g. case-insensitively for ``casefold``); the engine compares exactly
    rules: Mapping[str, KeyRule] = field(default_factory=dict)
    #: fields whose current values to return as well
    fields: Sequence[str] = ()
    context: ErrorContext = field(default_factory=ErrorContext)


@dataclass(frozen=True)
class ApplyRequest:
    """Operations to carry out on ``object``, one per row of ``ops``, in order."""

    object: str
    #: ACTION_COLUMN (``create``, ``update``, ``delete``), ID_COLUMN (the target id of an
    #: update or delete), OP_KEY_COLUMN (a stable key of the operation: the id a create gets
    #: when ``create_identity`` is CLIENT_ID), ROW_COLUMN, and the fields to write, typed per
    #: the target schema. The engine guarantees no two rows act on the same record, values fit
    #: the schema, and the actions fit ``capabilities().write_modes``.
    ops: pa.RecordBatch
    #: the fields that identify a record (SQL: what a create may conflict on)
    keys: Sequence[str] = ()
    #: field -> boolean array: True where that field is left alone by that operation (not
    #: sent, not set to null). Fields not named here are written by every operation.
    unset: Mapping[str, pa.Array] = field(default_factory=dict)
    #: 1 the first time; a retry or a resumed run sends the same operations again with
    #: ``attempt > 1``: what is found already applied is confirmed, never applied twice
    attempt: int = 1
    context: ErrorContext = field(default_factory=ErrorContext)
    #: the writing profile's identity (operation keys are unique within it)
    namespace: str = ""


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
    #: where it may remember things between runs (see the module docstring); None: nowhere
    cache_dir: Path | None = None

    def __init__(
        self, name: str, settings: ConnectorSettings, *, base_dir: Path | None = None
    ) -> None:
        self.name = name  # the connection's name, for messages
        self.settings = settings
        #: set by the connection store: keeps settings the system hands back
        self.on_settings_changed: Callable[[ConnectorSettings], None] | None = None
        #: relative paths in settings are relative to this (the profile's folder or cwd)
        self.base_dir = base_dir or Path.cwd()

    def settings_changed(self, settings: ConnectorSettings) -> None:
        """Call when the system hands back a setting that must be kept for the next run (a
        rotated OAuth refresh token): ``settings`` replace the connector's and are saved with
        the connection (a connection written in a profile cannot keep them: a warning)."""
        self.settings = settings
        if self.on_settings_changed is not None:
            self.on_settings_changed(settings)
        else:
            logging.getLogger("crmbridge.connectors").warning(
                "connection %r: the system changed a setting that cannot be saved (save the "
                "connection with `crmbridge connection add` to keep it)",
                self.name,
            )

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

    def read_order(self, request: ReadRequest) -> tuple[str, ...] | None:
        """The fields whose values order ``read(request)``'s records uniquely, so a resumed
        run can read on ``after`` the last record processed (e.g. the primary key; a CRM's
        ``date_modified, id``). ``()``: no such fields, but the order repeats exactly (a
        file), so the engine resumes by counting. None (default): no stable order; a resumed
        run reads everything again, which repeatable writes make safe."""
        return None

    def fingerprint(self, object: str) -> str | None:
        """A text that changes whenever the content of ``object`` changes (a file's hash), if
        the system can tell for much less than reading it; None (default): it cannot. A run
        whose source has the fingerprint of the last successful run of the same profile
        reads nothing (``docs/state.md``)."""
        return None

    # -- write ---------------------------------------------------------------------------
    def match(self, request: MatchRequest) -> pa.RecordBatch:
        """Candidate records for the key values of ``request`` (live records only).

        Columns: the keys, ``request.fields``, ID_COLUMN (the record's id as text) and
        VERSION_COLUMN (text that changes whenever the record changes, e.g. SugarCRM's
        ``date_modified``; null when the system has none), values in the target's stored form.
        Every record whose keys equal a wanted row under ``request.rules`` must be there; more
        is fine (the engine compares). Several records with one key come back as several rows.
        Declared by ``Capabilities.match``.
        """
        raise UnsupportedOperationError(
            f"{self.type_name} connections cannot look records up",
            context=ErrorContext(connection=self.name, object=request.object),
        )

    def refusals(self, object: str, batch: pa.RecordBatch) -> pa.Array | None:
        """Per record, why the system would refuse to store it as it is (text), or null;
        found without asking the system (SuiteCRM drops e-mail addresses it considers
        invalid). Checked in previews and dry runs too. Default: None (nothing known)."""
        return None

    def stored_form(self, object: str, batch: pa.RecordBatch) -> pa.RecordBatch:
        """``batch`` as the system would store it: values it rewrites on save (SuiteCRM decodes
        HTML entities and strips some tags) in their rewritten form, so a value compares equal
        to what ``match`` returns after the save. Default: unchanged."""
        return batch

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

    def apply(self, request: ApplyRequest) -> WriteResult:
        """Carry out ``request.ops``; one outcome per operation, in order.

        ``created`` / ``updated`` / ``deleted`` with the record's id, or ``rejected`` with a
        code (:class:`~crmbridge.core.outcomes.RejectCode`) and the system's reason for a
        record-level refusal (a value refused, a record gone, a duplicate created meanwhile),
        never an exception. Repeated (``attempt > 1``), an operation already applied is
        confirmed: a create found with its id or key and values, an update whose record holds
        the values, a delete whose record is gone. Raise only for whole-call failures:
        RetryableError (transient, nothing applied), AmbiguousWriteError (transient, maybe
        applied: the engine repeats the call) or a FatalError.
        """
        raise UnsupportedOperationError(
            f"{self.type_name} connections are read-only",
            context=ErrorContext(connection=self.name, object=request.object),
        )
