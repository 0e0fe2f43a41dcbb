"""Fixtures: a sandbox per test on a real port, and connectors talking to it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sagecrm_helpers import ZONE, Connect, connector_factory

from crmbridge.connectors.sagecrm import SageCrmConnector
from crmbridge.sandbox.sagecrm import RunningServer, SageSandbox


@pytest.fixture
def sandbox() -> Iterator[SageSandbox]:
    box = SageSandbox(companies=20, max_records=5, server_zone=ZONE)
    yield box
    box.close()


@pytest.fixture
def server(sandbox: SageSandbox) -> Iterator[RunningServer]:
    with sandbox.serve() as running:
        yield running


@pytest.fixture
def connect(server: RunningServer) -> Iterator[Connect]:
    with connector_factory(server.url) as make:
        yield make


@pytest.fixture(params=["soap", "rest"])
def api(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def crm(connect: Connect, api: str) -> SageCrmConnector:
    """A connector on the seeded sandbox, once per API family."""
    return connect(api)
