"""Logging in and CSRF protection.

A person logs in with the token ``crmbridge serve`` printed (or the configured password) and
gets a session cookie (HttpOnly, SameSite=Strict). Every POST from a session carries a CSRF
token tied to the session: a hidden ``csrf_token`` field in forms, the ``X-CSRF-Token`` header
in htmx requests (set once on the page's body). A script calls the JSON API with
``Authorization: Bearer <token>`` instead: no cookie, so no CSRF token is needed.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass, field

from fastapi import Request

from crmbridge.web.config import WebConfig

SESSION_COOKIE = "crmbridge_session"
LOGIN_COOKIE = "crmbridge_login"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class LoginRequiredError(Exception):
    """The request carries no valid session or bearer token."""


class CsrfError(Exception):
    """A POST from a session without the session's CSRF token."""


@dataclass
class Guard:
    """The secrets of one server run: the login token, the sessions, the CSRF key."""

    config: WebConfig
    _key: bytes = field(default_factory=lambda: secrets.token_bytes(32))
    _sessions: set[str] = field(default_factory=set)

    def accepts(self, secret: str) -> bool:
        """Whether ``secret`` logs in: the token, or the password when one is set."""
        given = secret.encode()
        if hmac.compare_digest(given, self.config.token.encode()):
            return True
        password = self.config.password
        return password is not None and hmac.compare_digest(given, password.encode())

    def new_session(self) -> str:
        session = secrets.token_urlsafe(24)
        self._sessions.add(session)
        return session

    def end_session(self, session: str | None) -> None:
        self._sessions.discard(session or "")

    def csrf_for(self, value: str) -> str:
        return hmac.new(self._key, value.encode(), hashlib.sha256).hexdigest()

    def session_of(self, request: Request) -> str | None:
        session = request.cookies.get(SESSION_COOKIE)
        return session if session in self._sessions else None

    def bearer_ok(self, request: Request) -> bool:
        scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
        return scheme.lower() == "bearer" and self.accepts(credentials.strip())

    def csrf_token(self, request: Request) -> str:
        """The CSRF token the page shown for ``request`` puts in its forms."""
        session = self.session_of(request)
        if session is not None:
            return self.csrf_for(session)
        return self.csrf_for("login:" + request.cookies.get(LOGIN_COOKIE, ""))

    async def check(self, request: Request) -> None:
        """Let the request through, or raise LoginRequiredError / CsrfError."""
        if self.bearer_ok(request):
            return
        session = self.session_of(request)
        if session is None:
            raise LoginRequiredError
        if request.method not in SAFE_METHODS:
            await self.check_csrf(request, self.csrf_for(session))

    async def check_csrf(self, request: Request, expected: str) -> None:
        given = request.headers.get(CSRF_HEADER)
        if given is None and request.headers.get("content-type", "").startswith(
            ("application/x-www-form-urlencoded", "multipart/form-data")
        ):
            form = await request.form()  # FastAPI reuses the parsed form for the endpoint
            value = form.get(CSRF_FIELD)
            given = value if isinstance(value, str) else None
        if given is None or not hmac.compare_digest(given, expected):
            raise CsrfError
