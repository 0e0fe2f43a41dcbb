"""The run ledger: one run per profile at a time, every run ends with a status and counts,
and an interrupted run is continued where it stood (deterministic cases; the random kill -9
trials are in test_crashes.py)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from tests.runner.conftest import nonzero, run, write_csv, write_profile

from crmbridge.connections import ConnectionStore
from crmbridge.errors import RecordError
from crmbridge.runner.ledger import AlreadyRunningError
from crmbridge.runner.writing import TargetWriter
from crmbridge.sandbox.sugarcrm import SugarSandbox
from crmbridge.state import BatchStatus, RunStatus, StateStore, lock_name
from crmbridge.state.tables import locks

PROFILE = """
    source: {connection: {type: csv, path: .}, object: people.csv}
    target: {connection: {type: sql, url: "sqlite:///db.sqlite"}, object: people, mode: upsert,
             match_keys: [email], create: true}
    mapping: {email: email, name: name}
    batch_size: 2
"""


@pytest.fixture
def people(tmp_path: Path) -> Path:
    rows = "".join(f"p{i}@x.com,P{i}\n" for i in range(7))
    return write_csv(tmp_path / "people.csv", "email,name\n" + rows)


def _count(tmp_path: Path) -> int:
    engine = sa.create_engine(f"sqlite:///{tmp_path}/db.sqlite")
    with engine.connect() as conn:
        n = int(conn.execute(sa.text("SELECT count(*) FROM people")).scalar_one())
    engine.dispose()
    return n


def test_a_second_run_of_a_running_profile_stops_with_who_runs_it(
    tmp_path: Path, people: Path, store: ConnectionStore, state: StateStore
) -> None:
    loaded = write_profile(tmp_path, PROFILE)
    held = state.locks.acquire(lock_name(loaded.key))
    assert not isinstance(held, type(None))
    state.locks.assign(held, 41)  # type: ignore[arg-type]
    with pytest.raises(AlreadyRunningError) as info:
        run(loaded, store, state)
    message = str(info.value)
    assert "profile 'profile' is already running (run 41, started " in message
    assert f"pid {os.getpid()}" in message
    assert "--wait" in message
    # --wait: the run starts once the lock is free
    threading.Timer(1.5, lambda: state.locks.release(held)).start()  # type: ignore[arg-type]
    started = time.monotonic()
    summary = run(loaded, store, state, wait=True)
    assert time.monotonic() - started >= 1.0
    assert nonzero(summary.counts) == {"created": 7}


def test_a_stale_lock_of_a_dead_process_is_taken_over(
    tmp_path: Path, people: Path, store: ConnectionStore, state: StateStore, home: Path
) -> None:
    loaded = write_profile(tmp_path, PROFILE)
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    engine = sa.create_engine(f"sqlite:///{home}/state.sqlite")
    now = datetime.now(UTC)
    with engine.begin() as conn:
        conn.execute(
            locks.insert().values(
                name=lock_name(loaded.key),
                token="old",
                run_id=None,
                pid=int(dead.stdout),
                host=os.uname().nodename,
                acquired_at=now,
                heartbeat_at=now,
            )
        )
    engine.dispose()
    assert nonzero(run(loaded, store, state).counts) == {"created": 7}


def test_a_run_ended_by_a_bug_is_failed_with_its_counts(
    tmp_path: Path,
    people: Path,
    store: ConnectionStore,
    state: StateStore,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    loaded = write_profile(tmp_path, PROFILE)
    real_apply = TargetWriter.apply
    calls = {"n": 0}

    def failing(self: TargetWriter, *args: object, **kwargs: object) -> object:
        calls["n"] += 1
        if calls["n"] == 3:
            raise ZeroDivisionError("a bug")
        return real_apply(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(TargetWriter, "apply", failing)
    summary = run(loaded, store, state)
    assert summary.status is RunStatus.FAILED
    assert summary.exit_code == 3
    assert "internal error ZeroDivisionError: a bug" in (summary.error or "")
    assert nonzero(summary.counts) == {"created": 4}  # the two batches before it
    record = state.get_run(summary.run_id)
    assert record.status is RunStatus.FAILED
    assert record.counts["created"] == 4
    assert Path(str(summary.error).split("traceback is in ")[1].rstrip(")")).exists()


def test_a_record_the_target_refuses_by_raising_is_rejected_alone(
    tmp_path: Path,
    people: Path,
    store: ConnectionStore,
    state: StateStore,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from crmbridge.connectors.sql import SqlConnector

    loaded = write_profile(tmp_path, PROFILE.replace("batch_size: 2", "batch_size: 10"))
    real_apply = SqlConnector.apply

    def picky(self: SqlConnector, request: object) -> object:
        names = request.ops.column("name").to_pylist()  # type: ignore[attr-defined]
        if "P3" in names:
            raise RecordError("P3 is not welcome here")
        return real_apply(self, request)  # type: ignore[arg-type]

    monkeypatch.setattr(SqlConnector, "apply", picky)
    summary = run(loaded, store, state, output_dir=tmp_path / "run")
    assert nonzero(summary.counts) == {"created": 6, "rejected": 1}
    assert "P3 is not welcome here" in (tmp_path / "run/error.csv").read_text()


def test_every_batch_is_recorded_and_confirmed(
    tmp_path: Path, people: Path, store: ConnectionStore, state: StateStore
) -> None:
    summary = run(write_profile(tmp_path, PROFILE), store, state)
    batches = state.ledger.batches(summary.run_id)
    assert [b.status for b in batches] == [BatchStatus.CONFIRMED] * 4
    assert [b.rows_read for b in batches] == [2, 4, 6, 7]
    assert all(b.plan is None for b in batches), "plans are dropped once confirmed"
    assert sum(b.counts.get("created", 0) for b in batches) == 7


CRASHING = """
import os, sys
from crmbridge.runner.writing import TargetWriter
real = TargetWriter.apply
calls = {"n": 0}
def apply(self, plan, *, attempt=1):
    calls["n"] += 1
    out = real(self, plan, attempt=attempt)
    if calls["n"] == int(sys.argv[2]):
        os._exit(9)  # killed right after the target committed, before the ledger knew
    return out
