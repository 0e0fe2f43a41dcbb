"""OAuth2 for the sandbox: the token endpoint's username-password and JWT bearer flows, and
the access tokens it hands out.

``POST /services/oauth2/token`` takes a form body:

* ``grant_type=password``, ``client_id``, ``client_secret``, ``username``, ``password`` (the
  password followed by the user's security token, when the user has one);
* ``grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer``, ``assertion``: a JWT signed
  RS256 with the private key whose certificate the connected app holds; claims ``iss`` (the
  consumer key), ``sub`` (the username), ``aud`` (the login URL) and ``exp`` (at most five
  minutes ahead).

Neither flow returns a refresh token: a client logs in again when its token expires. Errors are
HTTP 400 ``{"error", "error_description"}`` as Salesforce answers them.
"""

from __future__ import annotations

import base64
import json
import secrets
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509 import load_pem_x509_certificate

from crmbridge.sandbox.salesforce.faults import Faults

JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
#: the audiences a JWT may name besides the sandbox's own URL
LOGIN_AUDIENCES = ("https://login.salesforce.com", "https://test.salesforce.com")
MAX_JWT_LIFETIME = 300


class OAuthError(Exception):
    def __init__(self, error: str, description: str, status: int = 400) -> None:
        super().__init__(description)
        self.status = status
        self.payload = {"error": error, "error_description": description}


@dataclass(frozen=True)
class ConnectedApp:
    """A connected app: consumer key and secret, and the PEM certificate for JWT bearer."""

    consumer_key: str
    consumer_secret: str
    certificate: bytes | None = None


@dataclass
class _Token:
    user_id: str
    username: str
    expires_at: float
    calls: int = 0


class Tokens:
    """Live access tokens (thread-safe)."""

    def __init__(self, faults: Faults, lifetime: float) -> None:
        self._faults = faults
        self._lifetime = lifetime
        self._lock = threading.Lock()
        self._tokens: dict[str, _Token] = {}

    def issue(self, user_id: str, username: str) -> str:
        # like Salesforce: the org id, then '!', then the opaque part
        token = "00D5g000000SANDBX!" + secrets.token_urlsafe(48)
        with self._lock:
            self._tokens[token] = _Token(user_id, username, time.monotonic() + self._lifetime)
        return token

    def use(self, token: str | None) -> str | None:
        """The user id of a live token (counting one call), or None."""
        if not token:
            return None
        with self._lock:
            found = self._tokens.get(token)
            if found is None:
                return None
            found.calls += 1
            limit = self._faults.session_call_limit
            if found.expires_at < time.monotonic() or (limit is not None and found.calls > limit):
                del self._tokens[token]
                return None
            return found.user_id

    def revoke(self, token: str) -> None:
        with self._lock:
            self._tokens.pop(token, None)

    def expire_all(self) -> None:
        """Every token dies now (as after a password change or a session timeout)."""
        with self._lock:
            self._tokens.clear()


def grant(
    form: Mapping[str, str],
    *,
    apps: Sequence[ConnectedApp],
    users: Mapping[str, tuple[str, str]],
    audiences: Sequence[str],
) -> tuple[str, str]:
    """(user id, username) for a token request, or the OAuthError Salesforce answers.

    ``users`` maps usernames to (password + security token, user id).
    """
    kind = form.get("grant_type", "")
    if kind == "password":
        app = _app(apps, form.get("client_id", ""))
        if not secrets.compare_digest(form.get("client_secret", ""), app.consumer_secret):
            raise OAuthError("invalid_client", "invalid client credentials")
        entry = users.get(form.get("username", ""))
        if entry is None or not secrets.compare_digest(form.get("password", ""), entry[0]):
            raise OAuthError("invalid_grant", "authentication failure")
        return entry[1], form["username"]
    if kind == JWT_GRANT:
        claims = _verify_jwt(form.get("assertion", ""), apps, audiences)
        entry = users.get(str(claims.get("sub", "")))
        if entry is None:
            raise OAuthError("invalid_grant", "user hasn't approved this consumer")
        return entry[1], str(claims["sub"])
    raise OAuthError("unsupported_grant_type", "grant type not supported")


def _app(apps: Sequence[ConnectedApp], key: str) -> ConnectedApp:
    for app in apps:
        if secrets.compare_digest(app.consumer_key, key):
            return app
    raise OAuthError("invalid_client_id", "client identifier invalid")


def _b64(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def _verify_jwt(
    assertion: str, apps: Sequence[ConnectedApp], audiences: Sequence[str]
) -> dict[str, Any]:
    try:
        head_b64, body_b64, sig_b64 = assertion.split(".")
        header = json.loads(_b64(head_b64))
        claims = json.loads(_b64(body_b64))
        signature = _b64(sig_b64)
    except (ValueError, TypeError):
        raise OAuthError("invalid_grant", "invalid assertion") from None
    if not isinstance(header, dict) or header.get("alg") != "RS256" or not isinstance(claims, dict):
        raise OAuthError("invalid_grant", "invalid assertion")
    app = _app(apps, str(claims.get("iss", "")))
    if app.certificate is None:
        raise OAuthError("invalid_client", "invalid client credentials")
    key = load_pem_x509_certificate(app.certificate).public_key()
    assert isinstance(key, rsa.RSAPublicKey)
    try:
        key.verify(
            signature, f"{head_b64}.{body_b64}".encode(), padding.PKCS1v15(), hashes.SHA256()
        )
    except InvalidSignature:
        raise OAuthError("invalid_grant", "invalid assertion") from None
    if str(claims.get("aud", "")).rstrip("/") not in [a.rstrip("/") for a in audiences]:
        raise OAuthError("invalid_grant", "audience is invalid")
    try:
        expires = float(claims.get("exp", 0))
    except (TypeError, ValueError):
        raise OAuthError("invalid_grant", "invalid assertion") from None
    now = time.time()
    if expires <= now:
        raise OAuthError("invalid_grant", "expired access/refresh token")
    if expires > now + MAX_JWT_LIFETIME:
        raise OAuthError("invalid_grant", "invalid assertion: exp is too far in the future")
    return claims
