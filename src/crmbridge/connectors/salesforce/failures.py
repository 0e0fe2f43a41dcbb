"""Salesforce's error answers as crmbridge errors, and the errors only this connector raises.

Messages name the connection and never hold a password, secret, private key or token.
"""

from __future__ import annotations

from typing import Any

from crmbridge.errors import AmbiguousWriteError, FatalError, RetryableError


class OutcomeUnknownError(AmbiguousWriteError):
    """A call that changes data failed in a way that leaves open whether Salesforce applied it
    (the connection dropped, or an error answer came after the request was taken). It is the
    engine's :class:`~crmbridge.errors.AmbiguousWriteError`: the engine repeats the operations
    (``attempt > 1``) and the connector confirms what it finds applied instead of applying it
    twice."""


class QuotaError(FatalError):
    """The org's daily API requests are (nearly) used up: the run stops instead of spending
    the rest, which the org's other integrations need too."""


class QueryLocatorError(RetryableError):
    """A query cursor (``nextRecordsUrl``) expired before it was read to the end."""


def error_items(content: Any) -> list[dict[str, Any]]:
    """The ``[{"message", "errorCode", "fields"}]`` items of an error answer."""
    if isinstance(content, dict):
        content = [content]
    if not isinstance(content, list):
        return []
    return [item for item in content if isinstance(item, dict)]


def error_code(content: Any) -> str:
    items = error_items(content)
    return str(items[0].get("errorCode", "")) if items else ""


def error_text(content: Any) -> str:
    """``CODE: message`` of each item, one line (Salesforce's messages may hold newlines)."""
    items = error_items(content)
    if not items:
        text = content.decode("utf-8", "replace") if isinstance(content, bytes) else str(content)
        return " ".join(text.split())[:300]
    parts = []
    for item in items:
        message = " ".join(str(item.get("message", "")).split())
        code = item.get("errorCode") or item.get("statusCode") or ""
        parts.append(f"{code}: {message}" if code else message)
    return "; ".join(parts)
