"""The sandbox itself: a WSGI application over the store, and a threaded HTTP server for it.

``SugarSandbox.wsgi_app`` serves ``/service/v4_1/rest.php`` and ``/rest/<version>/...``; tests
may call it in-process through ``httpx.WSGITransport(app=sandbox.wsgi_app)`` or over a real
port with :meth:`SugarSandbox.serve`. Only calls over a real socket can be dropped.
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
from pathlib import Path
from socketserver import ThreadingMixIn
from types import TracebackType
from typing import Any
from wsgiref.simple_server import ServerHandler, WSGIRequestHandler, WSGIServer, make_server

from crmbridge.sandbox.sugarcrm import v4_1, v10
from crmbridge.sandbox.sugarcrm.context import Context, Settings
from crmbridge.sandbox.sugarcrm.faults import Faults, PlannedFault
from crmbridge.sandbox.sugarcrm.seed import ensure_users
from crmbridge.sandbox.sugarcrm.seed import seed as write_seed
from crmbridge.sandbox.sugarcrm.sessions import Sessions
from crmbridge.sandbox.sugarcrm.store import Store
from crmbridge.sandbox.sugarcrm.vardefs import build_modules

StartResponse = Callable[..., Any]
_SOCKET_KEY = "crmbridge.sandbox.real_socket"
_V4_PATH = "/service/v4_1/rest.php"
_STATUS_TEXT = {
    200: "OK", 201: "Created", 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden",
    404: "Not Found", 409: "Conflict", 412: "Precondition Failed", 413: "Payload Too Large",
    422: "Unprocessable Entity", 429: "Too Many Requests", 500: "Internal Server Error",
    502: "Bad Gateway", 503: "Service Unavailable", 504: "Gateway Timeout",
}  # fmt: skip


class _DropConnectionError(Exception):
    """Raised by the app to make the server close the connection without an answer."""


class SugarSandbox:
    """A local SugarCRM/SuiteCRM (v4_1 REST and REST v10/v11) backed by SQLite.

    ``data`` is an SQLite file (created and seeded when missing or empty) or None for a private
    in-memory database. ``accounts`` sets the size of the deterministic seed
    (:func:`crmbridge.sandbox.sugarcrm.seed.seed_counts`); ``users`` maps the user names that can
    log in to their passwords. ``max_list_limit`` caps page sizes like Sugar Pro/Ent;
    ``duplicate_check`` makes ``set_entries`` on Contacts return an existing duplicate's id.
    ``studio_fields`` are the custom fields an administrator added with Studio (keys of
    :data:`~crmbridge.sandbox.sugarcrm.vardefs.STUDIO_FIELDS`, e.g. ``"Leads.external_id_c"``);
    without them the server is a stock one. ``session_lock`` False serves the calls of one
    session in parallel (PHP with a session handler that does not lock).
    """

    def __init__(
        self,
        data: str | Path | None = None,
        *,
        seed: bool = True,
        accounts: int = 40,
        users: Mapping[str, str] | None = None,
        flavor: str = "CE",
        version: str = "6.5.25",
        suitecrm_version: str | None = "7.14.6",
        session_idle_timeout: float = 1440.0,
        max_list_limit: int | None = None,
        v10: bool = True,
        duplicate_check: bool = False,
        studio_fields: Iterable[str] = (),
        session_lock: bool = True,
    ) -> None:
        self.faults = Faults()
        modules = build_modules(studio_fields)
        self._store = Store(":memory:" if data is None else str(data), modules)
        ensure_users(self._store, {"admin": "admin"} if users is None else users)
        if seed and self._store.meta("seeded") is None:
            write_seed(self._store, accounts)
        settings = Settings(
            flavor=flavor,
            version=version,
            suitecrm_version=suitecrm_version,
            max_list_limit=max_list_limit,
            duplicate_check=duplicate_check,
            v10=v10,
            session_lock=session_lock,
        )
        sessions = Sessions(self.faults, session_idle_timeout)
        self._ctx = Context(self._store, sessions, self.faults, settings)

    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        """Run SQL on the sandbox database directly (for tests); rows as dicts."""
        return self._store.query(sql, params)

    def close(self) -> None:
        """Close the database (stop any running server first)."""
        self._store.close()

    def serve(self, host: str = "127.0.0.1", port: int = 0) -> RunningServer:
        """Serve over HTTP from a background thread; ``port=0`` picks a free port."""
        server = make_server(
            host, port, self.wsgi_app, server_class=_ThreadingServer, handler_class=_Handler
        )
        return RunningServer(server)

    def wsgi_app(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        """The WSGI application."""
        path = environ.get("PATH_INFO", "") or "/"
        parts = [p for p in path.split("/") if p]
        if path.rstrip("/") == _V4_PATH:
            form = v4_1.parse_form(environ)
            return self._call(
                environ,
                start_response,
                v4_1.call_name(form),
                lambda: _v4_answer(self._ctx, form),
                rest=False,
                session=v4_1.session_of(form),
            )
        is_rest = len(parts) >= 2 and parts[0] == "rest"
        if self._ctx.settings.v10 and is_rest and v10.version_tuple(parts[1]) is not None:
            request = v10.build_request(environ, parts[1], parts[2:])
            return self._call(
                environ,
                start_response,
                v10.call_name(request),
                lambda: _v10_answer(self._ctx, request),
                rest=True,
                session=request.token,
            )
        return _respond(start_response, 404, b"Not Found", "text/plain")

    def _call(
        self,
        environ: Mapping[str, Any],
        start_response: StartResponse,
        name: str,
        answer: Callable[[], tuple[int, bytes, str, list[tuple[str, str]]]],
        *,
        rest: bool,
        session: str | None,
    ) -> Iterable[bytes]:
        fault = self.faults.begin_call(name, real_socket=environ.get(_SOCKET_KEY) is True)
        lock = session if self._ctx.settings.session_lock else None
        with self._ctx.sessions.locked(lock), self.faults.serving():
            latency = self.faults.latency
            if latency:
                time.sleep(latency)
            if fault is not None:
                return _fault_answer(start_response, fault, rest=rest)
            try:
                status, body, content_type, headers = answer()
            except Exception:  # a sandbox bug: answer like a crashed PHP, show the traceback
                traceback.print_exc()
                crash = json.dumps({"error": "fatal_error", "error_message": "Internal error"})
                return _respond(start_response, 500, crash.encode() if rest else b"", "text/html")
        lost = self.faults.answer_lost(name, real_socket=environ.get(_SOCKET_KEY) is True)
        if lost == "drop":  # applied, and then the connection is gone
            raise _DropConnectionError
        if lost == "500":
            body = b"Database failure. Please refer to suitecrm.log for details."
            return _respond(start_response, 500, body, "text/html")
        return _respond(start_response, status, body, content_type, headers)


def _v4_answer(
    ctx: Context, form: Mapping[str, str]
) -> tuple[int, bytes, str, list[tuple[str, str]]]:
    reply = v4_1.handle(ctx, form)
    return reply.status, reply.body, reply.content_type, []


def _v10_answer(
    ctx: Context, request: v10.Request
) -> tuple[int, bytes, str, list[tuple[str, str]]]:
    response = v10.dispatch(ctx, request)
    body = json.dumps(response.body).encode("utf-8")
    return response.status, body, "application/json", list(response.headers)


def _fault_answer(
    start_response: StartResponse, fault: PlannedFault, *, rest: bool
) -> Iterable[bytes]:
    if fault.kind == "drop":
        raise _DropConnectionError
    if fault.kind == "throttle":
        retry = fault.retry_after
        seconds = str(int(retry)) if float(retry).is_integer() else str(retry)
        body = (
            json.dumps({"error": "too_many_requests", "error_message": "Too many requests"})
            if rest
            else ""
        )
        return _respond(
            start_response, 429, body.encode(), "application/json", [("Retry-After", seconds)]
        )
    text = fault.body
    content_type = "application/json" if text.lstrip()[:1] in ("{", "[") else "text/html"
    return _respond(start_response, fault.status, text.encode("utf-8"), content_type)


def _respond(
    start_response: StartResponse,
    status: int,
    body: bytes,
    content_type: str,
    headers: Sequence[tuple[str, str]] = (),
) -> Iterable[bytes]:
    reason = _STATUS_TEXT.get(status, "Unknown")
    start_response(
        f"{status} {reason}",
        [("Content-Type", content_type), ("Content-Length", str(len(body))), *headers],
    )
    return [body]


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True
    allow_reuse_address = True


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
        if handler.dropped:  # nothing was written: cut the connection now
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
        """Shut the server down and wait for its thread."""
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
