"""Finding the records that match key values: one list call per page of keys, never one per key.

The keys become one filter (``field IN (...)``; for several key fields an OR of ANDs; e-mail
addresses through Sugar's e-mail tables) and the answer is matched again here, exactly: text
equal to the last character (MySQL's case-insensitive answer is only a candidate list), e-mail
addresses upper-cased and trimmed as Sugar compares them.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from crmbridge.connectors.sugarcrm.api import Api
from crmbridge.connectors.sugarcrm.query import FilterBuilder
from crmbridge.connectors.sugarcrm.values import decode_records, key_value
from crmbridge.core.schema import ObjectSchema
from crmbridge.errors import ConfigError, ErrorContext

Key = tuple[Hashable, ...]


@dataclass
class Found:
    """The records matching some keys: ``batch`` (typed) and the rows of each key."""

    batch: pa.RecordBatch
    rows: dict[Key, list[int]] = field(default_factory=dict)

    def records(self, key: Key) -> list[dict[str, Any]]:
        """The matching records of ``key`` as dicts of Python values."""
        return [self._rows[i] for i in self.rows.get(key, [])]

    def __post_init__(self) -> None:
        self._rows = self.batch.to_pylist()


class Finder:
    """Looks up records of one module by key fields."""

    def __init__(self, api: Api, filters: FilterBuilder, *, page_size: int, context: ErrorContext):
        self.api = api
        self.filters = filters
        self.page_size = page_size
        self.context = context

    @property
    def schema(self) -> ObjectSchema:
        return self.filters.meta.schema

    def key_of(self, names: Sequence[str], values: Sequence[Any]) -> Key:
        """The normalised key of ``values`` (as :func:`~.values.key_value`)."""
        schema = self.schema
        return tuple(key_value(v, n, schema.field(n)) for n, v in zip(names, values, strict=True))

    def find(
        self, names: Sequence[str], keys: Sequence[Sequence[Any]], fields: Sequence[str] = ()
    ) -> Found:
        """Records whose ``names`` equal one of ``keys`` (rows of Python values without
        nulls), with ``names``, ``id`` and ``fields`` fetched."""
        fetch = self.schema.select(list(dict.fromkeys([*names, "id", *fields])))
        wanted = {self.key_of(names, k) for k in keys}
        batches: list[pa.RecordBatch] = []
        unique = list({self.key_of(names, k): k for k in keys}.values())
        for start in range(0, len(unique), self.page_size):
            chunk = unique[start : start + self.page_size]
            batches += self._fetch(names, chunk, fetch)
        schema = fetch.arrow_schema()
        batch = (
            pa.concat_batches(batches) if batches else pa.RecordBatch.from_pylist([], schema=schema)
        )
        columns = [batch.column(n).to_pylist() for n in names]
        keep: list[int] = []
        rows: dict[Key, list[int]] = {}
        for i, values in enumerate(zip(*columns, strict=True)):
            key = self.key_of(names, values)
            if key in wanted:
                rows.setdefault(key, []).append(len(keep))
                keep.append(i)
        return Found(batch.take(pa.array(keep, pa.int64())), rows)

    def _fetch(
        self, names: Sequence[str], chunk: Sequence[Sequence[Any]], fetch: ObjectSchema
    ) -> list[pa.RecordBatch]:
        node = self.filters.keys(names, chunk)
        if node is None:
            raise ConfigError(
                f"cannot match records on {', '.join(names)}: the CRM cannot filter on "
                f"{'these fields' if len(names) > 1 else 'this field'} with these values",
                context=self.context,
            )
        meta = self.filters.meta
        where = self.api.where(meta, node)
        limit = max(self.page_size, 2 * len(chunk))
        html = self.api.kind == "v4_1"
        out: list[pa.RecordBatch] = []
        offset: int | None = 0
        while offset is not None:
            page = self.api.list_page(meta, where, fetch.field_names, offset, limit)
            out.append(decode_records(page.records, fetch.fields, html=html))
            offset = page.next_offset
        return out
