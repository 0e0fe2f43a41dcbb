"""A plan kept in a file and carried out later: exactly its operations, stale ones refused."""

from __future__ import annotations

import csv
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa
from tests.runner.conftest import nonzero, run, write_csv, write_profile

from crmbridge.cli.app import main
from crmbridge.connections import ConnectionStore
from crmbridge.runner.apply import apply_plan
from crmbridge.sandbox.sugarcrm import SugarSandbox
from crmbridge.state import RunStatus, StateStore

PROFILE = """
    source: {connection: {type: csv, path: .}, object: people.csv}
    target: {connection: {type: sql, url: "sqlite:///db.sqlite"}, object: people,
             mode: upsert, match_keys: [email]}
    mapping: {email: email, name: name}
    batch_size: 2
"""


def _sql(tmp_path: Path, *statements: str) -> list[tuple[object, ...]]:
    engine = sa.create_engine(f"sqlite:///{tmp_path}/db.sqlite")
    out: list[tuple[object, ...]] = []
    with engine.begin() as conn:
        for statement in statements:
            result = conn.execute(sa.text(statement))
            if result.returns_rows:
                out = [tuple(r) for r in result]
    engine.dispose()
    return out


@pytest.fixture
def planned(tmp_path: Path, store: ConnectionStore, state: StateStore) -> Path:
    _sql(
        tmp_path,
        "CREATE TABLE people (email TEXT PRIMARY KEY, name TEXT)",
        "INSERT INTO people VALUES ('a@x.com', 'Ann'), ('b@x.com', 'Bob'), ('c@x.com', 'Cy')",
    )
    write_csv(
        tmp_path / "people.csv",
        "email,name\na@x.com,Ann\nb@x.com,Robert\nc@x.com,Cyrus\nd@x.com,Di\ne@x.com,Eve\n",
    )
    path = tmp_path / "people.plan.parquet"
    summary = run(write_profile(tmp_path, PROFILE), store, state, dry_run=True, plan_out=path)
    assert nonzero(summary.counts) == {"unchanged": 1, "updated": 2, "created": 2}
    return path


def test_the_plan_file_says_what_each_record_will_get(planned: Path) -> None:
    table = pq.read_table(planned).to_pylist()
    actions = {r["email"]: r["_crmbridge_action"] for r in table}
    assert actions == {
        "a@x.com": "unchanged",
        "b@x.com": "update",
        "c@x.com": "update",
        "d@x.com": "create",
        "e@x.com": "create",
    }
    bob = next(r for r in table if r["email"] == "b@x.com")
    assert (bob["before.name"], bob["name"], bob["_crmbridge_changed"]) == ("Bob", "Robert", "name")
    assert bob["source.name"] == "Robert"


def test_apply_carries_out_exactly_the_plan(
    tmp_path: Path, planned: Path, store: ConnectionStore, state: StateStore
) -> None:
    # the source changes after the plan was made: apply does what the plan says, not this
    write_csv(tmp_path / "people.csv", "email,name\nz@x.com,Zed\n")
    summary = apply_plan(planned, connections=store, state=state, output_dir=tmp_path / "a")
    assert summary.status is RunStatus.SUCCEEDED
    assert nonzero(summary.counts) == {"unchanged": 1, "updated": 2, "created": 2}
    assert _sql(tmp_path, "SELECT email, name FROM people ORDER BY email") == [
        ("a@x.com", "Ann"),
        ("b@x.com", "Robert"),
        ("c@x.com", "Cyrus"),
        ("d@x.com", "Di"),
        ("e@x.com", "Eve"),
    ]
    # applied once: applying the same file again carries out nothing more
    again = apply_plan(planned, connections=store, state=state, output_dir=tmp_path / "b")
    assert nonzero(again.counts) == {}


def test_a_plan_of_a_filtered_source_is_carried_out(
    tmp_path: Path, store: ConnectionStore, state: StateStore
) -> None:
    # the filter leaves gaps in the record numbers of the plan (it was a traceback)
    _sql(tmp_path, "CREATE TABLE people (email TEXT PRIMARY KEY, name TEXT)")
    write_csv(
        tmp_path / "people.csv",
        "email,name\na@x.com,Ann\nb@x.com,Bob\nc@x.com,Cy\nd@x.com,Di\ne@x.com,Eve\n",
    )
    filtered = PROFILE.replace(
        "object: people.csv}", "object: people.csv, filter: name <> 'Bob' and name <> 'Di'}"
    )
    path = tmp_path / "filtered.plan.parquet"
    run(write_profile(tmp_path, filtered), store, state, dry_run=True, plan_out=path)
    summary = apply_plan(path, connections=store, state=state, output_dir=tmp_path / "a")
    assert summary.status is RunStatus.SUCCEEDED
    assert nonzero(summary.counts) == {"created": 3}
    with (tmp_path / "a" / "success.csv").open(encoding="utf-8", newline="") as f:
        lines = list(csv.reader(f))
    assert [line[:2] for line in lines[1:]] == [
        ["1", "a@x.com"],
        ["3", "c@x.com"],
        ["5", "e@x.com"],
    ]


