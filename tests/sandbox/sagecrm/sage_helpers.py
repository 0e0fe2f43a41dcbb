"""A tiny raw SOAP client and REST helpers for the Sage CRM sandbox tests."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any
from xml.sax.saxutils import escape

import httpx

NS = "http://tempuri.org/type"
SOAP_PATH = "/crm/eware.dll/webservices/soap"
WSDL_PATH = "/crm/eware.dll/webservices/webservice.wsdl"
REST_PATH = "/sdata/crmj/sagecrm2/-"


def local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def to_dict(element: ET.Element) -> Any:
    """An answer element as text (no children) or a dict of lists by local name."""
    if len(element) == 0:
        return element.text
    out: dict[str, list[Any]] = {}
    for child in element:
        out.setdefault(local(child.tag), []).append(to_dict(child))
    return out


class SoapFaultError(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class Soap:
    """``soap.call("query", queryString=..., entityname=...)`` -> the ``result`` as a dict."""

    def __init__(self, client: httpx.Client) -> None:
        self.client = client
        self.session = ""

    def envelope(self, operation: str, params: dict[str, Any]) -> str:
        body = []
        for name, value in params.items():
            values = value if isinstance(value, list) else [value]
            for item in values:
                body.append(
                    f"<{name}>{item if isinstance(item, Raw) else escape(str(item))}</{name}>"
                )
        header = (
            f'<soap:Header><SessionHeader xmlns="{NS}"><sessionId>{self.session}</sessionId>'
            "</SessionHeader></soap:Header>"
            if self.session
            else ""
        )
        return (
            '<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/" '
            'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
            f'{header}<soap:Body><{operation} xmlns="{NS}">{"".join(body)}</{operation}>'
            "</soap:Body></soap:Envelope>"
        )

    def post(self, operation: str, **params: Any) -> httpx.Response:
        return self.client.post(
            SOAP_PATH,
            content=self.envelope(operation, params).encode(),
            headers={"Content-Type": "text/xml; charset=utf-8"},
        )

    def call(self, operation: str, **params: Any) -> Any:
        response = self.post(operation, **params)
        root = ET.fromstring(response.content)
        fault = next((e for e in root.iter() if local(e.tag) == "Fault"), None)
        if fault is not None:
            assert response.status_code == 500
            raise SoapFaultError(next(e.text or "" for e in fault if local(e.tag) == "faultstring"))
        assert response.status_code == 200, response.text
        answer = next(e for e in root.iter() if local(e.tag) == f"{operation}Response")
        result = next((e for e in answer if local(e.tag) == "result"), None)
        return None if result is None else to_dict(result)

    def logon(self, user: str = "admin", password: str = "admin") -> str:
        self.session = ""
        self.session = self.call("logon", username=user, password=password)["sessionid"][0]
        return self.session


class Raw(str):
    """XML inserted as it is (nested records)."""


def record(**values: Any) -> Raw:
    """A record element's content for add / update."""
    parts = []
    for name, value in values.items():
        if isinstance(value, list):
            for child in value:
                parts.append(f"<{name}>{child}</{name}>")
        else:
            parts.append(f"<{name}>{escape(str(value))}</{name}>")
    return Raw("".join(parts))


def records(answer: Any) -> list[dict[str, Any]]:
    """The records of a query answer, each field's first value."""
    rows = (answer or {}).get("records", [])
    return [{k: v[0] for k, v in r.items()} for r in rows]


def more(answer: Any) -> bool:
    return (answer or {}).get("more", ["false"])[0] == "true"
