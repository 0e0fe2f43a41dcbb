"""Connection settings of a QuickBooks Online connection."""

from __future__ import annotations

from pydantic import Field, SecretStr

from crmbridge.connectors.base import ConnectorSettings

PRODUCTION_API = "https://quickbooks.api.intuit.com"
SANDBOX_API = "https://sandbox-quickbooks.api.intuit.com"
TOKEN_URL = "https://oauth.platform.intuit.com/oauth2/v1/tokens/bearer"


class QuickBooksSettings(ConnectorSettings):
    """How to reach one QuickBooks Online company. See docs/connectors/quickbooks.md."""

    realm_id: str = Field(description="the company id (realmId) given with the authorisation")
    client_id: str = Field(description="the app's OAuth 2.0 client id")
    client_secret: SecretStr
    refresh_token: SecretStr = Field(
        description="OAuth 2.0 refresh token; it rotates, and the connector hands every new "
        "one back to be stored"
    )
    api_url: str = Field(
        PRODUCTION_API, description=f"API base URL ({SANDBOX_API} for Intuit sandbox companies)"
    )
    token_url: str = Field(TOKEN_URL, description="OAuth 2.0 token endpoint")
    minor_version: int = Field(75, ge=75, description="the API minor version sent with each call")
    page_size: int = Field(1000, ge=1, le=1000, description="MAXRESULTS of a query page")
    batch_size: int = Field(30, ge=1, le=50, description="items in one batch request")
    requests_per_minute: int = Field(500, ge=1, description="calls a minute (company limit)")
    batch_requests_per_minute: int = Field(40, ge=1, description="batch calls a minute")
    max_concurrent: int = Field(10, ge=1, le=10, description="calls in flight at once")
    timeout: float = Field(120.0, gt=0, description="seconds to wait for one answer")
    retries: int = Field(5, ge=0, le=20, description="retries of a failed call")
    retry_backoff: float = Field(1.0, ge=0, description="first pause between retries (doubles)")
    max_retry_after: float = Field(120.0, ge=0, description="longest pause honoured")
    stale_retries: int = Field(
        3, ge=0, le=10, description="re-read and re-apply after a stale SyncToken (5010)"
    )
    verify_tls: bool = True

    @property
    def company_url(self) -> str:
        return f"{self.api_url.rstrip('/')}/v3/company/{self.realm_id}"
