"""Reading an entity: query pages (STARTPOSITION / MAXRESULTS, in ``Id`` order), or change
data capture for incremental reads that must see deletions.

* A plain read pages through ``SELECT * FROM <Entity> WHERE <pushed> ORDERBY Id``. For a list
  entity (Customer, Item) it asks for active objects only, as QuickBooks does by default;
  with ``include_deleted`` inactive ones too (deactivation is how these are "deleted").
* With ``include_deleted`` and a lower bound on ``MetaData_LastUpdatedTime`` (the
  ``ReadRequest.since`` or a pushed ``>=``/``>`` on it, which is what an incremental profile
  sends), the changes come from the CDC endpoint, deleted transactions included. CDC looks
  back at most 30 days: an older bound is a ConfigError asking for a full read. An answer
  holds at most 1,000 objects, oldest first; the next call starts at the newest time
  answered (objects seen at that second are not repeated).
* A full read with ``include_deleted`` of a transaction entity adds the deletions CDC still
  knows (the last 30 days); older deletions are gone from QuickBooks.

Every pushed predicate is checked again on the decoded rows (see :mod:`.query`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
from sqlglot import exp

from crmbridge.connectors.base import ROW_COLUMN, ReadRequest, Since
from crmbridge.connectors.quickbooks.catalog import LAST_UPDATED, EntityDef, Spec
from crmbridge.connectors.quickbooks.query import Cond, Planner, select
from crmbridge.connectors.quickbooks.transport import QuickBooksFault, Transport
from crmbridge.connectors.quickbooks.values import is_deleted, to_batch
from crmbridge.core.expressions import BatchTransform
from crmbridge.core.schema import ObjectSchema
from crmbridge.errors import ConfigError, ErrorContext, RemoteError

CDC_WINDOW = dt.timedelta(days=30)
#: how far inside the window a read stays, for clocks that disagree a little
CDC_MARGIN = dt.timedelta(minutes=5)
CDC_MAX_OBJECTS = 1000
_LAST_UPDATED_PROP = "MetaData.LastUpdatedTime"


@dataclass(frozen=True)
class ReadPlan:
    entity: EntityDef
    #: the columns the caller gets, in order
    fields: list[str]
    #: the columns decoded: ``fields`` plus what the re-check needs
    fetch: list[Spec]
    conds: list[Cond]
    recheck: exp.Expression | None
    include_deleted: bool
    #: read changes through CDC from this instant (None: query pages)
    changed_since: dt.datetime | None


def plan_read(planner: Planner, request: ReadRequest, *, context: ErrorContext) -> ReadPlan:
    entity = planner.entity
    schema = entity.schema
    fields = list(request.fields) if request.fields is not None else schema.default_field_names
    checks: list[exp.Expression] = []
    conds: list[Cond] = []
    if request.filter is not None:
        checks.append(request.filter)
        conds += planner.plan(request.filter) or []
    if request.since is not None:
        since = request.since
        if since.field != LAST_UPDATED or not isinstance(since.value, dt.datetime):
            raise ConfigError(
                f"QuickBooks reads incrementally by {LAST_UPDATED!r} (a datetime) only",
                context=context.merge(field=since.field),
            )
        predicate = _since_predicate(since)
        checks.append(predicate)
        conds += planner.plan(predicate) or []
    names = list(fields)
    for predicate in checks:
        names += sorted(c.name for c in predicate.find_all(exp.Column))
    names = list(dict.fromkeys([*names, "Id"]))
    for name in names:
        schema.field(name, context=context)  # an unknown name is a ConfigError
    changed_since = None
    if request.include_deleted:
        bounds = [
            c.values[0] for c in conds if c.prop == _LAST_UPDATED_PROP and c.op in (">", ">=")
        ]
        changed_since = max(bounds) if bounds else None
    if entity.is_list:
        has_active = any(c.prop == "Active" for c in conds)
        if not request.include_deleted:
            conds.append(Cond("Active", "=", (True,)))
        elif not has_active:
            conds.append(Cond("Active", "in", (True, False)))
    recheck = None
    if checks:
        recheck = checks[0] if len(checks) == 1 else exp.And(this=checks[0], expression=checks[1])
    fetch = [s for n in names if (s := entity.spec(n)) is not None]
    return ReadPlan(entity, fields, fetch, conds, recheck, request.include_deleted, changed_since)


def _since_predicate(since: Since) -> exp.Expression:
    moment = since.value if since.value.tzinfo else since.value.replace(tzinfo=dt.UTC)
    literal = exp.cast(exp.Literal.string(moment.isoformat()), exp.DataType.build("TIMESTAMPTZ"))
    return exp.GTE(this=exp.column(since.field, quoted=True), expression=literal)


class Reader:
    """Streams the records of one ReadPlan."""

    def __init__(
        self,
        transport: Transport,
        plan: ReadPlan,
        *,
        page_size: int,
        context: ErrorContext,
        now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        self.transport = transport
        self.plan = plan
        self.page_size = page_size
        self.context = context
        self.now = now

    def batches(self, batch_size: int) -> Iterator[pa.RecordBatch]:
        plan = self.plan
        schema = ObjectSchema(plan.entity.name, tuple(s.field() for s in plan.fetch))
        recheck = _Recheck(schema, plan.recheck) if plan.recheck is not None else None
        sent = False
        try:
            for objects in self._objects():
                batch = to_batch(objects, plan.fetch)
                if recheck is not None:
                    batch = recheck.apply(batch)
                batch = batch.select(plan.fields)
                for start in range(0, batch.num_rows, batch_size):
                    sent = True
                    yield batch.slice(start, batch_size)
        finally:
            if recheck is not None:
                recheck.close()
        if not sent:
            yield pa.RecordBatch.from_pylist([], schema=schema.select(plan.fields).arrow_schema())

    def _objects(self) -> Iterator[list[dict[str, Any]]]:
        plan = self.plan
        if plan.changed_since is not None:
            yield from self.changes(plan.changed_since)
            return
        yield from self._pages()
        if plan.include_deleted and not plan.entity.is_list:
            since = self.now() - CDC_WINDOW + CDC_MARGIN
            for objects in self.changes(since, checked=True):
                deleted = [o for o in objects if is_deleted(o)]
                if deleted:
                    yield deleted

    def _pages(self) -> Iterator[list[dict[str, Any]]]:
        name = self.plan.entity.name
        start = 1
        while True:
            text = select(name, self.plan.conds, start=start, max_results=self.page_size)
            answer = self.transport.call(
                "GET", "query", what=f"query {name}", object=name, params={"query": text}
            )
            objects = list(answer.get("QueryResponse", {}).get(name) or [])
            if objects:
                yield objects
            if len(objects) < self.page_size:
                return
            start += len(objects)

    def count(self) -> int:
        name = self.plan.entity.name
        answer = self.transport.call(
            "GET",
            "query",
            what=f"count {name}",
            object=name,
            params={"query": select(name, self.plan.conds, count=True)},
        )
        return int(answer.get("QueryResponse", {}).get("totalCount") or 0)

    def changes(
        self, since: dt.datetime, *, checked: bool = False
    ) -> Iterator[list[dict[str, Any]]]:
        """The entity's objects changed since ``since`` (deleted ones included), oldest first."""
        name = self.plan.entity.name
        oldest = self.now() - CDC_WINDOW + CDC_MARGIN
        if not checked and since < oldest:
            raise self._too_old(since)
        boundary: set[tuple[str, str]] = set()
        while True:
            try:
                answer = self.transport.call(
                    "GET",
                    "cdc",
                    what=f"changes of {name}",
                    object=name,
                    params={"entities": name, "changedSince": _iso(since)},
                )
            except QuickBooksFault as fault:
                if since < self.now() - CDC_WINDOW + dt.timedelta(days=1):
                    raise self._too_old(since, fault) from None
                raise
            objects = _cdc_objects(answer, name)
            fresh = [o for o in objects if _key(o) not in boundary]
            if fresh:
                yield fresh
            if len(objects) < CDC_MAX_OBJECTS:
                return
            newest = max(_updated(o) for o in objects)
            if newest <= since:
                raise RemoteError(
                    f"more than {CDC_MAX_OBJECTS} {name} changes share the second "
                    f"{_iso(since)}: change data capture cannot page past them; run a full "
                    "read (without the incremental cursor) instead",
                    context=self.context,
                )
            boundary = {_key(o) for o in objects if _updated(o) == newest}
            since = newest

    def _too_old(self, since: dt.datetime, fault: Exception | None = None) -> ConfigError:
        why = f" (QuickBooks: {fault})" if fault is not None else ""
        return ConfigError(
            f"the changes since {_iso(since)} cannot be read with deletions: QuickBooks change "
            f"data capture looks back at most {CDC_WINDOW.days} days{why}. Run a full read "
            "once (clear the incremental state, or read without include_deleted), then "
            "incremental runs within 30 days of each other",
            context=self.context,
        )


