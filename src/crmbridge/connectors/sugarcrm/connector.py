"""The SugarCRM / SuiteCRM connector: legacy v4_1 REST and REST v10/v11 behind one contract."""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Hashable, Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import ClassVar

import httpx
import pyarrow as pa
import pyarrow.compute as pc
from sqlglot import exp

from crmbridge.connectors.base import (
    ID_COLUMN,
    VERSION_COLUMN,
    ApplyRequest,
    Capabilities,
    ConnectionInfo,
    Connector,
    ConnectorSettings,
    CreateIdentity,
    DeleteReporting,
    MatchRequest,
    ReadRequest,
)
from crmbridge.connectors.sugarcrm.api import Api
from crmbridge.connectors.sugarcrm.cache import DiscoveryCache
from crmbridge.connectors.sugarcrm.catalog import Catalog
from crmbridge.connectors.sugarcrm.discovery import ModuleMeta
from crmbridge.connectors.sugarcrm.lookup import Finder
from crmbridge.connectors.sugarcrm.query import FilterBuilder
from crmbridge.connectors.sugarcrm.reader import Reader, plan_read, read_order
from crmbridge.connectors.sugarcrm.settings import SugarCrmSettings
from crmbridge.connectors.sugarcrm.transport import Transport
from crmbridge.connectors.sugarcrm.v4_1 import V41Client
from crmbridge.connectors.sugarcrm.v10 import NotV10Error, V10Client
from crmbridge.connectors.sugarcrm.values import refusals, stored_form
from crmbridge.connectors.sugarcrm.writer import ModuleWriter
from crmbridge.core.expressions import evaluate_constant
from crmbridge.core.outcomes import WriteMode, WriteResult
from crmbridge.core.schema import ObjectSchema, unknown_name_error
from crmbridge.errors import (
    ConfigError,
    ConnectionFailedError,
    ErrorContext,
    RemoteError,
)

log = logging.getLogger("crmbridge.connectors.sugarcrm")

#: parts of the messages of errors that show the remembered discovery is out of date
METADATA_ERRORS = ("refused the filter", "Database failure", "HTTP 412", "HTTP 422")

PUSHDOWN = (
    "text =, IN and LIKE (re-checked locally, as MySQL compares text case-insensitively); "
    "=, <>, <, <=, >, >=, IN, BETWEEN on numbers, dates and datetimes; IS [NOT] NULL; "
    "AND/OR of these; email1 through the e-mail tables"
)


