"""Record identity: the reproductions of the record-identity issue, each one a test.

What "the same record" is, what a write will do, and that a dry run says exactly what the real
run then does — against the SugarCRM sandbox (both API families, on a real port) and SQL.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from tests.runner.conftest import nonzero, run, write_csv, write_profile

from crmbridge.connections import ConnectionStore
from crmbridge.sandbox.sugarcrm import SugarSandbox
from crmbridge.state import StateStore

LEADS_UPSERT = """
    source: {connection: {type: csv, path: .}, object: leads.csv}
    target: {connection: crm, object: Leads, mode: upsert, match_keys: [email1]}
    mapping: {email1: email, last_name: name, account_name: company}
    batch_size: %d
"""


def _api(store: ConnectionStore) -> str:
    return str(store.get("crm").settings.api)  # type: ignore[attr-defined]


def _leads(sugar: SugarSandbox, email: str) -> list[dict[str, object]]:
    return sugar.execute(
        "SELECT l.id, l.date_modified FROM leads l "
        "JOIN email_addr_bean_rel r ON r.bean_id = l.id AND r.deleted = 0 "
        "JOIN email_addresses ea ON ea.id = r.email_address_id "
        "WHERE l.deleted = 0 AND ea.email_address_caps = ?",
        (email.upper(),),
    )


@pytest.mark.parametrize("batch_size", [10, 1])
def test_case_and_space_variants_of_an_email_are_one_lead(
    tmp_path: Path,
    sugar: SugarSandbox,
    store: ConnectionStore,
    state: StateStore,
    batch_size: int,
) -> None:
    # in one batch (10) and in two batches (1): one Lead, never two
    write_csv(tmp_path / "leads.csv", "email,name,company\nAnn@x.com,Lee,A\nann@x.com ,Lee,A\n")
    loaded = write_profile(tmp_path, LEADS_UPSERT % batch_size)
    dry = run(loaded, store, state, dry_run=True)
    real = run(loaded, store, state)
    assert nonzero(dry.counts) == nonzero(real.counts) == {"created": 1, "unchanged": 1}
    assert len(_leads(sugar, "ann@x.com")) == 1


def test_a_stored_email_in_another_case_is_not_rewritten_on_every_run(
    tmp_path: Path, sugar: SugarSandbox, store: ConnectionStore, state: StateStore
) -> None:
    write_csv(tmp_path / "leads.csv", "email,name,company\nBOB@X.com,Lee,A\n")
    loaded = write_profile(tmp_path, LEADS_UPSERT % 10)
    assert nonzero(run(loaded, store, state).counts) == {"created": 1}
    [before] = _leads(sugar, "bob@x.com")
    write_csv(tmp_path / "leads.csv", "email,name,company\n bob@x.COM,Lee,A\n")
    dry = run(loaded, store, state, dry_run=True)
    again = run(loaded, store, state)
    assert nonzero(dry.counts) == nonzero(again.counts) == {"unchanged": 1}
    [after] = _leads(sugar, "bob@x.com")
    assert after["date_modified"] == before["date_modified"], "the record was left alone"


def test_values_the_crm_rewrites_on_save_are_compared_as_stored(
    tmp_path: Path, sugar: SugarSandbox, store: ConnectionStore, state: StateStore
) -> None:
    # SuiteCRM stores AT&amp;T as AT&T and strips <script>: keyed on such a value, a second
    # run finds the record instead of creating a duplicate
    write_csv(
        tmp_path / "accounts.csv",
        'name,city\nAT&amp;T,Dallas\n"Acme<script>x()</script>",Paris\n',
    )
    loaded = write_profile(
        tmp_path,
        """
        source: {connection: {type: csv, path: .}, object: accounts.csv}
        target: {connection: crm, object: Accounts, mode: upsert, match_keys: [name]}
        mapping: {name: name, billing_address_city: city}
        """,
    )
    assert nonzero(run(loaded, store, state).counts) == {"created": 2}
    dry = run(loaded, store, state, dry_run=True)
    again = run(loaded, store, state)
    assert nonzero(dry.counts) == nonzero(again.counts) == {"unchanged": 2}
    names = sugar.execute("SELECT name FROM accounts WHERE name IN ('AT&T', 'Acme')")
    assert sorted(r["name"] for r in names) == ["AT&T", "Acme"]


def test_two_accounts_with_one_name_make_a_reference_ambiguous(
    tmp_path: Path, sugar: SugarSandbox, store: ConnectionStore, state: StateStore
) -> None:
    sugar.execute("UPDATE accounts SET name = 'Twin' WHERE id IN (SELECT id FROM accounts LIMIT 2)")
    write_csv(tmp_path / "people.csv", "email,name,company\nt@x.com,Tee,Twin\n")
    loaded = write_profile(
        tmp_path,
        """
        source: {connection: {type: csv, path: .}, object: people.csv}
        target: {connection: crm, object: Contacts, mode: upsert, match_keys: [email1]}
        mapping: {email1: email, last_name: name}
        references:
          account_id: {object: Accounts, match: {name: company}}
        """,
    )
    summary = run(loaded, store, state, output_dir=tmp_path / "run")
    assert nonzero(summary.counts) == {"rejected": 1}
    errors = (tmp_path / "run/error.csv").read_text(encoding="utf-8")
    assert "several Accounts records match name='Twin'" in errors
    assert "ambiguous_match" in errors


@pytest.mark.parametrize("how", ["500", "drop"])
def test_an_answer_lost_after_the_write_is_confirmed_not_rejected(
    tmp_path: Path, sugar: SugarSandbox, store: ConnectionStore, state: StateStore, how: str
) -> None:
    rows = "".join(f"p{i}@x.com,P{i},Co\n" for i in range(30))
    write_csv(tmp_path / "leads.csv", "email,name,company\n" + rows)
    loaded = write_profile(tmp_path, LEADS_UPSERT % 100)
    # the write call is carried out, then its answer is lost (HTTP 500): our own retry must
    # not come back "already exists", and nothing is created twice
    sugar.faults.lose_answer_next(1, how, match="set_entries" if _api(store) == "v4_1" else "bulk")
    summary = run(loaded, store, state)
    assert summary.error is None
    assert nonzero(summary.counts) == {"created": 30}
    count = sugar.execute(
        "SELECT count(*) AS n FROM leads WHERE deleted = 0 AND last_name LIKE 'P%'"
    )
    assert count[0]["n"] == 30


def test_an_insert_without_match_keys_is_not_repeated_by_a_rerun(
    tmp_path: Path, sugar: SugarSandbox, store: ConnectionStore, state: StateStore
) -> None:
    write_csv(tmp_path / "notes.csv", "title\nCall back\nSend offer\nSend offer\n")
    loaded = write_profile(
        tmp_path,
        """
        source: {connection: {type: csv, path: .}, object: notes.csv}
        target: {connection: crm, object: Notes, mode: insert}
        mapping: {name: title}
        """,
    )
    first = run(loaded, store, state)
    assert nonzero(first.counts) == {"created": 3}
    again = run(loaded, store, state)
    assert nonzero(again.counts) == {"skipped": 3}
    assert again.skipped == {f"inserted by run {first.run_id}": 3}
    forced = run(loaded, store, state, again=True)
    assert nonzero(forced.counts) == {"created": 3}
    notes = sugar.execute(
        "SELECT count(*) AS n FROM notes WHERE name IN ('Call back', 'Send offer')"
    )
    assert notes[0]["n"] == 6


def test_profiles_with_one_file_name_in_two_folders_keep_their_own_state(
    tmp_path: Path, store: ConnectionStore, state: StateStore
) -> None:
    profile = """
        source: {connection: {type: csv, path: .}, object: events.csv}
        target: {connection: {type: sql, url: "sqlite:///out.sqlite"}, object: events, create: true}
        mapping: {id: id}
        deduplicate: {key: id}
    """
    summaries = []
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        write_csv(tmp_path / folder / "events.csv", "id\n1\n2\n")
        summaries.append(run(write_profile(tmp_path / folder, profile, "sync.yaml"), store, state))
    # each folder's profile reads its own file into its own database: both send everything
    assert [nonzero(s.counts) for s in summaries] == [{"created": 2}, {"created": 2}]


def test_composite_keys_with_the_separator_in_their_values_stay_apart(
    tmp_path: Path, store: ConnectionStore, state: StateStore
) -> None:
    db = tmp_path / "db.sqlite"
    engine = sa.create_engine(f"sqlite:///{db}")
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE t (a TEXT, b TEXT, v TEXT, PRIMARY KEY (a, b))"))
    engine.dispose()
    write_csv(tmp_path / "in.csv", "a,b,v\na|b,c,one\na,b|c,two\n")
    loaded = write_profile(
        tmp_path,
        f"""
        source: {{connection: {{type: csv, path: .}}, object: in.csv}}
        target: {{connection: {{type: sql, url: "sqlite:///{db}"}}, object: t, mode: upsert,
                  match_keys: [a, b]}}
        """,
    )
    assert nonzero(run(loaded, store, state).counts) == {"created": 2}
    assert nonzero(run(loaded, store, state).counts) == {"unchanged": 2}


def test_two_stored_rows_with_one_key_are_ambiguous_in_the_dry_run_and_the_real_run(
    tmp_path: Path, store: ConnectionStore, state: StateStore
) -> None:
    db = tmp_path / "db.sqlite"
    engine = sa.create_engine(f"sqlite:///{db}")
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE people (email TEXT, name TEXT)"))
        conn.execute(sa.text("INSERT INTO people VALUES ('d@x.com', 'One'), ('d@x.com', 'Two')"))
    engine.dispose()
    write_csv(tmp_path / "in.csv", "email,name\nd@x.com,Three\n")
    loaded = write_profile(
        tmp_path,
        f"""
        source: {{connection: {{type: csv, path: .}}, object: in.csv}}
        target: {{connection: {{type: sql, url: "sqlite:///{db}"}}, object: people,
                  mode: update, match_keys: [email]}}
        """,
    )
    dry = run(loaded, store, state, dry_run=True)
    real = run(loaded, store, state, output_dir=tmp_path / "run")
    assert nonzero(dry.counts) == nonzero(real.counts) == {"rejected": 1}
    assert "2 people records match email='d@x.com'" in (tmp_path / "run/error.csv").read_text()
    engine = sa.create_engine(f"sqlite:///{db}")
    with engine.connect() as conn:
        names = sorted(r[0] for r in conn.execute(sa.text("SELECT name FROM people")))
    engine.dispose()
    assert names == ["One", "Two"], "neither record was changed"


@pytest.mark.postgres
def test_an_insert_into_a_table_without_a_unique_key_never_duplicates(
    tmp_path: Path, pg_url: str, store: ConnectionStore, state: StateStore
) -> None:
    engine = sa.create_engine(pg_url)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE people (email text, name text)"))
        conn.execute(sa.text("INSERT INTO people VALUES ('a@x.com', 'Ann')"))
    write_csv(tmp_path / "in.csv", "email,name\na@x.com,Ann\nb@x.com,Bob\n")
    loaded = write_profile(
        tmp_path,
        f"""
        source: {{connection: {{type: csv, path: .}}, object: in.csv}}
        target: {{connection: {{type: sql, url: "{pg_url}"}}, object: people, mode: insert,
                  match_keys: [email]}}
        """,
    )
    assert nonzero(run(loaded, store, state).counts) == {"created": 1, "rejected": 1}
    with engine.connect() as conn:
        rows = sorted(conn.execute(sa.text("SELECT email FROM people")).scalars())
    engine.dispose()
    assert rows == ["a@x.com", "b@x.com"]


@pytest.mark.parametrize("target", ["sql", "crm"])
def test_keep_when_null_leaves_stored_values_alone(
    tmp_path: Path, sugar: SugarSandbox, store: ConnectionStore, state: StateStore, target: str
) -> None:
    if target == "sql":
        db = tmp_path / "db.sqlite"
        engine = sa.create_engine(f"sqlite:///{db}")
        with engine.begin() as conn:
            conn.execute(sa.text("CREATE TABLE t (email TEXT PRIMARY KEY, phone TEXT, name TEXT)"))
            conn.execute(sa.text("INSERT INTO t VALUES ('k@x.com', '123', 'Old')"))
        engine.dispose()
        connection, object_name = f'{{type: sql, url: "sqlite:///{db}"}}', "t"
        mapping = "{email: email, phone: phone, name: name}"
    else:
        write_csv(tmp_path / "seed.csv", "email,phone,name\nk@x.com,123,Old\n")
        seed = write_profile(
            tmp_path,
            """
            source: {connection: {type: csv, path: .}, object: seed.csv}
            target: {connection: crm, object: Leads, mode: insert}
            mapping: {email1: email, phone_work: phone, last_name: name}
            """,
            name="seed.yaml",
        )
        assert nonzero(run(seed, store, state).counts) == {"created": 1}
        connection, object_name = "crm", "Leads"
        mapping = "{email1: email, phone_work: phone, last_name: name}"
    write_csv(tmp_path / "in.csv", "email,phone,name\nk@x.com,,New\n")
    key = "email" if target == "sql" else "email1"
    phone = "phone" if target == "sql" else "phone_work"
    loaded = write_profile(
        tmp_path,
        f"""
        source: {{connection: {{type: csv, path: .}}, object: in.csv}}
        target: {{connection: {connection}, object: {object_name}, mode: update,
                  match_keys: [{key}], keep_when_null: [{phone}]}}
        mapping: {mapping}
        """,
    )
    assert nonzero(run(loaded, store, state).counts) == {"updated": 1}
    if target == "sql":
        engine = sa.create_engine(f"sqlite:///{tmp_path}/db.sqlite")
        with engine.connect() as conn:
            assert tuple(conn.execute(sa.text("SELECT phone, name FROM t")).one()) == ("123", "New")
        engine.dispose()
    else:
        [lead] = sugar.execute("SELECT phone_work, last_name FROM leads WHERE last_name = 'New'")
        assert lead["phone_work"] == "123"
