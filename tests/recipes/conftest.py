"""Fixtures of the recipe tests: the runner tests' private crmbridge home, connection store
and state store, and the CRM sandboxes saved as connection ``crm``."""

from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.runner.conftest import home, state, store

from crmbridge.connections import ConnectionStore
from crmbridge.sandbox.salesforce import DEFAULT_USER, SalesforceSandbox
from crmbridge.sandbox.sugarcrm import SugarSandbox


@pytest.fixture(scope="session")
def sf_tls(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("sf-tls")


@pytest.fixture
def salesforce(store: ConnectionStore, sf_tls: Path) -> Iterator[SalesforceSandbox]:
    """A Salesforce sandbox on a real HTTPS port, saved as connection ``crm``."""
    sandbox = SalesforceSandbox(accounts=4, tls_dir=sf_tls)
    with sandbox.serve() as server:
        settings = {
            "login_url": server.url,
            "client_id": sandbox.consumer_key,
            "client_secret": sandbox.consumer_secret,
            "username": DEFAULT_USER,
            "password": "admin",
            "ca_file": str(sandbox.ca_file),
            "retry_backoff": 0.001,
        }
        store.add("crm", "salesforce", settings)
        yield sandbox
    sandbox.close()


@pytest.fixture
def sugarcrm(store: ConnectionStore) -> Iterator[SugarSandbox]:
    """A SugarCRM sandbox (REST v10) on a real port, saved as connection ``crm``."""
    sandbox = SugarSandbox(accounts=4)
    with sandbox.serve() as server:
        settings = {"url": server.url, "username": "admin", "password": "admin", "api": "v10"}
        store.add("crm", "sugarcrm", settings)
        yield sandbox
    sandbox.close()


__all__ = ["home", "salesforce", "sf_tls", "state", "store", "sugarcrm"]
