"""Reading an entity: pages in a stable order, decoded to Arrow, pushed predicates re-checked.

SOAP: ``query`` answers the first "Maximum number of records to return" records in id order
and ``more``; ``next`` the following ones. The cursor lives in the server's session and any
other call made with it closes it, so ``next`` is never retried: when it fails (or finds its
cursor closed) the read asks a new ``query`` for the records after the last id it has; it gives
up only after ``retries`` such losses in a row without a record between them. REST:
see :meth:`.rest.RestApi.pages`.

An incremental read over SOAP (``since`` on ``updateddate``) asks ``queryid`` for the changed
ids with their dates, sorts them by (updated date, id) and fetches the records by id: so the
records come in cursor order, which ``query`` (id order) cannot give.

With ``include_deleted`` (SOAP only) deleted records come as tombstones: their id, created and
updated dates and ``deleted`` true, the other fields empty; the filter is not applied to them
(the server no longer answers their fields). An incremental read has them at their place in
cursor order; a full read has them after the live records.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pyarrow as pa
from sqlglot import exp

from crmbridge.connectors.base import ROW_COLUMN, ReadRequest, Since
from crmbridge.connectors.sagecrm.fields import EntityMeta
from crmbridge.connectors.sagecrm.query import Cond, Node, Planner, conjunction
from crmbridge.connectors.sagecrm.soap import FaultError, SoapApi
from crmbridge.connectors.sagecrm.values import from_columns, from_typed, to_batch, to_instant
from crmbridge.core.expressions import BatchTransform
from crmbridge.core.schema import ObjectSchema
from crmbridge.errors import ConfigError, ErrorContext, RemoteError, RetryableError

EPOCH = dt.datetime(1900, 1, 1)


@dataclass(frozen=True)
class ReadPlan:
    meta: EntityMeta
    fields: list[str]
    fetch: ObjectSchema
    node: Node | None
    recheck: exp.Expression | None
    deleted: bool
    since: Since | None


def plan_read(
    meta: EntityMeta, request: ReadRequest, *, rest: bool, context: ErrorContext
) -> ReadPlan:
    """The ReadPlan of ``request``; unknown fields are a ConfigError."""
    schema = meta.schema
    planner = Planner(meta, rest=rest)
    fields = list(request.fields) if request.fields is not None else schema.default_field_names
    checks: list[exp.Expression] = []
    nodes: list[Node] = []
    if request.filter is not None:
        checks.append(request.filter)
        node = planner.plan(request.filter)
        if node is not None:
            nodes.append(node)
    if request.since is not None:
        value = request.since.value
        if isinstance(value, int) and not isinstance(value, bool):
            value = Decimal(value)
        since_node = planner.condition(request.since.field, ">=", value)
        if since_node is None:
            raise ConfigError(
                f"cannot read incrementally by {request.since.field!r} from "
                f"{request.since.value!r}: the CRM cannot filter on that field with that value",
                context=context.merge(field=request.since.field),
            )
        nodes.append(since_node)
        checks.append(_since_predicate(request.since))
    needed = [*fields]
    for predicate in checks:
        needed += sorted(c.name for c in predicate.find_all(exp.Column))
    needed = list(dict.fromkeys([*needed, meta.id_field]))
    for name in needed:
        schema.field(name, context=context)
    recheck = None
    if checks:
        recheck = checks[0] if len(checks) == 1 else exp.And(this=checks[0], expression=checks[1])
    return ReadPlan(
        meta,
        fields,
        schema.select(needed),
        conjunction(nodes),
        recheck,
        request.include_deleted,
        request.since,
    )


def _since_predicate(since: Since) -> exp.Expression:
    value = since.value
    if isinstance(value, dt.datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=dt.UTC)
        literal: exp.Expression = exp.cast(
            exp.Literal.string(moment.isoformat()), exp.DataType.build("TIMESTAMPTZ")
        )
    elif isinstance(value, int | float | Decimal) and not isinstance(value, bool):
        literal = exp.Literal.number(value)
    else:
        literal = exp.Literal.string(str(value))
    return exp.GTE(this=exp.column(since.field, quoted=True), expression=literal)


class Reader:
    """Streams the rows of one ReadPlan. ``render`` turns a Node into the API's filter text;
    ``pages(where)`` yields lists of rows keyed by field name."""

    def __init__(
        self,
        plan: ReadPlan,
        pages: Callable[[Node | None], Iterator[list[dict[str, Any]]]],
        tombstones: Callable[[], Iterator[list[dict[str, Any]]]] | None,
        zone: Any,
    ) -> None:
        self.plan = plan
        self.pages = pages
        self.tombstones = tombstones
        self.zone = zone

    def batches(self, batch_size: int) -> Iterator[pa.RecordBatch]:
        plan = self.plan
        recheck = _Recheck(plan.fetch, plan.recheck) if plan.recheck is not None else None
        out_schema = plan.fetch.select(plan.fields).arrow_schema()
        sent = False
        try:
            for rows in self._pages():
                for tombstones, run in _runs(rows):
                    batch = to_batch(run, plan.fetch, self.zone)
                    if recheck is not None and not tombstones:
                        batch = recheck.apply(batch)
                    batch = batch.select(plan.fields)
                    for start in range(0, batch.num_rows, batch_size):
                        sent = True
                        yield batch.slice(start, batch_size)
        finally:
            if recheck is not None:
                recheck.close()
        if not sent:
            yield pa.RecordBatch.from_pylist([], schema=out_schema)

    def _pages(self) -> Iterator[list[dict[str, Any]]]:
        yield from self.pages(self.plan.node)
        if self.plan.deleted and self.tombstones is not None:
            yield from self.tombstones()


TOMBSTONE = "_sagecrm_tombstone"


def _runs(rows: list[dict[str, Any]]) -> Iterator[tuple[bool, list[dict[str, Any]]]]:
    """Consecutive rows split into runs of live records and of tombstones, in order."""
    run: list[dict[str, Any]] = []
    kind = False
    for row in rows:
        flag = bool(row.get(TOMBSTONE))
        if run and flag != kind:
            yield kind, run
            run = []
        kind = flag
        run.append(row)
    if run:
        yield kind, run


def _tombstone(meta: EntityMeta, change: dict[str, Any]) -> dict[str, Any]:
    return {
        meta.id_field: change["id"],
        "createddate": change.get("createddate"),
        "updateddate": change.get("updateddate"),
        "deleted": True,
        TOMBSTONE: True,
    }


def soap_pages(
    api: SoapApi,
    meta: EntityMeta,
    render: Callable[[Node], str],
    resumes: int,
    columns: Sequence[str] | None = None,
) -> Callable[[Node | None], Iterator[list[dict[str, Any]]]]:
    """``pages(where)`` over SOAP query / next, resuming by id when a cursor is lost.

    With ``columns`` (own columns, the id among them) the records are asked with
    ``queryrecord`` for those columns only, in id order: much less to send than typed records
    with their nested children (a match needs its keys, not the company's addresses)."""

    def first(where: str) -> tuple[list[dict[str, Any]], bool]:
        if columns is None:
            records, more = api.query(meta.name, where)
            return [from_typed(r, meta) for r in records], more
        rows, more = api.queryrecord(meta.name, columns, where, meta.id_column)
        return [from_columns(r, meta) for r in rows], more

    def following() -> tuple[list[dict[str, Any]], bool]:
        if columns is None:
            records, more = api.next()
            return [from_typed(r, meta) for r in records], more
        rows, more = api.next_records()
        return [from_columns(r, meta) for r in rows], more

    def pages(node: Node | None) -> Iterator[list[dict[str, Any]]]:
        last: int | None = None
        ordered = True
        left = resumes
        while True:
            parts = [p for p in (node, Cond(meta.id_column, ">", (last,)) if last else None) if p]
            where = conjunction(parts)
            try:
                rows, more = first(render(where) if where else "")
            except FaultError as fault:
                raise api.failed(fault, f"query {meta.name}", meta.name) from None
            if rows:  # progress: the read resumes as often as it moves on (writes of the same
                left = resumes  # user close the cursor every time)
            while True:
                for row in rows:
                    current = int(row[meta.id_field])
                    ordered = ordered and (last is None or current > last)
                    last = current
                if rows:
                    yield rows
                if not more:
                    return
                try:
                    rows, more = following()
                except (FaultError, RetryableError) as err:
                    if left <= 0 or not ordered:
                        raise RemoteError(
                            f"reading {meta.name} stopped: the server's query cursor was lost "
                            f"({err}) and the read cannot resume",
                            context=api.context.merge(object=meta.name),
                        ) from None
                    left -= 1
                    break  # a new query for the records after the last id

    return pages


def soap_tombstones(
    api: SoapApi, meta: EntityMeta, since: Since | None, zone: Any
) -> Callable[[], Iterator[list[dict[str, Any]]]]:
    """The records deleted since ``since`` (a datetime), as rows with ``deleted = 1``."""

    def tombstones() -> Iterator[list[dict[str, Any]]]:
        start = EPOCH
        if since is not None and isinstance(since.value, dt.datetime):
            moment = since.value if since.value.tzinfo else since.value.replace(tzinfo=dt.UTC)
            start = moment.astimezone(zone).replace(tzinfo=None)
        try:
            records, more = api.queryid(meta.name, "", start)
            while True:
                rows = [_tombstone(meta, r) for r in records if r.get("deleted")]
                if rows:
                    yield rows
                if not more:
                    return
                records, more = api.next()
        except FaultError as fault:
            raise api.failed(fault, f"queryid {meta.name}", meta.name) from None

    return tombstones


def soap_changes(
    api: SoapApi,
    meta: EntityMeta,
    render: Callable[[Node], str],
    since: Since,
    *,
    answers: Any,
    limit: int,
    deleted: bool,
    resumes: int,
) -> Callable[[Node | None], Iterator[list[dict[str, Any]]]]:
    """``pages(where)`` of an incremental read in (updated date, id) order: ``queryid`` lists
    the changed ids with their dates (deleted ones too), the records are then fetched by id,
    ``limit`` at a time. Tombstones of deleted records come at their place when ``deleted``."""

    def changes(node: Node | None) -> list[dict[str, Any]]:
        value = since.value
        moment = value if isinstance(value, dt.datetime) else EPOCH
        moment = moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)
        start = moment.astimezone(answers).replace(tzinfo=None)
        query = render(node) if node is not None else ""
        for attempt in range(resumes + 1):
            found: list[dict[str, Any]] = []
            try:
                records, more = api.queryid(meta.name, query, start)
                found += records
                while more:
                    records, more = api.next()
                    found += records
            except FaultError as fault:
                if attempt == resumes:
                    raise api.failed(fault, f"queryid {meta.name}", meta.name) from None
                continue
            except RetryableError:
                if attempt == resumes:
                    raise
                continue
            return sorted(found, key=lambda c: (to_instant(c.get("updateddate"), answers), c["id"]))
        raise AssertionError("unreachable")  # pragma: no cover

    def pages(node: Node | None) -> Iterator[list[dict[str, Any]]]:
        ordered = changes(node)
        for start in range(0, len(ordered), limit):
            chunk = ordered[start : start + limit]
            ids = [int(c["id"]) for c in chunk if not c.get("deleted")]
            fetched: dict[int, dict[str, Any]] = {}
            if ids:
                where = Cond(meta.id_column, "in", tuple(ids))
                for rows in soap_pages(api, meta, render, resumes)(where):
                    fetched.update({int(r[meta.id_field]): r for r in rows})
            out = []
            for change in chunk:
                if change.get("deleted"):
                    if deleted:
                        out.append(_tombstone(meta, change))
                elif int(change["id"]) in fetched:
                    out.append(fetched[int(change["id"])])
            if out:
                yield out

    return pages


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
        columns = [kept.column(n).cast(self.schema.field(n).type) for n in self.schema.names]
        return pa.RecordBatch.from_arrays(columns, schema=self.schema)

    def close(self) -> None:
        self._transform.close()
