import threading
from collections.abc import Iterator

import pyarrow as pa
import pytest

from crmbridge.core.batches import read_ahead, rebatch


def _batches(*sizes: int) -> list[pa.RecordBatch]:
    out, start = [], 0
    for size in sizes:
        out.append(pa.RecordBatch.from_pydict({"n": list(range(start, start + size))}))
        start += size
    return out


def test_rebatch_cuts_and_joins_to_the_size() -> None:
    got = list(rebatch(_batches(3, 1, 7, 0, 2), 4))
    assert [b.num_rows for b in got] == [4, 4, 4, 1]
    assert [v for b in got for v in b.column("n").to_pylist()] == list(range(13))


def test_read_ahead_yields_everything_in_order() -> None:
    got = list(read_ahead(iter(_batches(2, 3, 1)), depth=1))
    assert [v for b in got for v in b.column("n").to_pylist()] == list(range(6))


def test_read_ahead_reads_in_another_thread_and_raises_errors_in_order() -> None:
    seen: list[str] = []

    def source() -> Iterator[pa.RecordBatch]:
        seen.append(threading.current_thread().name)
        yield from _batches(1, 1)
        raise ValueError("disk on fire")

    stream = read_ahead(source())
    assert next(stream).num_rows == 1
    assert next(stream).num_rows == 1
    with pytest.raises(ValueError, match="disk on fire"):
        next(stream)
    assert seen == ["crmbridge-read-ahead"]


def test_closing_early_stops_the_reader() -> None:
    produced: list[int] = []

    def endless() -> Iterator[pa.RecordBatch]:
        n = 0
        while True:
            produced.append(n)
            yield pa.RecordBatch.from_pydict({"n": [n]})
            n += 1

    stream = read_ahead(endless(), depth=2)
    next(stream)
    stream.close()
    count = len(produced)
    assert count <= 5  # at most a few batches ahead, and nothing more after closing
    assert len(produced) == count
