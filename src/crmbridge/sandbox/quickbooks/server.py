"""The sandbox itself: a WSGI application over the API, and a threaded HTTP server for it.

``QuickBooksSandbox.wsgi_app`` may be called in-process through
``httpx.WSGITransport(app=sandbox.wsgi_app)`` or over a real port with
:meth:`QuickBooksSandbox.serve`. Only calls over a real socket can be dropped or lose their
answer.
"""

from __future__ import annotations

import contextlib
import socket
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from socketserver import ThreadingMixIn
from types import TracebackType
from typing import Any
from urllib.parse import parse_qsl
from wsgiref.simple_server import ServerHandler, WSGIRequestHandler, WSGIServer, make_server

from crmbridge.sandbox.quickbooks.api import Api, Request, Response, Settings
from crmbridge.sandbox.quickbooks.clock import Clock
from crmbridge.sandbox.quickbooks.faults import Faults, PlannedFault
from crmbridge.sandbox.quickbooks.faults_api import throttled
from crmbridge.sandbox.quickbooks.seed import seed as write_seed
from crmbridge.sandbox.quickbooks.store import Store
from crmbridge.sandbox.quickbooks.throttle import Throttle
from crmbridge.sandbox.quickbooks.tokens import Tokens

StartResponse = Callable[..., Any]
_SOCKET_KEY = "crmbridge.sandbox.real_socket"
_STATUS_TEXT = {
    200: "OK", 302: "Found", 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden",
    404: "Not Found", 429: "Too Many Requests", 500: "Internal Server Error",
    502: "Bad Gateway", 503: "Service Unavailable", 504: "Gateway Timeout",
}  # fmt: skip
DEFAULT_REALM = "9341452000000001"
DEFAULT_CLIENT_ID = "ABsandboxclientid"
DEFAULT_CLIENT_SECRET = "sandbox-client-secret"


class _DropConnectionError(Exception):
    """Raised by the app to make the server close the connection without an answer."""


