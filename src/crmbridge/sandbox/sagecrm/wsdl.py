"""The WSDL of the web services, generated from the entities that allow web service access.

Document/literal, types and elements in ``http://tempuri.org/type``. Each entity is a complex
type extending the abstract ``ewarebase`` with one optional element per column, unprefixed
(``comp_name`` is ``name``); a company or person also nests its ``address``, ``phone`` and
``email`` children (each with the link's ``type``) and a company its ``person`` records. Untyped
answers are ``crmrecord``s of ``recordfield``s, changes are ``aisid``s. With "Dropdown fields as
strings in WSDL" off, drop-downs are enumerations of their codes.
"""

from __future__ import annotations

from xml.sax.saxutils import escape

from crmbridge.sandbox.sagecrm.entities import (
    DATETIME,
    DROPDOWN,
    DROPDOWNS,
    ENTITIES,
    INT,
    NUMERIC,
    Column,
    Entity,
)
from crmbridge.sandbox.sagecrm.settings import Settings

NS = "http://tempuri.org/type"
#: operation -> (input parameters as (name, type, repeated), the result's type)
OPERATIONS: dict[str, tuple[tuple[tuple[str, str, bool], ...], str]] = {
    "logon": (
        (("username", "xsd:string", False), ("password", "xsd:string", False)),
        "logonresult",
    ),
    "logoff": ((("sessionId", "xsd:string", False),), "logonresult"),
    "query": (
        (("queryString", "xsd:string", False), ("entityname", "xsd:string", False)),
        "queryresult",
    ),
    "next": ((), "queryresult"),
    "queryrecord": (
        (
            ("fieldlist", "xsd:string", False),
            ("queryString", "xsd:string", False),
            ("entityname", "xsd:string", False),
            ("orderby", "xsd:string", False),
        ),
        "queryresult",
    ),
    "queryentity": (
        (("entityname", "xsd:string", False), ("id", "xsd:int", False)),
        "queryentityresult",
    ),
    "queryid": (
        (
            ("entityname", "xsd:string", False),
            ("queryString", "xsd:string", False),
            ("fromdate", "xsd:dateTime", False),
        ),
        "queryresult",
    ),
    "add": (
        (("entityname", "xsd:string", False), ("records", "tns:ewarebase", True)),
        "addresult",
    ),
    "update": (
        (("entityname", "xsd:string", False), ("records", "tns:ewarebase", True)),
        "updateresult",
    ),
    "delete": (
        (("entityname", "xsd:string", False), ("id", "xsd:int", True)),
        "deleteresult",
    ),
    "getmetadata": ((("entityname", "xsd:string", False),), "metadataresult"),
    "getdropdownvalues": ((("entityname", "xsd:string", False),), "dropdownresult"),
    "getversionstring": ((), "xsd:string"),
}
_FIXED_TYPES = """
  <xsd:complexType name="ewarebase" abstract="true"><xsd:sequence/></xsd:complexType>
  <xsd:complexType name="logonresult"><xsd:sequence>
    <xsd:element name="sessionid" type="xsd:string" minOccurs="0"/>
  </xsd:sequence></xsd:complexType>
  <xsd:complexType name="queryresult"><xsd:sequence>
    <xsd:element name="records" type="tns:ewarebase" minOccurs="0" maxOccurs="unbounded"/>
    <xsd:element name="more" type="xsd:boolean" minOccurs="0"/>
  </xsd:sequence></xsd:complexType>
  <xsd:complexType name="queryentityresult"><xsd:sequence>
    <xsd:element name="records" type="tns:ewarebase" minOccurs="0"/>
  </xsd:sequence></xsd:complexType>
  <xsd:complexType name="recordfield"><xsd:sequence>
    <xsd:element name="name" type="xsd:string"/>
    <xsd:element name="value" type="xsd:string" minOccurs="0" nillable="true"/>
    <xsd:element name="type" type="xsd:string" minOccurs="0"/>
  </xsd:sequence></xsd:complexType>
  <xsd:complexType name="crmrecord"><xsd:complexContent><xsd:extension base="tns:ewarebase">
    <xsd:sequence>
      <xsd:element name="entityname" type="xsd:string"/>
      <xsd:element name="records" type="tns:recordfield" minOccurs="0" maxOccurs="unbounded"/>
    </xsd:sequence></xsd:extension></xsd:complexContent></xsd:complexType>
  <xsd:complexType name="aisid"><xsd:complexContent><xsd:extension base="tns:ewarebase">
    <xsd:sequence>
      <xsd:element name="id" type="xsd:int"/>
      <xsd:element name="createddate" type="xsd:dateTime" minOccurs="0"/>
      <xsd:element name="updateddate" type="xsd:dateTime" minOccurs="0"/>
      <xsd:element name="added" type="xsd:boolean"/>
      <xsd:element name="updated" type="xsd:boolean"/>
      <xsd:element name="deleted" type="xsd:boolean"/>
    </xsd:sequence></xsd:extension></xsd:complexContent></xsd:complexType>
  <xsd:complexType name="crmid"><xsd:sequence>
    <xsd:element name="crmid" type="xsd:int"/>
  </xsd:sequence></xsd:complexType>
  <xsd:complexType name="addresult"><xsd:sequence>
    <xsd:element name="records" type="tns:crmid" minOccurs="0" maxOccurs="unbounded"/>
  </xsd:sequence></xsd:complexType>
  <xsd:complexType name="updateresult"><xsd:sequence>
    <xsd:element name="updatesuccess" type="xsd:boolean"/>
  </xsd:sequence></xsd:complexType>
  <xsd:complexType name="deleteresult"><xsd:sequence>
    <xsd:element name="deletesuccess" type="xsd:boolean"/>
    <xsd:element name="numberdeleted" type="xsd:int"/>
  </xsd:sequence></xsd:complexType>
  <xsd:complexType name="fieldmetadata"><xsd:sequence>
    <xsd:element name="name" type="xsd:string"/>
    <xsd:element name="type" type="xsd:string"/>
    <xsd:element name="length" type="xsd:int" minOccurs="0"/>
    <xsd:element name="required" type="xsd:boolean"/>
    <xsd:element name="readonly" type="xsd:boolean"/>
    <xsd:element name="caption" type="xsd:string" minOccurs="0"/>
  </xsd:sequence></xsd:complexType>
  <xsd:complexType name="metadataresult"><xsd:sequence>
    <xsd:element name="records" type="tns:fieldmetadata" minOccurs="0" maxOccurs="unbounded"/>
  </xsd:sequence></xsd:complexType>
  <xsd:complexType name="dropdownvalues"><xsd:sequence>
    <xsd:element name="fieldname" type="xsd:string"/>
    <xsd:element name="records" type="xsd:string" minOccurs="0" maxOccurs="unbounded"/>
  </xsd:sequence></xsd:complexType>
  <xsd:complexType name="dropdownresult"><xsd:sequence>
    <xsd:element name="records" type="tns:dropdownvalues" minOccurs="0" maxOccurs="unbounded"/>
  </xsd:sequence></xsd:complexType>
"""


