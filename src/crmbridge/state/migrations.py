"""Numbered, forward-only migrations of the state store's schema.

The ``schema_version`` table holds one row per applied step. Opening a store applies the
missing steps in order, in one transaction, holding a lock so two processes opening a new
store at once do not both migrate it. A store whose version is higher than the last step
known here was written by a newer crmbridge and is refused.

To change the schema, append a step; never edit a step that has been released. Each step
declares the tables it creates as they were at that version, so replaying old steps always
produces the same shape. :mod:`crmbridge.state.tables` declares the latest shape for queries.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa

from crmbridge.errors import ConfigError
from crmbridge.state.tables import UtcDateTime, schema_version

#: PostgreSQL advisory lock key held while migrating ("crmb" in ASCII)
_PG_LOCK_KEY = 0x63726D62


@dataclass(frozen=True)
class Step:
    """One migration: ``apply`` runs inside the migration transaction."""

    version: int
    description: str
    apply: Callable[[sa.Connection], None]


def _create_runs(conn: sa.Connection) -> None:
    sa.Table(
        "runs",
        sa.MetaData(),
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
    ).create(conn)


def _create_state_values(conn: sa.Connection) -> None:
    sa.Table(
        "state_values",
        sa.MetaData(),
        sa.Column("scope", sa.Text, primary_key=True),
        sa.Column("key", sa.Text, primary_key=True),
        sa.Column("value_json", sa.Text, nullable=False),
        sa.Column("updated_at", UtcDateTime, nullable=False),
    ).create(conn)
    conn.execute(sa.text("CREATE INDEX ix_runs_profile_started ON runs (profile, started_at)"))


def _create_sent_keys(conn: sa.Connection) -> None:
    sa.Table(
        "sent_keys",
        sa.MetaData(),
        sa.Column("scope", sa.Text, primary_key=True),
        sa.Column("key", sa.Text, primary_key=True),
        sa.Column("run_id", sa.Integer),
        sa.Column("sent_at", UtcDateTime, nullable=False),
    ).create(conn)


def _create_ledger(conn: sa.Connection) -> None:
    for name, column_type in (
        ("profile_key", "TEXT"),
        ("pid", "INTEGER"),
        ("host", "TEXT"),
        ("resumed_from", "INTEGER"),
        ("read_state", "JSON" if conn.dialect.name == "postgresql" else "TEXT"),
    ):
        conn.execute(sa.text(f"ALTER TABLE runs ADD COLUMN {name} {column_type}"))
    conn.execute(sa.text("CREATE INDEX ix_runs_profile_key_status ON runs (profile_key, status)"))
    sa.Table(
        "run_batches",
        sa.MetaData(),
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
    ).create(conn)
    sa.Table(
        "locks",
        sa.MetaData(),
        sa.Column("name", sa.Text, primary_key=True),
        sa.Column("token", sa.Text, nullable=False),
        sa.Column("run_id", sa.Integer),
        sa.Column("pid", sa.Integer, nullable=False),
        sa.Column("host", sa.Text, nullable=False),
        sa.Column("acquired_at", UtcDateTime, nullable=False),
        sa.Column("heartbeat_at", UtcDateTime, nullable=False),
    ).create(conn)


def _create_sync(conn: sa.Connection) -> None:
    sa.Table(
        "sync_links",
        sa.MetaData(),
        sa.Column("sync_key", sa.Text, primary_key=True),
        sa.Column("a_id", sa.Text, primary_key=True),
        sa.Column("b_id", sa.Text, nullable=False),
        sa.Column("base", sa.Text, nullable=False),
        sa.Column("a_version", sa.Text),
        sa.Column("b_version", sa.Text),
        sa.Column("run_id", sa.Integer),
        sa.Column("synced_at", UtcDateTime, nullable=False),
        sa.UniqueConstraint("sync_key", "b_id", name="uq_sync_links_b"),
    ).create(conn)
    sa.Table(
        "sync_conflicts",
        sa.MetaData(),
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
        sa.Column("decision", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("resolution", sa.Text),
        sa.Column("created_at", UtcDateTime, nullable=False),
        sa.Column("resolved_at", UtcDateTime),
    ).create(conn)
    conn.execute(
        sa.text("CREATE INDEX ix_sync_conflicts_open ON sync_conflicts (sync_key, status)")
    )


def _create_schedules(conn: sa.Connection) -> None:
    sa.Table(
        "schedules",
        sa.MetaData(),
        sa.Column("name", sa.Text, primary_key=True),
        sa.Column("path", sa.Text, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("cron", sa.Text),
        sa.Column("timezone", sa.Text),
        sa.Column("missed", sa.String(16)),
        sa.Column("created_at", UtcDateTime, nullable=False),
        sa.Column("handled_until", UtcDateTime, nullable=False),
        sa.Column("last_fired_at", UtcDateTime),
        sa.Column("last_outcome", sa.Text),
    ).create(conn)


STEPS: tuple[Step, ...] = (
    Step(1, "run history", _create_runs),
    Step(2, "key/value state; runs indexed by profile", _create_state_values),
    Step(3, "keys of records already sent (deduplicate)", _create_sent_keys),
    Step(4, "run ledger: batches and locks; runs know their profile and process", _create_ledger),
    Step(5, "two-way sync: linked records and the conflict log", _create_sync),
    Step(6, "schedules of profiles", _create_schedules),
)

#: the schema version this code reads and writes
LATEST = STEPS[-1].version


def current_version(conn: sa.Connection) -> int:
    """The store's schema version; 0 for an empty database."""
    if not sa.inspect(conn).has_table("schema_version"):
        return 0
    version = conn.execute(sa.select(sa.func.max(schema_version.c.version))).scalar_one()
    return int(version or 0)


def migrate(engine: sa.Engine, *, steps: Sequence[Step] = STEPS, up_to: int | None = None) -> int:
    """Bring the store to ``up_to`` (default: the last step); return the version it is at.

    A store newer than the last of ``steps`` is a ConfigError. ``up_to`` below the current
    version changes nothing: migrations only go forward.
    """
    latest = steps[-1].version
    target = latest if up_to is None else min(up_to, latest)
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(sa.select(sa.func.pg_advisory_xact_lock(_PG_LOCK_KEY)))
        schema_version.create(conn, checkfirst=True)
        current = current_version(conn)
        if current > latest:
            where = engine.url.render_as_string(hide_password=True)
            raise ConfigError(
                f"the state store {where} has schema version {current}, but this crmbridge "
                f"knows versions up to {latest}: it was written by a newer crmbridge. "
                f"Upgrade crmbridge (pip install -U crmbridge), or use another store "
                f"(CRMBRIDGE_STATE_URL or CRMBRIDGE_HOME)"
            )
        for step in steps:
            if current < step.version <= target:
                step.apply(conn)
                conn.execute(
                    schema_version.insert().values(
                        version=step.version,
                        description=step.description,
                        applied_at=datetime.now(UTC),
                    )
                )
        return max(current, target)
