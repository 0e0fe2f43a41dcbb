"""Settings: the registry finds the connector, secrets are SecretStr, mistakes are refused."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from crmbridge.connections.settings import secret_fields
from crmbridge.connectors import registry
from crmbridge.connectors.salesforce import SalesforceConnector, SalesforceSettings


def test_the_connector_is_registered_through_the_entry_point() -> None:
    assert registry.get("salesforce") is SalesforceConnector


def test_secrets_are_secret() -> None:
    assert secret_fields(SalesforceSettings) == [
        "client_secret",
        "password",
        "security_token",
        "private_key",
    ]


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"auth": "jwt"}, "needs private_key or private_key_file"),
        ({"password": ""}, "needs password"),
        ({"quota_slow_down": 0.99, "quota_stop": 0.9}, "quota_slow_down"),
        ({"page_size": 100}, "page_size"),
        ({"api_version": "v59.0"}, "api_version"),
        ({"bogus": 1}, "bogus"),
    ],
)
def test_mistakes_are_refused(values: dict[str, object], message: str) -> None:
    base: dict[str, object] = {"client_id": "k", "username": "u", "password": "p"}
    with pytest.raises(ValidationError, match=message):
        SalesforceSettings(**{**base, **values})
