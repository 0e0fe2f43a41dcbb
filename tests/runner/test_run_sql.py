"""Whole runs into and out of real databases (SQLite files, PostgreSQL, MariaDB), every mode.

The dry run of each step is compared with the real run that follows it: a dry run must predict
exactly what the run then does.
"""

from __future__ import annotations

import csv
import datetime as dt
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from python_calamine import CalamineWorkbook
from tests.runner.conftest import write_csv, write_profile

from crmbridge.connections import ConnectionStore
from crmbridge.runner import RunSummary, preview_profile, run_profile
from crmbridge.state import StateStore

ENGINES = ["sqlite", "postgresql", "mariadb"]

LEADS = """
id,name,email,score,signed_up
1,Ann Lee, Ann@X.com ,55,2024-01-02
2,Bob Ng,bob@x.com,10,2024-02-03
3,Cy Oz,cy@x.com,75,2024-03-04
4,Di Po,di@x.com,90,2024-04-05
"""

PROFILE = """
source:
  connection: {{type: csv, path: .}}
  object: leads.csv
  types: {{score: integer, signed_up: date}}
  filter: score >= 50
target:
  connection: {{type: sql, url: "{url}"}}
  object: leads
  mode: {mode}
  match_keys: [email]
  create: true
mapping:
  email: lower(trim(email))
  name: upper(name)
  score: score
  signed_up: signed_up
"""


@pytest.fixture(params=ENGINES)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/target.sqlite"
    fixture = "pg_url" if request.param == "postgresql" else "mysql_url"
    url: str = request.getfixturevalue(fixture)
    return url


def _table(url: str, sql: str = "SELECT email, name, score, signed_up FROM leads") -> list[Any]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(sa.text(sql))
            return sorted(tuple(_plain(v) for v in r) for r in rows)
    finally:
        engine.dispose()


def _plain(value: Any) -> Any:
    """Dates as ISO text: SQLite returns them as text through a raw query."""
    return value.isoformat() if isinstance(value, dt.date) else value


def _run(
    tmp_path: Path, url: str, mode: str, store: ConnectionStore, state: StateStore, *, dry: bool
) -> RunSummary:
    loaded = write_profile(tmp_path, PROFILE.format(url=url, mode=mode))
    out = tmp_path / f"run-{mode}-{'dry' if dry else 'real'}"
    return run_profile(loaded, connections=store, state=state, dry_run=dry, output_dir=out)


def _step(
    tmp_path: Path, url: str, mode: str, store: ConnectionStore, state: StateStore
) -> dict[str, int]:
    """Dry-run, then run ``mode``; the dry run must have predicted the run's counts."""
    predicted = _run(tmp_path, url, mode, store, state, dry=True)
    done = _run(tmp_path, url, mode, store, state, dry=False)
    assert predicted.counts == done.counts, mode
    return {k: v for k, v in done.counts.items() if v}


def _reasons(summary_dir: Path) -> list[str]:
    with (summary_dir / "error.csv").open(encoding="utf-8", newline="") as f:
        return sorted(r["crmbridge_reason"] for r in csv.DictReader(f))


