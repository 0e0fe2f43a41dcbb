"""Fixtures: a sandbox per test served over HTTPS on a free port, and a logged-in client."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sf_helpers import Rest

from crmbridge.sandbox.salesforce import RunningServer, SalesforceSandbox


@pytest.fixture(scope="session")
def tls_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One CA and JWT key pair for the whole session (making RSA keys takes a while)."""
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
def client(sandbox: SalesforceSandbox, server: RunningServer) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=server.url, verify=ssl.create_default_context(cafile=sandbox.ca_file), timeout=10
    ) as http:
        yield http


@pytest.fixture
def rest(client: httpx.Client, sandbox: SalesforceSandbox) -> Rest:
    api = Rest(client, sandbox)
    api.login()
    return api
