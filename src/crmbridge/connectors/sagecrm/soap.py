"""The SOAP web services through zeep, fed by the server's WSDL, with the SessionHeader.

One web service session per server and user in this process (:mod:`.sessions`): Sage CRM
allows one session per user, and a second ``logon`` ends the first. A call that finds its
session ended logs on again once and is repeated. Answers are turned into plain dicts: typed
records keyed by their unprefixed names with nested children as lists of dicts.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from typing import Any

import requests
import zeep
import zeep.exceptions
import zeep.helpers
import zeep.xsd
from lxml import etree

from crmbridge.connectors.sagecrm.fields import RawField
from crmbridge.connectors.sagecrm.robust import (
    Failure,
    is_logon_refusal,
    is_session_fault,
    logon_refused,
    retrying,
    server_error,
)
from crmbridge.connectors.sagecrm.sessions import SharedSession, shared_session
from crmbridge.connectors.sagecrm.settings import SageCrmSettings
from crmbridge.errors import ConnectionFailedError, ErrorContext

TYPE_NS = "http://tempuri.org/type"
OTHER_NS = "http://tempuri.org/"
XSD = "http://www.w3.org/2001/XMLSchema"
#: ewarebase types that are no entity
NOT_ENTITIES = frozenset({"crmrecord", "aisid"})


class FaultError(Exception):
    """A SOAP fault: the server refused the call. ``message`` is its faultstring."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class _Namespace(zeep.Plugin):
    """Some installs answer in ``http://tempuri.org/`` instead of ``http://tempuri.org/type``:
    read such answers as if they were in the WSDL's namespace."""

    def ingress(self, envelope: Any, http_headers: Any, operation: Any) -> tuple[Any, Any]:
        text = etree.tostring(envelope)
        other = f'"{OTHER_NS}"'.encode()
        if other in text:  # element names and xsi:type prefixes alike
            envelope = etree.fromstring(text.replace(other, f'"{TYPE_NS}"'.encode()))
        return envelope, http_headers


class _Transport(zeep.Transport):
    """zeep's transport, raising TransportError for an error page that is no SOAP envelope
    (an IIS 503 page that happens to parse as XML would otherwise be an unknown fault)."""

    def post_xml(self, address: str, envelope: Any, headers: Any) -> Any:
        response = super().post_xml(address, envelope, headers)
        if response.status_code != 200 and b"Envelope" not in response.content[:2000]:
            raise zeep.exceptions.TransportError(
                status_code=response.status_code, content=response.content
            )
        return response


def classify(err: Exception) -> Failure | None:
    """Transient failures of a SOAP call (see robust.retrying)."""
    if isinstance(err, zeep.exceptions.TransportError):
        status = err.status_code
        if status >= 500 or status == 429:
            return Failure(f"HTTP {status}", maybe_applied=status not in (429, 503))
        return None
    if isinstance(err, requests.exceptions.ConnectTimeout):
        return Failure("cannot connect (timed out)", maybe_applied=False)
    if isinstance(err, requests.exceptions.ConnectionError):
        text = str(err)
        refused = "refused" in text.lower() or "NewConnectionError" in text
        return Failure(f"the connection failed ({type(err).__name__})", maybe_applied=not refused)
    if isinstance(err, requests.exceptions.Timeout):
        return Failure("no answer in time", maybe_applied=True)
    return None