def test_every_write_mode_with_filter_and_mapping(
    tmp_path: Path, db_url: str, store: ConnectionStore, state: StateStore
) -> None:
    write_csv(tmp_path / "leads.csv", LEADS)
    assert _step(tmp_path, db_url, "insert", store, state) == {"created": 3, "filtered": 1}
    assert _table(db_url) == [
        ("ann@x.com", "ANN LEE", 55, "2024-01-02"),
        ("cy@x.com", "CY OZ", 75, "2024-03-04"),
        ("di@x.com", "DI PO", 90, "2024-04-05"),
    ]
    # insert again: every record exists, each is rejected (not a crash)
    assert _step(tmp_path, db_url, "insert", store, state) == {"rejected": 3, "filtered": 1}
    assert all("already exists" in r for r in _reasons(tmp_path / "run-insert-real"))

    write_csv(
        tmp_path / "leads.csv",
        LEADS.replace("Cy Oz", "Cy Ozzy").replace("4,Di Po,di@x.com", "4,Di Po,new@x.com"),
    )
    assert _step(tmp_path, db_url, "update", store, state) == {
        "updated": 1,
        "unchanged": 1,
        "rejected": 1,
        "filtered": 1,
    }
    [reason] = _reasons(tmp_path / "run-update-real")
    assert reason.startswith("no leads record matches email=")
    assert "email" in reason
    assert _step(tmp_path, db_url, "upsert", store, state) == {
        "created": 1,
        "unchanged": 2,
        "filtered": 1,
    }
    assert [r[0] for r in _table(db_url)] == ["ann@x.com", "cy@x.com", "di@x.com", "new@x.com"]

    write_csv(tmp_path / "leads.csv", LEADS)  # di@x.com again, new@x.com gone from the source
    assert _step(tmp_path, db_url, "delete", store, state) == {"deleted": 3, "filtered": 1}
    assert _table(db_url) == [("new@x.com", "DI PO", 90, "2024-04-05")]
    assert _step(tmp_path, db_url, "delete", store, state) == {"rejected": 3, "filtered": 1}


def test_repeated_keys_are_applied_in_source_order(
    tmp_path: Path, db_url: str, store: ConnectionStore, state: StateStore
) -> None:
    write_csv(
        tmp_path / "leads.csv",
        """
        id,name,email,score,signed_up
        1,First,a@x.com,60,2024-01-01
        2,Other,b@x.com,60,2024-01-01
        3,Second,A@X.COM,70,2024-01-01
        4,Third,a@x.com,80,2024-01-01
        """,
    )
    assert _step(tmp_path, db_url, "upsert", store, state) == {"created": 2, "updated": 2}
    assert _table(db_url, "SELECT email, name, score FROM leads") == [
        ("a@x.com", "THIRD", 80),
        ("b@x.com", "OTHER", 60),
    ]


def test_preview_shows_what_each_record_would_do(
    tmp_path: Path, db_url: str, store: ConnectionStore, state: StateStore
) -> None:
    write_csv(tmp_path / "leads.csv", LEADS)
    _run(tmp_path, db_url, "insert", store, state, dry=False)
    write_csv(tmp_path / "leads.csv", LEADS.replace("Cy Oz", "Cy Ozzy") + "5,Eve,e@x.com,99,\n")
    loaded = write_profile(tmp_path, PROFILE.format(url=db_url, mode="upsert"))
    rows = preview_profile(loaded, connections=store).records.to_pylist()
    assert [(r["record"], r["email"], r["action"]) for r in rows] == [
        (1, "ann@x.com", "unchanged"),
        (3, "cy@x.com", "update"),
        (4, "di@x.com", "unchanged"),
        (5, "e@x.com", "create"),
    ]


def test_xlsx_to_mariadb(
    tmp_path: Path, mysql_url: str, store: ConnectionStore, state: StateStore
) -> None:
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = "Leads"
    ws.append(["email", "name", "score", "signed_up"])
    ws.append(["a@x.com", "Ann", 55, dt.datetime(2024, 1, 2)])
    ws.append(["b@x.com", "Bob", 10, dt.datetime(2024, 2, 3)])
    wb.save(tmp_path / "leads.xlsx")
    loaded = write_profile(
        tmp_path,
        f"""
        source:
          connection: {{type: xlsx, path: .}}
          object: leads.xlsx
          filter: score >= 50
        target:
          connection: {{type: sql, url: "{mysql_url}"}}
          object: leads
          mode: upsert
          match_keys: [email]
          create: true
        mapping:
          email: email
          name: name || '!'
          score: score * 2
          signed_up: cast(signed_up AS DATE)
        """,
    )
    summary = run_profile(loaded, connections=store, state=state, output_dir=tmp_path / "r")
    assert summary.counts["created"] == 1
    assert _table(mysql_url) == [("a@x.com", "Ann!", 110, "2024-01-02")]


