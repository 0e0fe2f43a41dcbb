"""Connection settings of a Sage CRM connection."""

from __future__ import annotations

import re
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, field_validator

from crmbridge.connectors.base import ConnectorSettings


class SageCrmSettings(ConnectorSettings):
    """How to reach one Sage CRM server. See docs/connectors/sagecrm.md."""

    url: str = Field(description="the server, e.g. https://crm.example.com")
    install: str = Field("crm", description="the install name in the CRM's addresses")
    api: Literal["soap", "rest"] = Field(
        "soap", description="soap: the web services (all versions); rest: sagecrm2 (2019 R2+)"
    )
    username: str
    password: SecretStr
    wsdl_url: str | None = Field(
        None, description="the WSDL (default {url}/{install}/eware.dll/webservices/webservice.wsdl)"
    )
    server_timezone: str = Field(
        "UTC", description="the time zone the CRM's database keeps dates in (the server's)"
    )
    dates_in_utc: bool = Field(
        False, description="the CRM answers dates in UTC rather than in server time"
    )
    page_size: int = Field(100, ge=1, le=10_000, description="REST records per request")
    max_records: int = Field(
        100,
        ge=1,
        le=10_000,
        description="records per write call: at most the CRM's 'Maximum number of records to "
        "return'",
    )
    rest_order_by: bool = Field(
        False, description="REST: the server has orderBy (2024 R2 and later): page by id"
    )
    territory: int | None = Field(
        None,
        description="the security territory (xxx_secterr) of created records that a profile "
        "does not set (default: the CRM's, the user's primary territory)",
    )
    owner: int | None = Field(
        None,
        description="the user id that owns created records a profile does not give an owner "
        "(primaryuserid or assigneduserid)",
    )
    timeout: float = Field(180.0, gt=0, description="seconds to wait for one answer")
    retries: int = Field(4, ge=0, le=20, description="retries of a failed read call")
    retry_backoff: float = Field(
        2.0, ge=0, description="first pause between retries in seconds (doubles each time)"
    )
    verify_tls: bool = True

    @field_validator("server_timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"unknown time zone {value!r} (use a name such as Europe/London)"
            ) from None
        return value

    @property
    def base_url(self) -> str:
        return self.url.rstrip("/")

    @property
    def display_url(self) -> str:
        """``base_url`` without any ``user:password@`` part, for messages."""
        return re.sub(r"//[^/@]*@", "//", self.base_url)

    @property
    def wsdl(self) -> str:
        return (
            self.wsdl_url or f"{self.base_url}/{self.install}/eware.dll/webservices/webservice.wsdl"
        )

    @property
    def soap_endpoint(self) -> str:
        return f"{self.base_url}/{self.install}/eware.dll/webservices/soap"

    @property
    def rest_base(self) -> str:
        return f"{self.base_url}/sdata/{self.install}j/sagecrm2/-"

    @property
    def answer_zone(self) -> ZoneInfo:
        """The zone of the dates the CRM answers (and reads in what we send)."""
        return ZoneInfo("UTC") if self.dates_in_utc else ZoneInfo(self.server_timezone)

    @property
    def database_zone(self) -> ZoneInfo:
        return ZoneInfo(self.server_timezone)
