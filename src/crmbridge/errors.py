"""Every error crmbridge raises, grouped by what the run does about it.

    CrmBridgeError                 root: catch this to catch everything of ours
    ├── FatalError                 stop the run; nothing more is written
    │   ├── ConfigError            a profile, connection or option is wrong (exit code 2)
    │   │   └── ProfileError       a profile file is invalid; lists every problem at once
    │   ├── ConnectionFailedError  a system cannot be reached or refuses our credentials
    │   ├── UnsupportedOperationError  the system cannot do that (e.g. write to Access)
    │   └── RemoteError            the remote system answered with an unrecoverable error
    ├── RetryableError             transient (timeout, HTTP 429/5xx, deadlock): back off and retry
    │   └── AmbiguousWriteError    a write failed in a way that leaves open whether it was applied:
    │                              the engine repeats the same operations, which the target confirms
    └── RecordError                one record is rejected; the run goes on (error policy permitting)

Each error carries an :class:`ErrorContext` naming the profile, object, record and field
involved, and its message includes them, e.g.::

    profile 'leads', object 'Leads', record 12, field 'email1': 120 characters, limit 100

Secrets never go into messages: code that builds a message from text it did not write (a
driver's error, a server's answer) passes it through :func:`redact` with the secret values.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any, Protocol


class ErrorKind(enum.StrEnum):
    """What the engine does about an error."""

    FATAL = "fatal"  # abort the run
    RETRYABLE = "retryable"  # back off and try the same call again
    RECORD = "record"  # reject one record, continue


@dataclass(frozen=True)
class ErrorContext:
    """Where an error happened. Every part is optional; present parts are named in the message."""

    profile: str | None = None
    connection: str | None = None
    object: str | None = None
    record: str | int | None = None
    field: str | None = None

    def describe(self) -> str:
        parts: list[str] = []
        if self.profile:
            parts.append(f"profile {self.profile!r}")
        if self.connection:
            parts.append(f"connection {self.connection!r}")
        if self.object:
            parts.append(f"object {self.object!r}")
        if self.record is not None:
            parts.append(f"record {self.record}")
        if self.field:
            parts.append(f"field {self.field!r}")
        return ", ".join(parts)

    def merge(self, **changes: Any) -> ErrorContext:
        """A copy where the given non-None parts are filled in (existing parts win)."""
        fill = {k: v for k, v in changes.items() if v is not None and getattr(self, k) is None}
        return replace(self, **fill)


class CrmBridgeError(Exception):
    """Root of every crmbridge error."""

    kind: ErrorKind = ErrorKind.FATAL

    def __init__(self, message: str, *, context: ErrorContext | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.context = context or ErrorContext()

    def with_context(self, **parts: Any) -> CrmBridgeError:
        """Fill in the context parts not set yet; returns self."""
        self.context = self.context.merge(**parts)
        return self

    def __str__(self) -> str:
        where = self.context.describe()
        return f"{where}: {self.message}" if where else self.message


class FatalError(CrmBridgeError):
    """The run cannot go on."""

    kind = ErrorKind.FATAL


class ConfigError(FatalError):
    """A profile, connection or command-line option is wrong. Nothing has been written."""


class ProfileProblem:
    """One problem found in a profile file."""

    __slots__ = ("line", "location", "message")

    def __init__(self, location: str, message: str, line: int | None = None) -> None:
        self.location = location  # dotted path, e.g. "target.match_keys[0]"
        self.message = message
        self.line = line

    def __repr__(self) -> str:
        return f"ProfileProblem({self.location!r}, {self.message!r}, line={self.line})"


class ProfileError(ConfigError):
    """A profile file is invalid. Lists every problem found, with file, line and field."""

    def __init__(self, path: str, problems: Iterable[ProfileProblem]) -> None:
        self.path = path
        self.problems = list(problems)
        lines = [
            f"{path}:{p.line}: {p.location}: {p.message}"
            if p.line
            else f"{path}: {p.location}: {p.message}"
            for p in self.problems
        ]
        super().__init__("\n".join(lines) if lines else f"{path}: invalid profile")

    def __str__(self) -> str:
        return self.message


class ConnectionFailedError(FatalError):
    """A system cannot be reached, or it refused our credentials."""


class UnsupportedOperationError(FatalError):
    """The system cannot do what was asked (a write mode, a target that is read-only)."""


class RemoteError(FatalError):
    """The remote system answered with an error we cannot recover from."""


class RetryableError(CrmBridgeError):
    """A transient failure: the same call may succeed after a pause.

    ``retry_after`` is the pause the server asked for, in seconds, when it said.
    """

    kind = ErrorKind.RETRYABLE

    def __init__(
        self,
        message: str,
        *,
        context: ErrorContext | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, context=context)
        self.retry_after = retry_after


class AmbiguousWriteError(RetryableError):
    """A write failed in a way that leaves open whether it was applied (the answer was lost).

    The engine repeats the same operations (``ApplyRequest.attempt > 1``); the target confirms
    those it finds already applied instead of applying them twice."""


class RecordError(CrmBridgeError):
    """One record cannot be processed. It is rejected with this message; the run goes on."""

    kind = ErrorKind.RECORD


REDACTED = "***"


class SecretLike(Protocol):
    """A value that hides its secret (``pydantic.SecretStr``)."""

    def get_secret_value(self) -> str: ...


def redact(text: str, secrets: Iterable[str | SecretLike]) -> str:
    """``text`` with every occurrence of every secret value replaced by ``***``."""
    plain = {s if isinstance(s, str) else s.get_secret_value() for s in secrets}
    ordered = sorted((s for s in plain if s), key=len, reverse=True)  # longest match first
    if not ordered:
        return text
    return re.sub("|".join(re.escape(s) for s in ordered), REDACTED, text)


__all__ = [
    "AmbiguousWriteError",
    "ConfigError",
    "ConnectionFailedError",
    "CrmBridgeError",
    "ErrorContext",
    "ErrorKind",
    "FatalError",
    "ProfileError",
    "ProfileProblem",
    "RecordError",
    "RemoteError",
    "RetryableError",
    "UnsupportedOperationError",
    "redact",
]
