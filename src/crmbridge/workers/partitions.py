"""Cutting a big run into partitions: key ranges of one source field, each run on its own.

    ranges = key_ranges(values, 4)            # boundaries at the quartiles of the keys
    loaded_part = partition_profile(loaded, Partition(index=1, count=4, field="id",
                                                      low=None, high=2500))

A partition is the profile with one more condition on its source (``id < 2500``; the first
partition also takes the records whose key is null), an ``id`` of its own (so it has its own
lock, ledger and resume point in the state store: a partition killed mid-way is continued
where it stood) and a name that says which part it is ("leads [1/4]"). A condition on a SQL
source's column is pushed down, so each partition reads only its range; a file source is read
by every partition, each keeping its range, so the writes are shared out.
"""

from __future__ import annotations

import datetime as dt
import itertools
from dataclasses import asdict, dataclass
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from crmbridge.errors import ConfigError
from crmbridge.profiles.loader import LoadedProfile
from crmbridge.runner.ledger import decode, encode


@dataclass(frozen=True)
class Partition:
    """Part ``index`` (1-based) of ``count``: the records whose ``field`` is in
    ``[low, high)`` (None: unbounded on that side)."""

    index: int
    count: int
    field: str
    low: Any
    high: Any

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["low"], data["high"] = encode(self.low), encode(self.high)
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Partition:
        return cls(
            int(data["index"]),
            int(data["count"]),
            str(data["field"]),
            decode(data["low"]),
            decode(data["high"]),
        )

    def condition(self) -> str:
        """The SQL condition that keeps this partition's records."""
        column = '"' + self.field.replace('"', '""') + '"'
        parts = []
        if self.low is not None:
            parts.append(f"{column} >= {literal(self.low)}")
        if self.high is not None:
            parts.append(f"{column} < {literal(self.high)}")
        if not parts:
            return "TRUE"
        text = " AND ".join(parts)
        if self.low is None:  # the first part also has the records without a key
            text = f"({text} OR {column} IS NULL)"
        return text


def key_ranges(values: pa.Array | pa.ChunkedArray, count: int) -> list[tuple[Any, Any]]:
    """``count`` (or fewer, when there are fewer distinct keys) ranges ``[low, high)`` that
    share ``values`` out about evenly: boundaries at the quantiles of the keys; the first
    range starts and the last ends unbounded."""
    if count < 1:
        raise ConfigError(f"the number of partitions must be at least 1, not {count}")
    present = pc.drop_null(values)
    ordered = pc.take(present, pc.sort_indices(present))
    n = len(ordered)
    bounds: list[Any] = []
    for k in range(1, count if n else 1):
        value = ordered[k * n // count].as_py()
        if value != ordered[0].as_py() and (not bounds or value > bounds[-1]):
            bounds.append(value)
    edges = [None, *bounds, None]
    return list(itertools.pairwise(edges))


def partition_profile(loaded: LoadedProfile, part: Partition) -> LoadedProfile:
    """The profile restricted to ``part``, with an identity and a name of its own."""
    profile = loaded.profile
    condition = part.condition()
    given = profile.source.filter
    source = profile.source.model_copy(
        update={"filter": f"({given}) AND {condition}" if given else condition}
    )
    variant = profile.model_copy(
        update={
            "id": f"{loaded.key}#{part.index}of{part.count}",
            "name": f"{loaded.name} [{part.index}/{part.count}]",
            "source": source,
        }
    )
    return loaded.with_profile(variant)


def literal(value: Any) -> str:
    """``value`` as a SQL literal of the expression language."""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int | float | Decimal):
        return repr(value) if isinstance(value, float) else str(value)
    if isinstance(value, dt.datetime):
        return f"TIMESTAMP '{value.isoformat(sep=' ')}'"
    if isinstance(value, dt.date):
        return f"DATE '{value.isoformat()}'"
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    raise ConfigError(f"cannot partition on a value of type {type(value).__name__}: {value!r}")


__all__ = ["Partition", "key_ranges", "literal", "partition_profile"]
