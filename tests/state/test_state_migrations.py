from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from crmbridge.errors import ConfigError
from crmbridge.state import SCHEMA_VERSION, StateStore
from crmbridge.state.engine import create_state_engine, parse_url
from crmbridge.state.migrations import LATEST, STEPS, Step, migrate
from crmbridge.state.tables import metadata, runs


@contextmanager
def engine_for(url: str) -> Iterator[sa.Engine]:
    engine = create_state_engine(parse_url(url))
    try:
        yield engine
    finally:
        engine.dispose()


def applied_versions(url: str) -> list[int]:
    with engine_for(url) as engine, engine.connect() as conn:
        return list(
            conn.execute(sa.text("SELECT version FROM schema_version ORDER BY version")).scalars()
        )


def test_steps_are_numbered_one_by_one() -> None:
    assert [s.version for s in STEPS] == list(range(1, len(STEPS) + 1))
    assert SCHEMA_VERSION == LATEST == STEPS[-1].version >= 2


def test_empty_database_is_migrated_to_the_latest_schema(db_url: str) -> None:
    StateStore(db_url).close()

    assert applied_versions(db_url) == [s.version for s in STEPS]
    with engine_for(db_url) as engine, engine.connect() as conn:
        inspector = sa.inspect(conn)
        for table in metadata.sorted_tables:
            reflected = {c["name"]: c["nullable"] for c in inspector.get_columns(table.name)}
            declared = {c.name: c.nullable for c in table.columns}
            assert reflected == declared, table.name
        assert "ix_runs_profile_started" in {i["name"] for i in inspector.get_indexes("runs")}


def test_version_1_store_is_migrated_forward_keeping_its_runs(db_url: str) -> None:
    with engine_for(db_url) as engine:
        assert migrate(engine, up_to=1) == 1
        with engine.begin() as conn:
            assert not sa.inspect(conn).has_table("state_values")
            conn.execute(
                runs.insert().values(
                    profile="leads",
                    profile_path="/p/leads.yaml",
                    source="csv",
                    target="crm",
                    mode="upsert",
                    started_at=datetime(2024, 5, 1, 8, 30, tzinfo=UTC),
                    status="succeeded",
                    counts={"created": 4},
                    dry_run=False,
                )
            )
    assert applied_versions(db_url) == [1]

    with StateStore(db_url) as store:
        old = store.get_run(1)
        store.set_value("cursor", "leads", "2024-05-01")
        assert store.get_value("cursor", "leads") == "2024-05-01"

    assert applied_versions(db_url) == [s.version for s in STEPS]
    assert (old.profile, old.counts, old.started_at) == (
        "leads",
        {"created": 4},
        datetime(2024, 5, 1, 8, 30, tzinfo=UTC),
    )


def test_reopening_a_store_changes_nothing(db_url: str) -> None:
    with StateStore(db_url) as store:
        run_id = store.start_run(
            profile="p", profile_path=None, source="a", target="b", mode="insert", dry_run=True
        )
    for _ in range(2):
        with StateStore(db_url) as store:
            assert store.get_run(run_id).dry_run is True
    assert applied_versions(db_url) == [s.version for s in STEPS]


def test_store_written_by_a_newer_crmbridge_is_refused(db_url: str) -> None:
    StateStore(db_url).close()
    with engine_for(db_url) as engine, engine.begin() as conn:
        conn.execute(
            sa.text("INSERT INTO schema_version VALUES (:v, 'from the future', :t)"),
            {"v": LATEST + 1, "t": datetime.now(UTC).replace(tzinfo=None)},
        )

    with pytest.raises(ConfigError) as err:
        StateStore(db_url)

    message = str(err.value)
    assert f"schema version {LATEST + 1}" in message
    assert f"up to {LATEST}" in message
    assert "Upgrade crmbridge" in message


def test_a_failing_step_leaves_the_store_as_it_was(db_url: str) -> None:
    def broken(conn: sa.Connection) -> None:
        conn.execute(sa.text("CREATE TABLE half_done (x INTEGER)"))
        raise RuntimeError("step 3 failed")

    StateStore(db_url).close()
    with engine_for(db_url) as engine:
        with pytest.raises(RuntimeError, match="step 3 failed"):
            migrate(engine, steps=(*STEPS, Step(LATEST + 1, "broken", broken)))
        with engine.connect() as conn:
            assert not sa.inspect(conn).has_table("half_done")
    assert applied_versions(db_url) == [s.version for s in STEPS]


def test_processes_opening_a_new_store_at_once_migrate_it_once(db_url: str) -> None:
    barrier = threading.Barrier(6)
    failures: list[BaseException] = []

    def open_store() -> None:
        barrier.wait()
        try:
            StateStore(db_url).close()
        except BaseException as exc:  # reported below
            failures.append(exc)

    threads = [threading.Thread(target=open_store) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert failures == []
    assert applied_versions(db_url) == [s.version for s in STEPS]
