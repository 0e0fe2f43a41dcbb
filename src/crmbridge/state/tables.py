"""The state store's tables as the code reads and writes them: the schema of the latest migration.

The migrations in :mod:`crmbridge.state.migrations` create these tables; they keep their own
frozen definitions so an old step never changes shape. A test checks that a freshly migrated
store has exactly the columns declared here.
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.engine import Dialect


class UtcDateTime(sa.TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on every database.

    PostgreSQL stores ``timestamptz``; SQLite has no time zones, so the value is stored as naive
    UTC. Either way the value read back is aware and in UTC. Binding a naive datetime is a bug.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: the state store needs an aware datetime")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


metadata = sa.MetaData()

schema_version = sa.Table(
    "schema_version",
    metadata,
    sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("description", sa.Text, nullable=False),
    sa.Column("applied_at", UtcDateTime, nullable=False),
)

runs = sa.Table(
    "runs",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("profile", sa.Text, nullable=False),
    sa.Column("profile_path", sa.Text),
    sa.Column("source", sa.Text, nullable=False),
    sa.Column("target", sa.Text, nullable=False),
    sa.Column("mode", sa.String(32), nullable=False),
    sa.Column("started_at", UtcDateTime, nullable=False),
    sa.Column("ended_at", UtcDateTime),
    sa.Column("status", sa.String(32), nullable=False),
    sa.Column("counts", sa.JSON, nullable=False),
    sa.Column("error", sa.Text),
    sa.Column("success_file", sa.Text),
    sa.Column("error_file", sa.Text),
    sa.Column("dry_run", sa.Boolean, nullable=False),
    # migration 4: the run ledger
    sa.Column("profile_key", sa.Text),
    sa.Column("pid", sa.Integer),
    sa.Column("host", sa.Text),
    sa.Column("resumed_from", sa.Integer),
    sa.Column("read_state", sa.JSON),
)

state_values = sa.Table(
    "state_values",
    metadata,
    sa.Column("scope", sa.Text, primary_key=True),
    sa.Column("key", sa.Text, primary_key=True),
    sa.Column("value_json", sa.Text, nullable=False),
    sa.Column("updated_at", UtcDateTime, nullable=False),
)

sent_keys = sa.Table(
    "sent_keys",
    metadata,
    sa.Column("scope", sa.Text, primary_key=True),
    sa.Column("key", sa.Text, primary_key=True),
    sa.Column("run_id", sa.Integer),
    sa.Column("sent_at", UtcDateTime, nullable=False),
)

#: one row per batch of a run: what was planned, what is confirmed, and where the run stood
run_batches = sa.Table(
    "run_batches",
    metadata,
    sa.Column("run_id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("first_row", sa.BigInteger, nullable=False),
    sa.Column("last_row", sa.BigInteger, nullable=False),
    sa.Column("rows_read", sa.BigInteger, nullable=False),
    sa.Column("position", sa.JSON),
    sa.Column("counts", sa.JSON),
    sa.Column("success_bytes", sa.BigInteger),
    sa.Column("error_bytes", sa.BigInteger),
    sa.Column("plan", sa.LargeBinary),
    sa.Column("updated_at", UtcDateTime, nullable=False),
)

#: who runs a profile now (one run per profile at a time)
locks = sa.Table(
    "locks",
    metadata,
    sa.Column("name", sa.Text, primary_key=True),
    sa.Column("token", sa.Text, nullable=False),
    sa.Column("run_id", sa.Integer),
    sa.Column("pid", sa.Integer, nullable=False),
    sa.Column("host", sa.Text, nullable=False),
    sa.Column("acquired_at", UtcDateTime, nullable=False),
    sa.Column("heartbeat_at", UtcDateTime, nullable=False),
)

#: one row per pair of linked records of a sync: their ids, and what was synced last
sync_links = sa.Table(
    "sync_links",
    metadata,
    sa.Column("sync_key", sa.Text, primary_key=True),
    sa.Column("a_id", sa.Text, primary_key=True),
    sa.Column("b_id", sa.Text, nullable=False),
    #: the synced fields' values after the last sync (JSON object, a's field names)
    sa.Column("base", sa.Text, nullable=False),
    sa.Column("a_version", sa.Text),
    sa.Column("b_version", sa.Text),
    sa.Column("run_id", sa.Integer),
    sa.Column("synced_at", UtcDateTime, nullable=False),
    sa.UniqueConstraint("sync_key", "b_id", name="uq_sync_links_b"),
)

#: fields that both sides changed to different values, and what was decided
sync_conflicts = sa.Table(
    "sync_conflicts",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("sync_key", sa.Text, nullable=False),
    sa.Column("run_id", sa.Integer),
    sa.Column("a_id", sa.Text),
    sa.Column("b_id", sa.Text),
    sa.Column("field", sa.Text, nullable=False),
    sa.Column("base", sa.Text),
    sa.Column("a_value", sa.Text),
    sa.Column("b_value", sa.Text),
    sa.Column("policy", sa.String(16), nullable=False),
    #: a | b | held | deleted | revived
    sa.Column("decision", sa.String(16), nullable=False),
    #: open (held, waiting for a decision) | closed
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("resolution", sa.Text),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("resolved_at", UtcDateTime),
)

schedules = sa.Table(
    "schedules",
    metadata,
    sa.Column("name", sa.Text, primary_key=True),
    sa.Column("path", sa.Text, nullable=False),
    #: transfer or sync
    sa.Column("kind", sa.String(16), nullable=False),
    #: None: the profile file's own ``schedule:``
    sa.Column("cron", sa.Text),
    sa.Column("timezone", sa.Text),
    sa.Column("missed", sa.String(16)),
    sa.Column("created_at", UtcDateTime, nullable=False),
    #: every scheduled time up to this instant has been handled (run, skipped or missed)
    sa.Column("handled_until", UtcDateTime, nullable=False),
    sa.Column("last_fired_at", UtcDateTime),
    sa.Column("last_outcome", sa.Text),
)
