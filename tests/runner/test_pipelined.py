"""A batch is planned while the one before it is written (PostgreSQL, MariaDB: a target whose
``match`` may run beside ``apply``). A plan made that early holds only when the batch in
flight writes none of its records; otherwise the batch is planned again once that write is
committed, so a key repeated in the next batch is updated, never created twice."""

from __future__ import annotations

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
