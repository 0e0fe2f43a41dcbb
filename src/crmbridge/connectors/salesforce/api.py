"""One logged-in Salesforce session: simple-salesforce over a ``requests`` session, with the
connector's rules for every call.

* **Login and refresh.** :meth:`Api.login` asks for a token (:mod:`.auth`); a call answered
  401 ``INVALID_SESSION_ID`` logs in again and is sent once more (a second 401 is a
  ConnectionFailedError).
* **Quota.** Every answer's ``Sforce-Limit-Info`` is read (a response hook on the session, so
  Bulk API calls count too); :class:`.quota.QuotaWatch` paces or stops the next call, and 403
  ``REQUEST_LIMIT_EXCEEDED`` is a QuotaError.
* **Retries.** HTTP 5xx, timeouts and dropped connections are retried with exponential backoff.
  A call that changes data (``changes=True``) is retried only when Salesforce cannot have acted
  on it (503, connection refused); any other failure of such a call is an
  :class:`.failures.OutcomeUnknownError`.
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import requests
from requests.adapters import HTTPAdapter
from simple_salesforce.api import Salesforce
from simple_salesforce.exceptions import (
    SalesforceError,
    SalesforceExpiredSession,
    SalesforceMalformedRequest,
    SalesforceRefusedRequest,
    SalesforceResourceNotFound,
)
from simple_salesforce.util import exception_handler

from crmbridge.connectors.salesforce import auth
from crmbridge.connectors.salesforce.failures import (
    OutcomeUnknownError,
    QueryLocatorError,
    QuotaError,
    error_code,
    error_text,
)
from crmbridge.connectors.salesforce.quota import QuotaWatch
from crmbridge.connectors.salesforce.settings import SalesforceSettings
from crmbridge.errors import (
    ConfigError,
    ConnectionFailedError,
    ErrorContext,
    RemoteError,
    RetryableError,
    redact,
)

log = logging.getLogger("crmbridge.connectors.salesforce")
T = TypeVar("T")
MAX_BACKOFF = 60.0
#: statuses that say Salesforce did not act on the call
NOT_PROCESSED = frozenset({503})


class _Adapter(HTTPAdapter):
    """Sends with the connection's timeout unless a call gives its own, and trusts the
    connection's CA file when it has one (requests would let ``REQUESTS_CA_BUNDLE`` win over a
    session's own setting); never retries by itself."""

    def __init__(self, timeout: float, ca_file: str | None) -> None:
        super().__init__(max_retries=0)
        self.timeout = timeout
        self.ca_file = ca_file

    def send(self, request: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self.timeout
        if self.ca_file:
            kwargs["verify"] = self.ca_file
        return super().send(request, **kwargs)


def _refused(err: BaseException) -> bool:
    """Whether a requests error means the request never reached the server."""
    seen: BaseException | None = err
    while seen is not None:
        if type(seen).__name__ in ("NewConnectionError", "ConnectionRefusedError"):
            return True
        nested = getattr(seen, "reason", None)
        if isinstance(nested, BaseException) and nested is not seen and _refused(nested):
            return True
        args = [a for a in getattr(seen, "args", ()) if isinstance(a, BaseException)]
        if any(_refused(a) for a in args):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


class Api:
    """The session of one connection; thread-safe."""

    def __init__(
        self,
        settings: SalesforceSettings,
        connection: str,
        *,
        base_dir: Path,
        sleep: Callable[[float], None],
    ) -> None:
        self.settings = settings
        self.connection = connection
        self.base_dir = base_dir
        self._sleep = sleep
        self._lock = threading.RLock()
        self.session = requests.Session()
        ca_file = None
        if settings.ca_file:
            path = Path(settings.ca_file)
            ca_file = str(path if path.is_absolute() else base_dir / path)
        adapter = _Adapter(settings.timeout, ca_file)
        self.session.mount("https://", adapter)
        self.session.mount("http://", adapter)
        self.session.headers["User-Agent"] = "crmbridge"
        self.session.hooks["response"].append(self._observe)
        self.quota = QuotaWatch(
            slow_down=settings.quota_slow_down,
            stop=settings.quota_stop,
            pause=settings.quota_pause,
            sleep=sleep,
            context=self.context(),
        )
        self._sf: Salesforce | None = None
        self.token: auth.Token | None = None
        self.logins = 0

    def context(self, object: str | None = None) -> ErrorContext:
        return ErrorContext(connection=self.connection, object=object)

    def _observe(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        self.quota.observe(response.headers.get("Sforce-Limit-Info"))

    # -- session --------------------------------------------------------------------------
    def login(self) -> None:
        """Ask for a new access token and build the simple-salesforce client on it."""
        token = auth.login(
            self.session,
            self.settings,
            base_dir=self.base_dir,
            timeout=self.settings.timeout,
            context=self.context(),
        )
        with self._lock:
            self.token = token
            self._sf = Salesforce(
                instance_url=token.instance_url,
                session_id=token.access_token,
                version=self.settings.api_version,
                session=self.session,
            )
            self.logins += 1

    @property
    def sf(self) -> Salesforce:
        with self._lock:
            if self._sf is None:
                self.login()
            assert self._sf is not None
            return self._sf

    def close(self) -> None:
        self.session.close()

    def secrets(self) -> list[str]:
        s = self.settings
        values = [s.password, s.security_token, s.client_secret, s.private_key]
        out = [v.get_secret_value() for v in values]
        if self.token is not None:
            out.append(self.token.access_token)
        return out

    # -- calls ----------------------------------------------------------------------------
    def call(
        self,
        what: str,
        fn: Callable[[Salesforce], T],
        *,
        changes: bool = False,
        object: str | None = None,
    ) -> T:
        """``fn(sf)`` under the rules of the module docstring. ``what`` names the call in
        messages."""
        refreshed = False
        attempt = 0
        context = self.context(object)
        while True:
            self.quota.before_call(what)
            sf = self.sf
            try:
                return fn(sf)
            except SalesforceExpiredSession as err:
                if refreshed or error_code(err.content) != "INVALID_SESSION_ID":
                    raise ConnectionFailedError(
                        f"{what}: Salesforce refused the session again right after a new login "
                        f"({self._text(err.content)})",
                        context=context,
                    ) from None
                log.info("connection %r: the session expired; logging in again", self.connection)
                refreshed = True
                with self._lock:
                    if self._sf is sf:
                        self.login()
                continue
            except SalesforceRefusedRequest as err:
                if error_code(err.content) == "REQUEST_LIMIT_EXCEEDED":
                    raise QuotaError(
                        f"{what}: the org's daily API request limit is used up "
                        f"({self.quota.describe()}); run again once the 24-hour window frees "
                        "requests",
                        context=context,
                    ) from None
                raise RemoteError(f"{what}: {self._text(err.content)}", context=context) from None
            except SalesforceMalformedRequest as err:
                if error_code(err.content) == "INVALID_QUERY_LOCATOR":
                    raise QueryLocatorError(
                        f"{what}: the query cursor expired", context=context
                    ) from None
                raise RemoteError(f"{what}: {self._text(err.content)}", context=context) from None
            except SalesforceResourceNotFound as err:
                if object and "sobjects" in str(err.url):
                    raise ConfigError(
                        f"Salesforce has no object {object!r} ({self._text(err.content)})",
                        context=context,
                    ) from None
                raise RemoteError(f"{what}: {self._text(err.content)}", context=context) from None
            except SalesforceError as err:
                if err.status < 500:
                    raise RemoteError(
                        f"{what}: HTTP {err.status}: {self._text(err.content)}", context=context
                    ) from None
                failure = f"HTTP {err.status}: {self._text(err.content)}"
                if changes and err.status not in NOT_PROCESSED:
                    raise OutcomeUnknownError(
                        f"{what}: {failure}; it may or may not have been applied",
                        context=context,
                    ) from None
            except (requests.ConnectionError, requests.Timeout) as err:
                failure = (
                    "no answer in time"
                    if isinstance(err, requests.Timeout)
                    else f"the connection failed ({type(err).__name__})"
                )
                sent = not (isinstance(err, requests.ConnectTimeout) or _refused(err))
                if changes and sent:
                    raise OutcomeUnknownError(
                        f"{what}: {failure}; it may or may not have been applied",
                        context=context,
                    ) from None
            attempt += 1
            if attempt > self.settings.retries:
                raise RetryableError(
                    f"{what}: {failure} (gave up after {attempt} attempts)", context=context
                )
            pause = self._backoff(attempt)
            log.warning(
                "connection %r, %s: %s; retry %d of %d in %.2f s",
                self.connection, what, failure, attempt, self.settings.retries, pause,
            )  # fmt: skip
            self._sleep(pause)

    def _text(self, content: Any) -> str:
        return redact(error_text(content), self.secrets())

    def _backoff(self, attempt: int) -> float:
        base = self.settings.retry_backoff * 2 ** (attempt - 1)
        return float(min(MAX_BACKOFF, base * random.uniform(0.5, 1.5)))

    def pause(self, seconds: float) -> None:
        self._sleep(seconds)


def raw(
    sf: Salesforce,
    method: str,
    path: str,
    *,
    content_type: str = "application/json",
    accept: str = "application/json",
    **kwargs: Any,
) -> requests.Response:
    """A call to ``{base_url}{path}`` with the session's headers, for the answers
    simple-salesforce's REST helpers cannot read (CSV). Error answers raise the same
    simple-salesforce exceptions as its own calls."""
    headers = {**sf.headers, "Content-Type": content_type, "Accept": accept}
    response = sf.session.request(method, sf.base_url + path, headers=headers, **kwargs)
    if response.status_code >= 300:
        exception_handler(response)
    return response
