"""The crash suite: ``kill -9`` at random moments of real runs, then run again until done.

After every trial: no record lost, none duplicated, none wrong; the history shows each killed
run ``interrupted`` and the run that continued it; the success files of all the runs together
hold every record exactly once.

Scenarios (each with its own number of trials, ``CRMBRIDGE_CRASH_TRIALS`` raises it; the
benchmark script runs 20 of each):

* a 100,000-record CSV upserted into PostgreSQL;
* a CSV inserted into the SugarCRM sandbox *without match keys* (identity: the source record);
* a CSV upserted into the SugarCRM sandbox by e-mail.
"""

from __future__ import annotations

import csv
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from tests.runner.conftest import write_profile

from crmbridge.connections import ConnectionStore
from crmbridge.sandbox.sugarcrm import SugarSandbox
from crmbridge.state import RunStatus, StateStore

TRIALS = int(os.environ.get("CRMBRIDGE_CRASH_TRIALS", "2"))
SEED = int(os.environ.get("CRMBRIDGE_CRASH_SEED", "20261201"))


def _run_killing(
    profile: Path, home: Path, *, kill_after: float | None, timeout: float = 240
) -> int:
    """Run the profile in a process of its own; kill -9 it after ``kill_after`` seconds
    (None: let it finish). Its exit code (-9 when killed)."""
    env = {**os.environ, "CRMBRIDGE_HOME": str(home)}
    env.pop("CRMBRIDGE_STATE_URL", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "crmbridge", "run", str(profile), "--no-progress"],
        cwd=profile.parent,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        if kill_after is not None:
            try:
                process.wait(timeout=kill_after)
            except subprocess.TimeoutExpired:
                process.send_signal(signal.SIGKILL)
        _, err = process.communicate(timeout=timeout)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    if process.returncode not in (0, -signal.SIGKILL):
        raise AssertionError(f"the run failed ({process.returncode}): {err.decode()[-2000:]}")
    return process.returncode


def _trial(profile: Path, home: Path, rng: random.Random, longest: float) -> list[int]:
    """Kill runs at random moments (up to three times), then let one finish; exit codes."""
    codes = []
    for _ in range(rng.randint(1, 3)):
        codes.append(_run_killing(profile, home, kill_after=rng.uniform(0.2, longest)))
        if codes[-1] == 0:
            return codes
    codes.append(_run_killing(profile, home, kill_after=None))
    return codes


def _check_history(state: StateStore, codes: list[int], total: int) -> None:
    """Every run up to the first that succeeded was interrupted (or did nothing) and was
    continued by the next one; their success files hold every record once. (A kill can come
    just after a run finished: the runs after it then only find everything done.)"""
    runs = list(reversed(state.list_runs(limit=100)))
    done = next(i for i, r in enumerate(runs) if r.status is RunStatus.SUCCEEDED)
    for i, before in enumerate(runs[:done]):
        assert before.status is RunStatus.INTERRUPTED, [r.status for r in runs]
        if state.ledger.batches(before.id) or before.resumed_from is not None:
            # continued by a later run (one killed before it even started is looked past)
            assert any(r.resumed_from == before.id for r in runs[i + 1 : done + 1]), runs
    for later in runs[done + 1 :]:  # they find everything done (and may be killed too)
        assert later.status in (RunStatus.SUCCEEDED, RunStatus.INTERRUPTED), runs
        assert later.counts.get("created", 0) == 0, "a run after the end creates nothing"
    assert runs[-1].status is RunStatus.SUCCEEDED, "the last run, never killed, finished"
    rows: list[str] = []
    for record in runs[: done + 1]:
        if record.success_file is None:  # killed before it had files: it confirmed nothing
            assert not any(b.status.value == "confirmed" for b in state.ledger.batches(record.id))
            continue
        with open(str(record.success_file), newline="", encoding="utf-8") as handle:
            rows += [r["crmbridge_row"] for r in csv.DictReader(handle)]
    assert len(rows) == len(set(rows)) == total, "every record once in the success files"
    assert codes[-1] == 0


@pytest.fixture
def crash_home(tmp_path: Path, home: Path) -> Path:
    return home


