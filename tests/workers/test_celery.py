"""Runs on Celery: two real worker processes on RabbitMQ, one killed with SIGKILL mid-run.

The source and the target are tables of a real PostgreSQL database, and so is the state
store. The run is cut in four key ranges; a worker is killed while its partition is half
written; the broker hands the task to the other worker, which continues the partition where
the ledger says it stood. At the end the target has every source record exactly once.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from tests.conftest import _need

from crmbridge.state import RunStatus, StateStore
from crmbridge.workers.submit import job_outcomes, submit_run

BROKER_HOST, BROKER_PORT = "127.0.0.1", 5672
BROKER = f"amqp://guest:guest@{BROKER_HOST}:{BROKER_PORT}//"
REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379
REDIS = f"redis://{REDIS_HOST}:{REDIS_PORT}/0"
ROWS = 12_000


@pytest.fixture
def queue() -> Iterator[str]:
    """A queue of the test's own on the real RabbitMQ, deleted afterwards."""
    _need("RabbitMQ", BROKER_HOST, BROKER_PORT)
    from kombu import Connection

    name = f"crmb-test-{uuid.uuid4().hex[:8]}"
    yield name
    with Connection(BROKER, connect_timeout=5) as conn:
        conn.default_channel.queue_delete(name)


@pytest.fixture
def redis_queue(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A queue of the test's own on the real Redis, as the default broker and queue."""
    _need("Redis", REDIS_HOST, REDIS_PORT)
    import redis

    name = f"crmb-test-{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("CRMBRIDGE_BROKER_URL", REDIS)
    monkeypatch.setenv("CRMBRIDGE_QUEUE_NAME", name)
    yield name
    client = redis.Redis(host=REDIS_HOST, port=REDIS_PORT)
    client.delete(name, *client.scan_iter(match=f"_kombu.*{name}*"))
    client.close()


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CRMBRIDGE_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def _tables(url: str) -> None:
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE people (id integer PRIMARY KEY, name text, n integer)"))
        conn.execute(sa.text("CREATE TABLE copies (id integer, name text, n integer)"))
        conn.execute(
            sa.text(
                "INSERT INTO people SELECT g, 'person ' || g, g * 7 "
                f"FROM generate_series(1, {ROWS}) AS g"
            )
        )
    engine.dispose()


def _profile(folder: Path, url: str) -> Path:
    path = folder / "people.yaml"
    path.write_text(
        f"""
source:
  connection: {{type: sql, url: "{url}"}}
  object: people
  key: [id]
target:
  connection: {{type: sql, url: "{url}"}}
  object: copies
  mode: upsert
  match_keys: [id]
mapping:
  id: id
  name: upper(name)
  n: n
batch_size: 100
"""
    )
    return path


def _worker(
    home: Path, queue: str, broker: str = BROKER, pool: str = "solo"
) -> subprocess.Popen[bytes]:
    args = [sys.executable, "-m", "crmbridge", "worker", "--broker", broker]
    args += ["--pool", pool, "--concurrency", "1", "--queue-name", queue]
    env = {**os.environ, "CRMBRIDGE_HOME": str(home)}
    with (home.parent / f"worker-{uuid.uuid4().hex[:6]}.log").open("wb") as log:
        return subprocess.Popen(args, env=env, stdout=log, stderr=subprocess.STDOUT)


def _stop(worker: subprocess.Popen[bytes]) -> None:
    if worker.poll() is None:
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(20)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()


@pytest.mark.slow
@pytest.mark.parametrize(
    "pool",
    [
        "solo",  # the task runs in the worker's own process: the whole worker is killed
        "prefork",  # the task runs in a pool process: that one is killed, the worker lives
    ],
)
def test_a_worker_killed_mid_run_loses_and_duplicates_nothing(
    pg_url: str, home: Path, queue: str, tmp_path: Path, pool: str
) -> None:
    _tables(pg_url)
    profile = _profile(tmp_path, pg_url)
    home.mkdir(parents=True)
    workers = [_worker(home, queue, pool=pool), _worker(home, queue, pool=pool)]
    try:
        job = submit_run(profile, state_url=pg_url, partitions=4, broker=BROKER, queue=queue)
        assert len(job.tasks) == 4
        killed = _kill_one_mid_run(pg_url, workers)
        with StateStore(pg_url) as state:
            outcomes = _wait_for(state, job.id, timeout=240)
            runs = state.list_runs(limit=50)
    finally:
        for worker in workers:
            _stop(worker)
    assert [o["status"] for o in outcomes] == ["succeeded"] * 4
    assert killed == ("worker" if pool == "solo" else "pool process")
    interrupted = [r for r in runs if r.status is RunStatus.INTERRUPTED]
    assert len(interrupted) == 1  # the killed worker's partition ...
    (resumed,) = [r for r in runs if r.resumed_from == interrupted[0].id]
    assert resumed.status is RunStatus.SUCCEEDED  # ... continued by the other worker
    assert resumed.profile == interrupted[0].profile
    engine = sa.create_engine(pg_url)
    with engine.connect() as conn:
        total, distinct, lost, wrong = conn.execute(
            sa.text(
                "SELECT (SELECT count(*) FROM copies), (SELECT count(DISTINCT id) FROM copies), "
                "(SELECT count(*) FROM people p WHERE NOT EXISTS "
                "   (SELECT 1 FROM copies c WHERE c.id = p.id)), "
                "(SELECT count(*) FROM copies c JOIN people p USING (id) "
                "   WHERE c.name <> upper(p.name) OR c.n <> p.n)"
            )
        ).one()
    engine.dispose()
    assert (total, distinct, lost, wrong) == (ROWS, ROWS, 0, 0)  # 0 lost, 0 duplicated


@pytest.mark.slow
def test_the_scheduler_in_queue_mode_sends_its_runs_to_a_worker_on_redis(
    pg_url: str, home: Path, redis_queue: str, tmp_path: Path
) -> None:
    from datetime import UTC, datetime, timedelta

    from crmbridge.schedules.service import SchedulerService

    _tables(pg_url)
    profile = _profile(tmp_path, pg_url)
    home.mkdir(parents=True)
    now = [datetime(2026, 6, 1, 1, 59, tzinfo=UTC)]
    service = SchedulerService(home, state_url=pg_url, clock=lambda: now[0], queue=True)
    service.state.schedules.add(
        "nightly",
        path=str(profile),
        kind="transfer",
        cron="0 2 * * *",
        timezone="UTC",
        missed=None,
        now=now[0],
    )
    worker = _worker(home, redis_queue, broker=REDIS, pool="prefork")
    try:
        now[0] += timedelta(minutes=1)
        assert [f.outcome for f in service.tick()] == ["started"]
        service.wait_runs(timeout=180)
        assert service.state.schedules.get("nightly").last_outcome == "last run succeeded"
        (run,) = service.state.list_runs()
    finally:
        _stop(worker)
        service.stop()
    assert run.status is RunStatus.SUCCEEDED
    assert run.profile == "people"
    assert run.counts["created"] == ROWS


def _parent(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[1])


def _kill_one_mid_run(url: str, workers: list[subprocess.Popen[bytes]]) -> str:
    """SIGKILL the process running a partition that has written some batches but not all:
    a worker (solo pool) or one of its pool processes; which of the two it was."""
    by_pid = {w.pid: w for w in workers}
    deadline = time.monotonic() + 120
    with StateStore(url) as state:
        while time.monotonic() < deadline:
            for run in state.list_runs(limit=20):
                if run.status is not RunStatus.RUNNING or run.pid is None:
                    continue
                if run.pid not in by_pid and _parent(run.pid) not in by_pid:
                    continue
                confirmed = [b for b in state.ledger.batches(run.id) if b.status == "confirmed"]
                if len(confirmed) >= 3:
                    os.kill(run.pid, signal.SIGKILL)
                    if run.pid in by_pid:
                        assert by_pid[run.pid].wait(10) == -signal.SIGKILL
                        return "worker"
                    return "pool process"
            time.sleep(0.05)
    pytest.fail("no partition was seen running on a worker")


def _wait_for(state: StateStore, job: str, timeout: float) -> list[dict[str, object]]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        outcomes = job_outcomes(state, job)
        if all(o is not None for o in outcomes):
            return [o for o in outcomes if o is not None]
        time.sleep(0.2)
    pytest.fail(f"the job did not finish in {timeout} s: {job_outcomes(state, job)}")
