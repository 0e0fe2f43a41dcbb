"""Helpers of the Sage CRM connector tests."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from crmbridge.connectors.base import ReadRequest
from crmbridge.connectors.sagecrm import SageCrmConnector, SageCrmSettings

Connect = Callable[..., SageCrmConnector]
ZONE = "Europe/London"


def settings(url: str, **overrides: Any) -> SageCrmSettings:
    values: dict[str, Any] = {
        "url": url,
        "username": "admin",
        "password": "admin",
        "server_timezone": ZONE,
        "retry_backoff": 0.001,
    }
    return SageCrmSettings(**{**values, **overrides})


@contextmanager
def connector_factory(url: str) -> Iterator[Connect]:
    """``make(api="soap", **settings)`` -> an opened connector; all are closed at the end."""
    opened: list[SageCrmConnector] = []

    def make(api: str = "soap", *, sleep: Any = None, **overrides: Any) -> SageCrmConnector:
        connector = SageCrmConnector("crm", settings(url, api=api, **overrides), sleep=sleep)
        connector.open()
        opened.append(connector)
        return connector

    try:
        yield make
    finally:
        for connector in opened:
            connector.close()


def read_all(crm: SageCrmConnector, entity: str, **request: Any) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for batch in crm.read(ReadRequest(entity, **request)):
        rows.extend(batch.to_pylist())
    return rows
