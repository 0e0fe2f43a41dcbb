"""The QuickBooks Online connector: discovery, reads (query language and change data
capture), ``match`` (:mod:`.matching`) and ``apply`` (:mod:`.applying`, on the API-level
write operations of :mod:`.operations`)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import ClassVar

import httpx
import pyarrow as pa
from pydantic import SecretStr
from sqlglot import exp

from crmbridge.connectors.base import (
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
from crmbridge.connectors.quickbooks.applying import ObjectWriter, RequestIds
from crmbridge.connectors.quickbooks.catalog import ENTITIES, EntityDef
from crmbridge.connectors.quickbooks.matching import Finder, stored_form
from crmbridge.connectors.quickbooks.operations import Operations
from crmbridge.connectors.quickbooks.query import Planner
from crmbridge.connectors.quickbooks.reader import Reader, plan_read
from crmbridge.connectors.quickbooks.settings import QuickBooksSettings
from crmbridge.connectors.quickbooks.transport import Transport
from crmbridge.core.expressions import evaluate_constant
from crmbridge.core.outcomes import WriteMode, WriteResult
from crmbridge.core.schema import ObjectSchema, unknown_name_error
from crmbridge.errors import ConfigError, ErrorContext

PUSHDOWN = (
    "text, id and reference =, IN and LIKE without _ (re-checked locally, as QuickBooks "
    "compares text case-insensitively); =, <, <=, >, >=, IN, BETWEEN on amounts and dates; "
    "ranges on MetaData datetimes; booleans; one field's equalities joined by OR; on the "
    "fields QuickBooks queries can filter (docs/connectors/quickbooks.md)"
)


class QuickBooksConnector(Connector):
    """QuickBooks Online (Accounting API v3) for one company.

    ``transport`` replaces the HTTP transport (tests); ``on_refresh_token`` is called with
    every new refresh token QuickBooks issues, which must be stored (see the module
    docstring of :mod:`.auth`). ``settings`` keeps the latest refresh token once it rotates.
    """

    type_name: ClassVar[str] = "quickbooks"
    settings_model: ClassVar[type[ConnectorSettings]] = QuickBooksSettings

    def __init__(
        self,
        name: str,
        settings: ConnectorSettings,
        *,
        base_dir: Path | None = None,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] | None = None,
        on_refresh_token: Callable[[SecretStr], None] | None = None,
    ) -> None:
        super().__init__(name, settings, base_dir=base_dir)
        if not isinstance(settings, QuickBooksSettings):
            raise ConfigError(
                f"connection {name!r} needs QuickBooksSettings, not {type(settings).__name__}"
            )
        self.config = settings
        self.on_refresh_token = on_refresh_token
        self._http = transport
        self._sleep = sleep or time.sleep
        self._transport: Transport | None = None
        self._lock = threading.RLock()
        self._request_ids = RequestIds()

    # -- lifecycle ------------------------------------------------------------------------
    def open(self) -> None:
        with self._lock:
            if self._transport is None:
                self._transport = Transport(
                    self.config,
                    self.name,
                    self._http,
                    sleep=self._sleep,
                    on_refresh_token=self._rotated,
                )

    def close(self) -> None:
        with self._lock:
            transport, self._transport = self._transport, None
            if transport is not None:
                transport.close()

    def _rotated(self, token: SecretStr) -> None:
        """Keep the new refresh token in the settings and hand it on to be stored: to
        ``on_refresh_token`` and to the connection store (``settings_changed``), which saves
        it with the connection; with neither, ``settings_changed`` warns that it is lost."""
        self.config = self.config.model_copy(update={"refresh_token": token})
        if self.on_refresh_token is not None:
            self.on_refresh_token(token)
        if self.on_settings_changed is not None or self.on_refresh_token is None:
            self.settings_changed(self.config)
        else:
            self.settings = self.config

    @property
    def transport(self) -> Transport:
        if self._transport is None:
            self.open()
        assert self._transport is not None
        return self._transport

    def _context(self, object: str | None = None) -> ErrorContext:
        return ErrorContext(connection=self.name, object=object)

    # -- discovery ------------------------------------------------------------------------
    def capabilities(self) -> Capabilities:
        return Capabilities(
            read=True,
            write_modes=frozenset(WriteMode),
            incremental=True,
            match=True,
            deletes=DeleteReporting.FLAG,
            create_identity=CreateIdentity.KEY,
            max_batch_size=self.config.batch_size,
            pushdown=PUSHDOWN,
        )

    def check(self) -> ConnectionInfo:
        realm = self.config.realm_id
        answer = self.transport.call("GET", f"companyinfo/{realm}", what="company info")
        info = answer.get("CompanyInfo") or {}
        return ConnectionInfo(
            system="QuickBooks Online",
            version=f"minor version {self.config.minor_version}",
            details={
                "company": str(info.get("CompanyName", "")),
                "realm_id": realm,
                "country": str(info.get("Country", "")),
            },
        )

    def objects(self) -> list[str]:
        return list(ENTITIES)

    def entity(self, object: str) -> EntityDef:
        if object not in ENTITIES:
            raise unknown_name_error("object", object, ENTITIES, context=self._context())
        return ENTITIES[object]

    def describe(self, object: str) -> ObjectSchema:
        return self.entity(object).schema

    # -- reading --------------------------------------------------------------------------
    def _planner(self, object: str) -> Planner:
        return Planner(self.entity(object), evaluate_constant)

    def can_push_down(self, object: str, predicate: exp.Expression) -> bool:
        return self._planner(object).plan(predicate) is not None

    def _reader(self, request: ReadRequest) -> Reader:
        context = self._context(request.object)
        plan = plan_read(self._planner(request.object), request, context=context)
        return Reader(self.transport, plan, page_size=self.config.page_size, context=context)

    def read(self, request: ReadRequest) -> Iterator[pa.RecordBatch]:
        return self._reader(request).batches(request.batch_size)

    def count(self, request: ReadRequest) -> int | None:
        reader = self._reader(request)
        if reader.plan.changed_since is not None or reader.plan.include_deleted:
            return None
        return reader.count()

    # -- writing --------------------------------------------------------------------------
    def operations(self, object: str, context: ErrorContext | None = None) -> Operations:
        """Create / sparse update / delete / deactivate operations on ``object``."""
        return Operations(
            self.transport,
            self.entity(object),
            batch_size=self.config.batch_size,
            stale_retries=self.config.stale_retries,
            context=context or self._context(object),
        )

    def _finder(self, object: str, context: ErrorContext) -> Finder:
        where = context.merge(connection=self.name, object=object)
        return Finder(
            self.transport, self.entity(object), page_size=self.config.page_size, context=where
        )

    def match(self, request: MatchRequest) -> pa.RecordBatch:
        """Candidates by ``IN`` queries (:mod:`.matching`): id ``Id``, version ``SyncToken``."""
        found = self._finder(request.object, request.context).find(
            request.keys, request.values, request.rules, request.fields
        )
        if not found.num_rows:
            return pa.RecordBatch.from_pylist([], schema=found.schema)
        return found.combine_chunks().to_batches()[0]

    def stored_form(self, object: str, batch: pa.RecordBatch) -> pa.RecordBatch:
        """``Line`` in its canonical form (:func:`.lines.canonical`)."""
        self.entity(object)
        return stored_form(batch)

    def apply(self, request: ApplyRequest) -> WriteResult:
        """Creates, sparse updates and deletes (deactivations) in batches (:mod:`.applying`)."""
        finder = self._finder(request.object, request.context)
        operations = self.operations(request.object, finder.context)
        entity = self.entity(request.object)
        with self._lock:
            writer = ObjectWriter(operations, finder, entity, finder.context, self._request_ids)
            return writer.apply(request)
