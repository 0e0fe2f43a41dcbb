"""The sagecrm2 REST API over httpx: HTTP Basic auth, ``where``, paging, one record per write.

Records are JSON objects of prefixed column names. Addresses are built from the connection's
URL, never taken from the answers' links (they always say ``http://``). Lists are paged with
``startIndex`` (1-based) and ``count``, or, when the server has ``orderBy`` (2024 R2 and
later, ``rest_order_by``), by id: ``<id> gt <last id>`` ordered by id, which no concurrent
change can make skip or repeat a record.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any
from urllib.parse import quote

import httpx

from crmbridge.connectors.sagecrm.fields import KNOWN_PREFIXES, RawField
from crmbridge.connectors.sagecrm.robust import Failure, logon_refused, retrying, server_error
from crmbridge.connectors.sagecrm.settings import SageCrmSettings
from crmbridge.errors import ConnectionFailedError, ErrorContext, RemoteError


class RefusedError(Exception):
    """The server refused one request (HTTP 4xx other than 401); ``message`` says why."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def classify(err: Exception) -> Failure | None:
    if isinstance(err, _TransientError):
        return Failure(err.message, maybe_applied=err.status not in (429, 503))
    if isinstance(err, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout):
        return Failure(f"cannot connect ({type(err).__name__})", maybe_applied=False)
    if isinstance(err, httpx.TimeoutException):
        return Failure("no answer in time", maybe_applied=True)
    if isinstance(err, httpx.TransportError):
        return Failure(f"the connection dropped ({type(err).__name__})", maybe_applied=True)
    return None


class _TransientError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _after(
    order: Sequence[str], last: dict[str, Any] | None, literal: Callable[[str, Any], str]
) -> str:
    """``(a, id) > (last a, last id)`` in the where grammar (no row tuples there)."""
    if last is None:
        return ""
    values = {c: literal(c, last.get(c)) for c in order}
    options = []
    for n, column in enumerate(order):
        equal = [f"{c} eq {values[c]}" for c in order[:n]]
        options.append(" and ".join([*equal, f"{column} gt {values[column]}"]))
    return "(" + " or ".join(f"({o})" for o in options) + ")"


def diagnosis(response: httpx.Response) -> str:
    """The message of an error answer (``$diagnoses``), else the start of its body."""
    try:
        body = response.json()
    except ValueError:
        return " ".join(response.text.split())[:200] or response.reason_phrase
    if isinstance(body, dict):
        notes = body.get("$diagnoses") or []
        messages = [str(n.get("message", "")) for n in notes if isinstance(n, dict)]
        if any(messages):
            return "; ".join(m for m in messages if m)
    return " ".join(response.text.split())[:200]


