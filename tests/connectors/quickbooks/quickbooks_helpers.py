"""Helpers of the QuickBooks connector tests."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from crmbridge.connectors.quickbooks import QuickBooksConnector, QuickBooksSettings
from crmbridge.sandbox.quickbooks import QuickBooksSandbox

Connect = Callable[..., QuickBooksConnector]


def settings_for(box: QuickBooksSandbox, url: str, **overrides: Any) -> QuickBooksSettings:
    values: dict[str, Any] = {
        "realm_id": box.realm_id,
        "client_id": box.client_id,
        "client_secret": box.client_secret,
        "refresh_token": box.issue_refresh_token(),
        "api_url": url,
        "token_url": f"{url}/oauth2/v1/tokens/bearer",
        "retry_backoff": 0.001,
    }
    return QuickBooksSettings(**{**values, **overrides})
