"""``kill -9`` at random moments of ``crmbridge sync``, then run again until done.

A trial is two syncs of a few thousand records, each killed at random moments (up to three
times) and run again to the end: the first sync links 1,000 records entered on both sides and
creates 2,000 records each way; then 600 records are edited on each side, 100 deleted on each
side, 300 added on each side, and the second sync carries that over. After each: every record
linked 1:1, both sides equal (nothing lost), no record twice (nothing created twice), the
creates counted in the run history add up to the records created (nothing applied twice), and
the history shows each killed run ``interrupted``, continued by the next.
``CRMBRIDGE_CRASH_TRIALS`` sets the number of trials (default 2).
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from tests.sync.conftest import SyncPair

from crmbridge.state import RunStatus

TRIALS = int(os.environ.get("CRMBRIDGE_CRASH_TRIALS", "2"))
SEED = int(os.environ.get("CRMBRIDGE_CRASH_SEED", "20261202"))
SHARED, ONLY = 1000, 2000  # records on both sides, records on one side only


def _sync(pair: SyncPair, *, kill_after: float | None, timeout: float = 300) -> int:
    """``crmbridge sync`` in a process of its own, killed after ``kill_after`` seconds (None:
    let it finish); its exit code (-9 when killed)."""
    env = {**os.environ, "CRMBRIDGE_STATE_URL": f"sqlite:///{pair.folder}/state.sqlite"}
    env["CRMBRIDGE_HOME"] = str(pair.folder / "home")
    command = [sys.executable, "-m", "crmbridge", "sync", str(pair.profile_path)]
    process = subprocess.Popen(
        [*command, "--accept-links", "--output-dir", str(pair.folder / "out")],
        cwd=pair.folder,
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
        raise AssertionError(f"the sync failed ({process.returncode}): {err.decode()[-2000:]}")
    return process.returncode


def _until_done(pair: SyncPair, rng: random.Random, longest: float) -> list[int]:
    codes = []
    for _ in range(rng.randint(1, 3)):
        codes.append(_sync(pair, kill_after=rng.uniform(0.5, longest)))
        if codes[-1] == 0:
            return codes
    codes.append(_sync(pair, kill_after=None))
    return codes


def _seed(pair: SyncPair) -> None:
    a_rows = [
        {"name": f"S{i}", "phone": f"p{i}", "vat": f"V{i}", "updated_at": pair.tick()}
        for i in range(SHARED + ONLY)
    ]
    b_rows = [
        {"id": f"b{i}", "name": f"S{i}", "phone_office": f"p{i}", "sic_code": f"V{i}"}
        for i in range(SHARED)
    ]
    b_rows += [
        {"id": f"b{i}", "name": f"C{i}", "phone_office": f"q{i}", "sic_code": f"W{i}"}
        for i in range(SHARED + ONLY, SHARED + 2 * ONLY)
    ]
    with pair.a.begin() as conn:
        conn.execute(pair.a_table.insert(), a_rows)
    with pair.b.begin() as conn:
        conn.execute(pair.b_table.insert(), b_rows)


def _edit(pair: SyncPair, rng: random.Random) -> None:
    links = sorted(pair.links().items())
    rng.shuffle(links)
    edit_a, edit_b, gone_a, gone_b = (
        links[:600],
        links[600:1200],
        links[1200:1300],
        links[1300:1400],
    )
    with pair.a.begin() as conn:
        for a_id, _ in edit_a:
            conn.execute(
                pair.a_table.update()
                .where(pair.a_table.c.id == int(a_id))
                .values(phone=f"a-edit-{a_id}", updated_at=pair.tick())
            )
        conn.execute(
            pair.a_table.delete().where(pair.a_table.c.id.in_([int(a) for a, _ in gone_a]))
        )
        conn.execute(
            pair.a_table.insert(),
            [{"name": f"N{i}", "vat": f"NA{i}", "updated_at": pair.tick()} for i in range(300)],
        )
    with pair.b.begin() as conn:
        for _, b_id in edit_b:
            conn.execute(
                pair.b_table.update().where(pair.b_table.c.id == b_id).values(name=f"b-edit-{b_id}")
            )
        conn.execute(pair.b_table.delete().where(pair.b_table.c.id.in_([b for _, b in gone_b])))
        conn.execute(
            pair.b_table.insert(),
            [{"id": f"nb{i}", "name": f"M{i}", "sic_code": f"NB{i}"} for i in range(300)],
        )


def _last_run(pair: SyncPair) -> int:
    runs = pair.state.list_runs(limit=1)
    return runs[0].id if runs else 0


def _check(pair: SyncPair, after: int, codes: list[int], total: int, created: int) -> None:
    """Both sides in step with ``total`` records each; the runs after run ``after``: killed
    ones interrupted and continued, then one that succeeded (a kill can come just after it
    ended: the runs after it find everything done, or are killed too), creates counted once."""
    pair.assert_in_step()
    a_rows, b_rows = pair.rows_a(), pair.rows_b()
    assert len(a_rows) == len(b_rows) == total, codes
    assert len({r["vat"] for r in a_rows.values()}) == total, "a record created twice in a"
    assert len({r["sic_code"] for r in b_rows.values()}) == total, "a record created twice in b"
    runs = [r for r in reversed(pair.state.list_runs(limit=100)) if r.id > after]
    done = next(i for i, r in enumerate(runs) if r.status is RunStatus.SUCCEEDED)
    assert [r.status for r in runs[:done]] == [RunStatus.INTERRUPTED] * done, codes
    for i, before in enumerate(runs[:done]):
        if pair.state.ledger.batches(before.id):  # one killed before it planned: looked past
            assert any(r.resumed_from == before.id for r in runs[i + 1 : done + 1]), runs
    # a run after the end is killed too when its start-up outlasts the kill's moment (a
    # loaded machine): it is closed as interrupted, and the last run succeeds
    assert runs[-1].status is RunStatus.SUCCEEDED, runs
    ended = (RunStatus.SUCCEEDED, RunStatus.INTERRUPTED)
    assert all(r.status in ended for r in runs[done:]), runs
    made = [sum(r.counts.get(f"{d}.created", 0) for d in ("a_to_b", "b_to_a")) for r in runs]
    assert sum(made) == created, ("creates counted", made, created, codes)
    assert not any(made[done + 1 :]), "a run after the end creates nothing"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def crash_pair(request: pytest.FixtureRequest, tmp_path: Path) -> SyncPair:
    if request.param == "sqlite":
        return SyncPair(
            tmp_path, f"sqlite:///{tmp_path}/a.sqlite", f"sqlite:///{tmp_path}/b.sqlite"
        )
    url = request.getfixturevalue("pg_url")
    return SyncPair(tmp_path, url, url)


@pytest.mark.slow
def test_kill_9_during_a_sync_and_the_rerun_converges(crash_pair: SyncPair) -> None:
    pair = crash_pair
    pair.write_profile("batch_size: 500\ndeletes: {a_to_b: hard, b_to_a: hard}\n")
    rng = random.Random(SEED)
    try:
        for trial in range(TRIALS):
            if trial:
                for table, engine in ((pair.a_table, pair.a), (pair.b_table, pair.b)):
                    with engine.begin() as conn:
                        conn.execute(table.delete())
                pair.state.sync.remove_links(pair.key, list(pair.links()))
            _seed(pair)
            after = _last_run(pair)
            codes = _until_done(pair, rng, longest=6.0)
            _check(pair, after, codes, SHARED + 2 * ONLY, 2 * ONLY)
            _edit(pair, rng)
            after = _last_run(pair)
            codes = _until_done(pair, rng, longest=4.0)
            _check(pair, after, codes, SHARED + 2 * ONLY - 200 + 600, 600)
    finally:
        pair.close()


#: ``crmbridge sync`` killed (``os._exit(9)``) right after its first batch was written, before
#: the ledger knew (``WRITE_KILL``), or right after it closed the interrupted run it continued
#: (``CLOSE_KILL``)
KILLED_SYNC = """
import os, sys
from crmbridge.state import StateStore
from crmbridge.sync.execute import Executor
real_close, real_run = StateStore.mark_interrupted, Executor.run
def close(self, *args, **kwargs):
    real_close(self, *args, **kwargs)
    if os.environ.get("CLOSE_KILL"):
        os._exit(9)
