"""The differential test: generated filters over generated tables select exactly the same
records when the parts a SQL source accepts are pushed down to it (SQLite, PostgreSQL,
MariaDB) as when DuckDB evaluates the whole filter locally (the reference, which is all that
CSV, JSON Lines and Excel sources ever do).

Both sides read through the real connector, as a run does: the pushed-down parts of the filter
(the top-level AND parts ``can_push_down`` accepts) go into the read, the others are evaluated
locally on what was read.

The normal run is small and seeded (a few seconds per database). A larger run, by hand::

    CRMBRIDGE_DIFFERENTIAL_CASES=3000 CRMBRIDGE_DIFFERENTIAL_SEED=7 \\
        .venv/bin/python -m pytest -q tests/differential

``CRMBRIDGE_DIFFERENTIAL_CASES`` is the number of filters per database (default 150, over
tables of 40 rows, a new table every 50 filters); ``CRMBRIDGE_DIFFERENTIAL_SEED`` the seed
(default 1). A failure names the seed, the filter and the records that differ.
"""

from __future__ import annotations

import os
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pytest
import sqlalchemy as sa
from differential_cases import KINDS, Table, make_table, predicate

from crmbridge.connectors.base import ROW_COLUMN, BadRecord, ReadRequest
from crmbridge.connectors.sql import SqlConnector, SqlSettings
from crmbridge.core.expressions import (
    BatchTransform,
    ExpressionError,
    check_columns,
    conjoin,
    conjuncts,
    parse,
)
from crmbridge.core.schema import FieldType

CASES = int(os.environ.get("CRMBRIDGE_DIFFERENTIAL_CASES", "150"))
SEED = int(os.environ.get("CRMBRIDGE_DIFFERENTIAL_SEED", "1"))
ROWS = 40
CASES_PER_TABLE = 50

FIELD_TYPES = {
    "id": FieldType.INTEGER,
    **{
        c: {
            "int": FieldType.INTEGER,
            "decimal": FieldType.DECIMAL,
            "float": FieldType.FLOAT,
            "text": FieldType.STRING,
            "bool": FieldType.BOOLEAN,
            "date": FieldType.DATE,
            "datetime": FieldType.DATETIME,
        }[k]
        for c, k in KINDS.items()
    },
}


@dataclass
class Tally:
    """What the cases exercised, so a test that silently pushes nothing would show."""

    cases: int = 0
    refused_at_load: int = 0
    fully_pushed: int = 0
    partly_pushed: int = 0
    local_only: int = 0
    local_errors: int = 0
    mismatches: list[str] = field(default_factory=list)


def _store(url: str, table: Table) -> None:
    engine = sa.create_engine(url)
    metadata, sa_table = table.metadata()
    rows = table.rows
    if engine.dialect.name != "postgresql":  # naive DATETIME columns hold UTC
        rows = [{**r, "ts": r["ts"] and r["ts"].replace(tzinfo=None)} for r in rows]
    try:
        with engine.begin() as conn:
            metadata.create_all(conn)
            conn.execute(sa_table.insert(), rows)
    finally:
        engine.dispose()


def _read(
    source: SqlConnector, table: str, filter: Any = None
) -> tuple[pa.RecordBatch, list[BadRecord]]:
    bad: list[BadRecord] = []
    request = ReadRequest(table, filter=filter, on_bad_record=bad.append, batch_size=1000)
    schema = source.describe(table).arrow_schema()
    read = pa.Table.from_batches(list(source.read(request)), schema=schema)
    batch = pa.record_batch([c.combine_chunks() for c in read.columns], schema=schema)
    return batch.append_column(ROW_COLUMN, batch.column("id").cast(pa.int64())), bad


def _select(batch: pa.RecordBatch, tree: Any) -> tuple[list[int], list[str]]:
    """The ids ``tree`` keeps, evaluated by DuckDB, and the errors of rows it cannot evaluate."""
    if tree is None:
        return batch.column("id").to_pylist(), []
    with BatchTransform(batch.schema, {"id": parse("id", what="m")}, tree) as transform:
        result = transform.apply(batch)
    return result.batch.column("id").to_pylist(), [e.message for e in result.errors]


def _run_table(
    source: SqlConnector, table: Table, rng: random.Random, cases: int, tally: Tally
) -> None:
    everything, bad = _read(source, table.name)
    assert bad == [], [b.reason for b in bad]  # every generated value is read exactly
    assert everything.num_rows == len(table.rows)
    for _ in range(cases):
        text = predicate(rng, table)
        tally.cases += 1
        try:
            tree = parse(text, what="filter")
            check_columns(tree, FIELD_TYPES, what="filter")
        except ExpressionError:
            tally.refused_at_load += 1  # e.g. a text literal that would change in converting
            continue
        expected, expected_errors = _select(everything, tree)
        if expected_errors:  # rejected records: which part rejects first may differ
            tally.local_errors += 1
            continue
        parts = conjuncts(tree)
        pushed = [p for p in parts if source.can_push_down(table.name, p)]
        local = [p for p in parts if not any(p is q for q in pushed)]
        if not pushed:
            tally.local_only += 1
            continue
        if local:
            tally.partly_pushed += 1
        else:
            tally.fully_pushed += 1
        read, bad = _read(source, table.name, conjoin(pushed))
        got, errors = _select(read, conjoin(local))
        if (got, bad, errors) != (expected, [], []):
            pushed_text = " AND ".join(p.sql(dialect="duckdb") for p in pushed)
            differ = sorted(set(got) ^ set(expected))
            tally.mismatches.append(
                f"seed {SEED}, table {table.name}: {text}\n  pushed: {pushed_text}\n"
                f"  pushed+local selects {got}\n  local selects {expected}\n"
                f"  rows that differ: {[table.rows[i - 1] for i in differ]}"
                + (f"\n  errors: {errors} {[b.reason for b in bad]}" if errors or bad else "")
            )


DATABASES = [
    "sqlite_url",
    pytest.param("pg_url", marks=pytest.mark.postgres),
    pytest.param("mysql_url", marks=pytest.mark.mariadb),
]


@pytest.fixture(params=DATABASES)
def url(request: pytest.FixtureRequest) -> str:
    value: str = request.getfixturevalue(request.param)
    return value


@pytest.fixture
def source(url: str) -> Iterator[tuple[str, SqlConnector]]:
    conn = SqlConnector("differential", SqlSettings(url=url))
    conn.open()
    yield url, conn
    conn.close()


@pytest.mark.filterwarnings("ignore:Dialect sqlite\\+pysqlite does \\*not\\* support Decimal")
def test_pushed_down_filters_select_what_local_evaluation_selects(
    source: tuple[str, SqlConnector],
) -> None:
    url, conn = source
    rng = random.Random(f"{SEED}-{conn.engine.dialect.name}")
    tally = Tally()
    done = 0
    number = 0
    while done < CASES:
        number += 1
        table = make_table(rng, f"gen{number}", ROWS)
        _store(url, table)
        cases = min(CASES_PER_TABLE, CASES - done)
        _run_table(conn, table, rng, cases, tally)
        done += cases
    assert not tally.mismatches, "\n\n".join(tally.mismatches[:5])
    # the generator really exercises pushdown (a connector that pushed nothing would pass)
    assert tally.fully_pushed + tally.partly_pushed > tally.cases // 4, tally
    assert tally.refused_at_load < tally.cases // 4, tally
