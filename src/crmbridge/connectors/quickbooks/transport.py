"""HTTP for the Accounting API: one httpx client, the company's limits, retries, OAuth.

* Limits are kept on our side so the server rarely has to refuse: at most
  ``requests_per_minute`` calls (``batch_requests_per_minute`` batch calls) in any 60
  seconds and ``max_concurrent`` in flight, per company: the connections of one process to
  the same company share them (:func:`company_limiter`).
* Retried with exponential backoff: 429 ThrottleExceeded, 5xx, timeouts and dropped
  connections. Writes carry a ``requestid`` the caller keeps across retries, so a retry of a
  write whose answer was lost is answered without being applied twice. A write that still
  fails after the last retry, and may have been applied (no answer, or a 5xx), raises
  :class:`~crmbridge.errors.AmbiguousWriteError`: the engine repeats it, with the same
  requestid.
* 401: the access token is renewed once and the call repeated.
* Every call sends ``minorversion``. A fault answer (HTTP 400 ``{"Fault": ...}``) raises
  :class:`QuickBooksFault` with the errors, for the caller to map.
"""

from __future__ import annotations

import email.utils
import logging
import random
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
from pydantic import SecretStr

from crmbridge.connectors.quickbooks.auth import TokenSource
from crmbridge.connectors.quickbooks.settings import QuickBooksSettings
from crmbridge.errors import (
    AmbiguousWriteError,
    ConnectionFailedError,
    ErrorContext,
    RemoteError,
    RetryableError,
    redact,
)

log = logging.getLogger("crmbridge.connectors.quickbooks")
MAX_BACKOFF = 60.0


@dataclass(frozen=True)
class FaultError:
    code: str
    message: str
    detail: str
    element: str | None = None

    def describe(self) -> str:
        where = f" ({self.element})" if self.element else ""
        return f"{self.code} {self.message}: {self.detail}{where}"


class QuickBooksFault(RemoteError):  # noqa: N818 - QuickBooks calls these faults
    """The API answered a fault; ``errors`` are its entries (``code`` 5010, 6240 ...)."""

    def __init__(self, errors: list[FaultError], *, status: int, context: ErrorContext) -> None:
        text = "; ".join(e.describe() for e in errors) or f"HTTP {status}"
        super().__init__(f"QuickBooks answered: {text}", context=context)
        self.errors = errors
        self.status = status

    @property
    def codes(self) -> set[str]:
        return {e.code for e in self.errors}


def parse_fault(body: Any) -> list[FaultError]:
    """The error entries of a ``Fault`` (or lower-case ``fault``) object; [] when none."""
    if not isinstance(body, dict):
        return []
    fault = body.get("Fault") or body.get("fault")
    if not isinstance(fault, dict):
        return []
    entries = fault.get("Error") or fault.get("error") or []
    out = []
    for entry in entries if isinstance(entries, list) else []:
        if isinstance(entry, dict):
            out.append(
                FaultError(
                    code=str(entry.get("code", "")),
                    message=str(entry.get("Message") or entry.get("message") or ""),
                    detail=str(entry.get("Detail") or entry.get("detail") or ""),
                    element=entry.get("element"),
                )
            )
    return out


