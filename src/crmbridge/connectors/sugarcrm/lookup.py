"""Finding candidate records for key values: one list call per page of keys, never one per key.

The keys become one filter (``field IN (...)``; for several key fields an OR of ANDs; e-mail
addresses through Sugar's e-mail tables), paged by keyset on ``id``. The server's answer is a
candidate list (MySQL compares text without case): the engine decides which candidates match,
under the key's rule (:mod:`crmbridge.core.identity`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pyarrow as pa

from crmbridge.connectors.sugarcrm.api import Api
from crmbridge.connectors.sugarcrm.paging import Listing, pages
from crmbridge.connectors.sugarcrm.query import FilterBuilder
from crmbridge.core.schema import ObjectSchema
from crmbridge.errors import ConfigError, ErrorContext


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

    def find(
        self, names: Sequence[str], keys: Sequence[Sequence[Any]], fields: Sequence[str] = ()
    ) -> pa.RecordBatch:
        """Candidate records for ``keys`` (rows of values of ``names``, without nulls), with
        ``names``, ``id`` and ``fields`` fetched; live records only."""
        fetch = self.schema.select(list(dict.fromkeys([*names, "id", *fields])))
        batches: list[pa.RecordBatch] = []
        unique = list(dict.fromkeys(tuple(k) for k in keys))
        for start in range(0, len(unique), self.page_size):
            batches += self._fetch(names, unique[start : start + self.page_size], fetch)
        schema = fetch.arrow_schema()
        if not batches:
            return pa.RecordBatch.from_pylist([], schema=schema)
        table = pa.Table.from_batches(batches, schema=schema).combine_chunks()
        # a record can come back for several key pages: once is enough
        first = pa.compute.index_in(
            pa.compute.unique(table.column("id")), value_set=table.column("id")
        )
        return (
            table.take(first).combine_chunks().to_batches()[0]
            if table.num_rows
            else (pa.RecordBatch.from_pylist([], schema=schema))
        )

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
        limit = max(self.page_size, 2 * len(chunk))
        listing = Listing(self.api, self.filters.meta, node, fetch, ("id",), limit)
        return list(pages(listing))
