"""The SugarCRM / SuiteCRM connector: legacy v4_1 REST and REST v10/v11 behind one contract."""

from __future__ import annotations

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
from crmbridge.connectors.sugarcrm.discovery import ModuleMeta, build_meta, with_related
from crmbridge.connectors.sugarcrm.lookup import Finder
from crmbridge.connectors.sugarcrm.query import FilterBuilder
from crmbridge.connectors.sugarcrm.reader import Reader, plan_read
from crmbridge.connectors.sugarcrm.settings import SugarCrmSettings
from crmbridge.connectors.sugarcrm.transport import Transport
from crmbridge.connectors.sugarcrm.v4_1 import V41Client
from crmbridge.connectors.sugarcrm.v10 import NotV10Error, V10Client
from crmbridge.connectors.sugarcrm.values import stored_form
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
        self._modules: list[str] | None = None
        self._meta: dict[str, ModuleMeta] = {}
        self._own: dict[str, ModuleMeta] = {}
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
                self._api = _connect(self._transport, self.config)
            except BaseException:
                self._transport.close()
                self._transport = None
                raise

    def close(self) -> None:
        with self._lock:
            api, transport = self._api, self._transport
            self._api = self._transport = None
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
        info = self.api.server_info()
        suite = info.get("suitecrm_version")
        details = {
            "flavor": info.get("flavor", ""),
            "api": self.api.kind,
            "user": self.config.username,
        }
        if suite:
            details["suitecrm_version"] = suite
        return ConnectionInfo(
            system="SuiteCRM" if suite else "SugarCRM",
            version=info.get("version"),
            details=details,
        )

    def objects(self) -> list[str]:
        with self._lock:
            if self._modules is None:
                self._modules = self.api.modules()
            return list(self._modules)

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
        records ``<link>.<field>``); cached per connection.

        The related fields need the description of each module a link leads to: one more
        metadata call per such module, once per connection."""
        with self._lock:
            if module not in self._meta:
                own = self._own_meta(module)
                visible = set(self.objects())
                linked = {
                    name: found
                    for name in sorted(set(own.links.values()) & visible)
                    if (found := self._linked_meta(module, name)) is not None
                }
                self._meta[module] = with_related(own, linked)
            return self._meta[module]

    def _own_meta(self, module: str) -> ModuleMeta:
        """The module's own fields and links, without related fields."""
        with self._lock:
            if module not in self._own:
                modules = self.objects()
                if module not in modules:
                    raise unknown_name_error("module", module, modules, context=self._context())
                raw = self.api.module(module)
                self._own[module] = build_meta(raw, self.config.tables)
            return self._own[module]

    def _linked_meta(self, module: str, linked: str) -> ModuleMeta | None:
        """The own meta of a module a link of ``module`` leads to; None when the server will
        not describe it (its related fields are then left out)."""
        try:
            return self._own_meta(linked)
        except (ConfigError, RemoteError) as err:
            log.info(
                "connection %r: the fields of %s records related to %s are not offered: %s",
                self.name,
                linked,
                module,
                err,
            )
            return None

    def links(self, module: str) -> dict[str, str]:
        """The link fields of ``module`` and the module each one leads to."""
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
        meta = self.meta(request.object)
        plan = plan_read(
            self.api, self._filters(meta), request, context=self._context(request.object)
        )
        reader = Reader(
            self.api, plan, page_size=self.config.page_size, concurrency=self.config.concurrency
        )
        return reader.batches(request.batch_size)

    def count(self, request: ReadRequest) -> int | None:
        meta = self.meta(request.object)
        plan = plan_read(
            self.api, self._filters(meta), request, context=self._context(request.object)
        )
        return self.api.count(meta, plan.where, deleted=request.include_deleted)

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
