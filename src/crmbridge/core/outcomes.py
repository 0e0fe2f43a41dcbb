"""What happened to each record a connector was asked to write.

A :class:`WriteResult` is columnar: Arrow arrays (outcome, target id, reason, code), one entry
per record of the batch that was written, in the same order. A rejection carries a
machine-readable :class:`RejectCode` besides the human reason.
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
    #: left out on purpose: inserted by an earlier run of the profile (a rerun skips it)
    SKIPPED = "skipped"


class RejectCode(enum.StrEnum):
    """Why a record was rejected, for programs (the reason says it for people)."""

    #: a record with this key exists (insert), or another record of the run created it
    DUPLICATE_KEY = "duplicate_key"
    #: no record matches (update, delete), or a record to update or delete is gone
    NOT_FOUND = "not_found"
    #: several records match and the profile says to reject (``on_multiple_matches``)
    AMBIGUOUS_MATCH = "ambiguous_match"
    #: a value does not convert, does not fit the target, or the target refused it
    INVALID_VALUE = "invalid_value"
    #: a match key has no value
    MISSING_KEY = "missing_key"
    #: a reference or link found no record, or several
    REFERENCE = "reference"
    #: the target refused the record (rights, a rule of the system)
    REFUSED = "refused"
    #: ``crmbridge apply``: the record changed since the plan was made
    STALE = "stale"
    #: the source record could not be read at all
    UNREADABLE = "unreadable"
    #: the filter, an incremental read or deduplication left it out (not counted as rejected)
    SKIPPED = "skipped"


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
    #: string or null: a RejectCode for rejected records; None: ``invalid_value`` for every
    #: rejection (a connector that knows better says so)
    code: pa.Array | None = None

    def __post_init__(self) -> None:
        if not (len(self.outcome) == len(self.target_id) == len(self.reason)):
            raise ValueError("WriteResult arrays must have the same length")
        if self.code is None:
            rejected = pc.equal(self.outcome, Outcome.REJECTED.value)
            code = pc.if_else(
                rejected, RejectCode.INVALID_VALUE.value, pa.scalar(None, pa.string())
            )
            object.__setattr__(self, "code", _flat(code))
        elif len(self.code) != len(self.outcome):
            raise ValueError("WriteResult arrays must have the same length")

    @property
    def codes(self) -> pa.Array:
        assert self.code is not None  # set by __post_init__
        return self.code

    def __len__(self) -> int:
        return len(self.outcome)

    @classmethod
    def build(
        cls,
        outcomes: Sequence[str],
        target_ids: Sequence[str | None] | None = None,
        reasons: Sequence[str | None] | None = None,
        codes: Sequence[str | None] | None = None,
    ) -> WriteResult:
        n = len(outcomes)
        return cls(
            pa.array(outcomes, pa.string()),
            pa.array(target_ids if target_ids is not None else [None] * n, pa.string()),
            pa.array(reasons if reasons is not None else [None] * n, pa.string()),
            pa.array(codes, pa.string()) if codes is not None else None,
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
            self.outcome.take(indices),
            self.target_id.take(indices),
            self.reason.take(indices),
            self.codes.take(indices),
        )

    @classmethod
    def concat(cls, parts: Sequence[WriteResult]) -> WriteResult:
        if not parts:
            return cls.empty()
        return cls(
            pa.concat_arrays([p.outcome for p in parts]),
            pa.concat_arrays([p.target_id for p in parts]),
            pa.concat_arrays([p.reason for p in parts]),
            pa.concat_arrays([p.codes for p in parts]),
        )


def _flat(values: pa.Array | pa.ChunkedArray) -> pa.Array:
    return values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values
