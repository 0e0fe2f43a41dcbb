"""What the CRM connectors' writers share: the outcome of one operation, what earlier attempts
at a request answered, and the per-record result built from them.

The engine repeats a request (``attempt > 1``) when an answer was lost; a writer keeps, per
connection, what the attempts so far answered (:class:`Memory`) so that the repeat sends only
what was never sent or never answered, and confirms the rest.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from crmbridge.core.outcomes import Outcome, RejectCode, WriteResult


@dataclass(frozen=True)
class Done:
    """The outcome of one operation."""

    outcome: Outcome
    id: str | None = None
    reason: str | None = None
    code: RejectCode | None = None


@dataclass
class Memory:
    """What the attempts at one request's operations answered, for the next attempt (one per
    connection: the engine repeats a request before it sends the next)."""

    #: the object (entity, sObject) the request writes
    object: str = ""
    #: operation -> its outcome, once the system answered it
    known: dict[str, Done] = field(default_factory=dict)
    #: operations not sent yet
    unsent: set[str] = field(default_factory=set)

    def start(self, object: str, tokens: Sequence[str]) -> None:
        self.object = object
        self.known = {}
        self.unsent = set(tokens)


def write_result(results: Sequence[Done | None]) -> WriteResult:
    """One outcome per operation, in order (an operation without one: rejected)."""
    return WriteResult.build(
        [d.outcome.value if d else Outcome.REJECTED.value for d in results],
        [d.id if d else None for d in results],
        [d.reason if d else "no result" for d in results],
        [d.code.value if d and d.code else None for d in results],
    )


__all__ = ["Done", "Memory", "write_result"]
