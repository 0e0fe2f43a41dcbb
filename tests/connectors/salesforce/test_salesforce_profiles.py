"""Profiles run end to end against the sandbox on a real port: CSV -> Salesforce (upsert by an
external id, references through the parent's external id, lost answers, Bulk API 2.0) and
Salesforce -> CSV."""

from __future__ import annotations

import csv
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from salesforce_helpers import count

from crmbridge.connections import ConnectionStore, KeyFileKeySource
from crmbridge.profiles.loader import LoadedProfile, load_profile
from crmbridge.runner import run_profile
from crmbridge.sandbox.salesforce import DEFAULT_USER, RunningServer, SalesforceSandbox
from crmbridge.state import StateStore


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "home"
    monkeypatch.setenv("CRMBRIDGE_HOME", str(folder))
    monkeypatch.delenv("CRMBRIDGE_STATE_URL", raising=False)
    return folder


@pytest.fixture
def store(home: Path, sandbox: SalesforceSandbox, server: RunningServer) -> ConnectionStore:
    """A connection store holding ``org``: the sandbox."""
    connections = ConnectionStore(home, key_source=KeyFileKeySource(home / "secret.key"))
    connections.add("org", "salesforce", _settings(sandbox, server))
    return connections


@pytest.fixture
def state(home: Path) -> Iterator[StateStore]:
    with StateStore(f"sqlite:///{home}/state.sqlite") as s:
        yield s


def _settings(sandbox: SalesforceSandbox, server: RunningServer, **more: Any) -> dict[str, Any]:
    return {
        "login_url": server.url,
        "client_id": sandbox.consumer_key,
        "client_secret": sandbox.consumer_secret,
        "username": DEFAULT_USER,
        "password": "admin",
        "ca_file": str(sandbox.ca_file),
        "retry_backoff": 0.001,
        "bulk_poll_interval": 0.001,
        **more,
    }


def _profile(folder: Path, text: str, name: str = "profile.yaml") -> LoadedProfile:
    path = folder / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return load_profile(path)


def _csv(path: Path, text: str) -> None:
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")


def _run(loaded: LoadedProfile, store: ConnectionStore, state: StateStore, **kw: Any) -> Any:
    return run_profile(loaded, connections=store, state=state, **kw)


def _nonzero(counts: dict[str, int]) -> dict[str, int]:
    return {k: v for k, v in counts.items() if v}


ACCOUNTS_UPSERT = """
    source: {connection: {type: csv, path: .}, object: accounts.csv}
    target: {connection: org, object: Account, mode: upsert, match_keys: [Ext_Id__c]}
    mapping:
      Ext_Id__c: ext_id
      Name: name
      Phone: phone
      Parent.Ext_Id__c: parent
"""


def test_csv_to_accounts_upsert_by_external_id_then_back_to_csv(
    tmp_path: Path, sandbox: SalesforceSandbox, store: ConnectionStore, state: StateStore
) -> None:
    _csv(
        tmp_path / "accounts.csv",
        '''
        ext_id,name,phone,parent
        ACC-00001,"Acme & Sons ""Q""",+1 555 0100,
        acc-00002,O'Brien Brothers Ltd,+1 555 0101,ACC-00001
        NEW-1,Newco One,,ACC-00002
        NEW-2,Newco Two,+1 555 0103,
        ''',
    )
    loaded = _profile(tmp_path, ACCOUNTS_UPSERT)
    dry = _run(loaded, store, state, dry_run=True)
    real = _run(loaded, store, state, output_dir=tmp_path / "run")
    assert real.error is None
    assert _nonzero(dry.counts) == _nonzero(real.counts) == {"created": 2, "updated": 2}
    again = _run(loaded, store, state)
    assert _nonzero(again.counts) == {"unchanged": 4}
    assert count(sandbox, "sobject_account", "\"Ext_Id__c\" LIKE 'NEW-%'") == 2
    [parent] = sandbox.execute('SELECT "Id" FROM sobject_account WHERE "Ext_Id__c" = \'ACC-00002\'')
    [child] = sandbox.execute(
        'SELECT "ParentId" FROM sobject_account WHERE "Ext_Id__c" = \'NEW-1\''
    )
    assert child["ParentId"] == parent["Id"]
    with (tmp_path / "run/success.csv").open(encoding="utf-8") as f:
        ids = {r["ext_id"]: r["crmbridge_id"] for r in csv.DictReader(f)}
    assert ids["acc-00002"] == parent["Id"]  # the existing record, found case-insensitively

    back = _profile(
        tmp_path,
        """
        source:
          connection: org
          object: Account
          fields: [Id, Ext_Id__c, Name, Phone, Parent.Ext_Id__c]
          filter: "Ext_Id__c LIKE 'NEW-%'"
        target: {connection: {type: csv, path: out}, object: accounts.csv, mode: insert}
        mapping:
          id: Id
          ext_id: Ext_Id__c
          name: Name
          phone: Phone
          parent: '"Parent.Ext_Id__c"'
        """,
        name="export.yaml",
    )
    (tmp_path / "out").mkdir()
    exported = _run(back, store, state)
    assert exported.error is None, exported.error
    assert exported.pushed_filter == ["Ext_Id__c LIKE 'NEW-%'"]
    assert _nonzero(exported.counts) == {"created": 2}
    with (tmp_path / "out/accounts.csv").open(encoding="utf-8") as f:
        rows = sorted(csv.DictReader(f), key=lambda r: r["ext_id"])
    assert [(r["ext_id"], r["name"], r["phone"], r["parent"]) for r in rows] == [
        ("NEW-1", "Newco One", "", "ACC-00002"),
        ("NEW-2", "Newco Two", "+1 555 0103", ""),
    ]
    assert rows[0]["id"] == ids["NEW-1"]


