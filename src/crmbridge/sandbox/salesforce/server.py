"""The sandbox itself: a WSGI application over the store, and a threaded HTTPS server for it.

``SalesforceSandbox.wsgi_app`` serves ``/services/oauth2/token`` and ``/services/data/...``;
:meth:`SalesforceSandbox.serve` serves it over TLS on a real port (simple-salesforce builds
``https://`` URLs), with a certificate signed by the sandbox's own CA (``ca_file``).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import shutil
import socket
import ssl
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from socketserver import ThreadingMixIn
from types import TracebackType
from typing import Any
from urllib.parse import parse_qsl
from wsgiref.simple_server import ServerHandler, WSGIRequestHandler, WSGIServer

from crmbridge.sandbox.salesforce import auth, bulk, rest
from crmbridge.sandbox.salesforce.auth import ConnectedApp, OAuthError, Tokens
from crmbridge.sandbox.salesforce.context import (
    API_VERSIONS,
    Context,
    Quota,
    Request,
    Response,
    Settings,
)
from crmbridge.sandbox.salesforce.errors import ApiError, not_found
from crmbridge.sandbox.salesforce.faults import Faults, PlannedFault
from crmbridge.sandbox.salesforce.seed import ensure_user
from crmbridge.sandbox.salesforce.seed import seed as write_seed
from crmbridge.sandbox.salesforce.store import Store
from crmbridge.sandbox.salesforce.tls import Certificates, ensure_certificates, ensure_jwt_keys

StartResponse = Callable[..., Any]
_SOCKET_KEY = "crmbridge.sandbox.real_socket"
DEFAULT_USER = "admin@crmbridge.sandbox"
CONSUMER_KEY = "crmbridge-sandbox-consumer-key"
CONSUMER_SECRET = "crmbridge-sandbox-consumer-secret"
ORG_ID = "00D5g000000SANDBX"
_STATUS = {
    200: "OK", 201: "Created", 204: "No Content", 300: "Multiple Choices", 400: "Bad Request",
    401: "Unauthorized", 403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed",
    409: "Conflict", 500: "Internal Server Error", 502: "Bad Gateway",
    503: "Service Unavailable",
}  # fmt: skip

Handler = Callable[..., Response]


def _routes() -> list[tuple[str, tuple[str, ...], Handler]]:
    return [
        ("GET", (), lambda c, r: Response(200, _resources(r.version))),
        ("GET", ("sobjects",), lambda c, r: Response(200, rest.describe_global(r.version))),
        ("GET", ("sobjects", "{object}", "describe"), rest.describe),
        ("GET", ("sobjects", "{object}"), rest.describe),
        ("POST", ("sobjects", "{object}"), rest.create),
        ("GET", ("sobjects", "{object}", "{id}"), rest.read),
        ("PATCH", ("sobjects", "{object}", "{id}"), rest.update),
        ("DELETE", ("sobjects", "{object}", "{id}"), rest.delete),
        ("GET", ("sobjects", "{object}", "{field}", "{value}"), rest.by_external_id),
        ("PATCH", ("sobjects", "{object}", "{field}", "{value}"), rest.upsert),
        ("GET", ("query",), lambda c, r: rest.query(c, r, include_deleted=False)),
        ("GET", ("queryAll",), lambda c, r: rest.query(c, r, include_deleted=True)),
        ("GET", ("query", "{locator}"), lambda c, r, loc: rest.query_more(c, r, "query", loc)),
        ("GET", ("queryAll", "{locator}"),
         lambda c, r, loc: rest.query_more(c, r, "queryAll", loc)),
        ("POST", ("composite", "sobjects"), rest.collection_create),
        ("PATCH", ("composite", "sobjects"), rest.collection_update),
        ("DELETE", ("composite", "sobjects"), rest.collection_delete),
        ("PATCH", ("composite", "sobjects", "{object}", "{field}"), rest.collection_upsert),
        ("GET", ("limits",), rest.limits),
        ("POST", ("jobs", "ingest"), bulk.create_ingest),
        ("GET", ("jobs", "ingest"), bulk.list_ingest),
        ("GET", ("jobs", "ingest", "{job}"), bulk.ingest_job),
        ("PATCH", ("jobs", "ingest", "{job}"), bulk.change_ingest),
        ("DELETE", ("jobs", "ingest", "{job}"), bulk.delete_job),
        ("PUT", ("jobs", "ingest", "{job}", "batches"), bulk.upload),
        ("GET", ("jobs", "ingest", "{job}", "successfulResults"),
         lambda c, r, j: bulk.ingest_results(c, r, j, "successfulResults")),
        ("GET", ("jobs", "ingest", "{job}", "failedResults"),
         lambda c, r, j: bulk.ingest_results(c, r, j, "failedResults")),
        ("GET", ("jobs", "ingest", "{job}", "unprocessedrecords"),
         lambda c, r, j: bulk.ingest_results(c, r, j, "unprocessedrecords")),
        ("POST", ("jobs", "query"), bulk.create_query),
        ("GET", ("jobs", "query", "{job}"), bulk.query_job),
        ("PATCH", ("jobs", "query", "{job}"), bulk.abort_query),
        ("DELETE", ("jobs", "query", "{job}"), bulk.delete_job),
        ("GET", ("jobs", "query", "{job}", "results"), bulk.query_results),
    ]  # fmt: skip


_ROUTES = _routes()


def _match(method: str, parts: list[str]) -> tuple[str, Handler | None, list[str]]:
    """(route name, handler, path values) of a data API call."""
    for verb, pattern, handler in _ROUTES:
        if verb != method or len(pattern) != len(parts):
            continue
        values = []
        for want, got in zip(pattern, parts, strict=True):
            if want.startswith("{"):
                values.append(got)
            elif want != got:
                break
        else:
            return f"{method} {'/'.join(pattern)}".rstrip(), handler, values
    return f"{method} {'/'.join(parts)}", None, []


def _resources(version: str) -> dict[str, str]:
    base = f"/services/data/v{version}"
    return {
        n: f"{base}/{n}" for n in ("sobjects", "query", "queryAll", "composite", "limits", "jobs")
    }


class _DropConnectionError(Exception):
    """Raised by the app to make the server close the connection without an answer."""


class SalesforceSandbox:
    """A local Salesforce org (REST, sObject Collections, Bulk API 2.0) backed by SQLite.

    ``data`` is an SQLite file (created and seeded when new) or None for a private in-memory
    database. ``users`` maps usernames to the password the token endpoint expects (the
    password followed by the security token, if the user has one). ``tls_dir`` holds the CA,
    server certificate and JWT key pair (made when missing; a temporary folder when None).
    ``clock`` gives the server's current instant (for SystemModstamp).
    """

    def __init__(
        self,
        data: str | Path | None = None,
        *,
        seed: bool = True,
        accounts: int = 40,
        users: Mapping[str, str] | None = None,
        tls_dir: str | Path | None = None,
        api_limit: int = 15_000,
        session_timeout: float = 7200.0,
        settings: Settings | None = None,
        clock: Callable[[], dt.datetime] | None = None,
    ) -> None:
        self.faults = Faults()
        self._own_dir = tls_dir is None
        folder = Path(tempfile.mkdtemp(prefix="sf-sandbox-")) if tls_dir is None else Path(tls_dir)
        self.tls_dir = folder
        self.certificates: Certificates = ensure_certificates(folder)
        self.jwt_key_file, self.jwt_cert_file = ensure_jwt_keys(folder)
        self._store = Store(":memory:" if data is None else str(data), clock)
        logins = {DEFAULT_USER: "admin"} if users is None else dict(users)
        known = {
            name: (password, ensure_user(self._store, name)) for name, password in logins.items()
        }
        if seed and self._store.meta("seeded") is None:
            first = (
                next(iter(known.values()))[1] if known else ensure_user(self._store, DEFAULT_USER)
            )
            write_seed(self._store, accounts, first)
        self.consumer_key, self.consumer_secret = CONSUMER_KEY, CONSUMER_SECRET
        app = ConnectedApp(CONSUMER_KEY, CONSUMER_SECRET, self.jwt_cert_file.read_bytes())
        chosen = settings or Settings(api_limit=api_limit)
        self._ctx = Context(
            store=self._store,
            tokens=Tokens(self.faults, session_timeout),
            faults=self.faults,
            settings=chosen,
            quota=Quota(chosen.api_limit),
            apps=[app],
            users=known,
        )
        self._servers: list[RunningServer] = []

    @property
    def ca_file(self) -> Path:
        """The CA certificate a client must trust to reach :meth:`serve`'s HTTPS port."""
        return self.certificates.ca_file

    @property
    def settings(self) -> Settings:
        return self._ctx.settings

    @settings.setter
    def settings(self, value: Settings) -> None:
        self._ctx.settings = value

    # -- knobs for tests ------------------------------------------------------------------
    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        """Run SQL on the sandbox database directly; rows as dicts (tables
        ``sobject_account``, ``sobject_contact`` ...)."""
        if sql.lstrip().lower().startswith("select"):
            return self._store.query(sql, params)
        self._store.execute(sql, params)
        return []

    @property
    def clock(self) -> Callable[[], dt.datetime]:
        """The server's current instant (SystemModstamp, CreatedDate ...); tests may set it."""
        return self._store.clock

    @clock.setter
    def clock(self, clock: Callable[[], dt.datetime]) -> None:
        self._store.clock = clock

    def expire_sessions(self) -> None:
        """Every access token dies now (the next call answers 401 INVALID_SESSION_ID)."""
        self._ctx.tokens.expire_all()

    def set_api_usage(self, used: int, limit: int | None = None) -> None:
        """Set the org's daily API request count (and limit) as ``Sforce-Limit-Info`` shows it."""
        self._ctx.quota.set(used, limit)

    @property
    def api_usage(self) -> tuple[int, int]:
        return self._ctx.quota.used, self._ctx.quota.limit

    def expire_query_locators(self) -> None:
        """Every open query cursor dies (the next page answers INVALID_QUERY_LOCATOR)."""
        with self._ctx.lock:
            self._ctx.cursors.clear()

    def user_id(self, username: str = DEFAULT_USER) -> str:
        return self._ctx.users[username][1]

    def close(self) -> None:
        """Stop servers still running, close the database, remove a temporary TLS folder."""
        for server in list(self._servers):
            server.stop()
        self._store.close()
        if self._own_dir:
            shutil.rmtree(self.tls_dir, ignore_errors=True)

    # -- serving --------------------------------------------------------------------------
    def serve(self, host: str = "127.0.0.1", port: int = 0) -> RunningServer:
        """Serve over HTTPS from a background thread; ``port=0`` picks a free port. An
        ``OSError`` (port in use) is raised as it is."""
        server = _TlsServer((host, port), _Handler, self.certificates.server_context())
        server.set_app(self.wsgi_app)
        running = RunningServer(server, self._servers)
        self._ctx.base_url = running.url
        return running

    def wsgi_app(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "") or "/"
        parts = [p for p in path.split("/") if p]
        method = str(environ.get("REQUEST_METHOD", "GET")).upper()
        headers = {
            k[5:].replace("_", "-").lower(): str(v)
            for k, v in environ.items()
            if k.startswith("HTTP_")
        }
        if environ.get("CONTENT_TYPE"):
            headers["content-type"] = str(environ["CONTENT_TYPE"])
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        args = dict(parse_qsl(environ.get("QUERY_STRING", ""), keep_blank_values=True))
        if not self._ctx.base_url:
            self._ctx.base_url = f"https://{environ.get('HTTP_HOST', 'localhost')}"
        if parts[:2] == ["services", "oauth2"] and len(parts) == 3:
            request = Request(method, "", parts[2:], args, body, headers)
            name = f"{method} oauth2/{parts[2]}"
            return self._call(environ, start_response, name, lambda: self._oauth(request))
        if parts[:2] == ["services", "data"]:
            if len(parts) == 2:
                return _respond(start_response, _versions())
            version = parts[2][1:] if parts[2].startswith("v") else ""
            if version not in API_VERSIONS:
                return _respond(start_response, Response(404, not_found().payload))
            request = Request(method, version, parts[3:], args, body, headers)
            name, handler, values = _match(method, parts[3:])
            return self._call(
                environ, start_response, name, lambda: self._data(request, handler, values)
            )
        return _respond(start_response, Response(404, not_found().payload))

    def _call(
        self,
        environ: Mapping[str, Any],
        start_response: StartResponse,
        name: str,
        answer: Callable[[], Response],
    ) -> Iterable[bytes]:
        fault = self.faults.begin_call(name, real_socket=environ.get(_SOCKET_KEY) is True)
        if self.faults.latency:
            time.sleep(self.faults.latency)
        if fault is not None and fault.kind != "lose":
            return _fault_answer(start_response, fault)
        try:
            response = answer()
        except Exception:  # a sandbox bug: answer like Salesforce's unknown error
            traceback.print_exc()
            response = Response(
                500, [{"errorCode": "UNKNOWN_EXCEPTION", "message": "An unexpected error occurred"}]
            )
        if fault is not None:  # applied, then the answer is lost
            raise _DropConnectionError
        return _respond(start_response, response)

    def _oauth(self, req: Request) -> Response:
        if req.method != "POST":
            return Response(405, [{"errorCode": "METHOD_NOT_ALLOWED", "message": "use POST"}])
        form = dict(parse_qsl(req.body.decode("utf-8", "replace"), keep_blank_values=True))
        if req.parts == ["revoke"]:
            self._ctx.tokens.revoke(form.get("token", ""))
            return Response(200, None)
        if req.parts != ["token"]:
            return Response(404, not_found().payload)
        base = self._ctx.base_url
        try:
            user_id, username = auth.grant(
                form,
                apps=self._ctx.apps,
                users=self._ctx.users,
                audiences=[*auth.LOGIN_AUDIENCES, base],
            )
        except OAuthError as error:
            return Response(error.status, error.payload)
        token = self._ctx.tokens.issue(user_id, username)
        return Response(
            200,
            {
                "access_token": token,
                "instance_url": base,
                "id": f"{base}/id/{ORG_ID}/{user_id}",
                "token_type": "Bearer",
                "issued_at": str(int(time.time() * 1000)),
                "signature": "sandbox",
            },
        )

    def _data(self, req: Request, handler: Handler | None, values: list[str]) -> Response:
        ctx = self._ctx
        authorization = req.headers.get("authorization", "")
        scheme, _, token = authorization.partition(" ")
        user_id = ctx.tokens.use(token.strip()) if scheme.lower() in ("bearer", "oauth") else None
        if user_id is None:
            response = Response(
                401, [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}]
            )
            response.headers.append(("WWW-Authenticate", "Token"))
            return response
        req.user_id = user_id
        if not ctx.quota.take():
            response = Response(
                403,
                [
                    {
                        "message": "TotalRequests Limit exceeded.",
                        "errorCode": "REQUEST_LIMIT_EXCEEDED",
                    }
                ],
            )
        elif handler is None:
            response = Response(404, not_found().payload)
        else:
            try:
                response = handler(ctx, req, *values)
            except ApiError as error:
                response = Response(error.status, error.payload)
        response.headers.append(("Sforce-Limit-Info", ctx.quota.header()))
        return response


