"""The Salesforce connector: discovery and reads behind the connector contract, and the
API-level writes (:meth:`SalesforceConnector.writes`) the coming ``match`` / ``apply`` will use.
"""

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
    Capabilities,
    ConnectionInfo,
    Connector,
    ConnectorSettings,
    DeleteReporting,
    ReadRequest,
)
from crmbridge.connectors.salesforce.api import Api
from crmbridge.connectors.salesforce.discovery import ObjectMeta, build_meta
from crmbridge.connectors.salesforce.reader import Reader, plan_read
from crmbridge.connectors.salesforce.settings import SalesforceSettings
from crmbridge.connectors.salesforce.soql import Pushdown
from crmbridge.connectors.salesforce.writes import Writes
from crmbridge.core.expressions import evaluate_constant
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
        self._lock = threading.RLock()
        #: the reader of the last read (tests look at how it went)
        self.last_reader: Reader | None = None

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
            write_modes=frozenset(),  # writes come with the match / apply contract
            incremental=True,
            deletes=DeleteReporting.FLAG,
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
        """Everything known about ``object`` from its ``describe`` (cached per connection)."""
        with self._lock:
            if object not in self._meta:
                names = self.objects()
                if object not in names:
                    raise unknown_name_error("object", object, names, context=self._context())

                def describe(sf: Salesforce) -> Any:
                    return sf.restful(f"sobjects/{object}/describe")

                raw = self.api.call(f"describe {object}", describe, object=object)
                self._meta[object] = build_meta(raw)
            return self._meta[object]

    # -- reading --------------------------------------------------------------------------
    def _pushdown(self, object: str) -> Pushdown:
        return Pushdown(self.meta(object), evaluate_constant)

    def can_push_down(self, object: str, predicate: exp.Expression) -> bool:
        return self._pushdown(object).plan(predicate) is not None

    def read(self, request: ReadRequest) -> Iterator[pa.RecordBatch]:
        plan = plan_read(
            self._pushdown(request.object), request, context=self._context(request.object)
        )
        reader = Reader(self.api, plan)
        self.last_reader = reader
        return reader.batches(request.batch_size)

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
