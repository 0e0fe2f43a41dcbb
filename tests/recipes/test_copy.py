"""``crmbridge copy``: every CRM object into a SQL database for reporting, tables created from
``describe``, later copies reading only what changed (SugarCRM sandbox -> SQLite, PostgreSQL;
Salesforce sandbox -> SQLite)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
import sqlalchemy as sa

from crmbridge.cli.app import main
from crmbridge.sandbox.salesforce import SalesforceSandbox
from crmbridge.sandbox.sugarcrm import SugarSandbox


def crmbridge(*args: str) -> int:
    with pytest.raises(SystemExit) as info:
        main(list(args))
    code = info.value.code
    return code if isinstance(code, int) else 0


def count(url: str, table: str) -> int:
    engine = sa.create_engine(url)
    with engine.connect() as con:
        found = int(con.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one())
    engine.dispose()
    return found


def tables(url: str) -> set[str]:
    engine = sa.create_engine(url)
    names = set(sa.inspect(engine).get_table_names())
    engine.dispose()
    return names


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/reporting.sqlite"
    found: str = request.getfixturevalue("pg_url")
    return found


def test_copy_every_sugarcrm_object_then_only_what_changed(
    url: str, sugarcrm: SugarSandbox, capsys: pytest.CaptureFixture[str]
) -> None:
    assert crmbridge("copy", "crm", "--to", url) == 0
    out = capsys.readouterr().out
    assert "Accounts -> accounts (changes by date_modified)" in out
    assert {"accounts", "contacts", "leads", "opportunities", "notes", "users"} <= tables(url)
    live = sugarcrm.execute("SELECT count(*) AS n FROM accounts WHERE deleted = 0")[0]["n"]
    assert count(url, "accounts") == live
    contacts = sugarcrm.execute("SELECT count(*) AS n FROM contacts WHERE deleted = 0")[0]["n"]
    assert count(url, "contacts") == contacts

    later = (dt.datetime.now(dt.UTC) + dt.timedelta(minutes=5)).strftime("%Y-%m-%d %H:%M:%S")
    first = sugarcrm.execute("SELECT id FROM accounts WHERE deleted = 0 ORDER BY id")[0]["id"]
    sugarcrm.execute(
        "UPDATE accounts SET name = 'Renamed Ltd', date_modified = ? WHERE id = ?", (later, first)
    )
    assert crmbridge("copy", "crm", "--to", url) == 0
    out = capsys.readouterr().out
    assert "copy-crm-accounts: succeeded — updated 1" in out
    assert "copy-crm-contacts: succeeded — filtered" in out
    engine = sa.create_engine(url)
    with engine.connect() as con:
        name = con.execute(sa.text("SELECT name FROM accounts WHERE id = :i"), {"i": first})
        assert name.scalar_one() == "Renamed Ltd"
    engine.dispose()
    assert count(url, "accounts") == live


def test_copy_some_objects_with_a_prefix(tmp_path: Path, sugarcrm: SugarSandbox) -> None:
    url = f"sqlite:///{tmp_path}/reporting.sqlite"
    args = ["copy", "crm", "--to", url, "--object", "Accounts", "--object", "leads"]
    assert crmbridge(*args, "--prefix", "crm_") == 0
    assert tables(url) == {"crm_accounts", "crm_leads"}


def test_an_unknown_object_is_one_line_and_exit_code_2(
    tmp_path: Path, sugarcrm: SugarSandbox, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{tmp_path}/reporting.sqlite"
    assert crmbridge("copy", "crm", "--to", url, "--object", "Acounts") == 2
    assert "sugarcrm has no object 'Acounts'" in capsys.readouterr().err


def test_copy_salesforce_objects_into_sqlite(
    tmp_path: Path, salesforce: SalesforceSandbox, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{tmp_path}/reporting.sqlite"
    assert crmbridge("copy", "crm", "--to", url, "--object", "Account", "--object", "Contact") == 0
    assert "Account -> account (changes by SystemModstamp)" in capsys.readouterr().out
    live = salesforce.execute("SELECT count(*) AS n FROM sobject_account WHERE IsDeleted = 0")
    assert count(url, "account") == live[0]["n"]
    assert crmbridge("copy", "crm", "--to", url, "--object", "Account") == 0
    assert "copy-crm-account: succeeded — filtered" in capsys.readouterr().out
