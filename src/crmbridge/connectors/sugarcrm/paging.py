"""Paging by keyset: each list call asks for the records after the last one already read.

A read is in a unique order (``id``; an incremental read ``date_modified, id``), and every
page after the first asks ``(date_modified, id) > (last date_modified, last id)`` in the form
the API accepts (:func:`~crmbridge.connectors.sugarcrm.query.keyset`; v4_1 literals quoted by
:mod:`~crmbridge.connectors.sugarcrm.query`). Unlike offsets, this never skips a record when
others change during the read: a record edited meanwhile moves past the last one read (with
its new ``date_modified``) and is read there, a record created or deleted shifts nothing.

Pages of one range are fetched one after another (each needs the last record of the one
before). :func:`ranges` reads a big read in ``id`` order as several consecutive ranges of ids
at once (v4_1, a session each), each paged by keyset up to the next one. Where they meet only
decides how even they are, never what is read: for Sugar's ids (UUIDs) at equal steps of their
leading hex digits, for other ids at the records found at equal offsets when the read starts.
"""

from __future__ import annotations

import queue
import re
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from crmbridge.connectors.sugarcrm.api import Api, Page
from crmbridge.connectors.sugarcrm.discovery import ModuleMeta
from crmbridge.connectors.sugarcrm.query import Node, conjunction, keyset
from crmbridge.connectors.sugarcrm.values import decode_records
from crmbridge.core.schema import ObjectSchema
from crmbridge.errors import RemoteError

Key = tuple[Any, ...]
#: a range of the order: from ``low`` on (inclusive), before ``high``; None: unbounded
Span = tuple[Key | None, Key | None]
#: a Sugar id as ``create_guid`` makes it
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


@dataclass(frozen=True)
class Listing:
    """What to list: records of ``meta`` matching ``node``, with the ``fetch`` fields, in
    ``order`` (fields of ``fetch``), deleted ones too when ``deleted``."""

    api: Api
    meta: ModuleMeta
    node: Node | None
    fetch: ObjectSchema
    order: tuple[str, ...]
    page_size: int
    deleted: bool = False

    def page(
        self,
        after: Key | None = None,
        span: Span = (None, None),
        *,
        offset: int = 0,
        limit: int = 0,
    ) -> tuple[pa.RecordBatch, Page]:
        """The first records after ``after`` within ``span``, decoded (from ``offset`` on, at
        most ``limit`` or ``page_size``); and the answer."""
        parts = [self.node] if self.node is not None else []
        if after is not None:
            parts.append(keyset(self.order, after))
        low, high = span
        if low is not None:
            parts.append(keyset(self.order, low, ">="))
        if high is not None:
            parts.append(keyset(self.order, high, "<"))
        try:
            where = self.api.where(self.meta, conjunction(parts))
        except ValueError:  # a backslash in a key: never pasted into the v4_1 query
            keys = [k for k in (after, *span) if k is not None]
            raise RemoteError(
                f"cannot page past the {self.meta.name} record {keys[0]!r}: its id holds a "
                "backslash, which a v4_1 query cannot quote safely",
                context=self.api.transport.context(self.meta.name),
            ) from None
        answer = self.api.list_page(
            self.meta,
            where,
            self.fetch.field_names,
            limit or self.page_size,
            order=self.order,
            deleted=self.deleted,
            offset=offset,
        )
        batch = decode_records(answer.records, self.fetch.fields, html=self.api.kind == "v4_1")
        return batch, answer

    def key(self, batch: pa.RecordBatch, row: int = -1) -> Key:
        """The order values of ``batch``'s row ``row`` (the last one by default)."""
        index = row if row >= 0 else batch.num_rows + row
        return tuple(batch.column(name)[index].as_py() for name in self.order)


def pages(
    listing: Listing, after: Key | None = None, span: Span = (None, None)
) -> Iterator[pa.RecordBatch]:
    """The decoded pages of the records after ``after`` within ``span``, in order (at least one
    batch, maybe empty)."""
    while True:
        batch, answer = listing.page(after, span)
        yield batch
        if not answer.more or batch.num_rows == 0:
            return
        after = listing.key(batch)


def ranges(listing: Listing, after: Key | None, ways: int) -> Iterator[pa.RecordBatch]:
    """Like :func:`pages` for a read in ``id`` order, with up to ``ways`` ranges of ids read
    at once when the first page shows that the rest needs several pages (v4_1 tells how many
    records match). Where the ranges meet: for Sugar's ids (UUIDs, spread evenly) at equal
    steps of their leading hex digits after the first page; for other ids at the records found
    at equal offsets (one call each). Every range also asks for ids after the first page, so
    wherever the points fall the ranges cover the rest exactly once."""
    first, answer = listing.page(after)
    yield first
    if not answer.more or first.num_rows == 0:
        return
    start = listing.key(first)
    rest = (answer.total or 0) - first.num_rows
    ways = min(ways, -(-rest // listing.page_size))
    if ways < 2:
        yield from pages(listing, start)
        return
    ids = first.column(listing.order[0]).to_pylist()
    if all(isinstance(i, str) and UUID.fullmatch(i) for i in ids):
        points = _spread(str(start[0]), ways)
    else:
        points = _probed(listing, start, rest, ways)
    spans: list[Span] = list(zip([None, *points], [*points, None], strict=True))
    yield from _concurrently(listing, start, spans)


def _spread(start: str, ways: int) -> list[Key]:
    """``ways - 1`` points at equal steps between the UUID ``start`` and the last UUID: the
    four leading hex digits (Sugar's UUIDs are random, so the ranges hold about as many)."""
    low = int(start[:4], 16)
    steps = [low + n * (0x10000 - low) // ways for n in range(1, ways)]
    return [(f"{step:04x}",) for step in dict.fromkeys(steps) if step > low]


def _probed(listing: Listing, start: Key, rest: int, ways: int) -> list[Key]:
    """The keys of the records at ``ways - 1`` equal steps of the ``rest`` after ``start``."""
    with ThreadPoolExecutor(ways - 1, thread_name_prefix="sugarcrm-probe") as pool:
        probes = [
            pool.submit(listing.page, start, offset=n * rest // ways, limit=1)
            for n in range(1, ways)
        ]
        found = [probe.result()[0] for probe in probes]
    points: list[Key] = []
    for batch in found:
        # records deleted between the probes can leave a point before the previous one
        if batch.num_rows and (not points or listing.key(batch) > points[-1]):
            points.append(listing.key(batch))
    return points


_DONE = object()


def _concurrently(listing: Listing, start: Key, spans: list[Span]) -> Iterator[pa.RecordBatch]:
    """The pages after ``start`` of consecutive ``spans``, each read by its own thread (at
    most two pages ahead of the consumer), yielded span after span."""
    stop = threading.Event()
    queues: list[queue.Queue[Any]] = [queue.Queue(maxsize=2) for _ in spans]

    def put(box: queue.Queue[Any], item: Any) -> bool:
        while not stop.is_set():
            try:
                box.put(item, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def work(box: queue.Queue[Any], span: Span) -> None:
        try:
            for batch in pages(listing, start, span):
                if not put(box, batch):
                    return
            put(box, _DONE)
        except BaseException as err:  # handed to the consumer
            put(box, err)

    pool = ThreadPoolExecutor(len(spans), thread_name_prefix="sugarcrm-range")
    try:
        for box, span in zip(queues, spans, strict=True):
            pool.submit(work, box, span)
        for box in queues:
            while (item := box.get()) is not _DONE:
                if isinstance(item, BaseException):
                    raise item
                yield item
    finally:
        stop.set()
        pool.shutdown(wait=True, cancel_futures=True)
