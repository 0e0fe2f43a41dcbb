"""HTTP for both APIs: one httpx client, a concurrency limit, retries with backoff.

Retried: HTTP 429, 5xx, timeouts and dropped connections, with exponential backoff and jitter,
honouring ``Retry-After``. A call that changes data (``changes=True``) is retried only when the
server cannot have acted on it (429, 503, connection refused); any other failure of such a call
is an :class:`AmbiguousWriteError` for the caller to sort out (it checks what was written).
"""

from __future__ import annotations

import email.utils
import logging
import random
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx

from crmbridge.connectors.sugarcrm.settings import SugarCrmSettings
from crmbridge.errors import AmbiguousWriteError, ErrorContext, RetryableError

log = logging.getLogger("crmbridge.connectors.sugarcrm")

#: statuses that say the server did not act on the call
NOT_PROCESSED_STATUSES = frozenset({429, 503})
MAX_BACKOFF = 60.0


def is_transient(status: int) -> bool:
    """Whether the same call may succeed later: HTTP 429 and every 5xx."""
    return status == 429 or 500 <= status <= 599


def retry_after(response: httpx.Response) -> float | None:
    """Seconds the server asked us to wait (``Retry-After`` as seconds or an HTTP date)."""
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


def describe_status(response: httpx.Response) -> str:
    """``HTTP 503 Service Unavailable: <start of the body>`` for messages."""
    text = " ".join(response.text.split())[:200]
    return f"HTTP {response.status_code} {response.reason_phrase}" + (f": {text}" if text else "")


class Transport:
    """Sends requests for one connection; thread-safe."""

    def __init__(
        self,
        settings: SugarCrmSettings,
        connection: str,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.settings = settings
        self.connection = connection
        self._sleep = sleep
        self._slots = threading.BoundedSemaphore(settings.max_connections)
        self._client = httpx.Client(
            timeout=settings.timeout,
            verify=settings.verify_tls,
            transport=transport,
            follow_redirects=True,
            limits=httpx.Limits(
                max_connections=settings.max_connections,
                max_keepalive_connections=settings.max_connections,
            ),
            headers={"User-Agent": "crmbridge"},
        )

    def close(self) -> None:
        self._client.close()

    def context(self, object: str | None = None) -> ErrorContext:
        return ErrorContext(connection=self.connection, object=object)

    def send(
        self,
        method: str,
        url: str,
        *,
        what: str,
        changes: bool = False,
        object: str | None = None,
        explain: Callable[[httpx.Response], str] = describe_status,
        final: Callable[[httpx.Response], bool] | None = None,
        retry: bool = True,
        **kwargs: Any,
    ) -> httpx.Response:
        """The response to the request, retried per the module docstring.

        ``what`` names the call in messages (e.g. ``get_entry_list``); ``explain`` turns a
        final failed response into the text of the RetryableError; ``final`` picks failed
        responses that are returned at once instead (errors that a retry cannot cure);
        ``retry=False`` sends once (for courtesy calls such as logging out).
        """
        attempts = self.settings.retries + 1 if retry else 1
        for attempt in range(1, attempts + 1):
            try:
                with self._slots:
                    response = self._client.request(method, url, **kwargs)
            except httpx.ConnectError as err:
                failure, wait = f"cannot connect to {self.settings.display_url} ({err})", None
            except (httpx.TimeoutException, httpx.TransportError) as err:
                failure = (
                    "no answer in time"
                    if isinstance(err, httpx.TimeoutException)
                    else f"the connection dropped ({type(err).__name__})"
                )
                wait = None
                if changes and not isinstance(err, httpx.ConnectTimeout | httpx.PoolTimeout):
                    raise AmbiguousWriteError(
                        f"{what}: {failure}; it may or may not have been applied",
                        context=self.context(object),
                    ) from err
            else:
                status = response.status_code
                if not is_transient(status) or (final is not None and final(response)):
                    return response
                failure, wait = explain(response), retry_after(response)
                if changes and status not in NOT_PROCESSED_STATUSES:
                    raise AmbiguousWriteError(
                        f"{what}: {failure}; it may or may not have been applied",
                        context=self.context(object),
                    )
                if wait is not None and wait > self.settings.max_retry_after:
                    raise RetryableError(
                        f"{what}: the server asks to wait {wait:.0f} s before trying again",
                        context=self.context(object),
                        retry_after=wait,
                    )
            if attempt == attempts:
                raise RetryableError(
                    f"{what}: {failure} (gave up after {attempts} attempts)",
                    context=self.context(object),
                    retry_after=wait,
                )
            pause = max(self._backoff(attempt), wait or 0.0)
            log.warning(
                "connection %r, %s: %s; retry %d of %d in %.2f s",
                self.connection,
                what,
                failure,
                attempt,
                attempts - 1,
                pause,
            )
            self._sleep(pause)
        raise AssertionError("unreachable")  # pragma: no cover

    def pause(self, attempt: int) -> None:
        """Wait before retry number ``attempt`` (exponential backoff with jitter)."""
        self._sleep(self._backoff(attempt))

    def _backoff(self, attempt: int) -> float:
        base = self.settings.retry_backoff * 2 ** (attempt - 1)
        return float(min(MAX_BACKOFF, base * random.uniform(0.5, 1.5)))