class SugarCrmConnector(Connector):
    """SugarCRM (CE 6.5 to Sugar Cloud) and SuiteCRM 7/8 through their REST APIs.

    Besides the connector contract it offers :meth:`links` (the link fields of a module).
    ``transport`` replaces the HTTP transport
    (tests pass ``httpx.WSGITransport(app=sandbox.wsgi_app)``).
    """

    type_name: ClassVar[str] = "sugarcrm"
    settings_model: ClassVar[type[ConnectorSettings]] = SugarCrmSettings

    def __init__(
        self,
        name: str,
        settings: ConnectorSettings,
        *,
        base_dir: Path | None = None,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        super().__init__(name, settings, base_dir=base_dir)
        if not isinstance(settings, SugarCrmSettings):
            raise ConfigError(
                f"connection {name!r} needs SugarCrmSettings, not {type(settings).__name__}"
            )
        self.config = settings
        self._http = transport
        self._sleep = sleep
        self._transport: Transport | None = None
        self._api: Api | None = None
        self._catalog: Catalog | None = None
        self._found: dict[tuple[str, str, Hashable], str] = {}
        self._lock = threading.RLock()

    # -- lifecycle ------------------------------------------------------------------------
    def open(self) -> None:
        with self._lock:
            if self._api is not None:
                return
            self._transport = Transport(
                self.config, self.name, self._http, sleep=self._sleep or time.sleep
            )
            try:
                api = _connect(self._transport, self.config)
            except BaseException:
                self._transport.close()
                self._transport = None
                raise
            if self._catalog is None or self._catalog.cache.identity != _identity(self.config, api):
                cache = DiscoveryCache(self.cache_dir, _identity(self.config, api))
                self._catalog = Catalog(self.name, lambda: self.api, cache, self.config.tables)
            api.filterable = self._catalog.cache.filterable
            self._api = api

    def close(self) -> None:
        with self._lock:
            api, transport = self._api, self._transport
            self._api = self._transport = None
            if self._catalog is not None:
                self._catalog.cache.save()
            if api is not None:
                api.logout()
            if transport is not None:
                transport.close()

    @property
    def api(self) -> Api:
        """The logged-in API client (logs in on first use)."""
        if self._api is None:
            self.open()
        assert self._api is not None
        return self._api

    def _context(self, object: str | None = None) -> ErrorContext:
        return ErrorContext(connection=self.name, object=object)

    # -- discovery ------------------------------------------------------------------------
    def capabilities(self) -> Capabilities:
        return Capabilities(
            read=True,
            write_modes=frozenset(WriteMode),
            incremental=True,
            match=True,
            links=True,
            max_batch_size=self.config.max_batch_size,
            deletes=DeleteReporting.FLAG,
            create_identity=CreateIdentity.CLIENT_ID,
            pushdown=PUSHDOWN,
        )

    def check(self) -> ConnectionInfo:
        """The product and its own version: a SuiteCRM shows as ``SuiteCRM 7.14.6`` with the
        Sugar version it is compatible with (6.5.25) among the details, on either API."""
        info = self.api.server_info()
        suite = info.get("suitecrm_version")
        details = {"api": self.api.kind, "user": self.config.username}
        if suite:
            sugar = " ".join(v for v in (info.get("flavor"), info.get("version")) if v)
            details["sugar-compatible"] = sugar
            return ConnectionInfo(system="SuiteCRM", version=suite, details=details)
        details["flavor"] = info.get("flavor", "")
        return ConnectionInfo(system="SugarCRM", version=info.get("version"), details=details)

    @property
    def catalog(self) -> Catalog:
        """The server's modules (logs in on first use)."""
        if self._catalog is None:
            self.open()
        assert self._catalog is not None
        return self._catalog

    def objects(self) -> list[str]:
        return self.catalog.modules()

    def describe(self, object: str) -> ObjectSchema:
        schema = self.meta(object).schema
        if schema.has("deleted") and schema.deleted_field is None:
            schema = replace(schema, deleted_field="deleted")
        if self.config.allow_unknown_enum_values:  # the connection accepts any option
            fields = tuple(replace(f, allowed_values=None) for f in schema.fields)
            schema = replace(schema, fields=fields)
        return schema

    def meta(self, module: str) -> ModuleMeta:
        """Everything known about ``module`` (fields, table, links, and the fields of related
        records ``<link>.<field>``); remembered per connection (see :mod:`.cache`)."""
        return self.catalog.meta(module)

    def _own_meta(self, module: str) -> ModuleMeta:
        """The module's own fields and links, without related fields."""
        return self.catalog.own(module)

    def links(self, module: str) -> dict[str, str]:
        """The link fields of ``module`` and the module each one leads to ("" when the
        server does not say and the relationship does not tell either)."""
        return dict(self._own_meta(module).links)

    def _filters(self, meta: ModuleMeta) -> FilterBuilder:
        api = self.api
        return FilterBuilder(meta, lambda name: api.can_filter(meta, name), evaluate_constant)

    def _finder(self, meta: ModuleMeta) -> Finder:
        return Finder(
            self.api,
            self._filters(meta),
            page_size=self.config.page_size,
            context=self._context(meta.name),
        )

    # -- reading --------------------------------------------------------------------------
    def can_push_down(self, object: str, predicate: exp.Expression) -> bool:
        return self._filters(self.meta(object)).plan(predicate) is not None

    def read(self, request: ReadRequest) -> Iterator[pa.RecordBatch]:
        with self._metadata_errors():
            meta = self.meta(request.object)
            plan = plan_read(self._filters(meta), request, context=self._context(request.object))
        reader = Reader(
            self.api, plan, page_size=self.config.page_size, concurrency=self.api.parallel_reads
        )
        return self._watched(reader.batches(request.batch_size))

    def read_order(self, request: ReadRequest) -> tuple[str, ...]:
        """``id``; an incremental read ``<since field>, id``. Reads page by keyset in this
        order, so a resumed read goes on after the last record processed."""
        return read_order(request)

    def _watched(self, batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        with self._metadata_errors():
            yield from batches

    def count(self, request: ReadRequest) -> int | None:
        with self._metadata_errors():
            meta = self.meta(request.object)
            plan = plan_read(self._filters(meta), request, context=self._context(request.object))
            return self.api.count(meta, plan.where(self.api), deleted=request.include_deleted)

    @contextlib.contextmanager
    def _metadata_errors(self) -> Iterator[None]:
        """Forget the remembered discovery when the server's answer shows it is out of date
        (a filter it refuses, a column its database lacks, v10 ``metadata_out_of_date``)."""
        try:
            yield
        except RemoteError as err:
            if any(sign in err.message for sign in METADATA_ERRORS):
                self.catalog.forget(err.message)
            raise

    # -- writing --------------------------------------------------------------------------
    def match(self, request: MatchRequest) -> pa.RecordBatch:
        """Candidates for the key values: one list call per page of keys. The version of a
        record is its ``date_modified``."""
        meta = self.meta(request.object)
        names = list(request.keys)
        columns = [request.values.column(n).to_pylist() for n in names]
        rows = [r for r in zip(*columns, strict=True) if all(v is not None for v in r)]
        fields = list(dict.fromkeys([*request.fields, "date_modified"]))
        found = self._finder(meta).find(names, rows, fields)
        version = pc.cast(found.column("date_modified"), pa.string())
        out = found.append_column(ID_COLUMN, pc.cast(found.column("id"), pa.string()))
        out = out.append_column(VERSION_COLUMN, version)
        keep = list(dict.fromkeys([*names, *request.fields]))
        return out.select([*keep, ID_COLUMN, VERSION_COLUMN])

    def refusals(self, object: str, batch: pa.RecordBatch) -> pa.Array | None:
        """E-mail addresses SuiteCRM would leave out while saving the record (anything but
        ASCII ``local@domain.tld``, checked trimmed as they are sent)."""
        return refusals(batch)

    def stored_form(self, object: str, batch: pa.RecordBatch) -> pa.RecordBatch:
        """Text as Sugar keeps it after a save (entities decoded, tags it refuses removed),
        date-times to the second."""
        return stored_form(batch, self.meta(object).schema)

    def apply(self, request: ApplyRequest) -> WriteResult:
        meta = self.meta(request.object)
        context = request.context.merge(connection=self.name, object=request.object)
        writer = ModuleWriter(
            self.api,
            self._finder(meta),
            max_batch_size=self.config.max_batch_size,
            context=context,
        )
        return writer.apply(request)

    # -- related records ------------------------------------------------------------------
    def link(
        self, module: str, record_id: str, link_name: str, related_ids: Sequence[str]
    ) -> dict[str, bool]:
        """Link ``related_ids`` to a record through its link field ``link_name`` (e.g.
        Accounts ``contacts``), then read the links back: which ids are really linked.

        Sugar reports success for links it did not make (unknown ids), so only the answer of
        this method can be trusted.
        """
        meta = self._own_meta(module)
        if link_name not in meta.links:
            raise unknown_name_error("link", link_name, meta.links, context=self._context(module))
        ids = list(dict.fromkeys(related_ids))
        if not ids:
            return {}
        self.api.link(module, record_id, link_name, ids)
        linked = self.api.linked(module, record_id, link_name, ids)
        return {i: i in linked for i in ids}


def _identity(settings: SugarCrmSettings, api: Api) -> dict[str, str]:
    """What the remembered discovery of a connection is valid for."""
    return {
        "url": settings.display_url,
        "user": settings.username,
        "api": api.kind,
        "rest_version": settings.rest_version if api.kind == "v10" else "",
    }


def _connect(transport: Transport, settings: SugarCrmSettings) -> Api:
    """A logged-in client of the API the settings ask for (``auto``: v10 when available)."""
    if settings.api in ("auto", "v10"):
        client = V10Client(transport, settings)
        try:
            client.login()
            return client
        except NotV10Error as err:
            if settings.api == "v10":
                raise ConnectionFailedError(
                    f"no REST {settings.rest_version} API at {settings.display_url} ({err}); "
                    "set api: v4_1 for a server that only has the legacy API",
                    context=transport.context(),
                ) from None
    v4_1 = V41Client(transport, settings)
    v4_1.login()
    return v4_1
