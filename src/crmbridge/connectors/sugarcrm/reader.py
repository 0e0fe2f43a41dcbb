"""Reading a module: pages by keyset in a unique order, decoded to Arrow batches.

A read is in ``id`` order, an incremental one (``ReadRequest.since``) in ``date_modified, id``
order (:func:`read_order`); pages follow each other by keyset (:mod:`.paging`), so records
that change during the read are never skipped. In ``id`` order every record is read once (on
v4_1 in ranges read at once, one session each); in ``date_modified, id`` order a record edited
during the read is read again at its new place, after the records read before the edit (so a
cursor that moves past it has seen it). A resumed read starts after ``ReadRequest.after``.

Every predicate pushed to the server is checked again on the decoded rows (see
:mod:`~crmbridge.connectors.sugarcrm.query`): the server may return a few rows too many (MySQL
compares text case-insensitively), never too few.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pyarrow as pa
from sqlglot import exp

from crmbridge.connectors.base import ROW_COLUMN, ReadRequest, Since
from crmbridge.connectors.sugarcrm.api import Api
from crmbridge.connectors.sugarcrm.discovery import ModuleMeta
from crmbridge.connectors.sugarcrm.paging import Key, Listing, pages, ranges
from crmbridge.connectors.sugarcrm.query import FilterBuilder, Node, conjunction
from crmbridge.core.expressions import BatchTransform
from crmbridge.core.schema import ObjectSchema
from crmbridge.errors import ConfigError, ErrorContext


@dataclass(frozen=True)
class ReadPlan:
    """What to ask the server for, and what to check locally afterwards."""

    meta: ModuleMeta
    #: the columns the caller gets, in order
    fields: list[str]
    #: the columns fetched: ``fields`` plus those the re-check and the order need
    fetch: ObjectSchema
    #: the pushed filter and since condition (None: every record)
    node: Node | None
    #: the pushed predicate (and since condition), evaluated again on the decoded rows
    recheck: exp.Expression | None
    deleted: bool
    #: the fields of the read's order (:func:`read_order`)
    order: tuple[str, ...]
    #: resume after this record (its ``order`` values)
    after: Key | None = None

    def where(self, api: Api) -> Any:
        """The pushed part in ``api``'s form."""
        return api.where(self.meta, self.node)


def read_order(request: ReadRequest) -> tuple[str, ...]:
    """``id``; for an incremental read the cursor field, then ``id``."""
    if request.since is not None:
        return tuple(dict.fromkeys([request.since.field, "id"]))
    return ("id",)


def plan_read(filters: FilterBuilder, request: ReadRequest, *, context: ErrorContext) -> ReadPlan:
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
    order = read_order(request)
    needed = [*fields, *order]
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
        node=conjunction(nodes),
        recheck=recheck,
        deleted=request.include_deleted,
        order=order,
        after=tuple(request.after) if request.after is not None else None,
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
        self.plan = plan
        self.listing = Listing(
            api, plan.meta, plan.node, plan.fetch, plan.order, page_size, plan.deleted
        )
        self.concurrency = concurrency

    def _pages(self) -> Iterator[pa.RecordBatch]:
        """Pages in order: a read in ``id`` order in parallel ranges when the API gains from
        it; one in ``date_modified`` order one page after another, so that a record edited
        during the read is found at its new place, after the others."""
        if self.plan.order == ("id",) and self.concurrency > 1:
            return ranges(self.listing, self.plan.after, self.concurrency)
        return pages(self.listing, self.plan.after)

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
