"""The sandbox itself: a WSGI application over the store, and a threaded HTTP server for it.

``SageSandbox.wsgi_app`` serves

* ``GET  /{install}/eware.dll/webservices/webservice.wsdl`` (when the WSDL is made available),
* ``POST /{install}/eware.dll/webservices/soap`` (the web services),
* ``/sdata/{install}j/sagecrm2/-/...`` (the REST API).

Tests call it over a real port with :meth:`SageSandbox.serve` (only real-socket calls can be
dropped) or in-process through ``httpx.WSGITransport(app=sandbox.wsgi_app)``.
"""

from __future__ import annotations

import contextlib
import json
import socket
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from socketserver import ThreadingMixIn
from types import TracebackType
from typing import Any
from urllib.parse import parse_qsl, unquote
from wsgiref.simple_server import ServerHandler, WSGIRequestHandler, WSGIServer, make_server

from crmbridge.sandbox.sagecrm import rest, soap
from crmbridge.sandbox.sagecrm.context import Context
from crmbridge.sandbox.sagecrm.faults import Faults, PlannedFault
from crmbridge.sandbox.sagecrm.problems import INVALID_SESSION
from crmbridge.sandbox.sagecrm.seed import ensure_users
from crmbridge.sandbox.sagecrm.seed import seed as write_seed
from crmbridge.sandbox.sagecrm.sessions import Sessions
from crmbridge.sandbox.sagecrm.settings import Settings
from crmbridge.sandbox.sagecrm.store import Store
from crmbridge.sandbox.sagecrm.wsdl import build_wsdl

StartResponse = Callable[..., Any]
_SOCKET_KEY = "crmbridge.sandbox.real_socket"
_STATUS_TEXT = {
    200: "OK", 201: "Created", 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden",
    404: "Not Found", 405: "Method Not Allowed", 413: "Payload Too Large",
    422: "Unprocessable Entity", 500: "Internal Server Error", 502: "Bad Gateway",
    503: "Service Unavailable", 504: "Gateway Timeout",
}  # fmt: skip
Answer = tuple[int, bytes, str]


class _DropConnectionError(Exception):
    """Raised by the app to make the server close the connection without an answer."""


