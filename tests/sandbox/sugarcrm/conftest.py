"""Fixtures: a fresh in-memory sandbox per test, reached in-process through httpx."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from sugar_helpers import V4, Rest

from crmbridge.sandbox.sugarcrm import SugarSandbox
from crmbridge.sandbox.sugarcrm.vardefs import STUDIO_FIELDS


@pytest.fixture
def sandbox() -> Iterator[SugarSandbox]:
    box = SugarSandbox(studio_fields=STUDIO_FIELDS)
    yield box
    box.close()


@pytest.fixture
def client(sandbox: SugarSandbox) -> Iterator[httpx.Client]:
    with httpx.Client(
        transport=httpx.WSGITransport(app=sandbox.wsgi_app), base_url="http://sugar.test"
    ) as http:
        yield http


@pytest.fixture
def v4(client: httpx.Client) -> V4:
    api = V4(client)
    api.login()
    return api


@pytest.fixture
def rest(client: httpx.Client) -> Rest:
    api = Rest(client)
    api.login()
    return api
