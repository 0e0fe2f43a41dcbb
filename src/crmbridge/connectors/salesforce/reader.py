"""Reading an sObject: SOQL through REST ``query`` / ``queryAll`` following
``nextRecordsUrl``, or a Bulk API 2.0 query job when the result is big.

Reads are ordered by ``Id`` (incremental reads by the cursor field, then ``Id``): a keyset
order, so when a query cursor expires (``INVALID_QUERY_LOCATOR``) the read goes on with a new
query from the last record it yielded, and a resumed run reads on after the last record it
processed (``ReadRequest.after``). The first answer tells how many records match; when that is
more than ``bulk_query_threshold`` the read is done by a Bulk query job instead (unordered:
Bulk API 2.0 does not sort), unless the read was promised in order (``ordered``).

Every pushed predicate is checked again on the decoded rows (:mod:`.soql`): Salesforce may
return a few rows too many, never too few.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pyarrow as pa
from simple_salesforce.api import Salesforce
from sqlglot import exp

from crmbridge.connectors.base import ROW_COLUMN, ReadRequest, Since
from crmbridge.connectors.salesforce.api import Api
from crmbridge.connectors.salesforce.bulk import Bulk
from crmbridge.connectors.salesforce.discovery import ObjectMeta
from crmbridge.connectors.salesforce.failures import QueryLocatorError
from crmbridge.connectors.salesforce.soql import Node, Pushdown, conjunction, literal, select, where
from crmbridge.connectors.salesforce.values import csv_to_batches, records_to_batch
from crmbridge.core.expressions import BatchTransform
from crmbridge.core.schema import ObjectSchema
from crmbridge.errors import ConfigError, ErrorContext

#: times a read restarts after its query cursor expired
MAX_RESUMES = 5


@dataclass(frozen=True)
class ReadPlan:
    """What to ask Salesforce for, and what to check locally afterwards."""

    meta: ObjectMeta
    fields: list[str]
    #: the fields fetched: ``fields`` plus those the re-check and the order need
    fetch: ObjectSchema
    condition: str | None
    order: list[str]
    recheck: exp.Expression | None
    deleted: bool

    def soql(self, *extra: str | None, ordered: bool = True) -> str:
        parts = [p for p in (self.condition, *extra) if p]
        condition = " AND ".join(f"({p})" if len(parts) > 1 else p for p in parts) or None
        order = self.order if ordered else []
        return select(self.meta.name, self.fetch.field_names, condition, order)

    def after(self, values: Sequence[Any]) -> str:
        """The keyset condition: records after ``values`` (of the order fields) in the read's
        order, ``(k1 > v1) OR (k1 = v1 AND k2 > v2) OR ...``. Datetimes are cut to the second
        (SOQL literals have no fractions): a few records already read may come again, none is
        left out."""
        fields = [self.fetch.field(name) for name in self.order]
        options: list[str] = []
        for i, field in enumerate(fields):
            same = [f"{f.name} = {literal(v)}" for f, v in zip(fields[:i], values[:i], strict=True)]
            options.append(" AND ".join([*same, f"{field.name} > {literal(values[i])}"]))
        if len(options) == 1:
            return options[0]
        return " OR ".join(f"({o})" if " AND " in o else o for o in options)

    @property
    def promise(self) -> tuple[str, str | None, bool]:
        """What identifies this read's records and order (not its fields)."""
        return (self.meta.name, self.condition, self.deleted)


def plan_read(pushdown: Pushdown, request: ReadRequest, *, context: ErrorContext) -> ReadPlan:
    """The ReadPlan of ``request``; unknown fields are a ConfigError."""
    meta = pushdown.meta
    schema = meta.schema
    fields = list(request.fields) if request.fields is not None else schema.default_field_names
    checks: list[exp.Expression] = []
    nodes: list[Node] = []
    if request.filter is not None:
        checks.append(request.filter)
        node = pushdown.plan(request.filter)
        if node is not None:
            nodes.append(node)
    order = ["Id"]
    if request.since is not None:
        nodes.append(_since_node(pushdown, request.since, context))
        checks.append(_since_predicate(request.since))
        key = request.since.key or "Id"
        order = list(dict.fromkeys([request.since.field, key, "Id"]))
    needed = [*fields, *order]
    for predicate in checks:
        needed += sorted(c.name for c in predicate.find_all(exp.Column))
    needed = list(dict.fromkeys(needed))
    for name in needed:
        schema.field(name, context=context)  # an unknown name is a ConfigError
    recheck: exp.Expression | None = None
    if checks:
        recheck = checks[0] if len(checks) == 1 else exp.And(this=checks[0], expression=checks[1])
    node = conjunction(nodes)
    return ReadPlan(
        meta=meta,
        fields=fields,
        fetch=schema.select(needed),
        condition=where(node) if node is not None else None,
        order=order,
        recheck=recheck,
        deleted=request.include_deleted,
    )


