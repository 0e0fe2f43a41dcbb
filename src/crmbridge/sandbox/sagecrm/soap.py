"""The SOAP endpoint: envelopes in, operations dispatched, answers and faults out.

Requests are document/literal in ``http://tempuri.org/type`` (element names are matched by
their local name, whatever the namespace). Every operation but ``logon`` needs the
``SessionHeader``; a call with a session closes that session's open ``query`` cursor unless
it is ``next``. Errors are SOAP 1.1 faults (HTTP 500) whose ``faultstring`` is the message.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from typing import Any
from xml.sax.saxutils import escape

from crmbridge.sandbox.sagecrm import soap_ops
from crmbridge.sandbox.sagecrm.context import Context
from crmbridge.sandbox.sagecrm.problems import INVALID_SESSION, ApiError
from crmbridge.sandbox.sagecrm.sessions import Session
from crmbridge.sandbox.sagecrm.wsdl import NS, OPERATIONS

ENVELOPE_NS = "http://schemas.xmlsoap.org/soap/envelope/"
XSI = "http://www.w3.org/2001/XMLSchema-instance"


def local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


@dataclass
class Call:
    """One parsed SOAP request."""

    operation: str
    body: ET.Element | None
    session_id: str | None = None
    params: dict[str, list[ET.Element]] = field(default_factory=dict)

    def text(self, name: str, default: str = "") -> str:
        found = self.params.get(name.lower())
        if not found:
            return default
        return found[0].text or ""

    def all(self, name: str) -> list[ET.Element]:
        return self.params.get(name.lower(), [])


def parse_call(data: bytes) -> Call:
    """The operation and parameters of a SOAP request (``operation`` "" when unreadable)."""
    try:
        root = ET.fromstring(data)
    except ET.ParseError:
        return Call("", None)
    header = body = None
    for child in root:
        if local(child.tag) == "Header":
            header = child
        elif local(child.tag) == "Body":
            body = child
    session_id = None
    if header is not None:
        for element in header.iter():
            if local(element.tag).lower() == "sessionid":
                session_id = (element.text or "").strip()
    if body is None or len(body) == 0:
        return Call("", None, session_id)
    operation = body[0]
    params: dict[str, list[ET.Element]] = {}
    for child in operation:
        params.setdefault(local(child.tag).lower(), []).append(child)
    return Call(local(operation.tag), operation, session_id, params)


def fault(message: str, code: str = "soap:Server") -> bytes:
    return (
        '<?xml version="1.0" encoding="utf-8"?>'
        f'<soap:Envelope xmlns:soap="{ENVELOPE_NS}"><soap:Body><soap:Fault>'
        f"<faultcode>{code}</faultcode><faultstring>{escape(message)}</faultstring>"
        "<detail/></soap:Fault></soap:Body></soap:Envelope>"
    ).encode()


def envelope(ctx: Context, operation: str, result: str) -> bytes:
    namespace = ctx.settings.answer_namespace
    return (
        '<?xml version="1.0" encoding="utf-8"?>'
        f'<soap:Envelope xmlns:soap="{ENVELOPE_NS}" xmlns:xsi="{XSI}" '
        f'xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:tns="{namespace}">'
        f'<soap:Body><{operation}Response xmlns="{namespace}">{result}'
        f"</{operation}Response></soap:Body></soap:Envelope>"
    ).encode()


def handle(ctx: Context, call: Call, *, size: int) -> tuple[int, bytes]:
    """The HTTP status and body answering ``call``; ``size`` is the request's size."""
    try:
        return 200, envelope(ctx, call.operation, _dispatch(ctx, call, size))
    except ApiError as error:
        return 500, fault(error.message)


def _dispatch(ctx: Context, call: Call, size: int) -> str:
    settings = ctx.settings
    if not call.operation:
        raise ApiError("The request is not a SOAP message the server understands")
    if not settings.web_services:
        raise ApiError("Web services are not enabled on this server")
    limit = settings.max_request_size
    if limit and size > limit:
        raise ApiError(f"The request is larger than the maximum size of request ({limit} bytes)")
    if call.operation not in OPERATIONS:
        raise ApiError(f"Unknown operation '{call.operation}'")
    if call.operation == "logon":
        user_id = ctx.check_password(call.text("username"), call.text("password"))
        sid = ctx.sessions.logon(user_id)
        return f"<result><sessionid>{sid}</sessionid></result>"
    session = ctx.sessions.get(call.session_id or call.text("sessionId") or None)
    if session is None:
        raise ApiError(INVALID_SESSION)
    if call.operation != "next":
        session.cursor = None
    return _operation(ctx, call, session)


def _operation(ctx: Context, call: Call, session: Session) -> str:
    op = call.operation
    if op == "logoff":
        ctx.sessions.logoff(session.sid)
        return f"<result><sessionid>{escape(session.sid)}</sessionid></result>"
    if op == "getversionstring":
        return f"<result>{escape(ctx.settings.version_string)}</result>"
    if op == "next":
        return soap_ops.next_batch(ctx, session)
    entity = ctx.entity(call.text("entityname"))
    if op == "query":
        return soap_ops.query(ctx, session, entity, call.text("queryString"))
    if op == "queryrecord":
        return soap_ops.queryrecord(
            ctx,
            session,
            entity,
            call.text("fieldlist"),
            call.text("queryString"),
            call.text("orderby"),
        )
    if op == "queryentity":
        return soap_ops.queryentity(ctx, entity, call.text("id"))
    if op == "queryid":
        return soap_ops.queryid(
            ctx, session, entity, call.text("queryString"), call.text("fromdate")
        )
    if op == "add":
        return soap_ops.add(ctx, session, entity, [record(e) for e in call.all("records")])
    if op == "update":
        return soap_ops.update(ctx, session, entity, [record(e) for e in call.all("records")])
    if op == "delete":
        return soap_ops.delete(ctx, session, entity, [e.text or "" for e in call.all("id")])
    if op == "getmetadata":
        return soap_ops.metadata(entity)
    if op == "getdropdownvalues":
        return soap_ops.dropdowns(entity)
    raise ApiError(f"Unknown operation '{op}'")  # pragma: no cover - OPERATIONS is checked


def record(element: ET.Element) -> dict[str, Any]:
    """An entity record sent by a client: element local name -> text (None when ``xsi:nil``),
    nested children (address, phone, email) as lists of such dicts."""
    values: dict[str, Any] = {}
    for child in element:
        name = local(child.tag).lower()
        if len(child):
            values.setdefault(name, []).append(record(child))
        elif child.get(f"{{{XSI}}}nil") in ("true", "1"):
            values[name] = None
        else:
            values[name] = child.text or ""
    return values


__all__ = ["NS", "Call", "fault", "handle", "parse_call"]
