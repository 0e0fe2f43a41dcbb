"""The scratch database of one sync run: both sides' rows and the links they take part in.

A DuckDB database file in a temporary folder, with a memory limit: what does not fit in
memory is evicted to the file or spilled beside it, and the merge reads the links page by page,
so a sync of millions of linked records runs in bounded memory. Tables:

``a_rows`` / ``b_rows``
    each side's rows (:mod:`crmbridge.sync.sides`), one per record id;
``links``
    the pairs this run looks at: ``a_id``, ``b_id``, ``base`` (JSON, from the state store;
    null for a link made this run), ``kind`` (``old``, ``key``, ``stored``, ``fuzzy``),
    ``score`` (fuzzy similarity);
``holds``
    records of either side that this run neither links nor creates, and why.

It is dropped when the run ends; the state store keeps what lasts (links, conflicts).
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

#: how much memory the scratch database may use before it spills to disk
MEMORY_LIMIT = "1GB"

LINKS_SCHEMA = pa.schema(
    [
        pa.field("a_id", pa.string()),
        pa.field("b_id", pa.string()),
        pa.field("base", pa.string()),
        pa.field("kind", pa.string()),
        pa.field("score", pa.float64()),
    ]
)
HOLDS_SCHEMA = pa.schema(
    [
        pa.field("side", pa.string()),
        pa.field("id", pa.string()),
        pa.field("reason", pa.string()),
        pa.field("partner", pa.string()),
        pa.field("score", pa.float64()),
    ]
)


class Workspace:
    """Use as a context manager; see the module docstring."""

    def __init__(self, folder: Path | None = None) -> None:
        self._folder = Path(tempfile.mkdtemp(prefix="crmbridge-sync-", dir=folder))
        # in memory up to the limit, then spilled to files in the folder
        self.con = duckdb.connect(
            str(self._folder / "workspace.duckdb"),
            config={"memory_limit": MEMORY_LIMIT, "temp_directory": str(self._folder / "spill")},
        )
        self.con.execute("SET TimeZone = 'UTC'")
        self._create("links", LINKS_SCHEMA, key="a_id")
        self._create("holds", HOLDS_SCHEMA)
        self._sides: set[str] = set()

    def __enter__(self) -> Workspace:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.con.close()
        shutil.rmtree(self._folder, ignore_errors=True)

    def _create(self, table: str, schema: pa.Schema, *, key: str | None = None) -> None:
        self.con.register("_empty", schema.empty_table())
        self.con.execute(f"CREATE TABLE {table} AS SELECT * FROM _empty")
        self.con.unregister("_empty")
        if key:
            self.con.execute(f"CREATE UNIQUE INDEX {table}_{key} ON {table} ({key})")

    # -- rows -----------------------------------------------------------------------------
    def prepare_side(self, side: str, empty: pa.RecordBatch) -> None:
        """Create ``<side>_rows`` with the columns of ``empty``."""
        self._create(f"{side}_rows", empty.schema, key="id")
        self._sides.add(side)

    def add_rows(self, side: str, rows: pa.RecordBatch, *, latest: bool = False) -> None:
        """Add rows; a record already there stays as it was (read before fetched), unless
        ``latest``: then the last copy of a record wins (a read that returns a record edited
        while it ran twice, the second time with its new values)."""
        if rows.num_rows == 0:
            return
        if not latest:
            self.con.register("_rows", rows)
            self.con.execute(f"INSERT OR IGNORE INTO {side}_rows SELECT * FROM _rows")
            self.con.unregister("_rows")
            return
        numbered = rows.append_column("_pos", pa.array(range(rows.num_rows), pa.int64()))
        self.con.register("_rows", numbered)
        self.con.execute(f"DELETE FROM {side}_rows WHERE id IN (SELECT id FROM _rows)")
        self.con.execute(
            f"INSERT INTO {side}_rows SELECT * EXCLUDE (_pos) FROM _rows "
            "QUALIFY row_number() OVER (PARTITION BY id ORDER BY _pos DESC) = 1"
        )
        self.con.unregister("_rows")

    def add_links(self, links: pa.Table) -> None:
        if links.num_rows == 0:
            return
        self.con.register("_links", links.select(LINKS_SCHEMA.names).cast(LINKS_SCHEMA))
        self.con.execute("INSERT OR IGNORE INTO links SELECT * FROM _links")
        self.con.unregister("_links")

    def add_holds(self, holds: Sequence[tuple[str, str, str, str | None, float | None]]) -> None:
        if not holds:
            return
        table = pa.Table.from_pylist(
            [dict(zip(HOLDS_SCHEMA.names, h, strict=True)) for h in holds], schema=HOLDS_SCHEMA
        )
        self.con.register("_holds", table)
        self.con.execute("INSERT INTO holds SELECT * FROM _holds")
        self.con.unregister("_holds")

    # -- questions ------------------------------------------------------------------------
    def table(self, sql: str, params: Sequence[Any] = ()) -> pa.Table:
        return self.con.sql(sql, params=list(params) or None).to_arrow_table()

    def batches(self, sql: str, size: int) -> Iterator[pa.RecordBatch]:
        """The answer to ``sql`` in batches (its own cursor: other questions may be asked
        while it is read)."""
        cursor = self.con.cursor()
        try:
            reader: pa.RecordBatchReader = cursor.sql(sql).to_arrow_reader(size)
            yield from reader
        finally:
            cursor.close()

    def column(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        return [row[0] for row in self.con.execute(sql, list(params)).fetchall()]

    def scalar(self, sql: str) -> Any:
        rows = self.con.execute(sql).fetchall()
        return rows[0][0] if rows else None


__all__ = ["HOLDS_SCHEMA", "LINKS_SCHEMA", "MEMORY_LIMIT", "Workspace"]