class SageSandbox:
    """A local Sage CRM (SOAP web services and sagecrm2 REST) backed by SQLite.

    ``data`` is an SQLite file (created and seeded when new) or None for a private in-memory
    database. ``companies`` sets the size of the deterministic seed
    (:func:`crmbridge.sandbox.sagecrm.seed_counts`); ``users`` maps the logons that may use the
    web services to their passwords. Every other keyword is a :class:`Settings` field (the
    Administration switches); ``settings`` may be changed later with :meth:`configure`.
    """

    def __init__(
        self,
        data: str | Path | None = None,
        *,
        seed: bool = True,
        companies: int = 40,
        users: Mapping[str, str] | None = None,
        **settings: Any,
    ) -> None:
        self.faults = Faults()
        config = Settings(**settings)
        self._store = Store(":memory:" if data is None else str(data), config.zone)
        ensure_users(self._store, {"admin": "admin"} if users is None else users)
        if seed and self._store.meta("seeded") is None:
            write_seed(self._store, companies)
        self._ctx = Context(self._store, Sessions(), self.faults, config)

    @property
    def settings(self) -> Settings:
        return self._ctx.settings

    @property
    def sessions(self) -> Sessions:
        return self._ctx.sessions

    def configure(self, **changes: Any) -> None:
        """Change Administration settings while the server runs, e.g. ``max_records=5``."""
        self._ctx.settings = replace(self._ctx.settings, **changes)

    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        """Run SQL on the sandbox database directly (for tests); rows as dicts."""
        return self._store.query(sql, params)

    def close(self) -> None:
        """Close the database (stop any running server first)."""
        self._store.close()

    def serve(self, host: str = "127.0.0.1", port: int = 0) -> RunningServer:
        """Serve over HTTP from a background thread; ``port=0`` picks a free port. A busy
        port raises OSError."""
        server = make_server(
            host, port, self.wsgi_app, server_class=_ThreadingServer, handler_class=_Handler
        )
        return RunningServer(server, self.settings.install)

    # -- the application ---------------------------------------------------------------------
    def wsgi_app(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "") or "/"
        method = environ.get("REQUEST_METHOD", "GET").upper()
        install = self.settings.install
        services = f"/{install}/eware.dll/webservices/"
        rest_base = f"/sdata/{install}j/sagecrm2/-"
        real = environ.get(_SOCKET_KEY) is True
        if path == services + "webservice.wsdl" and method == "GET":
            if not self.settings.wsdl_available:
                return _respond(start_response, (404, b"Not Found", "text/plain"))
            host = environ.get("HTTP_HOST", "localhost")
            text = build_wsdl(self.settings, f"http://{host}{services}soap")
            return _respond(start_response, (200, text.encode(), "text/xml; charset=utf-8"))
        if path == services + "soap" and method == "POST":
            data = _body(environ)
            call = soap.parse_call(data)
            has_session = call.operation not in ("", "logon") and bool(call.session_id)
            fault = self.faults.begin_call(
                f"soap:{call.operation or '?'}", real_socket=real, has_session=has_session
            )
            return self._answer(
                start_response, fault, lambda: self._soap(call, len(data), fault), real
            )
        if path == rest_base or path.startswith(rest_base + "/"):
            request = _rest_request(environ, method, path, rest_base)
            entity = request.parts[0].split("(")[0] if request.parts else ""
            fault = self.faults.begin_call(
                f"rest:{method} {entity}".rstrip(), real_socket=real, has_session=False
            )
            return self._answer(start_response, fault, lambda: self._rest(request), real)
        return _respond(start_response, (404, b"Not Found", "text/plain"))

    def _soap(self, call: soap.Call, size: int, fault: PlannedFault | None) -> Answer:
        if fault is not None and fault.kind == "take_over":
            self.sessions.end(call.session_id)
            return 500, soap.fault(INVALID_SESSION), "text/xml; charset=utf-8"
        status, body = soap.handle(self._ctx, call, size=size)
        return status, body, "text/xml; charset=utf-8"

    def _rest(self, request: rest.Request) -> Answer:
        response = rest.handle(self._ctx, request)
        body = json.dumps(response.body).encode("utf-8")
        return response.status, body, "application/json"

    def _answer(
        self,
        start_response: StartResponse,
        fault: PlannedFault | None,
        answer: Callable[[], Answer],
        real: bool,
    ) -> Iterable[bytes]:
        latency = self.faults.latency
        if latency:
            time.sleep(latency)
        if fault is not None and fault.kind == "drop":
            raise _DropConnectionError
        if fault is not None and fault.kind == "fail":
            text = fault.body.encode("utf-8")
            return _respond(start_response, (fault.status, text, "text/html"))
        try:
            result = answer()
        except Exception:  # a sandbox bug: answer like a crashed IIS, show the traceback
            traceback.print_exc()
            return _respond(start_response, (500, b"Internal Server Error", "text/html"))
        if fault is not None and fault.kind == "lose_answer":
            if real:
                raise _DropConnectionError
            return _respond(start_response, (504, b"Gateway Timeout", "text/html"))
        return _respond(start_response, result)


def _body(environ: Mapping[str, Any]) -> bytes:
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    return environ["wsgi.input"].read(length) if length > 0 else b""


def _rest_request(environ: Mapping[str, Any], method: str, path: str, base: str) -> rest.Request:
    tail = path[len(base) :]
    parts = [unquote(p) for p in tail.split("/") if p]
    query = dict(parse_qsl(environ.get("QUERY_STRING", ""), keep_blank_values=True))
    headers = {
        key[5:].replace("_", "-").lower(): str(value)
        for key, value in environ.items()
        if key.startswith("HTTP_")
    }
    return rest.Request(
        method=method,
        parts=parts,
        query=query,
        headers=headers,
        body=_body(environ),
        host=environ.get("HTTP_HOST", "localhost"),
        base=base,
    )


def _respond(start_response: StartResponse, answer: Answer) -> Iterable[bytes]:
    status, body, content_type = answer
    reason = _STATUS_TEXT.get(status, "Unknown")
    start_response(
        f"{status} {reason}", [("Content-Type", content_type), ("Content-Length", str(len(body)))]
    )
    return [body]


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True
    allow_reuse_address = False  # a busy port is an error, not a shared one


class _ServerHandler(ServerHandler):
    dropped = False

    def handle_error(self) -> None:
        if isinstance(sys.exc_info()[1], _DropConnectionError):
            self.dropped = True  # answer nothing; the request handler cuts the connection
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
    """A sandbox served from a background thread; ``stop()`` ends it.

    ``url`` is the host's base URL, ``soap_url`` / ``wsdl_url`` / ``rest_url`` the endpoints.
    """

    def __init__(self, server: WSGIServer, install: str) -> None:
        self._server = server
        host, port = server.server_address[:2]
        self.url = f"http://{host!s}:{port}"
        self.wsdl_url = f"{self.url}/{install}/eware.dll/webservices/webservice.wsdl"
        self.soap_url = f"{self.url}/{install}/eware.dll/webservices/soap"
        self.rest_url = f"{self.url}/sdata/{install}j/sagecrm2/-"
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
