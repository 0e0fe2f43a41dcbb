"""What every handler needs: the store, the tokens, the faults, the settings, the API quota,
the open query cursors and the Bulk API jobs; and the shapes of a request and an answer."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from typing import Any

from crmbridge.sandbox.salesforce.auth import ConnectedApp, Tokens
from crmbridge.sandbox.salesforce.errors import ApiError
from crmbridge.sandbox.salesforce.faults import Faults
from crmbridge.sandbox.salesforce.store import Store

API_VERSIONS = tuple(f"{v}.0" for v in range(31, 63))


@dataclass(frozen=True)
class Settings:
    api_limit: int = 15_000
    #: records per query answer when the client does not ask (``Sforce-Query-Options``)
    query_batch_size: int = 2000
    #: seconds a query cursor lives without being used
    query_locator_ttl: float = 900.0
    #: polls of a Bulk job that answer ``InProgress`` before it completes
    bulk_polls: int = 1
    #: a Bulk ingest job stops after this many records (the rest are unprocessed); None: never
    bulk_stop_after: int | None = None


@dataclass
class Request:
    method: str
    version: str  # "59.0"; "" outside /services/data/vXX.X
    parts: list[str]  # the path after /services/data/vXX.X/ (or after /services/)
    args: dict[str, str]
    body: bytes
    headers: dict[str, str]  # lower-case names
    user_id: str = ""

    def json(self) -> Any:
        if not self.body.strip():
            return None
        try:
            return json.loads(self.body)
        except ValueError:
            raise ApiError(400, "JSON_PARSER_ERROR", "The request body is not valid JSON") from None


@dataclass
class Response:
    status: int
    body: Any = None  # JSON-able, or bytes for CSV
    content_type: str = "application/json;charset=UTF-8"
    headers: list[tuple[str, str]] = field(default_factory=list)

    def encoded(self) -> bytes:
        if isinstance(self.body, bytes):
            return self.body
        if self.body is None:
            return b""
        return json.dumps(self.body).encode("utf-8")


class Quota:
    """The org's daily API request count."""

    def __init__(self, limit: int) -> None:
        self._lock = threading.Lock()
        self.limit = limit
        self.used = 0

    def take(self) -> bool:
        """Count one call; False when the quota is used up (the call is refused)."""
        with self._lock:
            if self.used >= self.limit:
                return False
            self.used += 1
            return True

    def set(self, used: int, limit: int | None = None) -> None:
        with self._lock:
            self.used = max(0, used)
            if limit is not None:
                self.limit = limit

    def header(self) -> str:
        with self._lock:
            return f"api-usage={self.used}/{self.limit}"


@dataclass
class Context:
    store: Store
    tokens: Tokens
    faults: Faults
    settings: Settings
    quota: Quota
    apps: list[ConnectedApp]
    #: username -> (password + security token, user id)
    users: dict[str, tuple[str, str]]
    #: the sandbox's base URL once it serves (``https://127.0.0.1:PORT``)
    base_url: str = ""
    lock: threading.RLock = field(default_factory=threading.RLock)
    cursors: dict[str, Any] = field(default_factory=dict)
    jobs: dict[str, Any] = field(default_factory=dict)
