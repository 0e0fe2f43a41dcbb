from __future__ import annotations

import sqlite3
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from crmbridge.errors import ConfigError, ConnectionFailedError
from crmbridge.state import RunStatus, StateStore


def start(store: StateStore, profile: str = "leads", *, dry_run: bool = False) -> int:
    return store.start_run(
        profile=profile,
        profile_path=f"/profiles/{profile}.yaml",
        source="csv:leads.csv",
        target="crm:Leads",
        mode="upsert",
        dry_run=dry_run,
    )


def assert_recent_utc(value: datetime | None) -> None:
    assert value is not None
    assert value.tzinfo == UTC
    assert abs(datetime.now(UTC) - value) < timedelta(seconds=30)


def test_a_run_is_recorded_from_start_to_finish(db_url: str) -> None:
    with StateStore(db_url) as store:
        run_id = start(store)
        running = store.get_run(run_id)
        store.finish_run(
            run_id,
            status=RunStatus.FINISHED_WITH_REJECTS,
            counts={"created": 7, "updated": 2, "rejected": 1},
            error=None,
            success_file="/out/success.csv",
            error_file="/out/error.csv",
        )
        done = store.get_run(run_id)

    assert (running.status, running.ended_at, running.counts) == (RunStatus.RUNNING, None, {})
    assert_recent_utc(running.started_at)
    assert (running.profile, running.profile_path, running.source, running.target) == (
        "leads",
        "/profiles/leads.yaml",
        "csv:leads.csv",
        "crm:Leads",
    )
    assert (running.mode, running.dry_run) == ("upsert", False)
    assert done.status is RunStatus.FINISHED_WITH_REJECTS
    assert done.counts == {"created": 7, "updated": 2, "rejected": 1}
    assert (done.success_file, done.error_file, done.error) == (
        "/out/success.csv",
        "/out/error.csv",
        None,
    )
    assert done.started_at == running.started_at
    assert_recent_utc(done.ended_at)
    assert done.ended_at is not None
    assert done.ended_at >= done.started_at


def test_a_failed_run_keeps_its_error_summary(db_url: str) -> None:
    with StateStore(db_url) as store:
        run_id = start(store, dry_run=True)
        store.finish_run(
            run_id,
            status=RunStatus.FAILED,
            counts={},
            error="connection 'crm': login refused",
            success_file=None,
            error_file=None,
        )
        run = store.get_run(run_id)
    assert (run.status, run.error, run.dry_run) == (
        RunStatus.FAILED,
        "connection 'crm': login refused",
        True,
    )


def test_datetimes_are_utc_whatever_the_session_time_zone(pg_url: str) -> None:
    tokyo = pg_url + "%20-ctimezone%3DAsia/Tokyo"
    with StateStore(tokyo) as store:
        run_id = start(store)
    with StateStore(pg_url) as store:
        run = store.get_run(run_id)
    assert_recent_utc(run.started_at)


def test_runs_are_listed_newest_first_by_profile_and_limited(db_url: str) -> None:
    with StateStore(db_url) as store:
        ids = [start(store, profile) for profile in ["a", "b", "a", "c", "a"]]
        newest = store.list_runs()
        of_a = store.list_runs(profile="a")
        two = store.list_runs(limit=2)
        none = store.list_runs(profile="zzz")

    assert [r.id for r in newest] == ids[::-1]
    assert [r.id for r in of_a] == [ids[4], ids[2], ids[0]]
    assert [r.id for r in two] == [ids[4], ids[3]]
    assert none == []


def test_list_limit_must_be_positive(tmp_path: Path) -> None:
    with (
        StateStore(f"sqlite:///{tmp_path}/s.sqlite") as store,
        pytest.raises(ConfigError, match="at least 1, not 0"),
    ):
        store.list_runs(limit=0)


def test_unknown_run_ids_are_config_errors(db_url: str) -> None:
    with StateStore(db_url) as store:
        with pytest.raises(ConfigError, match="no run with id 42"):
            store.get_run(42)
        with pytest.raises(ConfigError, match="no run with id 43"):
            store.finish_run(
                43,
                status=RunStatus.SUCCEEDED,
                counts={},
                error=None,
                success_file=None,
                error_file=None,
            )


def test_values_are_stored_per_scope_and_key(db_url: str) -> None:
    with StateStore(db_url) as store:
        assert store.get_value("cursor", "leads") is None
        store.set_value("cursor", "leads", {"modified": "2024-05-01T08:00:00Z", "ids": [1, 2]})
        store.set_value("sent", "leads", ["e1"])
        store.set_value("cursor", "leads", {"modified": "2024-06-01T00:00:00Z"})
        store.set_value("cursor", "contacts", 0)

        assert store.get_value("cursor", "leads") == {"modified": "2024-06-01T00:00:00Z"}
        assert store.get_value("sent", "leads") == ["e1"]
        assert store.get_value("cursor", "contacts") == 0


