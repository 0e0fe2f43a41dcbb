"""OAuth 2.0 as Intuit does it: authorization codes, access tokens (1 h) and rotating refresh
tokens (100 days). Refreshing answers a new refresh token and the old one stops working.

Tokens live in the sandbox database, so a ``--data`` file keeps them across restarts.
"""

from __future__ import annotations

import datetime as dt
import secrets
import threading
from collections import Counter
from dataclasses import dataclass
from typing import Any

from crmbridge.sandbox.quickbooks.clock import Clock, storage
from crmbridge.sandbox.quickbooks.faults import Faults
from crmbridge.sandbox.quickbooks.store import Store

ACCESS_TTL = 3600
REFRESH_TTL = 8_726_400  # 101 days, as Intuit answers x_refresh_token_expires_in
CODE_TTL = 600
SCOPE = "com.intuit.quickbooks.accounting"


class OAuthError(Exception):
    """An answer of the token endpoint: ``{"error": code}`` with an HTTP status."""

    def __init__(self, status: int, code: str) -> None:
        super().__init__(code)
        self.status = status
        self.code = code


@dataclass
class Tokens:
    store: Store
    clock: Clock
    faults: Faults
    client_id: str
    client_secret: str

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._calls: Counter[str] = Counter()

    def _new(self, kind: str, ttl: int, prefix: str) -> str:
        token = prefix + secrets.token_urlsafe(24)
        expires = storage(self.clock.now() + dt.timedelta(seconds=ttl))
        self.store.query(
            "INSERT INTO tokens (token, kind, expires, epoch) VALUES (?, ?, ?, ?)",
            (token, kind, expires, self.faults.expire_epoch),
        )
        return token

    def issue_refresh_token(self) -> str:
        """A new refresh token, as if a user had just connected the app to the company."""
        return self._new("refresh", REFRESH_TTL, "RT1-")

    def authorize(self) -> str:
        """An authorization code for the consent screen's redirect."""
        return self._new("code", CODE_TTL, "AB11")

    def check_client(self, client_id: str, client_secret: str) -> None:
        ok = secrets.compare_digest(client_id, self.client_id) and secrets.compare_digest(
            client_secret, self.client_secret
        )
        if not ok:
            raise OAuthError(401, "invalid_client")

    def grant(self, form: dict[str, str]) -> dict[str, Any]:
        """The answer to ``POST /oauth2/v1/tokens/bearer`` (client already checked)."""
        kind = form.get("grant_type", "")
        if kind == "refresh_token":
            self._use(form.get("refresh_token", ""), "refresh")
        elif kind == "authorization_code":
            self._use(form.get("code", ""), "code")
        else:
            raise OAuthError(400, "unsupported_grant_type")
        return {
            "access_token": self._new("access", ACCESS_TTL, "eyJ-"),
            "token_type": "bearer",
            "expires_in": ACCESS_TTL,
            "refresh_token": self.issue_refresh_token(),
            "x_refresh_token_expires_in": REFRESH_TTL,
        }

    def _use(self, token: str, kind: str) -> None:
        with self.store.transaction():
            rows = self.store.query(
                "SELECT expires, used FROM tokens WHERE token = ? AND kind = ?", (token, kind)
            )
            if not rows or rows[0]["used"] or rows[0]["expires"] < storage(self.clock.now()):
                raise OAuthError(400, "invalid_grant")
            self.store.query("UPDATE tokens SET used = 1 WHERE token = ?", (token,))

    def access_ok(self, token: str | None) -> bool:
        """Whether ``token`` is a live access token (counting one call made with it)."""
        if not token:
            return False
        rows = self.store.query(
            "SELECT expires, epoch FROM tokens WHERE token = ? AND kind = 'access'", (token,)
        )
        if not rows or rows[0]["expires"] < storage(self.clock.now()):
            return False
        if rows[0]["epoch"] < self.faults.expire_epoch:
            return False
        limit = self.faults.token_call_limit
        with self._lock:
            self._calls[token] += 1
            return limit is None or self._calls[token] <= limit
