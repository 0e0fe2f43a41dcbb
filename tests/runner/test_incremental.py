"""Incremental reads: each run takes only what changed, nothing missed, nothing twice."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from tests.runner.conftest import write_profile

from crmbridge.connections import ConnectionStore
from crmbridge.runner import run_profile
from crmbridge.state import StateStore


def _exec(url: str, *statements: str) -> None:
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        for statement in statements:
            conn.execute(sa.text(statement))
    engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/crm.sqlite"
    found: str = request.getfixturevalue("pg_url")
    return found


def test_records_sharing_the_last_second_are_neither_missed_nor_counted_twice(
    tmp_path: Path, url: str, store: ConnectionStore, state: StateStore
) -> None:
    _exec(
        url,
        "CREATE TABLE contacts (id TEXT PRIMARY KEY, name TEXT, modified TIMESTAMP)",
        "INSERT INTO contacts VALUES ('a', 'Ann', '2026-11-01 10:00:00'),"
        " ('b', 'Bob', '2026-11-01 10:00:05'), ('c', 'Cy', '2026-11-01 10:00:05')",
    )
    (tmp_path / "out").mkdir()
    profile = f"""
        source:
          connection: {{type: sql, url: "{url}"}}
          object: contacts
          incremental: {{field: modified, key: id, overlap_seconds: 1}}
        target: {{connection: {{type: jsonl, path: out}}, object: changes.jsonl}}
        mapping: {{id: id, name: name}}
        """

    def run() -> tuple[dict[str, int], list[str]]:
        summary = run_profile(write_profile(tmp_path, profile), connections=store, state=state)
        counts = {k: v for k, v in summary.counts.items() if v}
        return counts, summary.pushed_filter

    assert run() == ({"created": 3}, [])
    # a record committed late within the last second, and a record changed again
    _exec(
        url,
        "INSERT INTO contacts VALUES ('d', 'Di', '2026-11-01 10:00:05')",
        "UPDATE contacts SET name = 'Anna', modified = '2026-11-01 10:00:07' WHERE id = 'a'",
    )
    counts, pushed = run()
    assert counts == {"created": 2, "filtered": 2}  # d and a; b and c were seen already
    # the database reads from the cursor itself (ReadRequest.since)
    condition = "\"modified\" >= CAST('2026-11-01T10:00:04+00:00' AS TIMESTAMPTZ)"
    assert pushed == [condition]
    names = (tmp_path / "out/changes.jsonl").read_text().splitlines()
    assert sorted(names) == ['{"id":"a","name":"Anna"}', '{"id":"d","name":"Di"}']
    # nothing new: 'a' is looked at again and left out; nothing is written
    assert "created" not in run()[0]


def test_a_dry_run_leaves_the_cursor_where_it_was(
    tmp_path: Path, store: ConnectionStore, state: StateStore
) -> None:
    url = f"sqlite:///{tmp_path}/crm.sqlite"
    _exec(
        url,
        "CREATE TABLE contacts (id INTEGER PRIMARY KEY, modified TIMESTAMP)",
        "INSERT INTO contacts VALUES (1, '2026-11-01 10:00:00'), (2, '2026-11-02 10:00:00')",
    )
    profile = f"""
        source:
          connection: {{type: sql, url: "{url}"}}
          object: contacts
          incremental: {{field: modified, key: id}}
        target: {{connection: {{type: csv, path: .}}, object: out.csv}}
        """
    loaded = write_profile(tmp_path, profile)
    dry = run_profile(loaded, connections=store, state=state, dry_run=True)
    assert dry.counts["created"] == 2
    real = run_profile(loaded, connections=store, state=state)
    assert real.counts["created"] == 2
    again = run_profile(loaded, connections=store, state=state)
    assert again.counts["created"] == 0
