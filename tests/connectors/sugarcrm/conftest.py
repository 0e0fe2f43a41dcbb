"""Fixtures: a sandbox per test and connectors talking to it in-process."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sugarcrm_helpers import Connect, connector_factory

from crmbridge.connectors.sugarcrm import SugarCrmConnector
from crmbridge.sandbox.sugarcrm import SugarSandbox
from crmbridge.sandbox.sugarcrm.vardefs import STUDIO_FIELDS


@pytest.fixture
def sandbox() -> Iterator[SugarSandbox]:
    box = SugarSandbox(accounts=10, studio_fields=STUDIO_FIELDS)
    yield box
    box.close()


@pytest.fixture
def empty_sandbox() -> Iterator[SugarSandbox]:
    box = SugarSandbox(seed=False, studio_fields=STUDIO_FIELDS)
    yield box
    box.close()


@pytest.fixture
def connect(sandbox: SugarSandbox) -> Iterator[Connect]:
    """``connect(api="v4_1", **settings)``: an opened connector on the seeded sandbox."""
    with connector_factory(sandbox.wsgi_app) as make:
        yield make


@pytest.fixture
def connect_empty(empty_sandbox: SugarSandbox) -> Iterator[Connect]:
    """Like ``connect``, on a sandbox without seed data."""
    with connector_factory(empty_sandbox.wsgi_app) as make:
        yield make


@pytest.fixture(params=["v4_1", "v10"])
def api(request: pytest.FixtureRequest) -> str:
    """Run the test against each API family."""
    return str(request.param)


@pytest.fixture
def crm(connect: Connect, api: str) -> SugarCrmConnector:
    """A connector on the seeded sandbox, once per API family."""
    return connect(api)
