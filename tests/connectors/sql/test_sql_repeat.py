"""A batch carried out again (``attempt > 1``: the run was killed after the database committed
it and before the ledger confirmed it) never inserts a record twice, also when nothing in the
rows identifies them: an insert without match keys into a table whose key the database makes
(the marker table ``crmbridge_applied``), or into a table whose primary key the profile writes."""

from __future__ import annotations

import pyarrow as pa
import sqlalchemy as sa
from sql_helpers import batch, connector, create, stored

from crmbridge.connectors.sql.applied import TABLE_NAME
from crmbridge.core.outcomes import WriteMode
from crmbridge.core.plan import SOURCE_KEY_COLUMN
from crmbridge.runner.outputs import OUTCOME
from crmbridge.testing.writes import plan_records


def notes(metadata: sa.MetaData) -> sa.Table:
    """A key made by the database, no unique column: rows say nothing about who made them."""
    return sa.Table(
        "notes",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("body", sa.String(40)),
    )


def codes(metadata: sa.MetaData) -> sa.Table:
    return sa.Table(
        "codes",
        metadata,
        sa.Column("code", sa.String(10), primary_key=True),
        sa.Column("label", sa.String(40)),
    )


def _insert(url: str, object: str, rows: list[dict[str, object]], attempt: int) -> list[str]:
    """Plan the insert of ``rows`` and carry it out; with ``attempt`` 2 the plan is carried
    out twice, as a resumed run does with the batch in flight of a killed one (whose plan is
    in the ledger), the first time without its answer reaching the ledger."""
    conn = connector(url)
    try:
        types = {f.name: f.arrow_type for f in conn.describe(object).fields}
        records = batch(rows, types)
        # the source records' stable keys (a file's line, a table's key: the same each run)
        keys = pa.array([f"line {i}" for i in range(1, len(rows) + 1)], pa.string())
        records = records.append_column(SOURCE_KEY_COLUMN, keys)
        planned = plan_records(conn, object, records, WriteMode.INSERT, checks=False)
        if attempt > 1:
            planned.writer.apply(planned.plan, attempt=1)  # committed; the answer is lost
        outcomes = planned.writer.apply(planned.plan, attempt=attempt)
        return [str(o) for o in outcomes.column(OUTCOME).to_pylist()]
    finally:
        conn.close()


def test_a_keyless_insert_into_a_generated_key_table_is_not_repeated(db_url: str) -> None:
    create(db_url, notes)
    rows: list[dict[str, object]] = [{"body": "same"}, {"body": "same"}, {"body": "other"}]
    # killed before the ledger confirmed: the next run carries the batch out again
    assert _insert(db_url, "notes", rows, attempt=2) == ["created"] * 3
    assert stored(db_url, "SELECT count(*) FROM notes") == [(3,)]
    assert stored(db_url, f"SELECT count(*) FROM {TABLE_NAME}") == [(3,)]


def test_the_markers_belong_to_the_profile_and_object_that_wrote(db_url: str) -> None:
    create(db_url, notes)
    rows: list[dict[str, object]] = [{"body": "a"}, {"body": "b"}]
    assert _insert(db_url, "notes", rows, attempt=1) == ["created", "created"]
    # the same source keys, written again by a new run (not a repeat): inserted again
    assert _insert(db_url, "notes", rows, attempt=1) == ["created", "created"]
    assert stored(db_url, "SELECT count(*) FROM notes") == [(4,)]


def test_the_marker_table_is_not_listed_as_an_object(db_url: str) -> None:
    create(db_url, notes)
    _insert(db_url, "notes", [{"body": "x"}], attempt=1)
    conn = connector(db_url)
    try:
        assert "notes" in conn.objects()
        assert TABLE_NAME not in conn.objects()
    finally:
        conn.close()


def test_a_keyless_insert_that_writes_the_primary_key_confirms_its_own_rows(
    db_url: str,
) -> None:
    create(db_url, codes)
    rows: list[dict[str, object]] = [{"code": "A", "label": "one"}, {"code": "B", "label": "two"}]
    assert _insert(db_url, "codes", rows, attempt=2) == ["created", "created"]
    assert stored(db_url, "SELECT count(*) FROM codes") == [(2,)]
    # no marker needed: the rows identify themselves
    engine = sa.create_engine(db_url)
    try:
        assert TABLE_NAME not in sa.inspect(engine).get_table_names()
    finally:
        engine.dispose()
