"""Fixtures: a fresh in-memory sandbox per test, reached in-process through httpx."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from qb_sandbox_helpers import Qbo

from crmbridge.sandbox.quickbooks import QuickBooksSandbox


@pytest.fixture
def sandbox() -> Iterator[QuickBooksSandbox]:
    box = QuickBooksSandbox(customers=20)
    yield box
    box.close()


@pytest.fixture
def client(sandbox: QuickBooksSandbox) -> Iterator[httpx.Client]:
    with httpx.Client(
        transport=httpx.WSGITransport(app=sandbox.wsgi_app), base_url="http://qbo.test"
    ) as http:
        yield http


@pytest.fixture
def qbo(client: httpx.Client, sandbox: QuickBooksSandbox) -> Qbo:
    return Qbo(client, sandbox)


@pytest.fixture
def customer(qbo: Qbo) -> dict[str, object]:
    return qbo.ok("Customer", {"DisplayName": "Test Customer", "GivenName": "Tess"})
