"""Helpers of the SugarCRM connector tests."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pyarrow as pa
from sqlglot import exp

from crmbridge.connectors.base import ROW_COLUMN, ReadRequest
from crmbridge.connectors.sugarcrm import SugarCrmConnector, SugarCrmSettings
from crmbridge.core.expressions import BatchTransform, parse
from crmbridge.sandbox.sugarcrm import SugarSandbox

URL = "http://sugar.test"
Connect = Callable[..., SugarCrmConnector]


def settings(url: str = URL, **overrides: Any) -> SugarCrmSettings:
    values: dict[str, Any] = {
        "url": url,
        "username": "admin",
        "password": "admin",
        "retry_backoff": 0.001,
    }
    return SugarCrmSettings(**{**values, **overrides})


@contextmanager
def connector_factory(app: Any = None, url: str = URL) -> Iterator[Connect]:
    """``make(api="v4_1", **settings)`` -> an opened connector on ``app`` (in-process) or on
    ``url`` (over HTTP); all are closed at the end."""
    opened: list[SugarCrmConnector] = []

    def make(
        api: str = "v4_1", *, sleep: Callable[[float], None] | None = None, **overrides: Any
    ) -> SugarCrmConnector:
        transport = httpx.WSGITransport(app=app) if app is not None else None
        connector = SugarCrmConnector(
            "crm", settings(url, api=api, **overrides), transport=transport, sleep=sleep
        )
        connector.open()
        opened.append(connector)
        return connector

    try:
        yield make
    finally:
        for connector in opened:
            connector.close()


def add_accounts(
    box: SugarSandbox, count: int, *, modified: str = "2024-03-01 12:00:00", prefix: str = "Acc"
) -> list[str]:
    """Insert ``count`` Accounts straight into the sandbox database; their ids, in order."""
    ids = [f"{prefix.lower()}-{n:04d}" for n in range(count)]
    for n, record_id in enumerate(ids):
        box.execute(
            "INSERT INTO accounts (id, name, date_entered, date_modified, deleted) "
            "VALUES (?, ?, ?, ?, 0)",
            (record_id, f"{prefix} {n}", modified, modified),
        )
    return ids


def read_all(crm: SugarCrmConnector, module: str, **request: Any) -> list[dict[str, Any]]:
    """Every row ``crm.read`` yields, as dicts."""
    rows: list[dict[str, Any]] = []
    for batch in crm.read(ReadRequest(module, **request)):
        rows.extend(batch.to_pylist())
    return rows


def batch_of(crm: SugarCrmConnector, module: str, rows: list[dict[str, Any]]) -> pa.RecordBatch:
    """A write batch of ``rows`` typed per the module's schema, with the row column."""
    names = list(dict.fromkeys(n for r in rows for n in r))
    schema = crm.describe(module).select(names).arrow_schema()
    schema = schema.append(pa.field(ROW_COLUMN, pa.int64()))
    data = [{**{n: r.get(n) for n in names}, ROW_COLUMN: i} for i, r in enumerate(rows, 1)]
    return pa.RecordBatch.from_pylist(data, schema=schema)


def local_ids(rows: list[dict[str, Any]], predicates: list[exp.Expression]) -> list[list[str]]:
    """For each predicate, the ids of ``rows`` it selects, evaluated by the local engine."""
    table = pa.Table.from_pylist(rows).combine_chunks()
    batch = table.append_column(ROW_COLUMN, pa.array(range(len(rows)), pa.int64())).to_batches()
    outputs = {f"p{n}": p for n, p in enumerate(predicates)}
    with BatchTransform(batch[0].schema, {"id": exp.column("id"), **outputs}) as local:
        result = local.apply(batch[0]).batch.to_pylist()
    return [sorted(r["id"] for r in result if r[f"p{n}"]) for n in range(len(predicates))]


def check_equivalence(crm: SugarCrmConnector, module: str, predicates: list[str]) -> list[str]:
    """Each filter read through the connector selects what the local engine selects from
    every record; the ones the connector pushed to the server."""
    fields = crm.describe(module).field_names
    everything = read_all(crm, module, fields=fields)
    parsed = [parse(text, what="filter") for text in predicates]
    pushed = []
    for text, predicate, expected in zip(
        predicates, parsed, local_ids(everything, parsed), strict=True
    ):
        if crm.can_push_down(module, predicate):
            pushed.append(text)
        got = sorted(r["id"] for r in read_all(crm, module, fields=["id"], filter=predicate))
        assert got == expected, text
    return pushed