def xsd_type(column: Column, settings: Settings) -> str:
    if column.type == INT:
        return "xsd:int"
    if column.type == DATETIME:
        return "xsd:dateTime"
    if column.type == NUMERIC:
        return "xsd:decimal"
    if column.type == DROPDOWN and not settings.dropdowns_as_strings:
        return f"tns:{column.name}_list"
    return "xsd:string"


def _entity_type(entity: Entity, settings: Settings, web: frozenset[str]) -> str:
    lines = [
        f'  <xsd:complexType name="{entity.name}"><xsd:complexContent>'
        '<xsd:extension base="tns:ewarebase"><xsd:sequence>'
    ]
    for column in entity.columns:
        lines.append(
            f'    <xsd:element name="{column.short}" type="{xsd_type(column, settings)}" '
            'minOccurs="0" nillable="true"/>'
        )
    if entity.name in ("address", "phone", "email"):
        lines.append('    <xsd:element name="type" type="xsd:string" minOccurs="0"/>')
    for child in entity.children:
        if child in web:
            lines.append(
                f'    <xsd:element name="{child}" type="tns:{child}" minOccurs="0" '
                'maxOccurs="unbounded"/>'
            )
    lines.append("  </xsd:sequence></xsd:extension></xsd:complexContent></xsd:complexType>")
    return "\n".join(lines)