@pytest.mark.postgres
@pytest.mark.slow
def test_kill_9_during_a_csv_to_postgresql_upsert(
    tmp_path: Path, pg_url: str, crash_home: Path, state: StateStore
) -> None:
    n = 100_000
    with (tmp_path / "people.csv").open("w", encoding="utf-8") as out:
        out.write("id,email,name,score\n")
        for i in range(n):
            out.write(f"{i},p{i}@x.com,Person {i},{i % 97}\n")
    rng = random.Random(SEED)
    engine = sa.create_engine(pg_url)
    for trial in range(TRIALS):
        with engine.begin() as conn:
            conn.execute(sa.text("DROP TABLE IF EXISTS people"))
            conn.execute(
                sa.text(
                    "CREATE TABLE people (id bigint PRIMARY KEY, email text, name text, score int)"
                )
            )
            # a third exists already, some of it different
            conn.execute(
                sa.text(
                    "INSERT INTO people SELECT g, 'p' || g || '@x.com', 'Old ' || g, g % 97 "
                    "FROM generate_series(0, :top, 3) g"
                ),
                {"top": n - 1},
            )
        profile = write_profile(
            tmp_path,
            f"""
            id: crash-pg-{trial}
            source: {{connection: {{type: csv, path: .}}, object: people.csv,
                      types: {{id: integer, score: integer}}}}
            target: {{connection: {{type: sql, url: "{pg_url}"}}, object: people,
                      mode: upsert, match_keys: [id]}}
            batch_size: 5000
            """,
            name=f"pg{trial}.yaml",
        )
        codes = _trial(profile.path, crash_home, rng, longest=4.0)
        with engine.connect() as conn:
            count, distinct, wrong = conn.execute(
                sa.text(
                    "SELECT count(*), count(DISTINCT id), "
                    "count(*) FILTER (WHERE name <> 'Person ' || id OR email <> 'p' || id || "
                    "'@x.com' OR score <> id % 97) FROM people"
                )
            ).one()
        assert (count, distinct, wrong) == (n, n, 0), codes
        _check_history(state, codes, n)
        _reset_history(state)
    engine.dispose()


def _reset_history(state: StateStore) -> None:
    with state._engine.begin() as conn:
        for table in ("run_batches", "runs", "locks"):
            conn.execute(sa.text(f"DELETE FROM {table}"))


@pytest.fixture
def crm(store: ConnectionStore) -> Iterator[SugarSandbox]:
    sandbox = SugarSandbox(seed=False)
    with sandbox.serve() as server:
        store.add(
            "crm",
            "sugarcrm",
            {"url": server.url, "username": "admin", "password": "admin", "api": "v4_1"},
        )
        yield sandbox
    sandbox.close()


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["insert", "upsert"])
def test_kill_9_during_a_csv_to_sugarcrm_write(
    tmp_path: Path, crm: SugarSandbox, crash_home: Path, state: StateStore, mode: str
) -> None:
    n = 1500
    with (tmp_path / "leads.csv").open("w", encoding="utf-8") as out:
        out.write("email,name\n")
        for i in range(n):
            out.write(f"lead{i}@x.com,Lead {i}\n")
    rng = random.Random(SEED + len(mode))
    keys = "mode: insert" if mode == "insert" else "mode: upsert, match_keys: [email1]"
    for trial in range(TRIALS):
        crm.execute("DELETE FROM leads")
        crm.execute("DELETE FROM email_addr_bean_rel")
        crm.execute("DELETE FROM email_addresses")
        profile = write_profile(
            tmp_path,
            textwrap.dedent(f"""
            id: crash-crm-{mode}-{trial}
            source: {{connection: {{type: csv, path: .}}, object: leads.csv}}
            target: {{connection: crm, object: Leads, {keys}}}
            mapping: {{email1: email, last_name: name}}
            batch_size: 100
            """),
            name=f"crm{trial}.yaml",
        )
        codes = _trial(profile.path, crash_home, rng, longest=3.0)
        rows = crm.execute(
            "SELECT last_name, count(*) AS n FROM leads WHERE deleted = 0 GROUP BY last_name"
        )
        assert len(rows) == n, codes
        assert all(r["n"] == 1 for r in rows), [r for r in rows if r["n"] > 1][:5]
        _check_history(state, codes, n)
        _reset_history(state)
        time.sleep(0)
