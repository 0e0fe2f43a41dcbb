"""OAuth 2.0 for QuickBooks Online: access tokens from the rotating refresh token.

An access token lasts an hour. Each refresh answers a new refresh token and the old one stops
working, so every new refresh token is handed to ``on_refresh_token`` at once: the caller
must store it (the connection store does, see docs/connectors/quickbooks.md) or the next run
cannot log in.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

import httpx
from pydantic import SecretStr

from crmbridge.connectors.quickbooks.settings import QuickBooksSettings
from crmbridge.errors import ConnectionFailedError, ErrorContext, RetryableError, redact

log = logging.getLogger("crmbridge.connectors.quickbooks")

AUTHORIZE_URL = "https://appcenter.intuit.com/connect/oauth2"
SCOPE = "com.intuit.quickbooks.accounting"
#: renew an access token this many seconds before it expires
EARLY = 60.0


def authorization_url(
    client_id: str, redirect_uri: str, state: str, base: str = AUTHORIZE_URL
) -> str:
    """Where to send the user to connect the app to a company (authorization-code flow)."""
    query = urlencode(
        {
            "client_id": client_id,
            "response_type": "code",
            "scope": SCOPE,
            "redirect_uri": redirect_uri,
            "state": state,
        }
    )
    return f"{base}?{query}"


class TokenSource:
    """The access token of one connection, renewed from the refresh token when needed."""

    def __init__(
        self,
        settings: QuickBooksSettings,
        client: httpx.Client,
        *,
        context: ErrorContext,
        on_refresh_token: Callable[[SecretStr], None] | None = None,
    ) -> None:
        self.settings = settings
        self._client = client
        self._context = context
        self._refresh = settings.refresh_token
        self.on_refresh_token = on_refresh_token
        self._lock = threading.Lock()
        self._access: str | None = None
        self._expires = 0.0

    @property
    def refresh_token(self) -> SecretStr:
        """The refresh token that works now (the latest one the server answered)."""
        return self._refresh

    def _secrets(self) -> list[str]:
        values = [self._refresh.get_secret_value(), self.settings.client_secret.get_secret_value()]
        return values + ([self._access] if self._access else [])

    def access_token(self) -> str:
        with self._lock:
            if self._access is None or time.monotonic() > self._expires - EARLY:
                self._renew()
            assert self._access is not None
            return self._access

    def invalidate(self, used: str) -> None:
        """The server refused ``used``: the next call renews it (unless renewed meanwhile)."""
        with self._lock:
            if self._access == used:
                self._access = None

    def _renew(self) -> None:
        grant = {"grant_type": "refresh_token", "refresh_token": self._refresh.get_secret_value()}
        answer = self._post(grant)
        self._access = str(answer["access_token"])
        self._expires = time.monotonic() + float(answer.get("expires_in") or 3600)
        new = answer.get("refresh_token")
        if new and new != self._refresh.get_secret_value():
            self._refresh = SecretStr(str(new))
            if self.on_refresh_token is not None:
                self.on_refresh_token(self._refresh)
            else:
                log.warning(
                    "connection %r: QuickBooks issued a new refresh token and nothing stores it; "
                    "the old one no longer works",
                    self._context.connection,
                )

    def exchange_code(self, code: str, redirect_uri: str) -> SecretStr:
        """The refresh token for an authorization code (the first step of a new connection)."""
        with self._lock:
            answer = self._post(
                {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri}
            )
            self._access = str(answer["access_token"])
            self._expires = time.monotonic() + float(answer.get("expires_in") or 3600)
            self._refresh = SecretStr(str(answer["refresh_token"]))
            return self._refresh

    def _post(self, form: dict[str, str]) -> dict[str, Any]:
        client_secret = self.settings.client_secret.get_secret_value()
        try:
            response = self._client.post(
                self.settings.token_url,
                data=form,
                auth=(self.settings.client_id, client_secret),
                headers={"Accept": "application/json"},
            )
        except httpx.TransportError as err:
            raise RetryableError(
                f"cannot reach the QuickBooks token endpoint ({type(err).__name__})",
                context=self._context,
            ) from err
        if response.status_code == 200:
            answer: dict[str, Any] = response.json()
            return answer
        if response.status_code >= 500 or response.status_code == 429:
            raise RetryableError(
                f"the QuickBooks token endpoint answered HTTP {response.status_code}",
                context=self._context,
            )
        try:
            code = str(response.json().get("error"))
        except ValueError:
            code = response.text[:100]
        hint = {
            "invalid_grant": "the refresh token is invalid, expired or was already used (it "
            "rotates: the latest one must be stored); connect the app to the company again",
            "invalid_client": "the client id or client secret is wrong",
        }.get(code, redact(code, self._secrets()))
        raise ConnectionFailedError(f"QuickBooks refused the login: {hint}", context=self._context)