def _enumerations(entities: list[Entity]) -> str:
    out = []
    for entity in entities:
        for column in entity.columns:
            if column.type != DROPDOWN:
                continue
            codes = "".join(
                f'<xsd:enumeration value="{escape(c, {chr(34): "&quot;"})}"/>'
                for c in DROPDOWNS.get(column.name, ())
            )
            out.append(
                f'  <xsd:simpleType name="{column.name}_list"><xsd:restriction base="xsd:string">'
                f"{codes}</xsd:restriction></xsd:simpleType>"
            )
    return "\n".join(out)


def _element(op: str, params: tuple[tuple[str, str, bool], ...], result: str) -> str:
    inner = "".join(
        f'<xsd:element name="{name}" type="{ptype}" minOccurs="0"'
        + (' maxOccurs="unbounded"' if many else "")
        + "/>"
        for name, ptype, many in params
    )
    result_type = result if result.startswith("xsd:") else f"tns:{result}"
    return (
        f'  <xsd:element name="{op}"><xsd:complexType><xsd:sequence>{inner}'
        "</xsd:sequence></xsd:complexType></xsd:element>\n"
        f'  <xsd:element name="{op}Response"><xsd:complexType><xsd:sequence>'
        f'<xsd:element name="result" type="{result_type}" minOccurs="0"/>'
        "</xsd:sequence></xsd:complexType></xsd:element>"
    )


def build_wsdl(settings: Settings, endpoint: str) -> str:
    """The WSDL text for this server's settings; ``endpoint`` is the SOAP address."""
    entities = [e for e in ENTITIES.values() if e.name in settings.web_entities]
    web = frozenset(e.name for e in entities)
    types = "\n".join(_entity_type(e, settings, web) for e in entities)
    enums = "" if settings.dropdowns_as_strings else _enumerations(entities)
    elements = "\n".join(_element(op, p, r) for op, (p, r) in OPERATIONS.items())
    messages = "\n".join(
        f'  <message name="{op}In"><part name="parameters" element="tns:{op}"/></message>\n'
        f'  <message name="{op}Out"><part name="parameters" element="tns:{op}Response"/>'
        "</message>"
        for op in OPERATIONS
    )
    port_ops = "\n".join(
        f'    <operation name="{op}"><input message="tns:{op}In"/>'
        f'<output message="tns:{op}Out"/></operation>'
        for op in OPERATIONS
    )
    binding_ops = "\n".join(
        f'    <operation name="{op}"><soap:operation soapAction="" style="document"/>'
        '<input><soap:body use="literal"/>'
        + (
            ""
            if op == "logon"
            else '<soap:header message="tns:SessionHeaderMsg" part="SessionHeader" use="literal"/>'
        )
        + '</input><output><soap:body use="literal"/></output></operation>'
        for op in OPERATIONS
    )
    return f"""<?xml version="1.0" encoding="utf-8"?>
<definitions xmlns="http://schemas.xmlsoap.org/wsdl/"
  xmlns:soap="http://schemas.xmlsoap.org/wsdl/soap/"
  xmlns:xsd="http://www.w3.org/2001/XMLSchema"
  xmlns:tns="{NS}" targetNamespace="{NS}" name="WebService">
 <types>
 <xsd:schema targetNamespace="{NS}" elementFormDefault="qualified">
  <xsd:element name="SessionHeader"><xsd:complexType><xsd:sequence>
    <xsd:element name="sessionId" type="xsd:string"/>
  </xsd:sequence></xsd:complexType></xsd:element>
{_FIXED_TYPES}
{enums}
{types}
{elements}
 </xsd:schema>
 </types>
  <message name="SessionHeaderMsg">
    <part name="SessionHeader" element="tns:SessionHeader"/></message>
{messages}
  <portType name="WebServiceSoap">
{port_ops}
  </portType>
  <binding name="WebServiceSoap" type="tns:WebServiceSoap">
    <soap:binding transport="http://schemas.xmlsoap.org/soap/http" style="document"/>
{binding_ops}
  </binding>
  <service name="WebService">
    <port name="WebServiceSoap" binding="tns:WebServiceSoap">
      <soap:address location="{escape(endpoint)}"/>
    </port>
  </service>
</definitions>
"""
