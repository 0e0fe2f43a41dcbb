"""Connection settings of a Salesforce connection."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr, model_validator

from crmbridge.connectors.base import ConnectorSettings


class SalesforceSettings(ConnectorSettings):
    """How to reach one Salesforce org. See docs/connectors/salesforce.md."""

    login_url: str = Field(
        "https://login.salesforce.com",
        description="where to ask for a token: https://login.salesforce.com, "
        "https://test.salesforce.com (sandboxes) or the org's My Domain URL",
    )
    auth: Literal["password", "jwt"] = Field(
        "password", description="OAuth2 flow: password (username-password) or jwt (JWT bearer)"
    )
    client_id: str = Field(description="the connected app's consumer key")
    client_secret: SecretStr = Field(
        SecretStr(""), description="the connected app's consumer secret (password flow)"
    )
    username: str
    password: SecretStr = Field(SecretStr(""), description="the user's password (password flow)")
    security_token: SecretStr = Field(
        SecretStr(""), description="the user's security token, appended to the password"
    )
    private_key: SecretStr = Field(
        SecretStr(""), description="PEM private key that signs the JWT (jwt flow)"
    )
    private_key_file: str | None = Field(
        None, description="file holding that PEM private key, instead of private_key"
    )
    audience: str | None = Field(None, description="the JWT's aud claim (default: login_url)")
    api_version: str = Field("59.0", pattern=r"^\d{2}\.0$", description="REST API version")
    ca_file: str | None = Field(
        None, description="CA certificate file to trust (the sandbox's), instead of the system's"
    )
    page_size: int = Field(
        2000, ge=200, le=2000, description="records per query answer (Sforce-Query-Options)"
    )
    bulk_query_threshold: int = Field(
        50_000, ge=0, description="reads of more records than this use a Bulk API 2.0 query job"
    )
    bulk_page_size: int = Field(
        50_000, ge=1, description="records per page of Bulk query results (maxRecords)"
    )
    bulk_write_threshold: int = Field(
        2_000, ge=0, description="writes of more records than this use a Bulk API 2.0 ingest job"
    )
    hard_delete: bool = Field(
        False,
        description="deletes skip the recycle bin (Bulk API 2.0 hardDelete; needs the "
        "'Bulk API Hard Delete' permission; cannot be undone)",
    )
    operation_key_field: str | None = Field(
        None,
        pattern=r"^[A-Za-z][A-Za-z0-9_]*$",
        description="a text external-id field (unique, 36 characters or more) on every object "
        "written: each created record gets its operation key there, so a repeated create is "
        "recognised even without match keys",
    )
    bulk_poll_interval: float = Field(
        2.0, gt=0, description="first pause between polls of a Bulk job, seconds (grows to 30)"
    )
    bulk_timeout: float = Field(
        3600.0, gt=0, description="longest wait for a Bulk job to finish, seconds"
    )
    timeout: float = Field(120.0, gt=0, description="seconds to wait for one answer")
    retries: int = Field(5, ge=0, le=20, description="retries of a failed call")
    retry_backoff: float = Field(
        1.0, ge=0, description="first pause between retries in seconds (doubles each time)"
    )
    quota_slow_down: float = Field(
        0.8, gt=0, le=1, description="share of the daily API quota from which calls are paced"
    )
    quota_stop: float = Field(
        0.95, gt=0, le=1, description="share of the daily API quota at which the run stops"
    )
    quota_pause: float = Field(
        1.0, ge=0, description="pause before each call once pacing, seconds (grows to 10x)"
    )

    @model_validator(mode="after")
    def _check(self) -> SalesforceSettings:
        if self.quota_slow_down > self.quota_stop:
            raise ValueError("quota_slow_down must not be above quota_stop")
        if self.auth == "jwt" and not (
            self.private_key.get_secret_value() or self.private_key_file
        ):
            raise ValueError("the jwt flow needs private_key or private_key_file")
        if self.auth == "password" and not self.password.get_secret_value():
            raise ValueError("the password flow needs password")
        return self

    @property
    def token_url(self) -> str:
        return self.login_url.rstrip("/") + "/services/oauth2/token"
