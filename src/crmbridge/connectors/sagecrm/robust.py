"""Retries with backoff, the one error a write raises when its outcome is unknown, and the
server's error messages turned into ones a user can act on.

A read call is retried on a transient failure (HTTP 5xx that is not a SOAP fault, a timeout,
a dropped connection), with exponential backoff and jitter. A call that changes data is
retried only when the server cannot have acted on it (connection refused, HTTP 503); any other
failure raises :class:`OutcomeUnknownError`, for the caller to find out what was written.
A refused password is never retried: repeated bad passwords lock a Sage CRM account.
"""

from __future__ import annotations

import logging
import random
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from crmbridge.errors import (
    AmbiguousWriteError,
    ConfigError,
    ConnectionFailedError,
    CrmBridgeError,
    ErrorContext,
    RemoteError,
    RetryableError,
)

log = logging.getLogger("crmbridge.connectors.sagecrm")
T = TypeVar("T")
MAX_BACKOFF = 60.0


class OutcomeUnknownError(AmbiguousWriteError):
    """A call that changes data failed so that we cannot tell whether the server applied it
    (the connection dropped or timed out after the request was sent, or the server answered
    an error page). ``unknown`` are the positions of the operations concerned."""

    def __init__(
        self, message: str, *, context: ErrorContext | None = None, unknown: tuple[int, ...] = ()
    ) -> None:
        super().__init__(message, context=context)
        self.unknown = unknown
        #: the results settled before this call (None where unknown or not sent)
        self.done: list[Any] = []


@dataclass(frozen=True)
class Failure:
    """A transient failure of one call."""

    message: str
    #: whether the server may have received and acted on the request
    maybe_applied: bool


def retrying(
    call: Callable[[], T],
    *,
    what: str,
    classify: Callable[[Exception], Failure | None],
    changes: bool,
    retries: int,
    backoff: float,
    sleep: Callable[[float], None],
    context: ErrorContext,
) -> T:
    """``call()``, retried as the module docstring says. ``classify`` tells a transient
    failure from an exception that is raised at once (None)."""
    attempts = retries + 1
    for attempt in range(1, attempts + 1):
        try:
            return call()
        except CrmBridgeError:
            raise
        except Exception as err:
            failure = classify(err)
            if failure is None:
                raise
            if changes and failure.maybe_applied:
                raise OutcomeUnknownError(
                    f"{what}: {failure.message}; it may or may not have been applied",
                    context=context,
                ) from err
            if attempt == attempts:
                raise RetryableError(
                    f"{what}: {failure.message} (gave up after {attempts} attempts)",
                    context=context,
                ) from err
            pause = min(MAX_BACKOFF, backoff * 2 ** (attempt - 1) * random.uniform(0.5, 1.5))
            log.warning(
                "connection %r, %s: %s; retry %d of %d in %.2f s",
                context.connection,
                what,
                failure.message,
                attempt,
                retries,
                pause,
            )
            sleep(pause)
    raise AssertionError("unreachable")  # pragma: no cover


# -- the server's messages ----------------------------------------------------------------
_NOT_ENABLED = re.compile(r"Entity '([^']*)' is not Web Service enabled", re.IGNORECASE)
LOGON_REFUSALS = ("logon failed", "locked", "not allowed to use web services", "password")
SESSION_WORDS = ("session",)


def is_session_fault(message: str) -> bool:
    """Whether a fault says the session is unknown, expired or ended by another logon."""
    text = message.lower()
    return "session" in text and any(w in text for w in ("invalid", "expired", "ended", "not"))


def is_logon_refusal(message: str) -> bool:
    text = message.lower()
    return any(word in text for word in LOGON_REFUSALS)


def logon_refused(message: str, user: str, context: ErrorContext) -> ConnectionFailedError:
    """The error for a refused logon; says that crmbridge will not try again."""
    text = message.lower()
    if "locked" in text:
        hint = "the account is locked: an administrator must unlock it"
    elif "not allowed" in text:
        hint = "give the user web service access in Administration | Users"
    else:
        hint = "check the user name and password"
    return ConnectionFailedError(
        f"the CRM refused the logon of user {user!r}: {message} ({hint}; crmbridge does not "
        "try again, as repeated bad passwords lock the account)",
        context=context,
    )


def server_error(message: str, *, what: str, context: ErrorContext) -> CrmBridgeError:
    """The crmbridge error for a fault or error answer that is not about one record."""
    found = _NOT_ENABLED.search(message)
    if found:
        return ConfigError(
            f"Entity '{found.group(1)}' is not Web Service enabled: enable 'Allow Web Service "
            "Access' for it in Administration",
            context=context,
        )
    text = message.lower()
    if "web services are not enabled" in text or "web services are disabled" in text:
        return ConnectionFailedError(
            "web services are switched off on the CRM: turn on 'Enable Web Services' in "
            "Administration | System | Web Services",
            context=context,
        )
    if "query failed to run successfully" in text:
        return RemoteError(
            f"{what}: the CRM could not run the query ({message}); a field that is not a "
            "column of the table or a value that does not convert does this",
            context=context,
        )
    if "does not exist" in text and "entity" in text and "record" not in text:
        return ConfigError(f"{what}: {message}", context=context)
    return RemoteError(f"{what} failed: {message}", context=context)


_POSITION = re.compile(r"^\s*Record (\d+):\s*(.*)$", re.DOTALL)


def record_position(message: str) -> tuple[int, str] | None:
    """``(position, reason)`` of a fault that names the refused record ("Record 2: ...")."""
    found = _POSITION.match(message)
    return (int(found.group(1)), found.group(2).strip()) if found else None
