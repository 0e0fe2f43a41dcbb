"""The Sage CRM connector: the SOAP web services or the sagecrm2 REST API behind one contract.

Reads stream pages in a stable order (:mod:`.reader`); writes follow the engine's match ->
plan -> apply contract: ``match`` looks the batch's keys up in one query per page of keys,
``apply`` carries the plan's operations out (:mod:`.writing`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from functools import partial
from pathlib import Path
from typing import ClassVar

import httpx
import pyarrow as pa
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
from crmbridge.connectors.sagecrm.changes import ChangeWriter, Operation, OpResult
from crmbridge.connectors.sagecrm.fields import EntityMeta, RawField, build_meta
from crmbridge.connectors.sagecrm.query import (
    Node,
    Planner,
    to_query_string,
    to_where,
    where_literal,
)
from crmbridge.connectors.sagecrm.reader import (
    Reader,
    ReadPlan,
    plan_read,
    soap_changes,
    soap_pages,
    soap_tombstones,
)
from crmbridge.connectors.sagecrm.rest import RestApi
from crmbridge.connectors.sagecrm.settings import SageCrmSettings
from crmbridge.connectors.sagecrm.soap import SoapApi
from crmbridge.connectors.sagecrm.values import decode, from_columns, stored_form
from crmbridge.connectors.sagecrm.writing import EntityWriter, Memory, key_rows
from crmbridge.core.identity import KeyRule
from crmbridge.core.outcomes import WriteMode, WriteResult
from crmbridge.core.schema import ObjectSchema, unknown_name_error
from crmbridge.errors import ConfigError, ErrorContext

#: most key values in one look-up query (fewer when the record limit is lower: one answer each)
KEYS_PER_QUERY = 200
PUSHDOWN = (
    "text =, IN and LIKE (re-checked locally: the CRM compares text case-insensitively); "
    "=, <>, <, <=, >, >=, IN, BETWEEN on integers; ranges on numbers and datetimes; "
    "IS [NOT] NULL (SOAP); AND/OR of these"
)


class SageCrmConnector(Connector):
    """Sage CRM through its SOAP web services (every version) or sagecrm2 REST (2019 R2+).

    ``transport`` replaces the HTTP transport of the REST client (tests); ``sleep`` the pause
    between retries.
    """

    type_name: ClassVar[str] = "sagecrm"
    settings_model: ClassVar[type[ConnectorSettings]] = SageCrmSettings

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
        if not isinstance(settings, SageCrmSettings):
            raise ConfigError(
                f"connection {name!r} needs SageCrmSettings, not {type(settings).__name__}"
            )
        self.config = settings
        self._transport = transport
        self._sleep = sleep or time.sleep
        self._api: SoapApi | RestApi | None = None
        self._entities: list[str] | None = None
        self._meta: dict[str, EntityMeta] = {}
        self._memory = Memory()
        self._lock = threading.RLock()

    # -- lifecycle ------------------------------------------------------------------------
    def open(self) -> None:
        with self._lock:
            if self._api is not None:
                return
            if self.config.api == "soap":
                self._api = SoapApi(self.config, self.name, self._sleep)
            else:
                self._api = RestApi(self.config, self.name, self._sleep, self._transport)

    def close(self) -> None:
        with self._lock:
            api, self._api = self._api, None
            if api is not None:
                api.close()

    @property
    def api(self) -> SoapApi | RestApi:
        if self._api is None:
            self.open()
        assert self._api is not None
        return self._api

    def _context(self, object: str | None = None) -> ErrorContext:
        return ErrorContext(connection=self.name, object=object)

    # -- discovery ------------------------------------------------------------------------
    def capabilities(self) -> Capabilities:
        soap = self.config.api == "soap"
        return Capabilities(
            read=True,
            write_modes=frozenset(WriteMode),
            incremental=soap or self.config.rest_order_by,
            match=True,
            max_batch_size=self.config.max_records,
            deletes=DeleteReporting.FLAG if soap else DeleteReporting.NONE,
            create_identity=CreateIdentity.KEY,
            pushdown=PUSHDOWN,
        )

    def check(self) -> ConnectionInfo:
        """The version string (SOAP ``getversionstring``; the REST API has no such call), the
        API and the user."""
        text = self.api.version()
        details = {
            "api": self.config.api,
            "user": self.config.username,
            "version string": text or "not reported by the sagecrm2 REST API (use api: soap)",
        }
        version = text.removeprefix("Sage CRM").strip() or text if text else None
        return ConnectionInfo(system="Sage CRM", version=version, details=details)

    def objects(self) -> list[str]:
        with self._lock:
            if self._entities is None:
                self._entities = self.api.entities()
            return list(self._entities)

    def describe(self, object: str) -> ObjectSchema:
        return self.meta(object).schema

    def meta(self, entity: str) -> EntityMeta:
        """Fields, prefix and children of ``entity`` (cached per connection)."""
        with self._lock:
            if entity not in self._meta:
                known = self.objects()
                if entity not in known:
                    raise unknown_name_error("entity", entity, known, context=self._context())
                api = self.api
                own = api.metadata(entity)
                children: dict[str, list[RawField]] = {}
                if isinstance(api, SoapApi):
                    for kind in api.children(entity):
                        children[kind] = api.metadata(kind)
                self._meta[entity] = build_meta(entity, own, children)
            return self._meta[entity]

    # -- reading --------------------------------------------------------------------------
    def can_push_down(self, object: str, predicate: exp.Expression) -> bool:
        planner = Planner(self.meta(object), rest=self.config.api == "rest")
        return planner.plan(predicate) is not None

    def read(self, request: ReadRequest) -> Iterator[pa.RecordBatch]:
        meta = self.meta(request.object)
        api = self.api
        context = self._context(request.object)
        if request.include_deleted and isinstance(api, RestApi):
            raise ConfigError(
                "deleted records can be read over SOAP only (set api: soap)", context=context
            )
        plan = plan_read(meta, request, rest=isinstance(api, RestApi), context=context)
        since = request.since
        if since is not None and since.key not in (None, meta.id_field):
            raise ConfigError(
                f"incremental reads of Sage CRM are ordered by {meta.id_field!r}, not by "
                f"{since.key!r}",
                context=context.merge(field=since.key),
            )
        if isinstance(api, SoapApi):
            return self._read_soap(api, meta, plan, request)
        return self._read_rest(api, meta, plan, request.batch_size)

    def _read_rest(
        self, api: RestApi, meta: EntityMeta, plan: ReadPlan, batch_size: int
    ) -> Iterator[pa.RecordBatch]:
        zone = self.config.database_zone
        answers = self.config.answer_zone
        since = plan.since
        order = [meta.id_column]
        since_column = meta.column(since.field) if since is not None else None
        if since_column:
            order.insert(0, since_column)

        def literal(column: str, value: object) -> str:
            name = meta.field_of(column) or column
            return where_literal(decode(value, meta.schema.field(name), answers), zone)

        def rest_pages(node: Node | None) -> Iterator[list[dict[str, object]]]:
            where = to_where(node, zone) if node is not None else ""
            for rows in api.pages(meta.name, where, order, literal):
                yield [from_columns(r, meta) for r in rows]

        return Reader(plan, rest_pages, None, answers).batches(batch_size)

    def _read_soap(
        self, api: SoapApi, meta: EntityMeta, plan: ReadPlan, request: ReadRequest
    ) -> Iterator[pa.RecordBatch]:
        zone = self.config.database_zone
        answers = self.config.answer_zone

        def render(node: Node) -> str:
            return to_query_string(node, zone)

        since = request.since
        if since is None:
            pages = soap_pages(api, meta, render, self.config.retries)
            tombstones = soap_tombstones(api, meta, None, answers)
            return Reader(plan, pages, tombstones, answers).batches(request.batch_size)
        if since.field != "updateddate":
            raise ConfigError(
                f"incremental reads of Sage CRM over SOAP use 'updateddate', not {since.field!r}",
                context=self._context(meta.name).merge(field=since.field),
            )
        changes = soap_changes(
            api,
            meta,
            render,
            since,
            answers=answers,
            limit=self.config.max_records,
            deleted=request.include_deleted,
            resumes=self.config.retries,
        )
        return Reader(plan, changes, None, answers).batches(request.batch_size)

    # -- writing --------------------------------------------------------------------------
    def match(self, request: MatchRequest) -> pa.RecordBatch:
        """Candidates for the key values: one query per page of keys (the server compares
        text without case, so this is a superset; the engine compares). The version of a
        record is its ``updateddate`` and ``timestamp``."""
        meta = self.meta(request.object)
        names = list(request.keys)
        version = [n for n in ("updateddate", "timestamp") if meta.schema.has(n)]
        fields = list(dict.fromkeys([*names, *request.fields, meta.id_field, *version]))
        found = self.find(meta, names, key_rows(request.values, names), fields, request.rules)
        ids = pa.array([str(v) for v in found.column(meta.id_field).to_pylist()], pa.string())
        stamps = [
            "|".join(str(found.column(n)[i].as_py()) for n in version)
            for i in range(found.num_rows)
        ]
        keep = list(dict.fromkeys([*names, *request.fields]))
        out = found.select(keep).append_column(ID_COLUMN, ids)
        return out.append_column(VERSION_COLUMN, pa.array(stamps, pa.string()))

    def find(
        self,
        meta: EntityMeta,
        names: Sequence[str],
        rows: Sequence[tuple[object, ...]],
        fields: Sequence[str],
        rules: Mapping[str, KeyRule] | None = None,
    ) -> pa.RecordBatch:
        """The live records whose ``names`` may hold one of ``rows`` (a superset), with
        ``fields``, each record once."""
        schema = meta.schema
        fetch = schema.select(list(dict.fromkeys([*fields, meta.id_field])))
        normalised = [n for n, r in (rules or {}).items() if r in (KeyRule.EMAIL, KeyRule.PHONE)]
        planner = Planner(meta, rest=self.config.api == "rest")
        unique = list(dict.fromkeys(rows))
        if any(r is KeyRule.CASEFOLD for r in (rules or {}).values()):  # "acme " finds "acme"
            unique = list(dict.fromkeys([*unique, *(_trimmed(r) for r in unique)]))
        size = max(1, min(KEYS_PER_QUERY, self.config.max_records))
        batches: list[pa.RecordBatch] = []
        for start in range(0, len(unique), size):
            node = planner.keys(names, unique[start : start + size], normalised)
            plan = ReadPlan(meta, fetch.field_names, fetch, node, None, False, None)
            batches += [b for b in self._plan_batches(plan) if b.num_rows]
            if node is None:  # every record was read
                break
        arrow = fetch.arrow_schema()
        if not batches:
            return pa.RecordBatch.from_pylist([], schema=arrow)
        table = pa.Table.from_batches(batches, schema=arrow).combine_chunks()
        seen: dict[object, int] = {}
        for n, record_id in enumerate(table.column(meta.id_field).to_pylist()):
            seen.setdefault(record_id, n)  # a record can come back for two pages of keys
        unique_rows = table.take(pa.array(list(seen.values()), pa.int64()))
        return unique_rows.combine_chunks().to_batches()[0]

    def _plan_batches(self, plan: ReadPlan) -> Iterator[pa.RecordBatch]:
        api = self.api
        if isinstance(api, SoapApi):
            render = partial(to_query_string, zone=self.config.database_zone)
            own = [plan.meta.column(n) for n in plan.fetch.field_names]
            columns = [c for c in own if c] if all(own) else None  # no child field: untyped
            pages = soap_pages(api, plan.meta, render, self.config.retries, columns)
            return Reader(plan, pages, None, self.config.answer_zone).batches(10_000)
        return self._read_rest(api, plan.meta, plan, 10_000)

    def _live(self, meta: EntityMeta, ids: Sequence[int]) -> set[int]:
        if not ids:
            return set()
        found = self.find(meta, [meta.id_field], [(i,) for i in ids], [meta.id_field])
        return {int(v) for v in found.column(meta.id_field).to_pylist()}

    def stored_form(self, object: str, batch: pa.RecordBatch) -> pa.RecordBatch:
        """Values as the CRM keeps them: drop-down codes as listed, date-times to the
        second, an unticked check box false."""
        return stored_form(batch, self.meta(object).schema)

    def apply(self, request: ApplyRequest) -> WriteResult:
        meta = self.meta(request.object)
        context = request.context.merge(connection=self.name, object=request.object)
        changes = ChangeWriter(self.api, meta, limit=self.config.max_records, context=context)
        writer = EntityWriter(
            changes,
            find=lambda names, rows: self.find(meta, names, rows, names).to_pylist(),
            live=lambda ids: self._live(meta, ids),
            memory=self._memory,
            territory=self.config.territory,
            owner=self.config.owner,
            context=context,
        )
        with self._lock:
            return writer.apply(request)

    # -- writing at the level of the API ----------------------------------------------------
    def apply_operations(self, entity: str, operations: Sequence[Operation]) -> list[OpResult]:
        """Create / update / soft-delete records of ``entity``: one result per operation.
        Raises OutcomeUnknownError when a call's outcome cannot be known."""
        writer = ChangeWriter(
            self.api, self.meta(entity), limit=self.config.max_records, context=self._context()
        )
        return writer.apply(operations)


def _trimmed(row: tuple[object, ...]) -> tuple[object, ...]:
    return tuple(v.strip() if isinstance(v, str) else v for v in row)
