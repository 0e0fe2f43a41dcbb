"""Parameters in a run: a value is a value, pushed down to a database or evaluated locally."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sqlalchemy as sa
from tests.runner.conftest import write_csv

from crmbridge.connections import ConnectionStore
from crmbridge.profiles.loader import load_profile
from crmbridge.runner import run_profile
from crmbridge.runner.prepare import prepare
from crmbridge.state import StateStore

LEADS = [
    (1, "Web", "2024-01-02"),
    (2, "Fair", "2024-02-03"),
    (3, "x' OR '1'='1", "2024-03-04"),
]

PROFILE = """
params:
  source: {{type: string, default: Web}}
  since: {{type: date, default: 2024-01-01}}
source:
  connection: {connection}
  object: {object}
  {types}
  filter: lead_source = ${{source}} AND signed_up >= ${{since}}
target:
  connection: {{type: jsonl, path: out}}
  object: out.jsonl
"""


@pytest.fixture(params=["csv", "sqlite", "postgresql"])
def source(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, str, str]:
    """(connection, object, types line) of a source holding LEADS."""
    if request.param == "csv":
        rows = "\n".join(f'{i},"{s}",{d}' for i, s, d in LEADS)
        write_csv(tmp_path / "leads.csv", f"id,lead_source,signed_up\n{rows}\n")
        return "{type: csv, path: .}", "leads.csv", "types: {id: integer, signed_up: date}"
    url = (
        f"sqlite:///{tmp_path}/leads.sqlite"
        if request.param == "sqlite"
        else str(request.getfixturevalue("pg_url"))
    )
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE leads (id INTEGER, lead_source TEXT, signed_up DATE)"))
        for i, s, d in LEADS:
            conn.execute(
                sa.text("INSERT INTO leads VALUES (:i, :s, :d)"),
                {"i": i, "s": s, "d": d},
            )
    engine.dispose()
    return f'{{type: sql, url: "{url}"}}', "leads", ""


@pytest.mark.parametrize(
    ("given", "ids"),
    [
        ({}, [1]),
        ({"source": "x' OR '1'='1"}, [3]),  # the stored value, not an always-true filter
        ({"source": "Web' OR '1'='1"}, []),
        ({"source": "Web' --"}, []),
        ({"source": "Fair", "since": "2024-03-01"}, []),
        ({"source": "Fair", "since": "2024-02-03"}, [2]),
    ],
)
def test_parameters_select_exactly_the_records_their_values_say(
    tmp_path: Path,
    source: tuple[str, str, str],
    store: ConnectionStore,
    state: StateStore,
    given: dict[str, str],
    ids: list[int],
) -> None:
    connection, object, types = source
    path = tmp_path / "p.yaml"
    path.write_text(PROFILE.format(connection=connection, object=object, types=types))
    loaded = load_profile(path, given)
    summary = run_profile(loaded, connections=store, state=state, output_dir=tmp_path / "runs")
    assert summary.counts.get("created", 0) == len(ids), summary
    out = tmp_path / "out" / "out.jsonl"
    written = [json.loads(line)["id"] for line in out.read_text().splitlines()] if ids else []
    assert written == ids
    if "postgresql" in connection:  # the whole filter went to the database, values bound
        prepared = prepare(loaded, store)
        prepared.close()
        assert prepared.local_filter is None
        assert len(prepared.pushed) == 2