class QuickBooksSandbox:
    """A local QuickBooks Online company (Accounting API v3 and Intuit OAuth 2.0) over SQLite.

    ``data`` is an SQLite file (created and seeded when new) or None for a private in-memory
    database; ``customers`` sets the size of the deterministic seed. The client credentials,
    the realm id and the limits (``requests_per_minute``, ``batch_requests_per_minute``,
    ``concurrent``, ``batch_limit``) default to what the real service has.
    """

    def __init__(
        self,
        data: str | Path | None = None,
        *,
        seed: bool = True,
        customers: int = 30,
        realm_id: str = DEFAULT_REALM,
        client_id: str = DEFAULT_CLIENT_ID,
        client_secret: str = DEFAULT_CLIENT_SECRET,
        requests_per_minute: int = 500,
        batch_requests_per_minute: int = 40,
        concurrent: int = 10,
        batch_limit: int = 30,
    ) -> None:
        self.faults = Faults()
        self.clock = Clock()
        self._store = Store(":memory:" if data is None else str(data))
        if seed and self._store.meta("seeded") is None:
            write_seed(self._store, self.clock.now(), customers)
        self.tokens = Tokens(self._store, self.clock, self.faults, client_id, client_secret)
        self.throttle = Throttle(requests_per_minute, batch_requests_per_minute, concurrent)
        self.realm_id = realm_id
        self.client_id = client_id
        self.client_secret = client_secret
        self.api = Api(
            self._store, self.clock, self.tokens, Settings(realm_id, batch_limit=batch_limit)
        )

    @property
    def minor_versions(self) -> dict[str, int]:
        """How many API calls came with each ``minorversion`` (``"75"`` when none was sent)."""
        return dict(self.api.minor_versions)

    def issue_refresh_token(self) -> str:
        """A refresh token for a new connection (as if a user had just authorised the app)."""
        return self.tokens.issue_refresh_token()

    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        """Run SQL on the sandbox database directly (for tests); rows as dicts."""
        return self._store.query(sql, params)

    def object(self, entity: str, record_id: int | str) -> dict[str, Any] | None:
        """The stored JSON of one object (a tombstone for a deleted transaction), or None."""
        row = self._store.get(entity, int(record_id))
        return None if row is None else dict(row["doc"])

    def close(self) -> None:
        self._store.close()

    def serve(self, host: str = "127.0.0.1", port: int = 0) -> RunningServer:
        """Serve over HTTP from a background thread; ``port=0`` picks a free port.
        A port in use raises OSError."""
        server = make_server(
            host, port, self.wsgi_app, server_class=_ThreadingServer, handler_class=_Handler
        )
        return RunningServer(server)

    def wsgi_app(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        request = _request(environ)
        name = self.api.route_name(request)
        fault = self.faults.begin_call(name, real_socket=environ.get(_SOCKET_KEY) is True)
        is_api = self.api.is_api(request)
        if is_api and not self.throttle.enter(batch=self.api.is_batch(request)):
            return _respond(start_response, self.api.fault_response(throttled()))
        try:
            latency = self.faults.latency
            if latency:
                time.sleep(latency)
            if fault is not None and fault.kind != "lose":
                return self._fault(start_response, fault)
            try:
                response = self.api.handle(request)
            except Exception:  # a sandbox bug: answer 500 and show the traceback
                traceback.print_exc()
                response = Response(500, b'{"Fault":{"type":"SystemFault"}}')
            if fault is not None:  # "lose": applied, then the answer never arrives
                raise _DropConnectionError
            return _respond(start_response, response)
        finally:
            if is_api:
                self.throttle.leave()

    def _fault(self, start_response: StartResponse, fault: PlannedFault) -> Iterable[bytes]:
        if fault.kind == "drop":
            raise _DropConnectionError
        if fault.kind == "throttle":
            response = self.api.fault_response(throttled())
            if fault.retry_after is not None:
                retry = fault.retry_after
                seconds = str(int(retry)) if float(retry).is_integer() else str(retry)
                response = Response(429, response.body, headers=(("Retry-After", seconds),))
            return _respond(start_response, response)
        text = fault.body
        content_type = "application/json" if text.lstrip()[:1] in ("{", "[") else "text/html"
        return _respond(start_response, Response(fault.status, text.encode(), content_type))


def _request(environ: dict[str, Any]) -> Request:
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    body = environ["wsgi.input"].read(length) if length > 0 else b""
    headers = {
        key[5:].replace("_", "-").lower(): str(value)
        for key, value in environ.items()
        if key.startswith("HTTP_")
    }
    params = dict(parse_qsl(environ.get("QUERY_STRING", ""), keep_blank_values=True))
    return Request(environ.get("REQUEST_METHOD", "GET"), environ.get("PATH_INFO", "/"), params,
                   body, headers)  # fmt: skip


def _respond(start_response: StartResponse, response: Response) -> Iterable[bytes]:
    reason = _STATUS_TEXT.get(response.status, "Unknown")
    start_response(
        f"{response.status} {reason}",
        [
            ("Content-Type", response.content_type),
            ("Content-Length", str(len(response.body))),
            *response.headers,
        ],
    )
    return [response.body]


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True
    allow_reuse_address = False  # a busy port is an error, not a shared one


class _ServerHandler(ServerHandler):
    dropped = False

    def handle_error(self) -> None:
        if isinstance(sys.exc_info()[1], _DropConnectionError):
            self.dropped = True
            return
        super().handle_error()


class _Handler(WSGIRequestHandler):
    """wsgiref's handler, marking real-socket calls and closing dropped ones unanswered."""

    def get_environ(self) -> dict[str, Any]:
        environ = super().get_environ()
        environ[_SOCKET_KEY] = True
        return environ

    def handle(self) -> None:
        self.raw_requestline = self.rfile.readline(65537)
        if len(self.raw_requestline) > 65536 or not self.parse_request():
            return
        handler = _ServerHandler(
            self.rfile,
            self.wfile,  # type: ignore[arg-type]
            self.get_stderr(),
            self.get_environ(),
            multithread=True,
        )
        handler.request_handler = self  # type: ignore[attr-defined]
        handler.run(self.server.get_app())  # type: ignore[attr-defined]
        if handler.dropped:
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the sandbox does not log each request."""


class RunningServer:
    """A sandbox served from a background thread. ``url`` is its base URL; ``stop()`` ends it."""

    def __init__(self, server: WSGIServer) -> None:
        self._server = server
        host, port = server.server_address[:2]
        self.url = f"http://{host!s}:{port}"
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def __enter__(self) -> RunningServer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
