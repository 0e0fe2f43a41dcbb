"""Sugar's error answers turned into crmbridge errors with messages a user can act on.

Messages name the connection and never hold a password, hash, session id or token.
"""

from __future__ import annotations

from typing import Any

import httpx

from crmbridge.errors import (
    ConfigError,
    ConnectionFailedError,
    CrmBridgeError,
    ErrorContext,
    RemoteError,
    UnsupportedOperationError,
)

#: v4_1 error numbers of a refused login or session
LOGIN_ERRORS = frozenset({10, 12, 60, 1008, 1009, 1012})
INVALID_SESSION = 11


def v4_1_error_number(answer: Any) -> int | None:
    """The error number when ``answer`` is a v4_1 error object (``{"name", "number",
    "description"}``, sometimes with the number as a string), else None."""
    if not isinstance(answer, dict) or set(answer) - {"name", "number", "description"}:
        return None
    if "number" not in answer or "name" not in answer:
        return None
    try:
        return int(str(answer["number"]))
    except ValueError:
        return -1


def login_failure(number: int, answer: dict[str, Any], connection: str, user: str) -> Exception:
    """The ConnectionFailedError for a refused v4_1 login (or the v10 equivalent)."""
    who = f"user {user!r}"
    messages = {
        10: f"wrong user name or password for connection {connection!r} ({who}); with LDAP "
        "authentication set password_encryption: plain",
        12: f"{who} is not configured to use the API (error 12)",
        60: f"too many sessions for {who}: the CRM allows only a limited number at once; "
        "close other sessions (or raise the limit) and try again",
        1008: f"the password of {who} has expired: change it in the CRM",
        1009: f"{who} is locked out after too many failed logins",
        1012: f"LDAP authentication failed for {who}: {answer.get('description', '')}",
    }
    return ConnectionFailedError(messages[number])


def v4_1_error(
    answer: dict[str, Any],
    *,
    method: str,
    context: ErrorContext,
    query: str | None = None,
) -> CrmBridgeError:
    """The crmbridge error for a v4_1 error object answered by ``method``."""
    number = v4_1_error_number(answer) or 0
    name = str(answer.get("name", "")).strip()
    description = str(answer.get("description", "")).strip()
    module = context.object
    if number == INVALID_SESSION:
        return ConnectionFailedError(
            "the session expired again right after logging in again (is the CRM binding "
            "sessions to an IP address?)",
            context=context,
        )
    if number == 20:
        return ConfigError(f"module {module!r} does not exist on the CRM", context=context)
    if number == 30:
        return UnsupportedOperationError(
            f"module {module!r} cannot be used through the API", context=context
        )
    if number == 31:
        return ConfigError(
            f"the CRM does not support that relationship: {description}", context=context
        )
    if number == 40 and query:
        return RemoteError(f"the CRM refused the filter: {query}", context=context)
    if number == 40:
        return RemoteError(f"access denied: the user may not {method} here", context=context)
    if number == 70:
        return RemoteError(f"{method} needs an administrator user", context=context)
    if number == -1:
        return RemoteError(
            f"the CRM does not know the method {method!r}: is the URL a SugarCRM/SuiteCRM "
            "v4_1 endpoint?",
            context=context,
        )
    return RemoteError(f"{method} failed: {name} (error {number}): {description}", context=context)


def explain_v4_1_status(response: httpx.Response) -> str:
    """What a failed HTTP answer of the v4_1 endpoint means."""
    body = response.text.strip()
    if response.status_code == 500 and not body:
        return (
            "HTTP 500 with an empty body: a PHP error in the CRM (on PHP 8 servers a call "
            "whose parameter names or types the server does not accept fails this way; "
            "see the CRM's PHP error log)"
        )
    if "Database failure" in body:
        return (
            "HTTP 500 'Database failure': the CRM's database refused the query (a filter on "
            "a field that is not a database column does this; see suitecrm.log)"
        )
    return f"HTTP {response.status_code} {response.reason_phrase}: {' '.join(body.split())[:200]}"


def is_database_failure(response: httpx.Response) -> bool:
    return response.status_code == 500 and "Database failure" in response.text


def v10_error(response: httpx.Response, *, what: str, context: ErrorContext) -> CrmBridgeError:
    """The crmbridge error for a failed REST v10 answer."""
    label, message = v10_error_text(response)
    status = response.status_code
    text = f"{what}: {message or label or response.reason_phrase} (HTTP {status}"
    text += f" {label})" if label else ")"
    if status == 401:
        return ConnectionFailedError(text, context=context)
    if status == 404 and context.object and what.startswith("list"):
        return ConfigError(f"module {context.object!r} does not exist on the CRM", context=context)
    if status == 413:
        return RemoteError(text + "; lower max_batch_size", context=context)
    return RemoteError(text, context=context)


def v10_error_text(response: httpx.Response) -> tuple[str, str]:
    """``(error label, error_message)`` of a v10 error answer ('' when absent)."""
    try:
        body = response.json()
    except ValueError:
        return "", " ".join(response.text.split())[:200]
    if not isinstance(body, dict):
        return "", ""
    return str(body.get("error", "")), str(body.get("error_message", ""))