def test_contacts_with_their_account_through_its_external_id(
    tmp_path: Path, sandbox: SalesforceSandbox, store: ConnectionStore, state: StateStore
) -> None:
    _csv(
        tmp_path / "contacts.csv",
        """
        key,last,account
        K-1,Lee,ACC-00003
        K-2,Kim,NO-SUCH
        K-3,Park,
        """,
    )
    loaded = _profile(
        tmp_path,
        """
        source: {connection: {type: csv, path: .}, object: contacts.csv}
        target: {connection: org, object: Contact, mode: upsert, match_keys: [Ext_Id__c]}
        mapping: {Ext_Id__c: key, LastName: last, Account.Ext_Id__c: account}
        """,
    )
    summary = _run(loaded, store, state, output_dir=tmp_path / "run")
    assert _nonzero(summary.counts) == {"created": 2, "rejected": 1}
    errors = (tmp_path / "run/error.csv").read_text(encoding="utf-8")
    assert "Foreign key external ID: NO-SUCH not found" in errors
    assert "reference" in errors
    [lee] = sandbox.execute('SELECT "AccountId" FROM sobject_contact WHERE "Ext_Id__c" = \'K-1\'')
    [account] = sandbox.execute(
        'SELECT "Id" FROM sobject_account WHERE "Ext_Id__c" = \'ACC-00003\''
    )
    assert lee["AccountId"] == account["Id"]
    assert _nonzero(_run(loaded, store, state).counts) == {"unchanged": 2, "rejected": 1}


@pytest.mark.parametrize("fault", ["lose", "drop", "500"])
def test_a_run_whose_write_answer_is_lost_ends_with_exact_counts(
    tmp_path: Path,
    sandbox: SalesforceSandbox,
    store: ConnectionStore,
    state: StateStore,
    fault: str,
) -> None:
    rows = "".join(f"W-{i},Lead{i},Co,lead{i}@web.example\n" for i in range(30))
    _csv(tmp_path / "leads.csv", "web,last,company,email\n" + rows)
    loaded = _profile(
        tmp_path,
        """
        source: {connection: {type: csv, path: .}, object: leads.csv}
        target: {connection: org, object: Lead, mode: upsert, match_keys: [Email]}
        mapping: {Web_Id__c: web, LastName: last, Company: company, Email: email}
        """,
    )
    if fault == "lose":
        sandbox.faults.lose_next(1, only="composite/sobjects")
    elif fault == "drop":
        sandbox.faults.drop_next(1, only="composite/sobjects")
    else:
        sandbox.faults.fail_next(1, 500, "", only="composite/sobjects")
    summary = _run(loaded, store, state)
    assert summary.error is None
    assert _nonzero(summary.counts) == {"created": 30}
    assert count(sandbox, "sobject_lead", "\"Email\" LIKE '%@web.example'") == 30