TargetWriter.apply = apply
from crmbridge.cli.app import main
main(["run", sys.argv[1], "--no-progress"])
"""


@pytest.mark.parametrize("crash_at", [1, 3])
def test_a_run_killed_after_the_target_committed_is_continued_without_repeats(
    tmp_path: Path,
    people: Path,
    store: ConnectionStore,
    state: StateStore,
    home: Path,
    crash_at: int,
) -> None:
    loaded = write_profile(tmp_path, PROFILE.replace("mode: upsert", "mode: insert"))
    script = tmp_path / "crash.py"
    script.write_text(CRASHING)
    env = {**os.environ, "CRMBRIDGE_HOME": str(home)}
    died = subprocess.run(
        [sys.executable, str(script), str(loaded.path), str(crash_at)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
    )
    assert died.returncode == 9, died.stderr
    [crashed] = state.list_runs()
    assert crashed.status is RunStatus.RUNNING  # nobody could say otherwise yet
    summary = run(loaded, store, state)
    assert summary.resumed_from == crashed.id
    assert summary.status is RunStatus.SUCCEEDED
    old = state.get_run(crashed.id)
    assert old.status is RunStatus.INTERRUPTED
    assert old.counts.get("created", 0) == 2 * (crash_at - 1)
    # the in-flight batch was confirmed (not inserted twice, not rejected as a duplicate)
    assert nonzero(summary.counts) == {"created": 7 - 2 * (crash_at - 1)}
    assert _count(tmp_path) == 7
    # the files of both runs together hold every record once
    lines = []
    for record in (old, state.get_run(summary.run_id)):
        lines += Path(record.success_file).read_text().splitlines()[1:]  # type: ignore[arg-type]
    assert len(lines) == 7


def test_history_shows_a_killed_run_as_interrupted(
    tmp_path: Path,
    people: Path,
    store: ConnectionStore,
    state: StateStore,
    home: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from crmbridge.cli.app import main

    loaded = write_profile(tmp_path, PROFILE)
    script = tmp_path / "crash.py"
    script.write_text(CRASHING)
    env = {**os.environ, "CRMBRIDGE_HOME": str(home)}
    subprocess.run(
        [sys.executable, str(script), str(loaded.path), "2"], cwd=tmp_path, env=env, check=False
    )
    with pytest.raises(SystemExit):
        main(["history"])
    out = capsys.readouterr().out
    assert "interrupted" in out
    [killed] = state.list_runs()
    assert killed.status is RunStatus.INTERRUPTED
    assert killed.counts["created"] == 2  # the batch it confirmed
    assert "run the profile again to continue it" in (killed.error or "")


def test_a_setting_the_source_cannot_honour_is_a_profile_error(
    tmp_path: Path, people: Path, store: ConnectionStore, state: StateStore
) -> None:
    from crmbridge.errors import ProfileError

    text = PROFILE.replace("object: people.csv}", "object: people.csv, include_deleted: true}")
    with pytest.raises(ProfileError, match="csv sources cannot tell deleted records apart"):
        run(write_profile(tmp_path, text), store, state)


@pytest.mark.parametrize("wait", [False, True])
def test_two_runs_of_one_profile_at_once_never_duplicate(
    tmp_path: Path,
    sugar: SugarSandbox,
    store: ConnectionStore,
    state: StateStore,
    home: Path,
    wait: bool,
) -> None:
    rows = "".join(f"twin{i}@x.com,T{i}\n" for i in range(150))
    write_csv(tmp_path / "leads.csv", "email,name\n" + rows)
    loaded = write_profile(
        tmp_path,
        """
        source: {connection: {type: csv, path: .}, object: leads.csv}
        target: {connection: crm, object: Leads, mode: upsert, match_keys: [email1]}
        mapping: {email1: email, last_name: name}
        batch_size: 50
        """,
    )
    count = "SELECT count(*) AS n FROM leads WHERE deleted = 0"
    before = sugar.execute(count)[0]["n"]
    sugar.faults.latency = 0.05  # long enough for the runs to overlap
    env = {**os.environ, "CRMBRIDGE_HOME": str(home)}
    command = [sys.executable, "-m", "crmbridge", "run", str(loaded.path), "--no-progress"]
    command += ["--wait"] if wait else []
    runs = [
        subprocess.Popen(
            command,
            cwd=tmp_path,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    results = []
    for process in runs:
        _, err = process.communicate(timeout=300)
        results.append((process.returncode, err))
    codes = sorted(code for code, _ in results)
    if wait:
        assert codes == [0, 0]
    else:
        assert codes == [0, 2]
        assert any("is already running (run " in err for _, err in results)
    assert sugar.execute(count)[0]["n"] == before + 150