def run(self, batch, *, attempt=1):
    done = real_run(self, batch, attempt=attempt)
    if os.environ.get("WRITE_KILL"):
        os._exit(9)
    return done
StateStore.mark_interrupted, Executor.run = close, run
from crmbridge.cli.app import main
main(["sync", sys.argv[1], "--accept-links"])
"""


def test_a_batch_finished_by_a_run_that_is_killed_too_is_counted_once(
    pair: SyncPair,
) -> None:
    """Run 1 writes a batch and dies before confirming it; run 2 carries it out again, closes
    run 1 and dies; run 3 ends. Every create is in the history once (run 2 used to keep the
    batch's counts in memory only, so they were lost)."""
    pair.write_profile()
    for i in range(5):
        pair.add_a(name=f"S{i}", vat=f"V{i}", updated_at=pair.tick())
    script = pair.folder / "killed.py"
    script.write_text(KILLED_SYNC)
    env = {**os.environ, "CRMBRIDGE_STATE_URL": f"sqlite:///{pair.folder}/state.sqlite"}
    env["CRMBRIDGE_HOME"] = str(pair.folder / "home")
    for kill in ("WRITE_KILL", "CLOSE_KILL"):
        died = subprocess.run(
            [sys.executable, str(script), str(pair.profile_path)],
            cwd=pair.folder,
            env={**env, kill: "1"},
            capture_output=True,
            text=True,
        )
        assert died.returncode == 9, died.stderr
    pair.sync()
    assert len(pair.rows_b()) == 5
    runs = pair.state.list_runs(limit=10)
    assert [r.status for r in reversed(runs)] == [
        RunStatus.INTERRUPTED,
        RunStatus.INTERRUPTED,
        RunStatus.SUCCEEDED,
    ]
    assert sum(r.counts.get("a_to_b.created", 0) for r in runs) == 5
