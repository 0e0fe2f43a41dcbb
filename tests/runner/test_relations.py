"""References, deduplicate and update_fields, on a real SQLite target."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from tests.runner.conftest import write_csv, write_profile

from crmbridge.connections import ConnectionStore
from crmbridge.runner import run_profile
from crmbridge.state import StateStore


@pytest.fixture
def db(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path}/crm.sqlite"
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE accounts (id INTEGER PRIMARY KEY, name TEXT UNIQUE)"))
        conn.execute(sa.text("INSERT INTO accounts VALUES (1, 'Acme'), (2, 'Globex')"))
        conn.execute(
            sa.text(
                "CREATE TABLE contacts (email TEXT PRIMARY KEY, name TEXT, title TEXT,"
                " account_id TEXT)"
            )
        )
    engine.dispose()
    return url


def _rows(url: str, sql: str) -> list[tuple[Any, ...]]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return sorted(tuple(r) for r in conn.execute(sa.text(sql)))
    finally:
        engine.dispose()


PEOPLE = """
email,name,title,company
a@x.com,Ann,CEO,Acme
b@x.com,Bob,CTO,Initech
c@x.com,Cy,CFO,
"""


def _profile(url: str, missing: str, extra: str = "") -> str:
    return f"""
        source: {{connection: {{type: csv, path: .}}, object: people.csv}}
        target:
          connection: {{type: sql, url: "{url}"}}
          object: contacts
          mode: upsert
          match_keys: [email]
        mapping: {{email: email, name: name, title: title}}
        references:
          account_id:
            object: accounts
            match: {{name: company}}
            missing: {missing}
        {extra}
        """


@pytest.mark.parametrize(
    ("missing", "counts", "contacts", "accounts"),
    [
        # c@x.com has no company: it is written without an account, whatever `missing` says
        ("reject", {"created": 2, "rejected": 1}, [("a@x.com", "1"), ("c@x.com", None)], 2),
        ("skip", {"created": 2, "filtered": 1}, [("a@x.com", "1"), ("c@x.com", None)], 2),
        (
            "create",
            {"created": 3},
            [("a@x.com", "1"), ("b@x.com", "3"), ("c@x.com", None)],
            3,
        ),
    ],
)
def test_references_fill_ids_and_handle_missing_records(
    tmp_path: Path,
    db: str,
    store: ConnectionStore,
    state: StateStore,
    missing: str,
    counts: dict[str, int],
    contacts: list[tuple[str, str | None]],
    accounts: int,
) -> None:
    write_csv(tmp_path / "people.csv", PEOPLE)
    loaded = write_profile(tmp_path, _profile(db, missing))
    summary = run_profile(loaded, connections=store, state=state, output_dir=tmp_path / "r")
    assert {k: v for k, v in summary.counts.items() if v} == counts
    assert _rows(db, "SELECT email, account_id FROM contacts") == sorted(contacts, key=str)
    assert len(_rows(db, "SELECT id FROM accounts")) == accounts
    if missing == "reject":
        reasons = (tmp_path / "r/error.csv").read_text()
        assert "no accounts record matches name='Initech'" in reasons


def test_a_created_table_has_the_reference_fields(
    tmp_path: Path, db: str, store: ConnectionStore, state: StateStore
) -> None:
    write_csv(tmp_path / "people.csv", PEOPLE)
    text = _profile(db, "skip").replace(
        "object: contacts", "object: new_contacts\n          create: true"
    )
    summary = run_profile(
        write_profile(tmp_path, text), connections=store, state=state, output_dir=tmp_path / "r"
    )
    assert summary.counts["created"] == 2
    rows = _rows(db, "SELECT email, account_id FROM new_contacts")
    assert rows == sorted([("a@x.com", "1"), ("c@x.com", None)], key=str)


def test_deduplicate_never_sends_a_record_twice(
    tmp_path: Path, db: str, store: ConnectionStore, state: StateStore
) -> None:
    write_csv(tmp_path / "people.csv", PEOPLE)
    profile = f"""
        source: {{connection: {{type: csv, path: .}}, object: people.csv}}
        target: {{connection: {{type: sql, url: "{db}"}}, object: contacts}}
        mapping: {{email: email, name: name}}
        deduplicate: {{key: lower(email)}}
        """
    first = run_profile(write_profile(tmp_path, profile), connections=store, state=state)
    assert first.counts["created"] == 3
    write_csv(tmp_path / "people.csv", PEOPLE + "D@X.com,Di,COO,Acme\nA@X.COM,Ann,CEO,Acme\n")
    second = run_profile(write_profile(tmp_path, profile), connections=store, state=state)
    assert {k: v for k, v in second.counts.items() if v} == {"created": 1, "filtered": 4}
    assert [r[0] for r in _rows(db, "SELECT email FROM contacts")] == [
        "D@X.com",
        "a@x.com",
        "b@x.com",
        "c@x.com",
    ]


def test_update_fields_leave_other_fields_of_existing_records(
    tmp_path: Path, db: str, store: ConnectionStore, state: StateStore
) -> None:
    write_csv(tmp_path / "people.csv", PEOPLE)
    profile = f"""
        source: {{connection: {{type: csv, path: .}}, object: people.csv}}
        target:
          connection: {{type: sql, url: "{db}"}}
          object: contacts
          mode: upsert
          match_keys: [email]
          update_fields: [title]
        mapping: {{email: email, name: upper(name), title: title}}
        """
    run_profile(write_profile(tmp_path, profile), connections=store, state=state)
    write_csv(tmp_path / "people.csv", PEOPLE.replace("Ann,CEO", "Anna,Chair") + "d@x.com,Di,,\n")
    summary = run_profile(write_profile(tmp_path, profile), connections=store, state=state)
    assert {k: v for k, v in summary.counts.items() if v} == {
        "updated": 1,
        "unchanged": 2,
        "created": 1,
    }
    assert _rows(db, "SELECT email, name, title FROM contacts")[0] == ("a@x.com", "ANN", "Chair")
    nothing = profile.replace("update_fields: [title]", "update_fields: []")
    write_csv(tmp_path / "people.csv", PEOPLE.replace("CEO", "Founder"))
    summary = run_profile(write_profile(tmp_path, nothing), connections=store, state=state)
    assert summary.counts["unchanged"] == 3
    assert _rows(db, "SELECT title FROM contacts WHERE email = 'a@x.com'") == [("Chair",)]


def test_value_maps_translate_values(
    tmp_path: Path, db: str, store: ConnectionStore, state: StateStore
) -> None:
    write_csv(tmp_path / "people.csv", PEOPLE)
    profile = f"""
        source: {{connection: {{type: csv, path: .}}, object: people.csv}}
        target: {{connection: {{type: sql, url: "{db}"}}, object: contacts}}
        mapping: {{email: email, title: grade(title)}}
        value_maps:
          grade: {{CEO: boss, CTO: tech, "*": staff}}
        """
    run_profile(write_profile(tmp_path, profile), connections=store, state=state)
    assert _rows(db, "SELECT email, title FROM contacts") == [
        ("a@x.com", "boss"),
        ("b@x.com", "tech"),
        ("c@x.com", "staff"),
    ]


def test_a_value_map_may_not_take_a_sql_function_name(
    tmp_path: Path, db: str, store: ConnectionStore, state: StateStore
) -> None:
    from crmbridge.errors import ProfileError

    write_csv(tmp_path / "people.csv", PEOPLE)
    profile = f"""
        source: {{connection: {{type: csv, path: .}}, object: people.csv}}
        target: {{connection: {{type: sql, url: "{db}"}}, object: contacts}}
        mapping: {{email: email, title: title}}
        value_maps:
          rank: {{CEO: boss}}
        """
    with pytest.raises(ProfileError, match="'rank' is the name of a SQL function"):
        run_profile(write_profile(tmp_path, profile), connections=store, state=state)


STAFF = "".join(
    ["email,name,manager\n", "boss@x.com,Boss,\n"]
    + [f"e{i}@x.com,E{i},boss@x.com\n" for i in range(40)]
)


def test_a_reference_to_the_target_itself_finds_records_of_earlier_batches(
    tmp_path: Path, db: str, store: ConnectionStore, state: StateStore
) -> None:
    """Each employee's manager is created by the batch before: batches are mapped (and their
    references looked up) only after the batch before was written, never ahead of it."""
    (tmp_path / "people.csv").write_text(STAFF, encoding="utf-8")
    profile = f"""
        source: {{connection: {{type: csv, path: .}}, object: people.csv}}
        target:
          connection: {{type: sql, url: "{db}"}}
          object: contacts
          mode: upsert
          match_keys: [email]
        mapping: {{email: email, name: name}}
        references:
          account_id:
            object: contacts
            match: {{email: manager}}
            missing: reject
        batch_size: 1
        """
    loaded = write_profile(tmp_path, profile)
    summary = run_profile(loaded, connections=store, state=state, output_dir=tmp_path / "r")
    assert {k: v for k, v in summary.counts.items() if v} == {"created": 41}
    managers = _rows(db, "SELECT DISTINCT account_id FROM contacts WHERE email <> 'boss@x.com'")
    assert managers == [("boss@x.com",)]