def _iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S+00:00")


def _cdc_objects(answer: Mapping[str, Any], name: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for response in answer.get("CDCResponse") or []:
        for part in response.get("QueryResponse") or []:
            out += part.get(name) or []
    return out


def _updated(obj: Mapping[str, Any]) -> dt.datetime:
    text = str((obj.get("MetaData") or {}).get("LastUpdatedTime") or "1970-01-01T00:00:00Z")
    moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    return (moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)).astimezone(dt.UTC)


def _key(obj: Mapping[str, Any]) -> tuple[str, str]:
    return str(obj.get("Id")), "deleted" if is_deleted(obj) else str(obj.get("SyncToken"))


class _Recheck:
    """Evaluates a predicate on decoded batches with the expression language's own engine."""

    def __init__(self, schema: ObjectSchema, predicate: exp.Expression) -> None:
        self.schema = schema.arrow_schema()
        inputs = self.schema.append(pa.field(ROW_COLUMN, pa.int64()))
        outputs = {name: exp.column(name, quoted=True) for name in self.schema.names}
        self._transform = BatchTransform(inputs, outputs, predicate)

    def apply(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        if batch.num_rows == 0:
            return batch
        rows = batch.append_column(ROW_COLUMN, pa.array(range(batch.num_rows), pa.int64()))
        kept = self._transform.apply(rows).batch
        columns = [
            kept.column(name).cast(self.schema.field(name).type) for name in self.schema.names
        ]
        return pa.RecordBatch.from_arrays(columns, schema=self.schema)

    def close(self) -> None:
        self._transform.close()
