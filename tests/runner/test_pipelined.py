"""A batch is planned while the one before it is written (PostgreSQL, MariaDB: a target whose
``match`` may run beside ``apply``). A plan made that early holds only when the batch in
flight writes none of its records; otherwise the batch is planned again once that write is
committed, so a key repeated in the next batch is updated, never created twice. And the next
batch is queued behind the one being written (its intent recorded), so the target never waits
for the run's bookkeeping between two batches."""

from __future__ import annotations

import time
from pathlib import Path

import pyarrow as pa
import pytest
import sqlalchemy as sa
from tests.runner.conftest import write_csv, write_profile

from crmbridge.connections import ConnectionStore
from crmbridge.core.plan import Plan
from crmbridge.runner import run_profile
from crmbridge.runner.writing import TargetWriter
from crmbridge.state import StateStore

PROFILE = """
source:
  connection: {{type: csv, path: .}}
  object: people.csv
  types: {{id: integer}}
target:
  connection: {{type: sql, url: "{url}"}}
  object: people
  mode: upsert
  match_keys: [id]
  create: true
batch_size: 1
"""


def _plan(*touches: str | None) -> Plan:
    empty = pa.table({"x": pa.array([], pa.int64())})
    return Plan(empty, empty, pa.array(list(touches), pa.string()))


def test_plans_share_records_when_an_identity_is_in_both() -> None:
    assert _plan("a", "b").shares_records_with(_plan("b"))
    assert not _plan("a", None).shares_records_with(_plan("c", None))
    assert not _plan().shares_records_with(_plan("a"))  # a plan for no keyed record
    unknown = Plan(_plan().ops, _plan().before)
    assert unknown.shares_records_with(_plan("z"))  # cannot tell: assume so


@pytest.mark.postgres
def test_a_key_in_consecutive_batches_is_updated_not_created_twice(
    tmp_path: Path,
    pg_url: str,
    store: ConnectionStore,
    state: StateStore,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    write_csv(
        tmp_path / "people.csv",
        """
        id,name
        1,Ann
        1,Anne
        2,Bob
        3,Cy
        3,Cyrus
        3,Cyril
        4,Di
        """,
    )
    plans: list[int] = []
    real_plan = TargetWriter.plan

    def counted(self: TargetWriter, proposed: pa.RecordBatch, *args: object) -> Plan:
        plans.append(proposed.num_rows)
        return real_plan(self, proposed, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(TargetWriter, "plan", counted)
    loaded = write_profile(tmp_path, PROFILE.format(url=pg_url))
    summary = run_profile(loaded, connections=store, state=state, output_dir=tmp_path / "out")
    counts = {k: v for k, v in summary.counts.items() if v}
    assert counts == {"created": 4, "updated": 3}
    engine = sa.create_engine(pg_url)
    try:
        with engine.connect() as conn:
            rows = conn.exec_driver_sql("SELECT id, name FROM people ORDER BY id").all()
    finally:
        engine.dispose()
    assert [tuple(r) for r in rows] == [(1, "Anne"), (2, "Bob"), (3, "Cyril"), (4, "Di")]
    # 7 batches, each planned while the one before was written; the 3 that repeat the key
    # of the batch in flight were planned again after it was committed
    assert len(plans) == 7 + 3


@pytest.mark.postgres
def test_the_next_batch_is_queued_while_the_one_before_is_written(
    tmp_path: Path,
    pg_url: str,
    store: ConnectionStore,
    state: StateStore,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    write_csv(tmp_path / "people.csv", "id,name\n1,Ann\n2,Bob\n3,Cy\n4,Di\n")
    real_apply = TargetWriter.apply
    queued: list[int] = []  # per write: batches recorded in the ledger when it started

    def apply(self: TargetWriter, plan: Plan, *, attempt: int = 1) -> pa.Table:
        if not queued:  # the first write waits (up to 10 s) for the second batch's intent
            run = state.list_runs(limit=1)[0]
            deadline = time.monotonic() + 10
            while len(state.ledger.batches(run.id)) < 2 and time.monotonic() < deadline:
                time.sleep(0.01)
            queued.append(len(state.ledger.batches(run.id)))
        return real_apply(self, plan, attempt=attempt)

    monkeypatch.setattr(TargetWriter, "apply", apply)
    loaded = write_profile(tmp_path, PROFILE.format(url=pg_url))
    summary = run_profile(loaded, connections=store, state=state, output_dir=tmp_path / "out")
    assert queued == [2]  # planned, recorded and waiting behind the first
    assert {k: v for k, v in summary.counts.items() if v} == {"created": 4}
    batches = state.ledger.batches(summary.run_id)
    assert [b.status.value for b in batches] == ["confirmed"] * 4
    assert [b.counts.get("created") for b in batches] == [1, 1, 1, 1]
