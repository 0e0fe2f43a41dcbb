"""Creates that nothing else identifies, recognised after a crash: ``crmbridge_applied``.

An insert without match keys into a table whose key the database makes (or that has no primary
key) leaves nothing that tells our rows from anyone else's. If the process dies after the
database committed such a batch but before the run ledger confirmed it, the next run carries
the batch out again and could not tell that it was done. So creates of that kind also record,
**in the same transaction**, each operation's key (the engine's stable ``OP_KEY_COLUMN`` within
the writing profile) and the id the row got, in the table ``crmbridge_applied`` of the target
database (in the target table's schema). A repeated attempt (``attempt > 1``) looks the keys up
first: an operation found there was applied (its transaction committed) and is confirmed with
its id, never inserted again. Either the rows and their markers are in the database, or neither
is.

The table is created when first needed (``CREATE TABLE`` before the write transaction, since
MySQL commits on DDL), holds one short row per such create, and loses rows older than
:data:`KEEP_DAYS` (a run is resumed long before). Creates with match keys, or into a table
whose primary key the profile writes, never use it: their rows identify themselves.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
from collections.abc import Sequence

import sqlalchemy as sa

from crmbridge.connectors.sql.tables import TableInfo

TABLE_NAME = "crmbridge_applied"
#: markers older than this are removed
KEEP_DAYS = 30
#: op keys per lookup query
_LOOKUP = 1_000

log = logging.getLogger(__name__)


def marker_table(schema: str | None) -> sa.Table:
    return sa.Table(
        TABLE_NAME,
        sa.MetaData(),
        sa.Column("op_key", sa.String(64), primary_key=True),
        sa.Column("object", sa.String(255), nullable=False),
        sa.Column("target_id", sa.Text),
        sa.Column("applied_at", sa.DateTime, nullable=False, index=True),
        schema=schema,
    )


def marker_keys(namespace: str, object: str, op_keys: Sequence[str]) -> list[str]:
    """The marker of each operation: its key within the writing profile and object."""
    prefix = f"{namespace}\x1f{object}\x1f"
    return [hashlib.sha256((prefix + k).encode()).hexdigest() for k in op_keys]


def needs_markers(info: TableInfo, columns: Sequence[str], keys: Sequence[str]) -> bool:
    """Do creates of these columns into ``info`` need markers (see the module docstring)?"""
    if keys:
        return False
    pk = info.primary_key
    return not pk or not set(pk) <= set(columns)


class Markers:
    """The marker table of one database schema (created once per connection)."""

    def __init__(self, engine: sa.Engine, schema: str | None) -> None:
        self.engine = engine
        self.table = marker_table(schema)
        self._ready: bool | None = None

    def ready(self) -> bool:
        """Create the table when missing and drop old markers; False when the database user
        may not create it (then creates go on without markers, as before, with a warning)."""
        if self._ready is None:
            try:
                with self.engine.begin() as conn:
                    self.table.create(conn, checkfirst=True)
                with self.engine.begin() as conn:
                    old = _now() - dt.timedelta(days=KEEP_DAYS)
                    conn.execute(self.table.delete().where(self.table.c.applied_at < old))
                self._ready = True
            except sa.exc.SQLAlchemyError as err:
                log.warning(
                    "cannot keep markers of keyless inserts in %s (%s): a run killed between "
                    "the database's commit and the ledger's may insert its last batch again",
                    TABLE_NAME,
                    str(err).splitlines()[0],
                )
                self._ready = False
        return self._ready

    def found(self, conn: sa.Connection, op_keys: Sequence[str]) -> dict[str, str | None]:
        """marker key -> the id its row got, for the keys applied already."""
        result: dict[str, str | None] = {}
        c = self.table.c
        unique = list(dict.fromkeys(op_keys))
        for start in range(0, len(unique), _LOOKUP):
            query = sa.select(c.op_key, c.target_id).where(
                c.op_key.in_(unique[start : start + _LOOKUP])
            )
            result.update({row.op_key: row.target_id for row in conn.execute(query)})
        return result

    def record(
        self, conn: sa.Connection, object: str, op_keys: Sequence[str], ids: Sequence[str | None]
    ) -> None:
        """Record the creates just made (inside the transaction that made them), replacing
        the markers of earlier creates with the same keys (a later run inserting the same
        source records once more)."""
        if not op_keys:
            return
        now = _now()
        for start in range(0, len(op_keys), _LOOKUP):
            part = list(op_keys[start : start + _LOOKUP])
            conn.execute(self.table.delete().where(self.table.c.op_key.in_(part)))
        conn.execute(
            self.table.insert(),
            [
                {"op_key": k, "object": object, "target_id": i, "applied_at": now}
                for k, i in zip(op_keys, ids, strict=True)
            ],
        )


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


__all__ = ["KEEP_DAYS", "TABLE_NAME", "Markers", "marker_table", "needs_markers"]
