"""Paging by keyset: each list call asks for the records after the last one already read.

A read is in a unique order (``id``; an incremental read ``date_modified, id``), and every
page after the first asks ``(date_modified, id) > (last date_modified, last id)`` in the form
the API accepts (:func:`~crmbridge.connectors.sugarcrm.query.keyset`; v4_1 literals quoted by
:mod:`~crmbridge.connectors.sugarcrm.query`). Unlike offsets, this never skips a record when
others change during the read: a record edited meanwhile moves past the last one read (with
its new ``date_modified``) and is read there, a record created or deleted shifts nothing.

Pages of one range are fetched one after another (each needs the last record of the one
before). :func:`ranges` reads a big read in ``id`` order as several consecutive ranges at
once (v4_1, a session each): points where they meet are picked by offset when the read
starts (an offset that is off when records change meanwhile only makes the ranges uneven),
and each range is paged by keyset up to the next point.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from crmbridge.connectors.sugarcrm.api import Api, Page
from crmbridge.connectors.sugarcrm.discovery import ModuleMeta
from crmbridge.connectors.sugarcrm.query import Node, conjunction, keyset, not_after
from crmbridge.connectors.sugarcrm.values import decode_records
from crmbridge.core.schema import ObjectSchema
from crmbridge.errors import RemoteError

Key = tuple[Any, ...]


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
        self, after: Key | None = None, upto: Key | None = None, *, offset: int = 0, limit: int = 0
    ) -> tuple[pa.RecordBatch, Page]:
        """The first records after ``after`` and not after ``upto``, decoded (from ``offset``
        on, at most ``limit`` or ``page_size``); and the answer."""
        parts = [self.node] if self.node is not None else []
        if after is not None:
            parts.append(keyset(self.order, after))
        if upto is not None:
            parts.append(not_after(self.order, upto))
        try:
            where = self.api.where(self.meta, conjunction(parts))
        except ValueError:  # a backslash in a key: never pasted into the v4_1 query
            raise RemoteError(
                f"cannot read on after the {self.meta.name} record {after!r}: its key holds a "
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
    listing: Listing, after: Key | None = None, upto: Key | None = None
) -> Iterator[pa.RecordBatch]:
    """The decoded pages of the records after ``after`` and not after ``upto``, in order (at
    least one batch, maybe empty)."""
    while True:
        batch, answer = listing.page(after, upto)
        yield batch
        if not answer.more or batch.num_rows == 0:
            return
        after = listing.key(batch)


def ranges(listing: Listing, after: Key | None, ways: int) -> Iterator[pa.RecordBatch]:
    """Like :func:`pages`, with up to ``ways`` ranges read at once once the first page shows
    that the rest needs several pages and how many records match (v4_1 ``total_count``)."""
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
    with ThreadPoolExecutor(ways, thread_name_prefix="sugarcrm-range") as pool:
        probes = [
            pool.submit(listing.page, start, offset=n * rest // ways - 1, limit=1)
            for n in range(1, ways)
        ]
        points = [start]
        for probe in probes:
            batch, _ = probe.result()
            if batch.num_rows:
                point = listing.key(batch)
                if point > points[-1]:  # records deleted meanwhile: fewer ranges
                    points.append(point)
    bounds = [(low, high) for low, high in zip(points, [*points[1:], None], strict=True)]
    yield from _concurrently(listing, bounds)


_DONE = object()


def _concurrently(
    listing: Listing, bounds: list[tuple[Key, Key | None]]
) -> Iterator[pa.RecordBatch]:
    """The pages of consecutive ranges, each read by its own thread (at most two pages ahead
    of the consumer), yielded range after range."""
    stop = threading.Event()
    queues: list[queue.Queue[Any]] = [queue.Queue(maxsize=2) for _ in bounds]

    def put(box: queue.Queue[Any], item: Any) -> bool:
        while not stop.is_set():
            try:
                box.put(item, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def work(box: queue.Queue[Any], low: Key, high: Key | None) -> None:
        try:
            for batch in pages(listing, low, high):
                if not put(box, batch):
                    return
            put(box, _DONE)
        except BaseException as err:  # handed to the consumer
            put(box, err)

    pool = ThreadPoolExecutor(len(bounds), thread_name_prefix="sugarcrm-range")
    try:
        for box, (low, high) in zip(queues, bounds, strict=True):
            pool.submit(work, box, low, high)
        for box in queues:
            while (item := box.get()) is not _DONE:
                if isinstance(item, BaseException):
                    raise item
                yield item
    finally:
        stop.set()
        pool.shutdown(wait=True, cancel_futures=True)
