"""Fixtures: a sandbox served on a real port and connectors talking to it over HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import SecretStr
from quickbooks_helpers import Connect, settings_for

from crmbridge.connectors.quickbooks import QuickBooksConnector
from crmbridge.sandbox.quickbooks import QuickBooksSandbox, RunningServer


@pytest.fixture
def sandbox() -> Iterator[QuickBooksSandbox]:
    box = QuickBooksSandbox(customers=20)
    yield box
    box.close()


@pytest.fixture
def server(sandbox: QuickBooksSandbox) -> Iterator[RunningServer]:
    with sandbox.serve() as running:
        yield running


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
