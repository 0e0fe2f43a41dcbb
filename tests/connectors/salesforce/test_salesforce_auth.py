"""Login (username-password, JWT bearer), refresh on INVALID_SESSION_ID, clear refusals."""

from __future__ import annotations

import pytest
from salesforce_helpers import Connect, read_all

from crmbridge.connectors.salesforce import SalesforceConnector
from crmbridge.errors import ConfigError, ConnectionFailedError
from crmbridge.sandbox.salesforce import SalesforceSandbox


def test_password_flow_logs_in_and_checks(
    sf: SalesforceConnector, sandbox: SalesforceSandbox
) -> None:
    info = sf.check()
    assert info.system == "Salesforce"
    assert info.details["user"] == "admin@crmbridge.sandbox"
    assert info.details["api_requests_today"].endswith("of 15000")


def test_jwt_bearer_flow(connect: Connect, sandbox: SalesforceSandbox) -> None:
    sf = connect(
        auth="jwt", password="", client_secret="", private_key_file=str(sandbox.jwt_key_file)
    )
    assert sf.check().details["auth"] == "jwt"
    key = sandbox.jwt_key_file.read_text()
    assert connect(auth="jwt", password="", private_key=key).objects()


def test_wrong_password_is_one_clear_line_without_the_secret(connect: Connect) -> None:
    with pytest.raises(ConnectionFailedError) as info:
        connect(password="s3cret-wrong", security_token="TOK")
    message = str(info.value)
    assert "authentication failure" in message
    assert "security_token" in message
    assert "s3cret-wrong" not in message
    assert "TOK" not in message.replace("token", "")


def test_wrong_client_names_the_setting(connect: Connect) -> None:
    with pytest.raises(ConnectionFailedError, match="client_id"):
        connect(client_id="nope")
    with pytest.raises(ConnectionFailedError, match="client_secret"):
        connect(client_secret="nope")


def test_a_bad_private_key_is_a_config_error(connect: Connect, tmp_path: object) -> None:
    with pytest.raises(ConfigError, match="private key"):
        connect(auth="jwt", password="", private_key="not a key")
    with pytest.raises(ConfigError, match="cannot read private_key_file"):
        connect(auth="jwt", password="", private_key_file="/nonexistent/key.pem")


def test_an_expired_session_is_refreshed_and_the_call_retried_once(
    sf: SalesforceConnector, sandbox: SalesforceSandbox
) -> None:
    assert sf.api.logins == 1
    sandbox.expire_sessions()
    assert len(read_all(sf, "Account", fields=["Id"])) == 10
    assert sf.api.logins == 2
    counts = sandbox.faults.call_counts()
    assert counts["POST oauth2/token"] == 2


def test_a_session_refused_right_after_login_is_a_clear_error(
    sf: SalesforceConnector, sandbox: SalesforceSandbox
) -> None:
    sf.objects()
    sandbox.faults.expire_sessions_after(0)  # every token dies on its first use
    with pytest.raises(ConnectionFailedError, match="refused the session again"):
        sf.describe("Account")
    assert sf.api.logins == 2


def test_the_sandbox_ca_is_needed(connect: Connect) -> None:
    with pytest.raises(ConnectionFailedError, match="cannot reach"):
        connect(ca_file=None)