def _versions() -> Response:
    return Response(
        200,
        [{"label": f"v{v}", "url": f"/services/data/v{v}", "version": v} for v in API_VERSIONS],
    )


def _fault_answer(start_response: StartResponse, fault: PlannedFault) -> Iterable[bytes]:
    if fault.kind == "drop":
        raise _DropConnectionError
    text = fault.body
    kind = "application/json" if text.lstrip()[:1] in ("{", "[") else "text/html"
    return _respond(start_response, Response(fault.status, text.encode("utf-8"), kind))


def _respond(start_response: StartResponse, response: Response) -> Iterable[bytes]:
    body = response.encoded()
    headers = [("Content-Length", str(len(body))), *response.headers]
    if response.status != 204:
        headers.insert(0, ("Content-Type", response.content_type))
    start_response(f"{response.status} {_STATUS.get(response.status, 'Unknown')}", headers)
    return [body]


class _TlsServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True
    allow_reuse_address = False

    def __init__(
        self, address: tuple[str, int], handler: type[_Handler], context: ssl.SSLContext
    ) -> None:
        self.tls = context
        super().__init__(address, handler)

    def get_request(self) -> tuple[socket.socket, Any]:
        sock, address = self.socket.accept()
        # the handshake runs in the request's own thread (see _Handler.setup)
        return self.tls.wrap_socket(sock, server_side=True, do_handshake_on_connect=False), address


