"""What happened to each record a connector was asked to write.

A :class:`WriteResult` is columnar: three Arrow arrays (outcome, target id, reason), one entry
per record of the batch that was written, in the same order.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc


class Outcome(enum.StrEnum):
    CREATED = "created"
    UPDATED = "updated"
    UNCHANGED = "unchanged"
    DELETED = "deleted"
    REJECTED = "rejected"


class WriteMode(enum.StrEnum):
    """Salesforce Data Loader semantics.

    insert  a record whose key already exists is rejected, not a crash
    update  a record that does not exist is rejected
    upsert  match on the match keys: update when found, create otherwise
    delete  delete the record matched by the match keys (soft delete where the system has one);
            a record that does not exist is rejected
    """

    INSERT = "insert"
    UPDATE = "update"
    UPSERT = "upsert"
    DELETE = "delete"


@dataclass(frozen=True)
class WriteResult:
    outcome: pa.Array  # string: an Outcome value
    target_id: pa.Array  # string or null: the record's id in the target
    reason: pa.Array  # string or null: why a record was rejected (or other detail)

    def __post_init__(self) -> None:
        if not (len(self.outcome) == len(self.target_id) == len(self.reason)):
            raise ValueError("WriteResult arrays must have the same length")

    def __len__(self) -> int:
        return len(self.outcome)

    @classmethod
    def build(
        cls,
        outcomes: Sequence[str],
        target_ids: Sequence[str | None] | None = None,
        reasons: Sequence[str | None] | None = None,
    ) -> WriteResult:
        n = len(outcomes)
        return cls(
            pa.array(outcomes, pa.string()),
            pa.array(target_ids if target_ids is not None else [None] * n, pa.string()),
            pa.array(reasons if reasons is not None else [None] * n, pa.string()),
        )

    @classmethod
    def uniform(
        cls, n: int, outcome: Outcome, target_ids: pa.Array | Sequence[str | None] | None = None
    ) -> WriteResult:
        """Every record got the same outcome (e.g. a bulk insert that went through whole)."""
        ids = (
            target_ids.cast(pa.string())
            if isinstance(target_ids, pa.Array)
            else pa.array(target_ids if target_ids is not None else [None] * n, pa.string())
        )
        return cls(pa.repeat(outcome.value, n).cast(pa.string()), ids, pa.nulls(n, pa.string()))

    @classmethod
    def empty(cls) -> WriteResult:
        return cls.build([])

    def counts(self) -> dict[Outcome, int]:
        found = pc.value_counts(self.outcome).to_pylist() if len(self) else []
        counts = dict.fromkeys(Outcome, 0)
        for item in found:
            counts[Outcome(item["values"])] = item["counts"]
        return counts

    def take(self, indices: pa.Array | Sequence[int]) -> WriteResult:
        return WriteResult(
            self.outcome.take(indices), self.target_id.take(indices), self.reason.take(indices)
        )

    @classmethod
    def concat(cls, parts: Sequence[WriteResult]) -> WriteResult:
        if not parts:
            return cls.empty()
        return cls(
            pa.concat_arrays([p.outcome for p in parts]),
            pa.concat_arrays([p.target_id for p in parts]),
            pa.concat_arrays([p.reason for p in parts]),
        )
