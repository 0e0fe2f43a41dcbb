"""SQLite bulk path: the portable path, with upserts as one ``INSERT ... ON CONFLICT``.

SQLite runs in-process, so ``executemany`` costs no round trips. An upsert writes the new and
the changed rows with one ``INSERT ... ON CONFLICT (keys) DO UPDATE`` when the match keys
carry a unique index; a clash with any other unique index is still an error.
"""

from __future__ import annotations

import pyarrow as pa
import sqlalchemy as sa

from crmbridge.connectors.sql.write_generic import (
    GenericWriter,
    execute_many,
    insert_sql,
    quoted,
)
from crmbridge.connectors.sql.writing import WritePlan


class SqliteWriter(GenericWriter):
    """GenericWriter whose upserts are INSERT ... ON CONFLICT DO UPDATE."""

    def upsert(
        self, conn: sa.Connection, plan: WritePlan, new: pa.Table, changed: pa.Table
    ) -> None:
        if not (plan.values and plan.info.is_unique(plan.keys) and plan.required_present):
            super().upsert(conn, plan, new, changed)
            return
        rows = pa.concat_tables([new, changed])
        execute_many(conn, on_conflict_sql(conn.dialect, plan), rows, plan.columns, plan)


def on_conflict_sql(d: sa.Dialect, plan: WritePlan) -> str:
    """``INSERT ... VALUES (..) ON CONFLICT (k) DO UPDATE SET a = excluded.a, ...``."""
    keys = ", ".join(quoted(d, plan.keys))
    sets = ", ".join(f"{c} = excluded.{c}" for c in quoted(d, plan.values))
    return f"{insert_sql(d, plan)} ON CONFLICT ({keys}) DO UPDATE SET {sets}"