def test_default_store_is_a_sqlite_file_in_the_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CRMBRIDGE_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("CRMBRIDGE_STATE_URL", raising=False)
    assert StateStore.default_url() == f"sqlite:///{tmp_path}/home/state.sqlite"

    with StateStore() as store:
        start(store)
    assert (tmp_path / "home" / "state.sqlite").is_file()
    assert (tmp_path / "home").stat().st_mode & 0o777 == 0o700

    monkeypatch.setenv("CRMBRIDGE_STATE_URL", f"sqlite:///{tmp_path}/other.sqlite")
    with StateStore() as store:
        assert store.list_runs() == []
    assert (tmp_path / "other.sqlite").is_file()


def test_sqlite_store_uses_the_wal_journal(tmp_path: Path) -> None:
    StateStore(f"sqlite:///{tmp_path}/s.sqlite").close()
    conn = sqlite3.connect(tmp_path / "s.sqlite")
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    finally:
        conn.close()


def test_concurrent_runs_share_a_sqlite_store(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/s.sqlite"
    StateStore(url).close()
    failures: list[BaseException] = []

    def worker(n: int) -> None:
        try:
            with StateStore(url) as store:
                for i in range(20):
                    run_id = start(store, f"p{n}")
                    store.set_value("cursor", f"p{n}", i)
                    store.list_runs(limit=5)
                    store.finish_run(
                        run_id,
                        status=RunStatus.SUCCEEDED,
                        counts={"created": i},
                        error=None,
                        success_file=None,
                        error_file=None,
                    )
        except BaseException as exc:  # reported below
            failures.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert failures == []
    with StateStore(url) as store:
        for n in range(4):
            runs = store.list_runs(profile=f"p{n}", limit=100)
            assert sorted(r.counts["created"] for r in runs) == list(range(20))
            assert {r.status for r in runs} == {RunStatus.SUCCEEDED}
            assert store.get_value("cursor", f"p{n}") == 19


def test_only_sqlite_and_postgresql_are_supported() -> None:
    with pytest.raises(ConfigError, match=r"cannot be on 'mysql'.*use SQLite or PostgreSQL"):
        StateStore("mysql+pymysql://root@127.0.0.1/state")


def test_a_malformed_url_is_not_echoed() -> None:
    with pytest.raises(ConfigError, match="not a database URL") as err:
        StateStore("not a url with sekrit-pw")
    assert "sekrit-pw" not in str(err.value)


def test_unreachable_postgresql_names_the_store_without_its_password() -> None:
    with pytest.raises(ConnectionFailedError) as err:
        StateStore("postgresql://crm:sekrit-pw@127.0.0.1:1/state")
    message = str(err.value)
    assert "cannot open the state store postgresql+psycopg://crm:***@127.0.0.1:1/state" in message
    assert "sekrit-pw" not in message


def test_a_file_that_is_not_a_database_is_refused(tmp_path: Path) -> None:
    (tmp_path / "s.sqlite").write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(
        ConnectionFailedError, match=r"cannot open the state store .*not a database"
    ):
        StateStore(f"sqlite:///{tmp_path}/s.sqlite")


def test_public_names() -> None:
    import crmbridge.state as state

    assert all(hasattr(state, name) for name in state.__all__)
    assert {s.name: s.value for s in RunStatus} == {
        "RUNNING": "running",
        "SUCCEEDED": "succeeded",
        "FINISHED_WITH_REJECTS": "finished_with_rejects",
        "FAILED": "failed",
        "INTERRUPTED": "interrupted",
        "DRY_RUN": "dry_run",
    }


def test_sent_keys_are_remembered_per_scope(db_url: str) -> None:
    store = StateStore(db_url)
    assert store.sent("events", ["a", "b"]) == {}
    store.mark_sent("events", ["a", "b", "a"], run_id=1)
    store.mark_sent("events", ["b", "c"], run_id=2)  # b again: kept, no error
    assert store.sent("events", ["a", "c", "d"]) == {"a": 1, "c": 2}
    assert store.sent("other", ["a"]) == {}
    store.close()


def test_sent_keys_handle_many_keys(db_url: str) -> None:
    store = StateStore(db_url)
    keys = [f"k{i}" for i in range(1_234)]
    store.mark_sent("big", keys)
    assert set(store.sent("big", [*keys, "missing"])) == set(keys)
    store.close()
