"""Fixtures: a fresh in-memory sandbox per test, served on a real loopback port."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from sage_helpers import REST_PATH, Soap

from crmbridge.sandbox.sagecrm import RunningServer, SageSandbox


@pytest.fixture
def sandbox() -> Iterator[SageSandbox]:
    box = SageSandbox(companies=20, max_records=5)
    yield box
    box.close()


@pytest.fixture
def server(sandbox: SageSandbox) -> Iterator[RunningServer]:
    with sandbox.serve() as running:
        yield running


@pytest.fixture
def client(server: RunningServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url) as http:
        yield http


@pytest.fixture
def soap(client: httpx.Client) -> Soap:
    api = Soap(client)
    api.logon()
    return api


@pytest.fixture
def rest(server: RunningServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url + REST_PATH, auth=("admin", "admin")) as http:
        yield http