class _ServerHandler(ServerHandler):
    dropped = False

    def handle_error(self) -> None:
        if isinstance(sys.exc_info()[1], _DropConnectionError):
            self.dropped = True
            return
        super().handle_error()


class _Handler(WSGIRequestHandler):
    """wsgiref's handler over TLS, marking real-socket calls and closing dropped ones."""

    def setup(self) -> None:
        self.request.settimeout(30)
        try:
            self.request.do_handshake()
        except (OSError, ssl.SSLError):
            self.handshake_failed = True
        else:
            self.handshake_failed = False
        super().setup()

    def get_environ(self) -> dict[str, Any]:
        environ = super().get_environ()
        environ[_SOCKET_KEY] = True
        environ["HTTPS"] = "on"
        return environ

    def handle(self) -> None:
        if self.handshake_failed:
            return
        try:
            self.raw_requestline = self.rfile.readline(65537)
        except (OSError, ssl.SSLError):
            return
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

    def __init__(self, server: WSGIServer, registry: list[RunningServer]) -> None:
        self._server = server
        self._registry = registry
        host, port = server.server_address[:2]
        self.port = int(port)
        self.url = f"https://{host!s}:{port}"
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        registry.append(self)

    def stop(self) -> None:
        if self not in self._registry:
            return
        self._registry.remove(self)
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
