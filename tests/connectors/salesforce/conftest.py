"""Fixtures: a sandbox per test on a real HTTPS port, and connectors logged in to it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from salesforce_helpers import Connect, connector_factory

from crmbridge.connectors.salesforce import SalesforceConnector
from crmbridge.sandbox.salesforce import RunningServer, SalesforceSandbox


@pytest.fixture(scope="session")
def tls_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("sf-tls")


@pytest.fixture
def sandbox(tls_dir: Path) -> Iterator[SalesforceSandbox]:
    box = SalesforceSandbox(accounts=10, tls_dir=tls_dir)
    yield box
    box.close()


@pytest.fixture
def server(sandbox: SalesforceSandbox) -> Iterator[RunningServer]:
    with sandbox.serve() as running:
        yield running


@pytest.fixture
def connect(sandbox: SalesforceSandbox, server: RunningServer) -> Iterator[Connect]:
    """``connect(**settings)``: an opened connector on the sandbox (closed at the end)."""
    with connector_factory(sandbox, server) as make:
        yield make


@pytest.fixture
def sf(connect: Connect) -> SalesforceConnector:
    return connect()
