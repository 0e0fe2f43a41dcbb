"""The token endpoint (username-password and JWT bearer) and session expiry."""

from __future__ import annotations

import ssl
import time

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from sf_helpers import Rest

from crmbridge.sandbox.salesforce import DEFAULT_USER, RunningServer, SalesforceSandbox
from crmbridge.sandbox.salesforce.auth import JWT_GRANT


def _assertion(sandbox: SalesforceSandbox, server: RunningServer, **claims: object) -> str:
    payload = {
        "iss": sandbox.consumer_key,
        "sub": DEFAULT_USER,
        "aud": "https://login.salesforce.com",
        "exp": int(time.time()) + 120,
        **claims,
    }
    return jwt.encode(payload, sandbox.jwt_key_file.read_text(), algorithm="RS256")


def test_password_grant_answers_a_token_and_the_instance_url(
    rest: Rest, server: RunningServer
) -> None:
    answer = rest.token_request(
        grant_type="password",
        client_id=rest.sandbox.consumer_key,
        client_secret=rest.sandbox.consumer_secret,
        username=DEFAULT_USER,
        password="admin",
    )
    body = answer.json()
    assert answer.status_code == 200
    assert body["instance_url"] == server.url
    assert body["token_type"] == "Bearer"
    assert "refresh_token" not in body


@pytest.mark.parametrize(
    ("change", "error", "description"),
    [
        ({"password": "wrong"}, "invalid_grant", "authentication failure"),
        ({"username": "nobody@x"}, "invalid_grant", "authentication failure"),
        ({"client_id": "other"}, "invalid_client_id", "client identifier invalid"),
        ({"client_secret": "other"}, "invalid_client", "invalid client credentials"),
        (
            {"grant_type": "client_credentials"},
            "unsupported_grant_type",
            "grant type not supported",
        ),
    ],
)
def test_password_grant_refusals(
    rest: Rest, change: dict[str, str], error: str, description: str
) -> None:
    form = {
        "grant_type": "password",
        "client_id": rest.sandbox.consumer_key,
        "client_secret": rest.sandbox.consumer_secret,
        "username": DEFAULT_USER,
        "password": "admin",
        **change,
    }
    answer = rest.token_request(**form)
    assert answer.status_code == 400
    assert answer.json() == {"error": error, "error_description": description}


def test_security_token_is_appended_to_the_password(tls_dir: object) -> None:
    box = SalesforceSandbox(users={"u@x.org": "pwTOKEN123"}, tls_dir=tls_dir, accounts=2)  # type: ignore[arg-type]
    with (
        box.serve() as server,
        httpx.Client(
            base_url=server.url, verify=ssl.create_default_context(cafile=box.ca_file)
        ) as http,
    ):
        rest = Rest(http, box)
        rest.login("u@x.org", "pwTOKEN123")
        with pytest.raises(AssertionError):
            rest.login("u@x.org", "pw")
    box.close()


def test_jwt_bearer_grant(rest: Rest, server: RunningServer) -> None:
    answer = rest.token_request(grant_type=JWT_GRANT, assertion=_assertion(rest.sandbox, server))
    assert answer.status_code == 200, answer.text
    rest.token = answer.json()["access_token"]
    assert rest.get("limits").status_code == 200


def test_jwt_accepts_the_sandbox_url_as_audience(rest: Rest, server: RunningServer) -> None:
    assertion = _assertion(rest.sandbox, server, aud=server.url)
    assert rest.token_request(grant_type=JWT_GRANT, assertion=assertion).status_code == 200


def test_jwt_refusals(rest: Rest, server: RunningServer) -> None:
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = other.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    wrong_key = jwt.encode(
        {
            "iss": rest.sandbox.consumer_key,
            "sub": DEFAULT_USER,
            "aud": "https://login.salesforce.com",
            "exp": int(time.time()) + 60,
        },
        pem,
        algorithm="RS256",
    )
    cases = {
        wrong_key: "invalid assertion",
        _assertion(rest.sandbox, server, exp=int(time.time()) - 5): "expired access/refresh token",
        _assertion(rest.sandbox, server, aud="https://evil.example"): "audience is invalid",
        _assertion(rest.sandbox, server, sub="nobody@x"): "user hasn't approved this consumer",
        "not.a.jwt": "invalid assertion",
    }
    for assertion, description in cases.items():
        answer = rest.token_request(grant_type=JWT_GRANT, assertion=assertion)
        assert answer.status_code == 400
        assert answer.json()["error_description"] == description
    unknown_app = _assertion(rest.sandbox, server, iss="nope")
    answer = rest.token_request(grant_type=JWT_GRANT, assertion=unknown_app)
    assert answer.json()["error"] == "invalid_client_id"


def test_calls_without_a_live_token_answer_invalid_session_id(rest: Rest) -> None:
    good = rest.token
    rest.token = "bogus"
    answer = rest.get("limits")
    assert rest.error(answer)[:2] == (401, "INVALID_SESSION_ID")
    assert answer.headers["WWW-Authenticate"] == "Token"
    rest.token = good
    assert rest.get("limits").status_code == 200
    rest.sandbox.expire_sessions()
    assert rest.error(rest.get("limits"))[:2] == (401, "INVALID_SESSION_ID")


def test_tokens_die_after_the_planned_number_of_calls(rest: Rest) -> None:
    rest.sandbox.faults.expire_sessions_after(2)
    assert rest.get("limits").status_code == 200
    assert rest.get("limits").status_code == 200
    assert rest.error(rest.get("limits"))[1] == "INVALID_SESSION_ID"
    rest.login()
    assert rest.get("limits").status_code == 200


def test_tokens_expire_after_the_session_timeout(tls_dir: object) -> None:
    box = SalesforceSandbox(session_timeout=0.05, tls_dir=tls_dir, accounts=2)  # type: ignore[arg-type]
    with (
        box.serve() as server,
        httpx.Client(
            base_url=server.url, verify=ssl.create_default_context(cafile=box.ca_file)
        ) as http,
    ):
        rest = Rest(http, box)
        rest.login()
        time.sleep(0.1)
        assert rest.error(rest.get("limits"))[1] == "INVALID_SESSION_ID"
    box.close()


def test_tls_is_verified_against_the_sandbox_ca(server: RunningServer) -> None:
    with httpx.Client(verify=True) as http, pytest.raises(httpx.ConnectError):
        http.get(server.url + "/services/data")
