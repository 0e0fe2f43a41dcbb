"""Reading a module: pages in a stable order, fetched in parallel, decoded to Arrow batches.

Pages are read in ``date_modified, id`` order with offsets. Once the first page tells how many
records match (v4_1 ``total_count``; v10 asks ``filter/count``), the other pages are fetched
``concurrency`` at a time in a thread pool and yielded in order. Offset paging over records
that change while they are read can skip or repeat a record (one that moves to the end of the
order because it was modified is read again there); an incremental read by ``date_modified``
picks up whatever a run skipped in the next run.

Every predicate pushed to the server is checked again on the decoded rows (see
:mod:`~crmbridge.connectors.sugarcrm.query`): the server may return a few rows too many (MySQL
compares text case-insensitively), never too few.
"""

from __future__ import annotations

import datetime as dt
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from decimal import Decimal
from itertools import islice
from typing import Any

import pyarrow as pa
from sqlglot import exp

from crmbridge.connectors.base import ROW_COLUMN, ReadRequest, Since
from crmbridge.connectors.sugarcrm.api import Api, Page
from crmbridge.connectors.sugarcrm.discovery import ModuleMeta
from crmbridge.connectors.sugarcrm.query import FilterBuilder, Node, conjunction
from crmbridge.connectors.sugarcrm.values import decode_records
from crmbridge.core.expressions import BatchTransform
from crmbridge.core.schema import ObjectSchema
from crmbridge.errors import ConfigError, ErrorContext


@dataclass(frozen=True)
class ReadPlan:
    """What to ask the server for, and what to check locally afterwards."""

    meta: ModuleMeta
    #: the columns the caller gets, in order
    fields: list[str]
    #: the columns fetched: ``fields`` plus those the re-check needs
    fetch: ObjectSchema
    where: Any
    #: the pushed predicate (and since condition), evaluated again on the decoded rows
    recheck: exp.Expression | None
    deleted: bool


def plan_read(
    api: Api, filters: FilterBuilder, request: ReadRequest, *, context: ErrorContext
) -> ReadPlan:
    """The ReadPlan of ``request``; unknown fields are a ConfigError."""
    meta = filters.meta
    schema = meta.schema
    fields = list(request.fields) if request.fields is not None else schema.default_field_names
    checks: list[exp.Expression] = []
    nodes: list[Node] = []
    if request.filter is not None:
        checks.append(request.filter)
        node = filters.plan(request.filter)
        if node is not None:
            nodes.append(node)
    if request.since is not None:
        since = _since_node(filters, request.since, context)
        nodes.append(since)
        checks.append(_since_predicate(request.since))
    needed = [*fields]
    for predicate in checks:
        needed += sorted(c.name for c in predicate.find_all(exp.Column))
    needed = list(dict.fromkeys([*needed, "id"] if schema.has("id") else needed))
    for name in needed:
        schema.field(name, context=context)  # an unknown name is a ConfigError
    recheck: exp.Expression | None = None
    if checks:
        recheck = checks[0] if len(checks) == 1 else exp.And(this=checks[0], expression=checks[1])
    return ReadPlan(
        meta=meta,
        fields=fields,
        fetch=schema.select(needed),
        where=api.where(meta, conjunction(nodes)),
        recheck=recheck,
        deleted=request.include_deleted,
    )


def _since_node(filters: FilterBuilder, since: Since, context: ErrorContext) -> Node:
    node = filters.since(since.field, since.value)
    if node is None:
        raise ConfigError(
            f"cannot read incrementally by {since.field!r} from {since.value!r}: the CRM "
            "cannot filter on that field with that value",
            context=context.merge(field=since.field),
        )
    return node


def _since_predicate(since: Since) -> exp.Expression:
    value = since.value
    if isinstance(value, dt.datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=dt.UTC)
        literal: exp.Expression = exp.cast(
            exp.Literal.string(moment.isoformat()), exp.DataType.build("TIMESTAMPTZ")
        )
    elif isinstance(value, dt.date):
        literal = exp.cast(exp.Literal.string(value.isoformat()), exp.DataType.build("DATE"))
    elif isinstance(value, int | float | Decimal) and not isinstance(value, bool):
        literal = exp.Literal.number(value)
    else:
        literal = exp.Literal.string(str(value))
    return exp.GTE(this=exp.column(since.field, quoted=True), expression=literal)


class Reader:
    """Streams the records of one ReadPlan."""

    def __init__(self, api: Api, plan: ReadPlan, *, page_size: int, concurrency: int) -> None:
        self.api = api
        self.plan = plan
        self.page_size = page_size
        self.concurrency = concurrency

    def batches(self, batch_size: int) -> Iterator[pa.RecordBatch]:
        """Batches of at most ``batch_size`` rows with the plan's fields, in order."""
        recheck = _Recheck(self.plan.fetch, self.plan.recheck) if self.plan.recheck else None
        out_schema = self.plan.fetch.select(self.plan.fields).arrow_schema()
        sent = False
        try:
            for batch in self._pages():
                if recheck is not None:
                    batch = recheck.apply(batch)
                batch = batch.select(self.plan.fields)
                for start in range(0, batch.num_rows, batch_size):
                    sent = True
                    yield batch.slice(start, batch_size)
        finally:
            if recheck is not None:
                recheck.close()
        if not sent:
            yield pa.RecordBatch.from_pylist([], schema=out_schema)

    def _fetch(self, offset: int) -> tuple[pa.RecordBatch, Page]:
        plan = self.plan
        page = self.api.list_page(
            plan.meta,
            plan.where,
            plan.fetch.field_names,
            offset,
            self.page_size,
            deleted=plan.deleted,
        )
        batch = decode_records(page.records, plan.fetch.fields, html=self.api.kind == "v4_1")
        return batch, page

    def _pages(self) -> Iterator[pa.RecordBatch]:
        batch, first = self._fetch(0)
        yield batch
        if first.next_offset is None:
            return
        step = len(first.records)
        total = first.total
        if total is None and self.concurrency > 1:
            total = self.api.count(self.plan.meta, self.plan.where, deleted=self.plan.deleted)
        offset: int | None = first.next_offset
        if total is not None and self.concurrency > 1:
            offset = None
            for batch, page in self._parallel(range(first.next_offset, total, step)):
                yield batch
                offset = page.next_offset  # not None after the last: more came meanwhile
        while offset is not None:
            batch, page = self._fetch(offset)
            yield batch
            offset = page.next_offset

    def _parallel(self, offsets: Sequence[int]) -> Iterator[tuple[pa.RecordBatch, Page]]:
        """Pages at ``offsets``, fetched ``concurrency`` at a time, in order (at most twice
        ``concurrency`` pages are held at once)."""
        pool = ThreadPoolExecutor(self.concurrency, thread_name_prefix="sugarcrm-page")
        todo = iter(offsets)
        ahead = islice(todo, 2 * self.concurrency)
        pending: deque[Future[tuple[pa.RecordBatch, Page]]] = deque(
            pool.submit(self._fetch, offset) for offset in ahead
        )
        try:
            while pending:
                result = pending.popleft().result()
                following = next(todo, None)
                if following is not None:
                    pending.append(pool.submit(self._fetch, following))
                yield result
        finally:
            pool.shutdown(wait=True, cancel_futures=True)


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
