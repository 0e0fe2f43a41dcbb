"""Connection settings of a SugarCRM / SuiteCRM connection."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import Field, SecretStr, field_validator

from crmbridge.connectors.base import ConnectorSettings


class SugarCrmSettings(ConnectorSettings):
    """How to reach one SugarCRM or SuiteCRM server. See docs/connectors/sugarcrm.md."""

    url: str = Field(description="base URL of the CRM, e.g. https://crm.example.com")
    username: str
    password: SecretStr
    api: Literal["auto", "v4_1", "v10"] = Field(
        "auto", description="auto: REST v10/v11 when the server has it, else legacy v4_1"
    )
    rest_version: str = Field(
        "v11", description="REST path version for api v10 (v10, v11, v11_4 ...)"
    )
    client_id: str = Field("sugar", description="OAuth2 client id (REST v10/v11)")
    client_secret: SecretStr = Field(SecretStr(""), description="OAuth2 client secret")
    platform: str = Field("crmbridge", description="OAuth2 platform / v4_1 application name")
    password_encryption: Literal["md5", "plain"] = Field(
        "md5", description="v4_1 login: md5 hash (default) or plain text (LDAP setups)"
    )
    page_size: int = Field(200, ge=1, le=10_000, description="records per list call")
    concurrency: int = Field(4, ge=1, le=32, description="ranges of a read fetched in parallel")
    max_connections: int = Field(
        8, ge=1, le=64, description="most calls in flight at once on this connection"
    )
    max_batch_size: int = Field(100, ge=1, le=1000, description="records per write call")
    timeout: float = Field(120.0, gt=0, description="seconds to wait for one answer")
    retries: int = Field(5, ge=0, le=20, description="retries of a failed call")
    retry_backoff: float = Field(
        1.0, ge=0, description="first pause between retries in seconds (doubles each time)"
    )
    max_retry_after: float = Field(
        300.0, ge=0, description="longest Retry-After pause honoured before giving up"
    )
    verify_tls: bool = True
    allow_unknown_enum_values: bool = Field(
        False, description="send drop-down values that are not among the field's options"
    )
    tables: dict[str, str] = Field(
        default_factory=dict,
        description="module -> database table, for modules whose table is not the module "
        "name in lower case (v4_1 filters are SQL); on the command line Module=table,...",
    )

    @field_validator("tables", mode="before")
    @classmethod
    def _tables_from_text(cls, value: Any) -> Any:
        """``"ProjectTask=project_task,Foo=bar"`` as given with ``--set``."""
        if not isinstance(value, str):
            return value
        pairs = [item.partition("=") for item in value.split(",") if item.strip()]
        return {k.strip(): v.strip() for k, _, v in pairs}

    @property
    def base_url(self) -> str:
        return self.url.rstrip("/")

    @property
    def display_url(self) -> str:
        """``base_url`` without any ``user:password@`` part, for messages."""
        return re.sub(r"//[^/@]*@", "//", self.base_url)
