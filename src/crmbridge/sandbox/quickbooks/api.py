"""The Accounting API under ``/v3/company/<realmId>/`` and the OAuth endpoints.

Routes (every ``/v3`` call needs ``Authorization: Bearer <access token>``):

* ``GET|POST query`` the query language (:mod:`.query`);
* ``GET cdc?entities=A,B&changedSince=<ISO>`` change data capture: objects changed since
  then (deleted ones as ``{"Id", "status": "Deleted"}``), oldest first, at most 1,000 in an
  answer, at most 30 days back;
* ``POST batch`` up to 30 ``BatchItemRequest`` items;
* ``GET <entity>/<id>``, ``POST <entity>`` (create, or update when ``Id`` is given),
  ``POST <entity>?operation=delete``; ``GET companyinfo/<realmId>``;
* ``POST /oauth2/v1/tokens/bearer`` (HTTP Basic client credentials; grants
  ``refresh_token`` and ``authorization_code``), ``GET /connect/oauth2`` (a consent screen
  that agrees at once and redirects with ``code``, ``state`` and ``realmId``).

A ``requestid`` on a POST makes it idempotent: a repeat answers what the first answered
without applying anything again.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode

from crmbridge.sandbox.quickbooks import query as ql
from crmbridge.sandbox.quickbooks.clock import Clock, parse_instant, show_time, storage
from crmbridge.sandbox.quickbooks.company import Books
from crmbridge.sandbox.quickbooks.entities import BY_PATH, ENTITIES, entity_named
from crmbridge.sandbox.quickbooks.faults_api import (
    ApiFault,
    invalid,
    unauthenticated,
)
from crmbridge.sandbox.quickbooks.store import Store
from crmbridge.sandbox.quickbooks.tokens import SCOPE, OAuthError, Tokens

CDC_WINDOW_DAYS = 30
CDC_MAX_OBJECTS = 1000
DEFAULT_MINOR_VERSION = 75


@dataclass(frozen=True)
class Settings:
    realm_id: str
    batch_limit: int = 30
    company_name: str = "Sandbox Company_US_1"


@dataclass
class Request:
    method: str
    path: str
    params: dict[str, str]
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)  # lower-case names


@dataclass(frozen=True)
class Response:
    status: int
    body: bytes
    content_type: str = "application/json"
    headers: tuple[tuple[str, str], ...] = ()


@dataclass
class Api:
    store: Store
    clock: Clock
    tokens: Tokens
    settings: Settings

    def __post_init__(self) -> None:
        self.books = Books(self.store, self.clock)
        self.minor_versions: Counter[str] = Counter()
        self._idempotency = threading.Lock()

    # -- entry ---------------------------------------------------------------------------
    def route_name(self, request: Request) -> str:
        """The call's name for counters: ``GET /query``, ``POST /customer``, ``POST /batch``."""
        parts = [p for p in request.path.split("/") if p]
        if len(parts) >= 4 and parts[:2] == ["v3", "company"]:
            rest = parts[3:]
            if rest[0].lower() in BY_PATH and len(rest) > 1:
                return f"{request.method} /{rest[0].lower()}/{{id}}"
            return f"{request.method} /{rest[0].lower()}"
        return f"{request.method} {request.path}"

    def is_api(self, request: Request) -> bool:
        return request.path.startswith("/v3/")

    def is_batch(self, request: Request) -> bool:
        return request.path.rstrip("/").lower().endswith("/batch")

    def handle(self, request: Request) -> Response:
        try:
            if request.path.rstrip("/") == "/oauth2/v1/tokens/bearer":
                return self._token(request)
            if request.path.rstrip("/") == "/connect/oauth2":
                return self._consent(request)
            if self.is_api(request):
                return self._api(request)
            return _json(404, {"error": "not_found"})
        except ApiFault as fault:
            return self.fault_response(fault)

    def fault_response(self, fault: ApiFault) -> Response:
        if fault.type == "AUTHENTICATION":  # the real server answers these in lower case
            error = {
                k.lower() if k != "code" else k: v for k, v in fault.fault()["Error"][0].items()
            }
            body: dict[str, Any] = {"fault": {"error": [error], "type": fault.type}}
        else:
            body = {"Fault": fault.fault()}
        body["time"] = show_time(self.clock.now())
        return _json(fault.status, body)

    # -- OAuth ---------------------------------------------------------------------------
    def _token(self, request: Request) -> Response:
        try:
            client_id, secret = _basic_auth(request.headers.get("authorization", ""))
            self.tokens.check_client(client_id, secret)
            form = dict(parse_qsl(request.body.decode("utf-8", "replace")))
            return _json(200, self.tokens.grant(form))
        except OAuthError as err:
            return _json(err.status, {"error": err.code})

    def _consent(self, request: Request) -> Response:
        params = request.params
        if params.get("client_id") != self.tokens.client_id or params.get("scope") != SCOPE:
            return _json(400, {"error": "invalid_request"})
        redirect = params.get("redirect_uri", "")
        query = urlencode(
            {
                "code": self.tokens.authorize(),
                "state": params.get("state", ""),
                "realmId": self.settings.realm_id,
            }
        )
        location = f"{redirect}{'&' if '?' in redirect else '?'}{query}"
        return Response(302, b"", "text/plain", (("Location", location),))

    # -- the accounting API ----------------------------------------------------------------
    def _api(self, request: Request) -> Response:
        auth = request.headers.get("authorization", "")
        token = auth[7:].strip() if auth.lower().startswith("bearer ") else None
        if not self.tokens.access_ok(token):
            raise unauthenticated(
                "Token expired or invalid: the access token is missing, unknown or expired"
            )
        parts = [p for p in request.path.split("/") if p]
        if len(parts) < 4 or parts[2] != self.settings.realm_id:
            raise ApiFault(
                "120",
                "message=AuthorizationFailure; errorCode=120; statusCode=403",
                "The access token does not grant access to this company (realmId)",
                status=403,
                type="AUTHORIZATION",
            )
        version = request.params.get("minorversion", str(DEFAULT_MINOR_VERSION))
        if not version.isdigit():
            raise invalid("minorversion", f"minorversion {version!r} is not a number")
        self.minor_versions[version] += 1
        rest = parts[3:]
        request_id = request.params.get("requestid")
        if request.method == "POST" and request_id:
            with self._idempotency:
                stored = self.store.answered(request_id)
                if stored is not None:
                    return Response(stored[0], stored[1].encode("utf-8"))
                response = self._apply(request, rest)
                if response.status < 500 and response.status != 429:
                    created = storage(self.clock.now())
                    self.store.remember(
                        request_id, response.status, response.body.decode(), created
                    )
                return response
        return self._apply(request, rest)

    def _apply(self, request: Request, rest: list[str]) -> Response:
        try:
            return _json(200, {**self._dispatch(request, rest), "time": self._time()})
        except ApiFault as fault:
            return self.fault_response(fault)

    def _time(self) -> str:
        return show_time(self.clock.now())

    def _dispatch(self, request: Request, rest: list[str]) -> dict[str, Any]:
        head = rest[0].lower()
        if head == "query":
            text = request.params.get("query")
            if request.method == "POST" and text is None:
                text = request.body.decode("utf-8", "replace")
            return {"QueryResponse": self.query(text or "")}
        if head == "cdc" and request.method == "GET":
            return self._cdc(request.params)
        if head == "batch" and request.method == "POST":
            return self._batch(_json_body(request))
        if head == "companyinfo" and request.method == "GET":
            return {"CompanyInfo": self.company_info()}
        entity = ENTITIES.get(BY_PATH.get(head, ""))
        if entity is None:
            raise ApiFault("610", "Object Not Found", f"Unsupported resource {rest[0]!r}")
        if request.method == "GET" and len(rest) == 2:
            return {entity.name: self.books.read(entity, rest[1])}
        if request.method == "POST" and len(rest) == 1:
            operation = request.params.get("operation", "")
            return {entity.name: self.write(entity.name, operation, _json_body(request))}
        raise ApiFault("500", "Unsupported Operation", f"{request.method} {request.path}")

    def write(self, entity_name: str, operation: str, body: Any) -> dict[str, Any]:
        entity = ENTITIES[entity_name]
        if operation == "delete":
            return self.books.delete(entity, body)
        if operation not in ("", "update", "create"):
            raise ApiFault("500", "Unsupported Operation", f"Operation {operation} is unknown.")
        if operation == "update" or (operation == "" and isinstance(body, dict) and "Id" in body):
            return self.books.update(entity, body)
        return self.books.create(entity, body)  # "create", or "" without an Id

    def company_info(self) -> dict[str, Any]:
        return {
            "Id": "1",
            "SyncToken": "1",
            "CompanyName": self.settings.company_name,
            "LegalName": self.settings.company_name,
            "Country": "US",
            "SupportedLanguages": "en",
            "domain": "QBO",
        }

    # -- queries ---------------------------------------------------------------------------
    def query(self, text: str) -> dict[str, Any]:
        parsed, entity = ql.parse(text)
        if entity is None:  # CompanyInfo
            if parsed.count:
                return {"totalCount": 1}
            return {"CompanyInfo": [self.company_info()], "startPosition": 1, "maxResults": 1}
        where, params = ql.where_sql(parsed, entity)
        if parsed.count:
            rows = self.store.query(f"SELECT COUNT(*) AS n FROM objects WHERE {where}", params)
            return {"totalCount": int(rows[0]["n"])}
        docs = self.store.docs(
            f"SELECT doc FROM objects WHERE {where} ORDER BY {ql.order_sql(parsed)} "
            f"LIMIT {parsed.max_results} OFFSET {parsed.start - 1}",
            params,
        )
        if not docs:
            return {}
        if parsed.select is not None:
            keep = {"Id", *parsed.select}
            docs = [{k: v for k, v in d.items() if k in keep} for d in docs]
        return {entity.name: docs, "startPosition": parsed.start, "maxResults": len(docs)}

    def _cdc(self, params: dict[str, str]) -> dict[str, Any]:
        names = [n.strip() for n in params.get("entities", "").split(",") if n.strip()]
        if not names:
            raise invalid("entities", "entities is required: a comma-separated entity list")
        entities = []
        for name in names:
            found = entity_named(name)
            if found is None:
                raise invalid("entities", f"CDC is not available for entity {name!r}")
            entities.append(found)
        since_text = params.get("changedSince", "")
        since = parse_instant(since_text) if since_text else None
        if since is None:
            raise invalid("changedSince", f"changedSince {since_text!r} is not a date-time")
        now = self.clock.now()
        if since < now - dt.timedelta(days=CDC_WINDOW_DAYS):
            raise ApiFault(
                "2090",
                "Invalid Date",
                f"changedSince is more than {CDC_WINDOW_DAYS} days ago: change data capture "
                f"looks back at most {CDC_WINDOW_DAYS} days",
                element="changedSince",
            )
        marks = ", ".join("?" for _ in entities)
        rows = self.store.query(
            f"SELECT entity, doc FROM objects WHERE entity IN ({marks}) AND updated >= ? "
            f"ORDER BY updated, entity, id LIMIT {CDC_MAX_OBJECTS}",
            [*(e.name for e in entities), storage(since)],
        )
        grouped: dict[str, list[dict[str, Any]]] = {e.name: [] for e in entities}
        for row in rows:
            grouped[row["entity"]].append(json.loads(row["doc"]))
        answers = []
        for name, docs in grouped.items():
            part: dict[str, Any] = {"startPosition": 1, "maxResults": len(docs)}
            if docs:
                part = {name: docs, **part, "totalCount": len(docs)}
            answers.append(part)
        return {"CDCResponse": [{"QueryResponse": answers}]}

    # -- batch ---------------------------------------------------------------------------
    def _batch(self, body: Any) -> dict[str, Any]:
        items = body.get("BatchItemRequest") if isinstance(body, dict) else None
        if not isinstance(items, list) or not items:
            raise invalid("BatchItemRequest", "BatchItemRequest is required: a list of items")
        if len(items) > self.settings.batch_limit:
            raise ApiFault(
                "2010",
                "Request has invalid or unsupported property",
                f"Too many batch items: {len(items)}, at most {self.settings.batch_limit} "
                "are allowed in one batch request",
                element="BatchItemRequest",
            )
        seen: set[str] = set()
        answers = []
        for item in items:
            bid = str(item.get("bId", "")) if isinstance(item, dict) else ""
            try:
                if not bid or bid in seen:
                    raise invalid("bId", f"bId {bid!r} is missing or not unique")
                seen.add(bid)
                answers.append({"bId": bid, **self._batch_item(item)})
            except ApiFault as fault:
                answers.append({"bId": bid, "Fault": fault.fault()})
        return {"BatchItemResponse": answers}

    def _batch_item(self, item: dict[str, Any]) -> dict[str, Any]:
        if "Query" in item:
            return {"QueryResponse": self.query(str(item["Query"]))}
        operation = str(item.get("operation", ""))
        if operation not in ("create", "update", "delete"):
            raise invalid("operation", f"operation {operation!r} is not create|update|delete")
        named = [k for k in item if k in ENTITIES]
        if len(named) != 1:
            raise invalid("BatchItemRequest", "a batch item holds exactly one object")
        name = named[0]
        return {name: self.write(name, operation, item[name])}


def _json(status: int, body: Any) -> Response:
    return Response(status, json.dumps(body, ensure_ascii=False).encode("utf-8"))


def _json_body(request: Request) -> Any:
    try:
        return json.loads(request.body or b"null")
    except ValueError:
        raise invalid("body", "the request body is not valid JSON") from None


def _basic_auth(header: str) -> tuple[str, str]:
    if not header.lower().startswith("basic "):
        raise OAuthError(401, "invalid_client")
    try:
        decoded = base64.b64decode(header[6:].strip()).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise OAuthError(401, "invalid_client") from None
    client_id, _, secret = decoded.partition(":")
    return client_id, secret