class SoapApi:
    """The web service calls of one connection."""

    kind = "soap"

    def __init__(
        self, settings: SageCrmSettings, connection: str, sleep: Callable[[float], None]
    ) -> None:
        self.settings = settings
        self.context = ErrorContext(connection=connection)
        self._sleep = sleep
        self._http = requests.Session()
        self._http.verify = settings.verify_tls
        self._http.headers["User-Agent"] = "crmbridge"
        transport = _Transport(
            session=self._http, timeout=settings.timeout, operation_timeout=settings.timeout
        )
        try:
            wsdl_text = self._http.get(settings.wsdl, timeout=settings.timeout)
        except requests.RequestException as err:
            raise ConnectionFailedError(
                f"cannot reach the CRM at {settings.display_url} ({type(err).__name__})",
                context=self.context,
            ) from None
        if wsdl_text.status_code != 200:
            raise ConnectionFailedError(
                f"no WSDL at {settings.wsdl} (HTTP {wsdl_text.status_code}): turn on 'Make WSDL "
                "available to all' in Administration | System | Web Services, or set wsdl_url",
                context=self.context,
            )
        self._wsdl = wsdl_text.content
        self.client = zeep.Client(
            settings.wsdl,
            transport=transport,
            plugins=[_Namespace()],
            settings=zeep.Settings(strict=False, xml_huge_tree=True),
        )
        binding = next(iter(self.client.wsdl.bindings))
        self.service = self.client.create_service(binding, settings.soap_endpoint)
        self._types = {
            t.qname.localname: t for t in self.client.wsdl.types.types if t.qname is not None
        }
        self.session: SharedSession = shared_session(settings.soap_endpoint, settings.username)
        self.session.attach(self._logon, settings.password.get_secret_value())

    # -- sessions -------------------------------------------------------------------------
    def _logon(self) -> str:
        settings = self.settings
        try:
            answer = self._retry(
                "logon",
                lambda: self.service.logon(
                    username=settings.username, password=settings.password.get_secret_value()
                ),
                changes=False,
            )
        except zeep.exceptions.Fault as fault:
            message = str(fault.message)
            if is_logon_refusal(message):
                raise logon_refused(message, settings.username, self.context) from None
            raise server_error(message, what="logon", context=self.context) from None
        return str(getattr(answer, "sessionid", answer))

    def close(self) -> None:
        self.session.detach(self._logoff)
        self._http.close()

    def _logoff(self, sid: str) -> None:
        try:
            header = self._header(sid)
            self.service.logoff(sessionId=sid, _soapheaders=[header])
        except Exception:  # a courtesy: the session lapses on its own
            return

    def _header(self, sid: str) -> Any:
        return self.client.get_element(f"{{{TYPE_NS}}}SessionHeader")(sessionId=sid)

    def _retry(
        self, what: str, call: Callable[[], Any], *, changes: bool, retry: bool = True
    ) -> Any:
        return retrying(
            call,
            what=what,
            classify=classify,
            changes=changes,
            retries=self.settings.retries if retry else 0,
            backoff=self.settings.retry_backoff,
            sleep=self._sleep,
            context=self.context,
        )

    def call(
        self, operation: str, *, changes: bool = False, retry: bool = True, **params: Any
    ) -> Any:
        """``operation`` with the session header; a fault raises :class:`FaultError` (after one
        new logon when the session had ended). ``retry=False``: a transient failure is not
        retried (``next``, whose repetition would skip records)."""
        for attempt in (1, 2):
            sid = self.session.sid
            try:
                with self.session.lock:
                    method = getattr(self.service, operation)
                    header = self._header(sid)
                    return self._retry(
                        operation,
                        lambda: method(**params, _soapheaders=[header]),  # noqa: B023
                        changes=changes,
                        retry=retry,
                    )
            except zeep.exceptions.Fault as fault:
                message = str(fault.message)
                if not is_session_fault(message):
                    raise FaultError(message) from None
                if attempt == 2:
                    raise ConnectionFailedError(
                        f"the session of user {self.settings.username!r} ended again right "
                        "after logging on again: another program is logged on with the same "
                        "user (Sage CRM allows one session per user); give crmbridge a user of "
                        "its own",
                        context=self.context,
                    ) from None
                self.session.renew(sid, self._logon, self.settings.password.get_secret_value())
        raise AssertionError("unreachable")  # pragma: no cover

    def failed(self, fault: FaultError, what: str, entity: str | None = None) -> Exception:
        return server_error(fault.message, what=what, context=self.context.merge(object=entity))

    # -- discovery ------------------------------------------------------------------------
    def version(self) -> str:
        return str(self.call("getversionstring"))

    def entities(self) -> list[str]:
        """The entity types of the WSDL: the entities with web service access."""
        root = etree.fromstring(self._wsdl)
        names = []
        for ctype in root.iter(f"{{{XSD}}}complexType"):
            for ext in ctype.iter(f"{{{XSD}}}extension"):
                if str(ext.get("base", "")).split(":")[-1] == "ewarebase":
                    names.append(str(ctype.get("name")))
        return sorted(n for n in names if n not in NOT_ENTITIES)

    def children(self, entity: str) -> list[str]:
        """The nested children kinds of an entity's typed records (address, phone ...)."""
        found = self._types.get(entity)
        if found is None:
            return []
        known = set(self.entities())
        return [
            name
            for name, element in found.elements
            if name in known
            and getattr(element.type, "qname", None) is not None
            and element.type.qname.localname == name
        ]

    def metadata(self, entity: str) -> list[RawField]:
        try:
            rows = self.call("getmetadata", entityname=entity) or []
            dropdowns = self.call("getdropdownvalues", entityname=entity) or []
        except FaultError as fault:
            raise self.failed(fault, "getmetadata", entity) from None
        values = {str(d.fieldname).lower(): tuple(d.records or ()) for d in dropdowns}
        return [
            RawField(
                column=str(r.name).lower(),
                type=str(r.type or "text"),
                length=int(r.length) if r.length else None,
                required=bool(r.required),
                read_only=bool(r.readonly),
                caption=str(r.caption) if r.caption else None,
                values=values.get(str(r.name).lower()),
            )
            for r in rows
        ]

    # -- reading --------------------------------------------------------------------------
    def query(self, entity: str, query_string: str) -> tuple[list[dict[str, Any]], bool]:
        """The first records of a query and whether more wait for :meth:`next`."""
        answer = self.call("query", queryString=query_string, entityname=entity)
        return _records(answer), bool(getattr(answer, "more", False))

    def next(self) -> tuple[list[dict[str, Any]], bool]:
        answer = self.call("next", retry=False)
        return _records(answer), bool(getattr(answer, "more", False))

    def queryrecord(
        self, entity: str, fields: Sequence[str], query_string: str, order_by: str
    ) -> tuple[list[dict[str, Any]], bool]:
        """Untyped records: ``{column: text}`` per record."""
        answer = self.call(
            "queryrecord",
            fieldlist=",".join(fields),
            queryString=query_string,
            entityname=entity,
            orderby=order_by,
        )
        rows = [
            {str(f["name"]).lower(): f.get("value") for f in (r.get("records") or [])}
            for r in _records(answer)
        ]
        return rows, bool(getattr(answer, "more", False))

    def next_records(self) -> tuple[list[dict[str, Any]], bool]:
        """The next batch of a ``queryrecord``, untyped as :meth:`queryrecord` answers."""
        answer = self.call("next", retry=False)
        rows = [
            {str(f["name"]).lower(): f.get("value") for f in (r.get("records") or [])}
            for r in _records(answer)
        ]
        return rows, bool(getattr(answer, "more", False))

    def queryentity(self, entity: str, record_id: int) -> dict[str, Any] | None:
        answer = self.call("queryentity", entityname=entity, id=record_id)
        record = getattr(answer, "records", answer)
        if record is None:
            return None
        return dict(zeep.helpers.serialize_object(record, dict))

    def queryid(
        self, entity: str, query_string: str, since: dt.datetime
    ) -> tuple[list[dict[str, Any]], bool]:
        """Changes since ``since`` (naive, in the answers' zone): ``{id, createddate,
        updateddate, added, updated, deleted}`` per record."""
        answer = self.call("queryid", entityname=entity, queryString=query_string, fromdate=since)
        return _records(answer), bool(getattr(answer, "more", False))

    # -- writing --------------------------------------------------------------------------
    def typed(self, entity: str, values: dict[str, Any]) -> Any:
        """A typed record for ``add`` / ``update``: nested lists become child records, a
        None an ``xsi:nil`` element (the field is cleared, not left out)."""
        made: dict[str, Any] = {}
        for name, value in values.items():
            if isinstance(value, list):
                made[name] = [self._types[name](**child) for child in value]
            else:
                made[name] = zeep.xsd.Nil if value is None else value
        return self._types[entity](**made)

    def add(self, entity: str, records: Sequence[dict[str, Any]]) -> list[int]:
        typed = [self.typed(entity, r) for r in records]
        answer = self.call("add", changes=True, entityname=entity, records=typed)
        rows = answer if isinstance(answer, list) else getattr(answer, "records", None) or []
        return [int(str(getattr(r, "crmid", r))) for r in rows]

    def update(self, entity: str, records: Sequence[dict[str, Any]]) -> None:
        typed = [self.typed(entity, r) for r in records]
        self.call("update", changes=True, entityname=entity, records=typed)

    def delete(self, entity: str, ids: Sequence[int]) -> None:
        self.call("delete", changes=True, entityname=entity, id=list(ids))


def _records(answer: Any) -> list[dict[str, Any]]:
    records = getattr(answer, "records", None)
    if records is None:
        return []
    if not isinstance(records, list):
        records = [records]
    return [dict(zeep.helpers.serialize_object(r, dict)) for r in records]