def test_apply_creates_a_target_the_profile_creates(
    tmp_path: Path, store: ConnectionStore, state: StateStore
) -> None:
    write_csv(tmp_path / "people.csv", "email,name\na@x.com,Ann\nb@x.com,Bob\n")
    text = PROFILE.replace("mode: upsert,", "mode: upsert, create: true,").replace(
        "db.sqlite", "new.sqlite"
    )
    path = tmp_path / "new.plan.parquet"
    run(write_profile(tmp_path, text), store, state, dry_run=True, plan_out=path)
    assert not (tmp_path / "new.sqlite").exists()  # a dry run writes nothing
    summary = apply_plan(path, connections=store, state=state, output_dir=tmp_path / "a")
    assert summary.status is RunStatus.SUCCEEDED, summary.error
    assert nonzero(summary.counts) == {"created": 2}


def test_records_that_changed_since_the_plan_are_refused(
    tmp_path: Path, planned: Path, store: ConnectionStore, state: StateStore
) -> None:
    _sql(
        tmp_path,
        "UPDATE people SET name = 'Bobby' WHERE email = 'b@x.com'",  # changed meanwhile
        "DELETE FROM people WHERE email = 'c@x.com'",  # gone meanwhile
        "INSERT INTO people VALUES ('d@x.com', 'Dee')",  # created meanwhile
    )
    summary = apply_plan(planned, connections=store, state=state, output_dir=tmp_path / "run")
    assert nonzero(summary.counts) == {"unchanged": 1, "created": 1, "rejected": 3}
    errors = (tmp_path / "run/error.csv").read_text()
    assert errors.count("stale") == 3
    assert "changed since the plan was made (name was 'Bob', now 'Bobby')" in errors
    assert "is gone since the plan was made" in errors
    assert "a record with this key was created since the plan was made" in errors
    assert _sql(tmp_path, "SELECT email, name FROM people ORDER BY email") == [
        ("a@x.com", "Ann"),
        ("b@x.com", "Bobby"),
        ("d@x.com", "Dee"),
        ("e@x.com", "Eve"),
    ]


def test_a_crm_record_edited_since_the_plan_is_refused_by_its_version(
    tmp_path: Path, sugar: SugarSandbox, store: ConnectionStore, state: StateStore
) -> None:
    [account] = sugar.execute("SELECT id FROM accounts LIMIT 1")
    sugar.execute("UPDATE accounts SET name = 'Plan Test Ltd' WHERE id = ?", (account["id"],))
    write_csv(tmp_path / "acc.csv", "name,city\nPlan Test Ltd,Oslo\n")
    loaded = write_profile(
        tmp_path,
        """
        source: {connection: {type: csv, path: .}, object: acc.csv}
        target: {connection: crm, object: Accounts, mode: update, match_keys: [name]}
        mapping: {name: name, billing_address_city: city}
        """,
    )
    path = tmp_path / "acc.plan.parquet"
    assert nonzero(run(loaded, store, state, dry_run=True, plan_out=path).counts) == {"updated": 1}
    sugar.execute(
        "UPDATE accounts SET description = 'edited', date_modified = '2031-01-01 00:00:00' "
        "WHERE id = ?",
        (account["id"],),
    )
    summary = apply_plan(path, connections=store, state=state, output_dir=tmp_path / "run")
    assert nonzero(summary.counts) == {"rejected": 1}
    assert "changed since the plan was made (version" in (tmp_path / "run/error.csv").read_text()


def test_the_commands(
    tmp_path: Path,
    planned: Path,
    home: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "cli.plan.parquet"
    with pytest.raises(SystemExit) as made:
        main(["run", "profile.yaml", "--plan-out", str(out), "--no-progress"])
    assert made.value.code == 0
    assert f"crmbridge apply {out}" in capsys.readouterr().out
    with pytest.raises(SystemExit) as shown:
        main(["plan", "show", str(out)])
    assert shown.value.code in (0, None)
    text = capsys.readouterr().out
    assert "created 2" in text or "create 2" in text
    with pytest.raises(SystemExit) as applied:
        main(["apply", str(out)])
    assert applied.value.code == 0
    with pytest.raises(SystemExit) as refused:
        main(["run", "profile.yaml", "--no-dry-run", "--plan-out", str(out)])
    assert refused.value.code == 2
