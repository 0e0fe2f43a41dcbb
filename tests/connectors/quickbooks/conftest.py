"""Fixtures: a sandbox served on a real port and connectors talking to it over HTTP."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from pydantic import SecretStr

from crmbridge.connectors.quickbooks import QuickBooksConnector, QuickBooksSettings
from crmbridge.sandbox.quickbooks import QuickBooksSandbox, RunningServer

Connect = Callable[..., QuickBooksConnector]


@pytest.fixture
def sandbox() -> Iterator[QuickBooksSandbox]:
    box = QuickBooksSandbox(customers=20)
    yield box
    box.close()


@pytest.fixture
def server(sandbox: QuickBooksSandbox) -> Iterator[RunningServer]:
    with sandbox.serve() as running:
        yield running


def settings_for(box: QuickBooksSandbox, url: str, **overrides: Any) -> QuickBooksSettings:
    values: dict[str, Any] = {
        "realm_id": box.realm_id,
        "client_id": box.client_id,
        "client_secret": box.client_secret,
        "refresh_token": box.issue_refresh_token(),
        "api_url": url,
        "token_url": f"{url}/oauth2/v1/tokens/bearer",
        "retry_backoff": 0.001,
    }
    return QuickBooksSettings(**{**values, **overrides})


@pytest.fixture
def stored_tokens() -> list[SecretStr]:
    return []


@pytest.fixture
def connect(
    sandbox: QuickBooksSandbox, server: RunningServer, stored_tokens: list[SecretStr]
) -> Iterator[Connect]:
    """``connect(**settings)``: an opened connector on the sandbox over its real port."""
    opened: list[QuickBooksConnector] = []

    def make(**overrides: Any) -> QuickBooksConnector:
        connector = QuickBooksConnector(
            "books",
            settings_for(sandbox, server.url, **overrides),
            on_refresh_token=stored_tokens.append,
            sleep=lambda _: None,
        )
        connector.open()
        opened.append(connector)
        return connector

    yield make
    for connector in opened:
        connector.close()


@pytest.fixture
def qb(connect: Connect) -> QuickBooksConnector:
    return connect()
