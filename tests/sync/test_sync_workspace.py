"""The run's scratch database: rows of a side as read."""

from __future__ import annotations

import pyarrow as pa

from crmbridge.sync.workspace import Workspace

SCHEMA = pa.schema([("id", pa.string()), ("st", pa.string()), ("c0", pa.string())])


def rows(*pairs: tuple[str, str]) -> pa.RecordBatch:
    return pa.RecordBatch.from_pydict(
        {"id": [p[0] for p in pairs], "st": ["in"] * len(pairs), "c0": [p[1] for p in pairs]},
        schema=SCHEMA,
    )


def test_a_record_read_twice_keeps_its_last_copy() -> None:
    # an incremental read returns a record edited while it ran again, with its new values
    with Workspace() as ws:
        ws.prepare_side("a", rows().slice(0, 0))
        ws.add_rows("a", rows(("1", "old"), ("2", "x")), latest=True)
        ws.add_rows("a", rows(("1", "newer"), ("1", "newest")), latest=True)
        ws.add_rows("a", rows(("2", "fetched later")))  # a fetched copy never replaces a read one
        found = dict(ws.con.sql("SELECT id, c0 FROM a_rows ORDER BY id").fetchall())
    assert found == {"1": "newest", "2": "x"}