def _since_node(pushdown: Pushdown, since: Since, context: ErrorContext) -> Node:
    node = pushdown.since(since.field, since.value)
    if node is None:
        raise ConfigError(
            f"cannot read incrementally by {since.field!r} from {since.value!r}: Salesforce "
            "cannot filter that field on that value",
            context=context.merge(field=since.field),
        )
    return node


def _since_predicate(since: Since) -> exp.Expression:
    value = since.value
    if isinstance(value, dt.datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=dt.UTC)
        literal_: exp.Expression = exp.cast(
            exp.Literal.string(moment.isoformat()), exp.DataType.build("TIMESTAMPTZ")
        )
    elif isinstance(value, dt.date):
        literal_ = exp.cast(exp.Literal.string(value.isoformat()), exp.DataType.build("DATE"))
    elif isinstance(value, int | float | Decimal) and not isinstance(value, bool):
        literal_ = exp.Literal.number(value)
    else:
        literal_ = exp.Literal.string(str(value))
    return exp.GTE(this=exp.column(since.field, quoted=True), expression=literal_)


class Reader:
    """Streams the records of one ReadPlan. ``after``: only the records after these values of
    the order fields. ``ordered``: in the plan's order whatever the count (never a Bulk job,
    whose results are unordered)."""

    def __init__(
        self,
        api: Api,
        plan: ReadPlan,
        *,
        after: Sequence[Any] | None = None,
        ordered: bool = False,
    ) -> None:
        self.api = api
        self.plan = plan
        self.settings = api.settings
        self.extra = plan.after(after) if after is not None else None
        self.ordered = ordered or after is not None
        #: how the last read went: "rest" or "bulk", and how often it resumed
        self.used = ""
        self.resumed = 0

    def batches(self, batch_size: int) -> Iterator[pa.RecordBatch]:
        """Batches of at most ``batch_size`` rows with the plan's fields."""
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

    def _query(self, soql: str) -> dict[str, Any]:
        headers = {"Sforce-Query-Options": f"batchSize={self.settings.page_size}"}
        deleted = self.plan.deleted

        def first(sf: Salesforce) -> Any:
            return sf.query(soql, include_deleted=deleted, headers=headers)

        return dict(self.api.call("query", first, object=self.plan.meta.name))

    def _more(self, url: str) -> dict[str, Any]:
        headers = {"Sforce-Query-Options": f"batchSize={self.settings.page_size}"}

        def more(sf: Salesforce) -> Any:
            return sf.query_more(url, identifier_is_url=True, headers=headers)

        return dict(self.api.call("query (next page)", more, object=self.plan.meta.name))

    def _pages(self) -> Iterator[pa.RecordBatch]:
        fields = self.plan.fetch.fields
        page = self._query(self.plan.soql(self.extra))
        if (
            not self.ordered
            and not page.get("done")
            and int(page.get("totalSize", 0)) > self.settings.bulk_query_threshold
        ):
            self.used = "bulk"
            yield from self._bulk()
            return
        self.used = "rest"
        last: dict[str, Any] | None = None
        while True:
            records = page.get("records") or []
            if records:
                last = records[-1]
                yield records_to_batch(records, fields)
            if page.get("done") or not page.get("nextRecordsUrl"):
                return
            try:
                page = self._more(str(page["nextRecordsUrl"]))
            except QueryLocatorError:
                if last is None or self.resumed >= MAX_RESUMES:
                    raise
                self.resumed += 1
                order = [self.plan.fetch.field(name) for name in self.plan.order]
                values = [c[0].as_py() for c in records_to_batch([last], order).columns]
                page = self._query(self.plan.soql(self.extra, self.plan.after(values)))

    def _bulk(self) -> Iterator[pa.RecordBatch]:
        client = Bulk(self.api)
        soql = self.plan.soql(ordered=False)
        names = self.plan.fetch.field_names
        for page in client.query(soql, self.plan.meta.name, include_deleted=self.plan.deleted):
            yield from csv_to_batches(page, self.plan.fetch.fields, names)


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
