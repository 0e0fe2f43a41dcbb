"""Streams of Arrow batches: re-cutting them to a size, and reading ahead in a thread."""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Generator, Iterable, Iterator
from typing import TypeVar, cast

import pyarrow as pa

T = TypeVar("T")


def rebatch(batches: Iterable[pa.RecordBatch], size: int) -> Iterator[pa.RecordBatch]:
    """The same rows as ``batches`` in batches of exactly ``size`` rows (the last may be less)."""
    pending: list[pa.RecordBatch] = []
    count = 0
    for batch in batches:
        while batch.num_rows:
            take = min(size - count, batch.num_rows)
            pending.append(batch.slice(0, take))
            count += take
            batch = batch.slice(take)
            if count == size:
                yield _concat(pending)
                pending, count = [], 0
    if count:
        yield _concat(pending)


def _concat(batches: list[pa.RecordBatch]) -> pa.RecordBatch:
    if len(batches) == 1:
        return batches[0]
    table = pa.Table.from_batches(batches).combine_chunks()
    return table.to_batches()[0]


_DONE = object()


def read_ahead(batches: Iterable[T], depth: int = 2) -> Generator[T, None, None]:
    """``batches`` (any items), produced in a background thread up to ``depth`` ahead.

    Reading the next batch (network, disk, parsing) overlaps with processing the current one.
    An exception raised while reading is raised here, in order. Stopping early (closing this
    generator) stops the reader after the batch it is producing.
    """
    slots: queue.Queue[object] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for batch in batches:
                if stop.is_set():
                    return
                slots.put(batch)
        except BaseException as err:  # handed to the consumer, raised there
            slots.put(err)
            return
        slots.put(_DONE)

    thread = threading.Thread(target=produce, name="crmbridge-read-ahead", daemon=True)
    thread.start()
    try:
        while True:
            item = slots.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield cast(T, item)
    finally:
        stop.set()
        while thread.is_alive():  # unblock a producer waiting for a free slot
            with contextlib.suppress(queue.Empty):
                slots.get(timeout=0.05)
        thread.join()


def chunks(batch: pa.RecordBatch, size: int | None) -> list[pa.RecordBatch]:
    """``batch`` cut into slices of at most ``size`` rows (None: no limit)."""
    if not size or batch.num_rows <= size:
        return [batch]
    return [batch.slice(start, size) for start in range(0, batch.num_rows, size)]
