"""The Salesforce connector: discovery, reads, ``match`` and ``apply`` behind the connector
contract (the API-level writes are :meth:`SalesforceConnector.writes`)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, ClassVar

import pyarrow as pa
from simple_salesforce.api import Salesforce
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
from crmbridge.connectors.salesforce.api import Api
from crmbridge.connectors.salesforce.applying import Memory, ObjectWriter
from crmbridge.connectors.salesforce.discovery import ObjectMeta, build_meta, with_related
from crmbridge.connectors.salesforce.matching import Finder
from crmbridge.connectors.salesforce.reader import Reader, plan_read
from crmbridge.connectors.salesforce.settings import SalesforceSettings
from crmbridge.connectors.salesforce.soql import Pushdown
from crmbridge.connectors.salesforce.values import stored_form
from crmbridge.connectors.salesforce.writes import Writes
from crmbridge.core.expressions import evaluate_constant
from crmbridge.core.outcomes import WriteMode, WriteResult
from crmbridge.core.schema import ObjectSchema, unknown_name_error
from crmbridge.errors import ConfigError, ErrorContext

PUSHDOWN = (
    "text =, IN and LIKE (re-checked locally, as SOQL compares text case-insensitively); "
    "=, <>, <, <=, >, >=, IN, NOT IN, BETWEEN on numbers and dates; comparisons, IN and "
    "BETWEEN on datetimes; booleans; IS [NOT] NULL; AND/OR of these (not on long text areas)"
)


class SalesforceConnector(Connector):
    """A Salesforce org through its REST API (simple-salesforce) and Bulk API 2.0.

    ``sleep`` replaces ``time.sleep`` for retry pauses, quota pacing and Bulk polling (tests
    pass a recorder).
    """

    type_name: ClassVar[str] = "salesforce"
    settings_model: ClassVar[type[ConnectorSettings]] = SalesforceSettings

    def __init__(
        self,
        name: str,
        settings: ConnectorSettings,
        *,
        base_dir: Path | None = None,
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        super().__init__(name, settings, base_dir=base_dir)
        if not isinstance(settings, SalesforceSettings):
            raise ConfigError(
                f"connection {name!r} needs SalesforceSettings, not {type(settings).__name__}"
            )
        self.config = settings
        self._sleep = time.sleep if sleep is None else sleep
        self._api: Api | None = None
        self._objects: list[str] | None = None
        self._meta: dict[str, ObjectMeta] = {}
        self._own: dict[str, ObjectMeta] = {}
        self._lock = threading.RLock()
        #: the reader of the last read (tests look at how it went)
        self.last_reader: Reader | None = None
        #: what the attempts at the last apply request answered (for a repeated attempt)
        self._memory = Memory()
        #: reads promised in their order (``read_order``): never through Bulk API 2.0
        self._promised: set[tuple[str, str | None, bool]] = set()

    # -- lifecycle ------------------------------------------------------------------------
    def open(self) -> None:
        with self._lock:
            if self._api is not None:
                return
            api = Api(self.config, self.name, base_dir=self.base_dir, sleep=self._sleep)
            try:
                api.login()
            except BaseException:
                api.close()
                raise
            self._api = api

    def close(self) -> None:
        with self._lock:
            api, self._api = self._api, None
            if api is not None:
                api.close()

    @property
    def api(self) -> Api:
        """The logged-in session (logs in on first use)."""
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
            deletes=DeleteReporting.FLAG,
            create_identity=(
                CreateIdentity.CLIENT_ID if self.config.operation_key_field else CreateIdentity.KEY
            ),
            pushdown=PUSHDOWN,
        )

    def check(self) -> ConnectionInfo:
        api = self.api

        def limits(sf: Salesforce) -> Any:
            return sf.restful("limits")

        found = api.call("limits", limits)
        daily = found.get("DailyApiRequests", {}) if isinstance(found, dict) else {}
        details = {
            "instance_url": api.token.instance_url if api.token else "",
            "user": self.config.username,
            "auth": self.config.auth,
        }
        if daily:
            used = int(daily.get("Max", 0)) - int(daily.get("Remaining", 0))
            details["api_requests_today"] = f"{used} of {daily.get('Max')}"
        return ConnectionInfo(system="Salesforce", version=self.config.api_version, details=details)

    def objects(self) -> list[str]:
        with self._lock:
            if self._objects is None:

                def describe(sf: Salesforce) -> Any:
                    return sf.describe()

                found = self.api.call("describe", describe) or {}
                self._objects = [
                    str(o["name"]) for o in found.get("sobjects", []) if o.get("queryable", True)
                ]
            return list(self._objects)

    def describe(self, object: str) -> ObjectSchema:
        return self.meta(object).schema

    def meta(self, object: str) -> ObjectMeta:
        """Everything known about ``object`` (cached per connection): its own ``describe``
        and, for its references, the external-id fields of the related objects
        (``Account.Ext_Id__c``: one more describe per related object, once)."""
        with self._lock:
            if object not in self._meta:
                own = self._own_meta(object)
                visible = set(self.objects())
                parents = {o: self._own_meta(o) for o in own.parents.values() if o in visible}
                self._meta[object] = with_related(own, parents)
            return self._meta[object]

    def _own_meta(self, object: str) -> ObjectMeta:
        with self._lock:
            if object not in self._own:
                names = self.objects()
                if object not in names:
                    raise unknown_name_error("object", object, names, context=self._context())

                def describe(sf: Salesforce) -> Any:
                    return sf.restful(f"sobjects/{object}/describe")

                raw = self.api.call(f"describe {object}", describe, object=object)
                self._own[object] = build_meta(raw)
            return self._own[object]

    # -- reading --------------------------------------------------------------------------
    def _pushdown(self, object: str) -> Pushdown:
        return Pushdown(self.meta(object), evaluate_constant)

    def can_push_down(self, object: str, predicate: exp.Expression) -> bool:
        return self._pushdown(object).plan(predicate) is not None

    def read(self, request: ReadRequest) -> Iterator[pa.RecordBatch]:
        plan = plan_read(
            self._pushdown(request.object), request, context=self._context(request.object)
        )
        ordered = plan.promise in self._promised
        reader = Reader(self.api, plan, after=request.after, ordered=ordered)
        self.last_reader = reader
        return reader.batches(request.batch_size)

    def read_order(self, request: ReadRequest) -> tuple[str, ...] | None:
        """``Id`` (an incremental read: the cursor field, its key, ``Id``) when the read will
        be a REST query, which is in that order; None when more than
        ``bulk_query_threshold`` records match now, as such a read is a Bulk query job, whose
        results come in no order (a resumed run then reads everything again). A read once
        promised in order keeps that order for this connection, however many records it
        finds by then."""
        plan = plan_read(
            self._pushdown(request.object), request, context=self._context(request.object)
        )
        with self._lock:
            if plan.promise not in self._promised:
                counted = self.count(request)
                if counted is not None and counted > self.config.bulk_query_threshold:
                    return None
                self._promised.add(plan.promise)
        return tuple(plan.order)

    def count(self, request: ReadRequest) -> int | None:
        """Records matching the pushed part of the request (the local re-check may drop a
        few more)."""
        plan = plan_read(
            self._pushdown(request.object), request, context=self._context(request.object)
        )
        text = f"SELECT COUNT() FROM {plan.meta.name}"
        if plan.condition:
            text += f" WHERE {plan.condition}"
        deleted = request.include_deleted

        def count(sf: Salesforce) -> Any:
            return sf.query(text, include_deleted=deleted)

        answer = self.api.call("count", count, object=request.object)
        return int(answer.get("totalSize", 0))

    # -- writing --------------------------------------------------------------------------
    def writes(self) -> Writes:
        """The API-level writes (Collections, Bulk API 2.0) of this connection."""
        return Writes(self.api, bulk_threshold=self.config.bulk_write_threshold)

    def _finder(self, object: str, context: ErrorContext | None = None) -> Finder:
        where = (context or ErrorContext()).merge(connection=self.name, object=object)
        return Finder(self.api, self.meta(object), context=where)

    def match(self, request: MatchRequest) -> pa.RecordBatch:
        """Candidates for the key values by SOQL (:mod:`.matching`): id ``Id``, version
        ``SystemModstamp``."""
        finder = self._finder(request.object, request.context)
        found = finder.find(request.keys, request.values, request.rules, request.fields)
        return found.combine_chunks().to_batches()[0] if found.num_rows else _empty(found)

    def stored_form(self, object: str, batch: pa.RecordBatch) -> pa.RecordBatch:
        """Empty text as null, datetimes to the millisecond, ids in their 18-character form
        (:func:`.values.stored_form`)."""
        return stored_form(batch, self.meta(object).schema.fields)

    def apply(self, request: ApplyRequest) -> WriteResult:
        """Creates, updates and deletes through Collections or Bulk API 2.0
        (:mod:`.applying`)."""
        finder = self._finder(request.object, request.context)
        with self._lock:
            writer = ObjectWriter(
                self.writes(),
                finder,
                self._memory,
                hard_delete=self.config.hard_delete,
                op_key_field=self.config.operation_key_field,
                context=finder.context,
            )
            return writer.apply(request)


def _empty(table: pa.Table) -> pa.RecordBatch:
    return pa.RecordBatch.from_pylist([], schema=table.schema)