class RateLimiter:
    """Calls a minute (batch calls a minute) and calls at once, for one company."""

    def __init__(
        self,
        per_minute: int,
        batch_per_minute: int,
        concurrent: int,
        sleep: Callable[[float], None] = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.per_minute = per_minute
        self.batch_per_minute = batch_per_minute
        self._slots = threading.BoundedSemaphore(concurrent)
        self._sleep = sleep
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._calls: deque[float] = deque()
        self._batches: deque[float] = deque()

    def acquire(self, *, batch: bool) -> None:
        """Wait until one more call fits; the caller must ``release()`` it."""
        self._slots.acquire()
        while True:
            with self._lock:
                now = self._monotonic()
                for window in (self._calls, self._batches):
                    while window and window[0] <= now - 60.0:
                        window.popleft()
                waits = []
                if len(self._calls) >= self.per_minute:
                    waits.append(self._calls[0] + 60.0 - now)
                if batch and len(self._batches) >= self.batch_per_minute:
                    waits.append(self._batches[0] + 60.0 - now)
                if not waits:
                    self._calls.append(now)
                    if batch:
                        self._batches.append(now)
                    return
            self._sleep(max(0.01, max(waits)))

    def release(self) -> None:
        self._slots.release()


_LIMITERS: dict[tuple[object, ...], RateLimiter] = {}
_LIMITERS_LOCK = threading.Lock()


def company_limiter(
    settings: QuickBooksSettings, sleep: Callable[[float], None] = time.sleep
) -> RateLimiter:
    """The one limiter of a company in this process: every connection to it (a run's source
    and target, a sync's two sides) counts against the same limits."""
    key = (
        settings.company_url,
        settings.requests_per_minute,
        settings.batch_requests_per_minute,
        settings.max_concurrent,
    )
    with _LIMITERS_LOCK:
        if key not in _LIMITERS:
            _LIMITERS[key] = RateLimiter(
                settings.requests_per_minute,
                settings.batch_requests_per_minute,
                settings.max_concurrent,
                sleep=sleep,
            )
        return _LIMITERS[key]


class Transport:
    """Sends the calls of one connection; thread-safe."""

    def __init__(
        self,
        settings: QuickBooksSettings,
        connection: str,
        transport: httpx.BaseTransport | None = None,
        *,
        sleep: Callable[[float], None] = time.sleep,
        on_refresh_token: Callable[[SecretStr], None] | None = None,
    ) -> None:
        self.settings = settings
        self.connection = connection
        self._sleep = sleep
        self._client = httpx.Client(
            timeout=settings.timeout,
            verify=settings.verify_tls,
            transport=transport,
            headers={"User-Agent": "crmbridge", "Accept": "application/json"},
            limits=httpx.Limits(
                max_connections=settings.max_concurrent,
                max_keepalive_connections=settings.max_concurrent,
            ),
        )
        self.limits = company_limiter(settings, sleep)
        self.tokens = TokenSource(
            settings, self._client, context=self.context(), on_refresh_token=on_refresh_token
        )

    def close(self) -> None:
        self._client.close()

    def context(self, object: str | None = None) -> ErrorContext:
        return ErrorContext(connection=self.connection, object=object)

    def _secrets(self) -> list[str]:
        return [
            self.tokens.refresh_token.get_secret_value(),
            self.settings.client_secret.get_secret_value(),
        ]

    def call(
        self,
        method: str,
        path: str,
        *,
        what: str,
        object: str | None = None,
        params: dict[str, str] | None = None,
        json: Any = None,
        content: str | None = None,
    ) -> dict[str, Any]:
        """The JSON answer of ``method path`` (relative to the company URL), retried as the
        module docstring says. A write must carry ``requestid`` in ``params``."""
        url = f"{self.settings.company_url}/{path}"
        query = {**(params or {}), "minorversion": str(self.settings.minor_version)}
        headers = {"Content-Type": "application/text"} if content is not None else {}
        is_write = method == "POST" and not path.startswith("query")
        if is_write and "requestid" not in query:
            raise AssertionError("a write needs a requestid")  # pragma: no cover
        attempts = self.settings.retries + 1
        renewed = False
        attempt = 0
        maybe_applied = False
        while True:
            attempt += 1
            try:
                token = self.tokens.access_token()
            except RetryableError as err:  # the token endpoint failed for a moment
                token, response, failure, wait = "", None, err.message, None
            else:
                response, failure, wait = self._send(
                    method, url, query, json, content, headers, token, path
                )
                sent = not failure.startswith("the connection failed (Connect")
                maybe_applied = maybe_applied or (response is None and sent)
            if response is not None:
                status = response.status_code
                if status == 401 and not renewed:
                    renewed = True
                    self.tokens.invalidate(token)
                    attempt -= 1
                    continue
                if status == 200:
                    answer: dict[str, Any] = response.json()
                    return answer
                if status not in (429,) and status < 500:
                    raise self._failure(response, what, object)
                failure = f"HTTP {status}" + (" (throttled)" if status == 429 else "")
                maybe_applied = maybe_applied or status >= 500
                wait = _retry_after(response)
                if wait is not None and wait > self.settings.max_retry_after:
                    raise RetryableError(
                        f"{what}: QuickBooks asks to wait {wait:.0f} s",
                        context=self.context(object),
                        retry_after=wait,
                    )
            if attempt >= attempts:
                kind = AmbiguousWriteError if is_write and maybe_applied else RetryableError
                raise kind(
                    f"{what}: {failure} (gave up after {attempts} attempts)",
                    context=self.context(object),
                )
            pause = max(self._backoff(attempt), wait or 0.0)
            log.warning(
                "connection %r, %s: %s; retry %d of %d in %.2f s",
                self.connection, what, failure, attempt, attempts - 1, pause,
            )  # fmt: skip
            self._sleep(pause)

    def _send(
        self,
        method: str,
        url: str,
        query: dict[str, str],
        json: Any,
        content: str | None,
        headers: dict[str, str],
        token: str,
        path: str,
    ) -> tuple[httpx.Response | None, str, float | None]:
        """One attempt: the response, or None and why it failed."""
        self.limits.acquire(batch=path == "batch")
        try:
            response = self._client.request(
                method,
                url,
                params=query,
                json=json,
                content=content,
                headers={**headers, "Authorization": f"Bearer {token}"},
            )
        except httpx.TransportError as err:
            failure = (
                "no answer in time"
                if isinstance(err, httpx.TimeoutException)
                else f"the connection failed ({type(err).__name__})"
            )
            return None, failure, None
        finally:
            self.limits.release()
        return response, "", None

    def _failure(self, response: httpx.Response, what: str, object: str | None) -> Exception:
        context = self.context(object)
        try:
            body = response.json()
        except ValueError:
            body = None
        errors = [
            FaultError(
                e.code,
                redact(e.message, self._secrets()),
                redact(e.detail, self._secrets()),
                e.element,
            )
            for e in parse_fault(body)
        ]
        if response.status_code in (401, 403):
            text = "; ".join(e.describe() for e in errors) or f"HTTP {response.status_code}"
            return ConnectionFailedError(
                f"{what}: QuickBooks refused access to company {self.settings.realm_id}: {text}",
                context=context,
            )
        if not errors:
            text = redact(" ".join(response.text.split())[:200], self._secrets())
            return RemoteError(f"{what}: HTTP {response.status_code}: {text}", context=context)
        return QuickBooksFault(errors, status=response.status_code, context=context)

    def _backoff(self, attempt: int) -> float:
        base = self.settings.retry_backoff * 2 ** (attempt - 1)
        return float(min(MAX_BACKOFF, base * random.uniform(0.5, 1.5)))


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())
