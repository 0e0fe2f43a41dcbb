"""Helpers of the Salesforce connector tests."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pyarrow as pa

from crmbridge.connectors.base import ReadRequest
from crmbridge.connectors.salesforce import SalesforceConnector, SalesforceSettings
from crmbridge.sandbox.salesforce import DEFAULT_USER, RunningServer, SalesforceSandbox
from crmbridge.sandbox.salesforce.ids import make_id

Connect = Callable[..., SalesforceConnector]


class Sleeps(list[float]):
    """Records the pauses a connector asks for, without waiting."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def settings(
    sandbox: SalesforceSandbox, server: RunningServer, **overrides: Any
) -> SalesforceSettings:
    values: dict[str, Any] = {
        "login_url": server.url,
        "client_id": sandbox.consumer_key,
        "client_secret": sandbox.consumer_secret,
        "username": DEFAULT_USER,
        "password": "admin",
        "ca_file": str(sandbox.ca_file),
        "retry_backoff": 0.001,
        "bulk_poll_interval": 0.001,
    }
    return SalesforceSettings(**{**values, **overrides})


@contextmanager
def connector_factory(sandbox: SalesforceSandbox, server: RunningServer) -> Iterator[Connect]:
    opened: list[SalesforceConnector] = []

    def make(
        *, sleep: Callable[[float], None] | None = None, **overrides: Any
    ) -> SalesforceConnector:
        connector = SalesforceConnector(
            "sf", settings(sandbox, server, **overrides), sleep=Sleeps() if sleep is None else sleep
        )
        connector.open()
        opened.append(connector)
        return connector

    try:
        yield make
    finally:
        for connector in opened:
            connector.close()


def read_all(sf: SalesforceConnector, object: str, **request: Any) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for batch in sf.read(ReadRequest(object, **request)):
        rows.extend(batch.to_pylist())
    return rows


def add_accounts(
    sandbox: SalesforceSandbox,
    count: int,
    *,
    stamp: str = "2024-03-01T12:00:00.000Z",
    prefix: str = "Bulk",
) -> list[str]:
    """Insert ``count`` Accounts straight into the sandbox database; their ids, in order."""
    start = 100_000 + len(sandbox.execute('SELECT "Id" FROM sobject_account'))
    ids = [make_id("001", start + n) for n in range(count)]
    for n, record_id in enumerate(ids):
        sandbox.execute(
            'INSERT INTO sobject_account ("Id", "IsDeleted", "Name", "OwnerId", "CreatedDate", '
            '"CreatedById", "LastModifiedDate", "LastModifiedById", "SystemModstamp") '
            "VALUES (?, 0, ?, ?, ?, ?, ?, ?, ?)",
            (
                record_id,
                f"{prefix} {n}",
                sandbox.user_id(),
                stamp,
                sandbox.user_id(),
                stamp,
                sandbox.user_id(),
                stamp,
            ),
        )
    return ids


def batch(rows: list[dict[str, Any]]) -> pa.RecordBatch:
    return pa.RecordBatch.from_pylist(rows)


def typed(sf: SalesforceConnector, object: str, rows: list[dict[str, Any]]) -> pa.RecordBatch:
    """``rows`` as a batch typed per ``object``'s fields (the columns of the first row)."""
    schema = sf.describe(object)
    names = list(rows[0])
    arrow = pa.schema([pa.field(n, schema.field(n).arrow_type) for n in names])
    return pa.RecordBatch.from_pylist(rows, schema=arrow)


def count(sandbox: SalesforceSandbox, table: str, where: str = "1", *params: Any) -> int:
    """Rows of a sandbox table (the recycle bin included) matching ``where``."""
    found = sandbox.execute(f"SELECT count(*) AS n FROM {table} WHERE {where}", params)
    return int(found[0]["n"])