def test_postgresql_to_xlsx_pushes_the_filter_down(
    tmp_path: Path, pg_url: str, store: ConnectionStore, state: StateStore
) -> None:
    engine = sa.create_engine(pg_url)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE people (id int primary key, name text, score int)"))
        conn.execute(sa.text("INSERT INTO people VALUES (1, 'Ann', 55), (2, 'Bob', 10)"))
    engine.dispose()
    (tmp_path / "out").mkdir()
    loaded = write_profile(
        tmp_path,
        f"""
        source:
          connection: {{type: sql, url: "{pg_url}"}}
          object: people
          filter: score >= 50 AND upper(name) LIKE 'A%'
        target:
          connection: {{type: xlsx, path: out}}
          object: people.xlsx
        mapping:
          name: name
          score: score
        """,
    )
    summary = run_profile(loaded, connections=store, state=state, output_dir=tmp_path / "r")
    assert summary.pushed_filter == ["score >= 50"]  # the function part stays local
    assert summary.counts["created"] == 1
    rows = CalamineWorkbook.from_path(tmp_path / "out/people.xlsx").get_sheet_by_index(0)
    assert rows.to_python() == [["name", "score"], ["Ann", 55]]


def test_sqlite_to_csv(tmp_path: Path, store: ConnectionStore, state: StateStore) -> None:
    url = f"sqlite:///{tmp_path}/src.sqlite"
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE t (id integer primary key, name text, born date)"))
        conn.execute(sa.text("INSERT INTO t VALUES (1, 'Ann', '2001-02-03'), (2, NULL, NULL)"))
    engine.dispose()
    loaded = write_profile(
        tmp_path,
        f"""
        source:
          connection: {{type: sql, url: "{url}"}}
          object: t
          filter: name IS NOT NULL
        target:
          connection: {{type: csv, path: .}}
          object: out.csv
        mapping:
          id: id
          greeting: "'Hi ' || name"
          born: born
        """,
    )
    summary = run_profile(loaded, connections=store, state=state, output_dir=tmp_path / "r")
    assert summary.counts["created"] == 1
    assert (tmp_path / "out.csv").read_text().splitlines() == [
        "id,greeting,born",
        "1,Hi Ann,2001-02-03",
    ]


@pytest.mark.parametrize("engine_name", ENGINES)
def test_one_bad_stored_value_rejects_its_record_and_the_run_goes_on(
    tmp_path: Path, request: pytest.FixtureRequest, store: ConnectionStore, state: StateStore,
    engine_name: str,
) -> None:  # fmt: skip
    bad = {
        "sqlite": ("INTEGER", "1.5", "field 'v': 1.5 is not a whole number"),
        "postgresql": ("date", "'infinity'", "field 'v': 'infinity' cannot be represented"),
        "mariadb": ("DATE", "'0000-00-00'", "field 'v': '0000-00-00' is not a valid date"),
    }[engine_name]
    url = (
        f"sqlite:///{tmp_path}/src.sqlite"
        if engine_name == "sqlite"
        else request.getfixturevalue("pg_url" if engine_name == "postgresql" else "mysql_url")
    )
    column, value, reason = bad
    good = "3" if engine_name == "sqlite" else "'2024-01-01'"
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text(f"CREATE TABLE t (id int primary key, v {column})"))
        if engine_name == "mariadb":
            conn.execute(sa.text("SET SESSION sql_mode = ''"))
        conn.execute(sa.text(f"INSERT INTO t VALUES (1, {good}), (2, {value}), (3, {good})"))
    engine.dispose()
    loaded = write_profile(
        tmp_path,
        f"""
        source:
          connection: {{type: sql, url: "{url}"}}
          object: t
        target:
          connection: {{type: csv, path: .}}
          object: out.csv
        """,
    )
    summary = run_profile(loaded, connections=store, state=state, output_dir=tmp_path / "r")
    assert (summary.counts["created"], summary.counts["rejected"]) == (2, 1)
    assert summary.exit_code == 1
    assert [reason in r for r in _reasons(tmp_path / "r")] == [True]