def test_big_loads_go_through_bulk_api_and_a_lost_answer_changes_nothing(
    tmp_path: Path, sandbox: SalesforceSandbox, server: RunningServer, state: StateStore
) -> None:
    home = tmp_path / "home"
    store = ConnectionStore(home, key_source=KeyFileKeySource(home / "secret.key"))
    store.add("org", "salesforce", _settings(sandbox, server, bulk_write_threshold=50, retries=1))
    rows = "".join(f"B-{i},Bulk{i},Co\n" for i in range(120))
    _csv(tmp_path / "leads.csv", "web,last,company\n" + rows)
    loaded = _profile(
        tmp_path,
        """
        source: {connection: {type: csv, path: .}, object: leads.csv}
        target: {connection: org, object: Lead, mode: upsert, match_keys: [Web_Id__c]}
        mapping: {Web_Id__c: web, LastName: last, Company: company}
        batch_size: 60
        """,
    )
    sandbox.faults.drop_next(2, only="successfulResults")  # the first job ran; unseen
    summary = _run(loaded, store, state)
    assert summary.error is None
    assert _nonzero(summary.counts) == {"created": 120}
    assert count(sandbox, "sobject_lead", "\"Web_Id__c\" LIKE 'B-%'") == 120
    assert sandbox.faults.call_counts()["POST jobs/ingest"] == 3  # 2 batches, one repeated


def test_update_mode_inserts_nothing_and_delete_mode_deletes(
    tmp_path: Path, sandbox: SalesforceSandbox, store: ConnectionStore, state: StateStore
) -> None:
    _csv(
        tmp_path / "leads.csv",
        "web,status\nWEB-00001,Working - Contacted\nWEB-99999,Open - Not Contacted\n",
    )
    update = _profile(
        tmp_path,
        """
        source: {connection: {type: csv, path: .}, object: leads.csv}
        target: {connection: org, object: Lead, mode: update, match_keys: [Web_Id__c]}
        mapping: {Web_Id__c: web, Status: status}
        """,
    )
    summary = _run(update, store, state, output_dir=tmp_path / "run")
    assert _nonzero(summary.counts) == {"updated": 1, "rejected": 1}
    assert "not_found" in (tmp_path / "run/error.csv").read_text(encoding="utf-8")
    assert count(sandbox, "sobject_lead", "\"Web_Id__c\" = 'WEB-99999'") == 0
    delete = _profile(
        tmp_path,
        """
        source: {connection: {type: csv, path: .}, object: leads.csv}
        target: {connection: org, object: Lead, mode: delete, match_keys: [Web_Id__c]}
        mapping: {Web_Id__c: web}
        """,
        name="delete.yaml",
    )
    assert _nonzero(_run(delete, store, state).counts) == {"deleted": 1, "rejected": 1}
    assert count(sandbox, "sobject_lead", '"Web_Id__c" = \'WEB-00001\' AND "IsDeleted" = 1') == 1


def test_an_insert_without_match_keys_is_not_repeated_by_a_rerun(
    tmp_path: Path, sandbox: SalesforceSandbox, store: ConnectionStore, state: StateStore
) -> None:
    _csv(tmp_path / "leads.csv", "last,company\nOnce,Co\nTwice,Co\nTwice,Co\n")
    loaded = _profile(
        tmp_path,
        """
        source: {connection: {type: csv, path: .}, object: leads.csv}
        target: {connection: org, object: Lead, mode: insert}
        mapping: {LastName: last, Company: company}
        """,
    )
    first = _run(loaded, store, state)
    assert _nonzero(first.counts) == {"created": 3}
    again = _run(loaded, store, state)
    assert _nonzero(again.counts) == {"skipped": 3}
    assert count(sandbox, "sobject_lead", "\"LastName\" IN ('Once', 'Twice')") == 3


def test_with_an_operation_key_field_a_lost_insert_without_keys_is_confirmed(
    tmp_path: Path, sandbox: SalesforceSandbox, server: RunningServer, state: StateStore
) -> None:
    home = tmp_path / "home"
    store = ConnectionStore(home, key_source=KeyFileKeySource(home / "secret.key"))
    settings = _settings(sandbox, server, operation_key_field="Crmbridge_Key__c")
    store.add("org", "salesforce", settings)
    rows = "".join(f"Key{i},Co\n" for i in range(250))
    _csv(tmp_path / "leads.csv", "last,company\n" + rows)
    loaded = _profile(
        tmp_path,
        """
        source: {connection: {type: csv, path: .}, object: leads.csv}
        target: {connection: org, object: Lead, mode: insert}
        mapping: {LastName: last, Company: company}
        """,
    )
    sandbox.faults.lose_next(1, only="composite/sobjects", after=1)  # the second call of two
    summary = _run(loaded, store, state)
    assert summary.error is None
    assert _nonzero(summary.counts) == {"created": 250}
    assert count(sandbox, "sobject_lead", "\"LastName\" LIKE 'Key%'") == 250
    keys = sandbox.execute(
        'SELECT DISTINCT "Crmbridge_Key__c" AS k FROM sobject_lead WHERE "LastName" LIKE \'Key%\''
    )
    assert len(keys) == 250
