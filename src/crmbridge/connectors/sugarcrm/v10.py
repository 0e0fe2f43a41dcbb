"""Client of the REST v10/v11 API of Sugar 7 and later (``{base}/rest/v11/...``).

OAuth2 password grant; every call carries the ``OAuth-Token`` header. An expired token
(HTTP 401) is refreshed with the refresh token once, or replaced by a new login, and the call
is sent again; so are the sub-requests of a ``/bulk`` call answered 401 (:meth:`V10Client.bulk`).

Sugar keeps one live token per user and ``platform`` (a second login ends the first) and
serialises the calls of one token like those of one PHP session, so a client cannot have
several sessions: pages are read one after another (``parallel_reads`` is 1).
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Sequence
from typing import Any
from urllib.parse import quote as url_quote
from urllib.parse import urlencode

import httpx

from crmbridge.connectors.sugarcrm import related
from crmbridge.connectors.sugarcrm.api import Api, Op, Page, Saved
from crmbridge.connectors.sugarcrm.discovery import ModuleMeta, RawField, RawModule
from crmbridge.connectors.sugarcrm.failures import v10_error, v10_error_text
from crmbridge.connectors.sugarcrm.query import Node, to_filter
from crmbridge.errors import ConnectionFailedError, CrmBridgeError, RemoteError

log = logging.getLogger("crmbridge.connectors.sugarcrm")


#: how often one /bulk call logs in again for sub-requests answered HTTP 401
BULK_LOGINS = 2


class NotV10Error(Exception):
    """The server has no REST v10 API at the configured address (auto-detection falls back)."""


class V10Client(Api):
    """A logged-in REST v10/v11 client."""

    kind = "v10"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.base = f"{self.settings.base_url}/rest/{self.settings.rest_version}"
        self._token: str | None = None
        self._refresh: str | None = None
        self._lock = threading.Lock()
        self._dropdowns: dict[str, Any] | None = None

    # -- session --------------------------------------------------------------------------
    def login(self) -> None:
        settings = self.settings
        self._grant(
            {
                "grant_type": "password",
                "username": settings.username,
                "password": settings.password.get_secret_value(),
            }
        )

    def _grant(self, grant: dict[str, str]) -> None:
        settings = self.settings
        body = {
            **grant,
            "client_id": settings.client_id,
            "client_secret": settings.client_secret.get_secret_value(),
            "platform": settings.platform,
        }
        response = self.transport.send(
            "POST", f"{self.base}/oauth2/token", what="oauth2/token", json=body
        )
        answer = _json(response)
        if response.status_code == 200 and isinstance(answer, dict) and answer.get("access_token"):
            self._token = str(answer["access_token"])
            self._refresh = str(answer.get("refresh_token") or "") or None
            return
        label, message = v10_error_text(response)
        if response.status_code in (404, 405) or not label:
            raise NotV10Error(f"HTTP {response.status_code} from the token endpoint")
        if label == "invalid_client":
            raise ConnectionFailedError(
                f"the CRM does not accept the OAuth client {settings.client_id!r} for "
                f"connection {self.connection!r}: check client_id and client_secret ({message})"
            )
        raise ConnectionFailedError(
            f"wrong user name or password for connection {self.connection!r} (user "
            f"{settings.username!r}): {message or label}"
        )

    def logout(self) -> None:
        token, self._token = self._token, None
        if token is None:
            return
        try:
            self.transport.send(
                "POST",
                f"{self.base}/oauth2/logout",
                what="oauth2/logout",
                retry=False,
                headers={"OAuth-Token": token},
                json={"token": token},
            )
        except CrmBridgeError as err:  # a courtesy; a missing endpoint (404) is fine too
            log.info("connection %r: logout failed: %s", self.connection, err)

    def _renew(self, expired: str | None) -> str:
        """A valid token: the refresh token's, or a new login's (once per expired token)."""
        with self._lock:
            if self._token in (None, expired) and not self._refreshed():
                self.login()
            assert self._token is not None
            return self._token

    def _refreshed(self) -> bool:
        if not self._refresh:
            return False
        try:
            self._grant({"grant_type": "refresh_token", "refresh_token": self._refresh})
        except (ConnectionFailedError, NotV10Error):
            return False
        return True

    def request(
        self,
        method: str,
        path: str,
        *,
        what: str,
        object: str | None = None,
        changes: bool = False,
        ok: Sequence[int] = (),
        **kwargs: Any,
    ) -> httpx.Response:
        """An authenticated call; answers with a status of 2xx or in ``ok`` are returned, any
        other is raised as a crmbridge error."""
        token = self._token or self._renew(None)
        url = f"{self.base}/{path}"
        response = self._send(method, url, token, what, object, changes, kwargs)
        if response.status_code == 401:
            log.info("connection %r: token expired; logging in again", self.connection)
            token = self._renew(token)
            response = self._send(method, url, token, what, object, changes, kwargs)
        if response.is_success or response.status_code in ok:
            return response
        raise v10_error(response, what=what, context=self.transport.context(object))

    def _send(
        self,
        method: str,
        url: str,
        token: str,
        what: str,
        object: str | None,
        changes: bool,
        kwargs: dict[str, Any],
    ) -> httpx.Response:
        return self.transport.send(
            method,
            url,
            what=what,
            object=object,
            changes=changes,
            headers={"OAuth-Token": token},
            **kwargs,
        )

    def call(self, method: str, path: str, *, what: str, **kwargs: Any) -> Any:
        """The JSON answer of an authenticated call."""
        response = self.request(method, path, what=what, **kwargs)
        answer = _json(response)
        if answer is None and response.content:
            context = self.transport.context(kwargs.get("object"))
            raise RemoteError(f"{what}: the answer is not JSON", context=context)
        return answer

    # -- discovery ------------------------------------------------------------------------
    def server_info(self) -> dict[str, str]:
        answer = self.call("GET", "serverinfo", what="serverinfo")
        info = answer if isinstance(answer, dict) else {}
        return {k: str(v) for k, v in info.items() if isinstance(v, str | int | float) and v}

    def modules(self) -> list[str]:
        answer = self.call("GET", "metadata?type_filter=module_list", what="metadata")
        listed = answer.get("module_list") if isinstance(answer, dict) else None
        if isinstance(listed, dict):
            return [str(k) for k in listed if not str(k).startswith("_")]
        if isinstance(listed, list):
            return [str(m) for m in listed]
        answer = self.call("GET", "metadata?type_filter=modules", what="metadata")
        return [str(m) for m in (answer.get("modules") or {}) if not str(m).startswith("_")]

    def module(self, name: str) -> RawModule:
        answer = self.call(
            "GET",
            f"metadata?type_filter=modules&module_filter={url_quote(name)}",
            what="metadata",
            object=name,
        )
        meta = ((answer or {}).get("modules") or {}).get(name) or {}
        fields: list[RawField] = []
        links: dict[str, str] = {}
        relationships: dict[str, str] = {}
        for fname, fdef in (meta.get("fields") or {}).items():
            if not isinstance(fdef, dict) or fname.startswith("_"):
                continue
            if fdef.get("type") == "link":
                links[str(fname)] = str(fdef.get("module") or "")
                relationships[str(fname)] = str(fdef.get("relationship") or "")
            elif fname != "email" or fdef.get("type") not in ("email", None):
                fields.append(self._raw_field(str(fname), fdef))
        table = meta.get("table") or None
        return RawModule(name, fields, links, table=table, relationships=relationships)

    def _raw_field(self, name: str, fdef: dict[str, Any]) -> RawField:
        options = fdef.get("options")
        if isinstance(options, str):
            options = self._dropdown(options)
        keys = tuple(str(k) for k in options) if isinstance(options, dict | list) else None
        return RawField(
            name=name,
            type=str(fdef.get("type") or "varchar"),
            length=None if fdef.get("len") in (None, "") else str(fdef["len"]),
            required=str(fdef.get("required")).lower() in ("1", "true"),
            options=keys or None,
            label=str(fdef.get("label") or fdef.get("vname") or "") or None,
            read_only=str(fdef.get("readonly")).lower() in ("1", "true"),
        )

    def _dropdown(self, name: str) -> Any:
        if self._dropdowns is None:
            answer = self.call("GET", "metadata?type_filter=app_list_strings", what="metadata")
            self._dropdowns = (answer or {}).get("app_list_strings") or {}
        return self._dropdowns.get(name)

    # -- reading --------------------------------------------------------------------------
    def where(self, meta: ModuleMeta, node: Node | None) -> list[dict[str, Any]]:
        if node is None:
            return []
        clause = to_filter(node, meta)
        return [clause] if clause else []

    def _known_filterable(self, meta: ModuleMeta, name: str) -> bool | None:
        return True if name in ("email1", "id") else None

    def _probe_filter(self, meta: ModuleMeta, name: str) -> None:
        self.count(meta, [{"id": {"$is_null": ""}}, {name: {"$is_null": ""}}])

    def list_page(
        self,
        meta: ModuleMeta,
        where: Any,
        fields: Sequence[str],
        limit: int,
        *,
        order: Sequence[str],
        deleted: bool = False,
        offset: int = 0,
    ) -> Page:
        own = related.own_fields(meta, fields)
        body = {
            "filter": where or [],
            "fields": ",".join(_wire_fields(own)),
            "max_num": limit,
            "offset": offset,
            "order_by": ",".join(f"{n}:ASC" for n in order if meta.schema.has(n)),
            "deleted": deleted,
        }
        answer = self._filtered(meta, "filter", "list", body)
        answer = answer if isinstance(answer, dict) else {}
        records = [r for r in answer.get("records") or [] if isinstance(r, dict)]
        _email1(records, own)
        links = related.wanted(meta, fields)
        if links and records:
            self._fill_related(meta, records, links)
        next_offset = answer.get("next_offset")
        more = isinstance(next_offset, int) and next_offset > offset and bool(records)
        return Page(records, None, more)

    def _fill_related(
        self, meta: ModuleMeta, records: list[dict[str, Any]], links: dict[str, list[str]]
    ) -> None:
        """The first related record of each record and link, through ``/bulk`` calls of
        one ``GET .../link/<link>?max_num=1`` per record and link."""
        version = self.settings.rest_version
        asks: list[tuple[dict[str, Any], str]] = []
        requests: list[dict[str, Any]] = []
        for record in records:
            for link, names in links.items():
                order = related.order_fields(meta, link)
                query = urlencode(
                    {
                        "fields": ",".join(_wire_fields([*names, *order])),
                        "max_num": 1,
                        "order_by": ",".join(f"{n}:ASC" for n in order),
                    }
                )
                path = f"/{version}/{meta.name}/{url_quote(str(record.get('id')))}/link/{link}"
                requests.append({"url": f"{path}?{query}", "method": "GET"})
                asks.append((record, link))
        size = self.settings.max_batch_size
        for start in range(0, len(requests), size):
            replies = self.bulk(requests[start : start + size], object=meta.name)
            for n, (record, link) in enumerate(asks[start : start + size]):
                found = self._first_related(meta, link, replies[n])
                related.fill(record, link, links[link], found)

    def _first_related(self, meta: ModuleMeta, link: str, reply: Any) -> dict[str, Any] | None:
        """The related record in one bulk reply (None: there is none, or the record is gone)."""
        status = int(reply.get("status") or 0) if isinstance(reply, dict) else 0
        contents = reply.get("contents") if isinstance(reply, dict) else None
        if status == 404:
            return None  # the record was deleted while it was read
        if not 200 <= status < 300 or not isinstance(contents, dict):
            detail = ""
            if isinstance(contents, dict):
                detail = str(contents.get("error_message") or contents.get("error") or "")
            raise RemoteError(
                f"reading the related records through {link!r} failed (HTTP {status}) {detail}",
                context=self.transport.context(meta.name),
            )
        rows = [r for r in contents.get("records") or [] if isinstance(r, dict)]
        _email1(rows, ["email1"])
        return rows[0] if rows else None

    def count(self, meta: ModuleMeta, where: Any, *, deleted: bool = False) -> int | None:
        body = {"filter": where or [], "deleted": deleted}
        answer = self._filtered(meta, "filter/count", "count", body)
        count = answer.get("record_count") if isinstance(answer, dict) else None
        return int(count) if count is not None else None

    def _filtered(self, meta: ModuleMeta, path: str, what: str, body: dict[str, Any]) -> Any:
        """A POST with a filter; a filter the server refuses (HTTP 422) is named as such."""
        try:
            return self.call("POST", f"{meta.name}/{path}", what=what, object=meta.name, json=body)
        except RemoteError as err:
            if body["filter"] and "HTTP 422" in err.message:
                raise RemoteError(
                    f"the CRM refused the filter: {json.dumps(body['filter'])} ({err.message})",
                    context=err.context,
                ) from None
            raise

    # -- writing --------------------------------------------------------------------------
    def save(self, module: str, ops: Sequence[Op]) -> list[Saved]:
        version = self.settings.rest_version
        requests = [_bulk_request(version, module, op) for op in ops]
        replies = self.bulk(requests, object=module, changes=True)
        return [_saved(op, reply) for op, reply in zip(ops, replies, strict=True)]

    def bulk(
        self, requests: Sequence[dict[str, Any]], *, object: str, changes: bool = False
    ) -> list[Any]:
        """One ``POST /bulk`` of ``requests``: one reply per request (None when the answer
        has none). Sub-requests answered HTTP 401 (the token expired, or a second login of
        the same user and platform superseded it, while the call ran) were not served: the
        client logs in again and sends only those once more (at most twice)."""
        replies: list[Any] = [None] * len(requests)
        todo = list(range(len(requests)))
        for attempt in range(BULK_LOGINS + 1):
            token = self._token or self._renew(None)
            answer = self.call(
                "POST",
                "bulk",
                what="bulk",
                object=object,
                changes=changes,
                json={"requests": [requests[i] for i in todo]},
            )
            got = answer if isinstance(answer, list) else []
            for n, i in enumerate(todo):
                replies[i] = got[n] if n < len(got) else None
            refused = [i for i in todo if _status(replies[i]) == 401]
            if not refused or attempt == BULK_LOGINS:
                break
            log.info(
                "connection %r: %d of %d bulk requests came back HTTP 401 (token expired or "
                "superseded); logging in again and sending those again",
                self.connection,
                len(refused),
                len(todo),
            )
            self._renew(token)
            todo = refused
        return replies

    def link(self, module: str, record_id: str, link: str, related_ids: Sequence[str]) -> None:
        for related_id in related_ids:
            self.request(
                "POST",
                f"{module}/{url_quote(record_id)}/link/{link}/{url_quote(related_id)}",
                what="link",
                object=module,
                ok=(404,),
            )

    def linked(
        self, module: str, record_id: str, link: str, related_ids: Sequence[str]
    ) -> set[str]:
        found: set[str] = set()
        offset: int | None = 0
        while offset is not None:
            answer = self.call(
                "GET",
                f"{module}/{url_quote(record_id)}/link/{link}",
                what="link",
                object=module,
                params={"fields": "id", "max_num": 1000, "offset": offset},
            )
            found |= {str(r.get("id")) for r in answer.get("records") or []}
            next_offset = answer.get("next_offset")
            offset = next_offset if isinstance(next_offset, int) and next_offset > 0 else None
        return found & set(related_ids)


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _wire_fields(fields: Sequence[str]) -> list[str]:
    """The ``fields`` to ask v10 for: the e-mail list too when ``email1`` is wanted."""
    names = list(dict.fromkeys(fields))
    return [*names, "email"] if "email1" in names else names


def _email1(records: list[dict[str, Any]], fields: Sequence[str]) -> None:
    """Fill ``email1`` from the ``email`` list where the server left it out."""
    if "email1" not in fields:
        return
    for record in records:
        record["email1"] = record.get("email1") or _primary_email(record.get("email"))


def _primary_email(addresses: Any) -> str | None:
    """The primary address of a v10 ``email`` list."""
    if not isinstance(addresses, list):
        return None
    for address in addresses:
        if isinstance(address, dict) and address.get("primary_address"):
            return str(address.get("email_address") or "") or None
    return None


def _bulk_request(version: str, module: str, op: Op) -> dict[str, Any]:
    """One request of a /bulk call; ``data`` is the JSON text of the body, as Sugar's bulk
    API passes it on as the request body."""
    if op.kind == "create":
        body = json.dumps({**op.values, "id": op.id})
        return {"url": f"/{version}/{module}", "method": "POST", "data": body}
    url = f"/{version}/{module}/{url_quote(op.id)}"
    if op.kind == "delete":
        return {"url": url, "method": "DELETE"}
    return {"url": url, "method": "PUT", "data": json.dumps(op.values)}


def _status(reply: Any) -> int:
    """The HTTP status of one bulk reply (0 when it has none)."""
    try:
        return int(reply.get("status") or 0) if isinstance(reply, dict) else 0
    except (TypeError, ValueError):
        return 0


def _saved(op: Op, reply: Any) -> Saved:
    if not isinstance(reply, dict):
        return Saved(None, "the CRM's bulk answer has no reply for this record")
    status = int(reply.get("status") or 0)
    contents = reply.get("contents")
    if 200 <= status < 300:
        saved_id = contents.get("id") if isinstance(contents, dict) else None
        return Saved(str(saved_id or op.id))
    detail = ""
    if isinstance(contents, dict):
        detail = str(contents.get("error_message") or contents.get("error") or "")
    if status >= 500:
        reason = f"the CRM failed on it (HTTP {status}): {detail}".rstrip(": ")
        return Saved(None, reason, unknown=True)
    return Saved(None, f"the CRM refused it (HTTP {status}): {detail}".rstrip(": "))