class RestApi:
    """The REST calls of one connection."""

    kind = "rest"

    def __init__(
        self,
        settings: SageCrmSettings,
        connection: str,
        sleep: Callable[[float], None],
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.settings = settings
        self.context = ErrorContext(connection=connection)
        self._sleep = sleep
        self._client = httpx.Client(
            base_url=settings.rest_base,
            auth=(settings.username, settings.password.get_secret_value()),
            timeout=settings.timeout,
            verify=settings.verify_tls,
            transport=transport,
            headers={"User-Agent": "crmbridge", "Accept": "application/json"},
        )

    def close(self) -> None:
        self._client.close()

    def send(self, method: str, path: str, *, what: str, changes: bool = False, **kw: Any) -> Any:
        """The JSON answer of one request; raises :class:`RefusedError` for a 4xx answer."""

        def once() -> httpx.Response:
            response = self._client.request(method, path, **kw)
            if response.status_code >= 500 or response.status_code == 429:
                raise _TransientError(
                    response.status_code, f"HTTP {response.status_code}: {diagnosis(response)}"
                )
            return response

        response = retrying(
            once,
            what=what,
            classify=classify,
            changes=changes,
            retries=self.settings.retries,
            backoff=self.settings.retry_backoff,
            sleep=self._sleep,
            context=self.context,
        )
        if response.status_code == 401:
            raise logon_refused(diagnosis(response), self.settings.username, self.context)
        if response.status_code >= 400:
            raise RefusedError(response.status_code, diagnosis(response))
        try:
            return response.json()
        except ValueError:
            raise RemoteError(
                f"{what}: the answer is not JSON (is {self.settings.rest_base} the sagecrm2 "
                "REST API?)",
                context=self.context,
            ) from None

    def failed(self, refused: RefusedError, what: str, entity: str | None = None) -> Exception:
        return server_error(refused.message, what=what, context=self.context.merge(object=entity))

    # -- discovery ------------------------------------------------------------------------
    def version(self) -> str | None:
        """REST has no version call: None (checks the credentials on the way)."""
        self.send("GET", "/", what="check")
        return None

    def entities(self) -> list[str]:
        try:
            body = self.send("GET", "/", what="list entities")
        except RefusedError:
            return sorted(KNOWN_PREFIXES)
        found = [str(r.get("name") or r.get("$key")) for r in body.get("$resources", [])]
        return sorted(found) if found else sorted(KNOWN_PREFIXES)

    def metadata(self, entity: str) -> list[RawField]:
        try:
            body = self.send("GET", f"/{quote(entity)}/$schema", what="describe")
        except RefusedError as refused:
            if refused.status != 404:
                raise self.failed(refused, "describe", entity) from None
            return self._inferred(entity)
        return [
            RawField(
                column=str(f["name"]).lower(),
                type=str(f.get("type") or "text"),
                length=int(f["length"]) if f.get("length") else None,
                required=bool(f.get("required")),
                read_only=bool(f.get("readonly")),
                caption=f.get("caption"),
                values=tuple(f["values"]) if f.get("values") else None,
            )
            for f in body.get("fields", [])
        ]

    def _inferred(self, entity: str) -> list[RawField]:
        """Fields from one record when the server has no ``$schema``: names only, as text."""
        try:
            body = self.send("GET", f"/{quote(entity)}", what="describe", params={"count": 1})
        except RefusedError as refused:
            raise self.failed(refused, "describe", entity) from None
        rows = body.get("$resources") or []
        if not rows:
            raise ConnectionFailedError(
                f"cannot describe {entity!r}: the server has no $schema and no record to learn "
                "the fields from; use api: soap",
                context=self.context.merge(object=entity),
            )
        return [
            RawField(column=k.lower(), type="integer" if isinstance(v, int) else "text")
            for k, v in rows[0].items()
            if not k.startswith("$")
        ]

    # -- reading --------------------------------------------------------------------------
    def pages(
        self,
        entity: str,
        where: str,
        order: Sequence[str],
        literal: Callable[[str, Any], str],
    ) -> Iterator[list[dict[str, Any]]]:
        """Every matching record, a page at a time. With ``rest_order_by``: in ``order`` (the
        last column the id), paged by keyset on those columns (``literal(column, value)``
        writes a value of a record as a where literal); else by position, in the server's
        order."""
        size = self.settings.page_size
        if self.settings.rest_order_by:
            last: dict[str, Any] | None = None
            while True:
                parts = [f"({where})" if where else "", _after(order, last, literal)]
                keyed = {
                    "count": size,
                    "orderBy": ", ".join(order),
                    "where": " and ".join(p for p in parts if p),
                }
                body = self._list_body(entity, keyed)
                rows = list(body.get("$resources") or [])
                if rows:
                    yield rows
                total = body.get("$totalResults")
                if not rows or (isinstance(total, int) and len(rows) >= total):
                    return
                last = rows[-1]
        start = 1
        while True:
            paging: dict[str, Any] = {"startIndex": start, "count": size}
            if where:
                paging["where"] = where
            body = self._list_body(entity, paging)
            rows = body.get("$resources") or []
            if rows:
                yield rows
            start += len(rows)
            total = body.get("$totalResults")
            if not rows or (isinstance(total, int) and start > total):
                return

    def _list_body(self, entity: str, params: dict[str, Any]) -> Any:
        try:
            return self.send("GET", f"/{quote(entity)}", what=f"read {entity}", params=params)
        except RefusedError as refused:
            if refused.status in (400, 422) and params.get("where"):
                raise RemoteError(
                    f"the CRM refused the filter {params['where']!r}: {refused.message}",
                    context=self.context.merge(object=entity),
                ) from None
            raise self.failed(refused, f"read {entity}", entity) from None

    # -- writing --------------------------------------------------------------------------
    def create(self, entity: str, values: dict[str, Any]) -> int:
        body = self.send(
            "POST", f"/{quote(entity)}", what=f"create {entity}", changes=True, json=values
        )
        return int(body["$key"])

    def update(self, entity: str, record_id: int, values: dict[str, Any]) -> None:
        self.send(
            "PUT",
            f"/{quote(entity)}('{record_id}')",
            what=f"update {entity}",
            changes=True,
            json=values,
        )

    def delete(self, entity: str, record_id: int) -> None:
        self.send(
            "DELETE", f"/{quote(entity)}('{record_id}')", what=f"delete {entity}", changes=True
        )
