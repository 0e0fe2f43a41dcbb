"""Records that share a match key inside one batch.

Records are applied in source order. A connector is promised a batch with unique match keys,
so a batch in which a key repeats is split into *waves*: wave 1 holds each key's first record,
wave 2 each key's second record, and so on; the waves are written one after the other. The
result is the same as writing the records one at a time: with upsert, the first record of a
key creates it and the later ones update it; with insert, the later ones are rejected as
duplicates by the target. No record is dropped.
"""

from __future__ import annotations

from collections.abc import Sequence

import pyarrow as pa
import pyarrow.compute as pc


def waves(batch: pa.RecordBatch, keys: Sequence[str]) -> list[pa.RecordBatch]:
    """``batch`` split into waves with unique ``keys`` each, in source order.

    Records with a null in any key column are all kept in the first wave (they match nothing).
    """
    if not keys or batch.num_rows < 2:
        return [batch]
    table = pa.Table.from_batches([batch]).select(list(keys))
    counts = table.group_by(list(keys)).aggregate([([], "count_all")])
    if pc.max(counts.column("count_all")).as_py() <= 1:
        return [batch]  # the usual case: no key repeats
    wave_of: list[int] = []
    seen: dict[tuple[object, ...], int] = {}
    for key in zip(*(table.column(k).to_pylist() for k in keys), strict=True):
        if any(part is None for part in key):
            wave_of.append(0)
            continue
        seen[key] = seen.get(key, -1) + 1
        wave_of.append(seen[key])
    wave_array = pa.array(wave_of)
    top = max(wave_of)
    return [batch.filter(pc.equal(wave_array, n)) for n in range(top + 1)]


def chunks(batch: pa.RecordBatch, size: int | None) -> list[pa.RecordBatch]:
    """``batch`` cut into slices of at most ``size`` rows (None: no limit)."""
    if not size or batch.num_rows <= size:
        return [batch]
    return [batch.slice(start, size) for start in range(0, batch.num_rows, size)]


KEY_SEPARATOR = "\x1f"


def key_strings(
    batch: pa.RecordBatch | pa.Table, keys: Sequence[str], *, fold: bool = False
) -> pa.Array:
    """One text value per row identifying its ``keys`` (null when a key part is null).

    ``fold``: compare text ignoring case and surrounding spaces (e-mail addresses, names).
    """
    parts = []
    for k in keys:
        part = pc.cast(batch.column(k), pa.string())
        if fold:
            part = pc.utf8_lower(pc.utf8_trim_whitespace(part))
        parts.append(part)
    joined = parts[0] if len(parts) == 1 else pc.binary_join_element_wise(*parts, KEY_SEPARATOR)
    return joined.combine_chunks() if isinstance(joined, pa.ChunkedArray) else joined
