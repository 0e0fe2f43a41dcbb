"""match: candidate records for key values by SOQL, and the stored form they compare in."""

from __future__ import annotations

import datetime as dt

import pyarrow as pa
import pytest
from salesforce_helpers import Connect, add_accounts, typed

from crmbridge.connectors.base import ID_COLUMN, VERSION_COLUMN, MatchRequest
from crmbridge.connectors.salesforce import SalesforceConnector
from crmbridge.connectors.salesforce.matching import MAX_CONDITION, conditions
from crmbridge.core import identity
from crmbridge.core.identity import KeyRule
from crmbridge.errors import ConfigError
from crmbridge.sandbox.salesforce import SalesforceSandbox


def _match(
    sf: SalesforceConnector,
    object: str,
    rows: list[dict[str, object]],
    fields: tuple[str, ...] = (),
    rules: dict[str, KeyRule] | None = None,
) -> pa.RecordBatch:
    keys = list(rows[0])
    schema = sf.describe(object)
    chosen = rules or {k: schema.field(k).key_rule for k in keys}
    request = MatchRequest(object, keys, typed(sf, object, rows), rules=chosen, fields=fields)
    return sf.match(request)


def _matching(found: pa.RecordBatch, keys: list[str], rules: dict[str, KeyRule], row: dict) -> int:
    """How many candidates the engine counts as the same record as ``row``."""
    wanted = identity.encode(pa.RecordBatch.from_pylist([row]), keys, rules)[0].as_py()
    return sum(v == wanted for v in identity.encode(found, keys, rules).to_pylist())


def test_text_keys_find_case_and_space_variants(sf: SalesforceConnector) -> None:
    rows = [{"Name": ' acme & sons "q" '}, {"Name": "ZÜRICH TRADING AG"}, {"Name": "Nobody"}]
    found = _match(sf, "Account", rows, fields=("Ext_Id__c",))
    assert sorted(found.column("Ext_Id__c").to_pylist()) == ["ACC-00001", "ACC-00003"]
    assert set(found.schema.names) == {"Name", "Ext_Id__c", ID_COLUMN, VERSION_COLUMN}
    rules = {"Name": KeyRule.CASEFOLD}
    assert [_matching(found, ["Name"], rules, r) for r in rows] == [1, 1, 0]


def test_an_exact_key_is_not_asked_for_trimmed(sf: SalesforceConnector) -> None:
    found = _match(sf, "Account", [{"Name": " Tyrell SA 7"}], rules={"Name": KeyRule.EXACT})
    assert found.num_rows == 0
    # SOQL ignores case: a superset the engine narrows down under the exact rule
    found = _match(sf, "Account", [{"Name": "TYRELL SA 7"}], rules={"Name": KeyRule.EXACT})
    assert found.column("Name").to_pylist() == ["Tyrell SA 7"]
    assert _matching(found, ["Name"], {"Name": KeyRule.EXACT}, {"Name": "TYRELL SA 7"}) == 0


def test_ids_are_found_in_every_form_and_a_non_id_finds_nothing(
    sf: SalesforceConnector, sandbox: SalesforceSandbox
) -> None:
    record_id = "0015g000000000AAAQ"  # Stark SA 10: an upper-case letter in the id
    rows = [{"Id": record_id[:15]}, {"Id": record_id.lower()}, {"Id": "not-an-id"}]
    found = _match(sf, "Account", rows, fields=("Name",))
    assert found.column("Id").to_pylist() == [record_id]
    assert found.column(ID_COLUMN).to_pylist() == [record_id]
    stored = sf.stored_form("Account", typed(sf, "Account", rows))
    assert stored.column("Id").to_pylist() == [record_id, record_id, "not-an-id"]
    calls = sandbox.faults.call_counts()["GET query"]
    assert _match(sf, "Account", [{"Id": "not-an-id"}]).num_rows == 0
    assert sandbox.faults.call_counts()["GET query"] == calls, "nothing to ask for"


def test_email_keys_and_composite_keys(sf: SalesforceConnector) -> None:
    found = _match(sf, "Contact", [{"Email": "DAVID.1@Example.com "}])
    assert found.column("Email").to_pylist() == ["david.1@example.com"]
    rows = [
        {"LastName": "jensen", "Email": "maja.4@example.com"},
        {"LastName": "Jensen", "Email": "greta.2@example.com"},  # Greta is a García
    ]
    found = _match(sf, "Contact", rows)
    assert found.column("Email").to_pylist() == ["maja.4@example.com"]


def test_a_phone_key_reads_every_record_with_a_phone(sf: SalesforceConnector) -> None:
    rows = [{"Phone": "+44 (20) 7946-0000"}]
    found = _match(sf, "Contact", rows, rules={"Phone": KeyRule.PHONE})
    assert found.num_rows == 20  # every contact has one; the engine compares the digits
    assert _matching(found, ["Phone"], {"Phone": KeyRule.PHONE}, rows[0]) == 1


def test_deleted_records_are_no_candidates(sf: SalesforceConnector) -> None:
    [result] = sf.writes().apply("delete", "Account", pa.RecordBatch.from_pylist(
        [{"Id": "0015g0000000005AAA"}]
    ))  # fmt: skip
    assert result.success
    assert _match(sf, "Account", [{"Ext_Id__c": "ACC-00005"}]).num_rows == 0


def test_many_keys_are_asked_for_in_few_queries_within_the_soql_limit(
    connect: Connect, sandbox: SalesforceSandbox
) -> None:
    sf = connect()
    ids = add_accounts(sandbox, 700)
    names = typed(sf, "Account", [{"Name": f" Bulk {n}"} for n in range(700)])
    rules = {"Name": KeyRule.CASEFOLD}
    wheres = conditions(sf.meta("Account"), ["Name"], names, rules)
    assert all(len(w) <= MAX_CONDITION for w in wheres)
    assert len(wheres) == 5  # 1,400 literals: each name as given and trimmed
    before = sandbox.faults.call_counts().get("GET query", 0)
    found = sf.match(MatchRequest("Account", ["Name"], names, rules=rules))
    assert sorted(found.column(ID_COLUMN).to_pylist()) == sorted(ids)
    assert sandbox.faults.call_counts()["GET query"] - before == len(wheres)


def test_composite_keys_are_an_or_of_ands(sf: SalesforceConnector) -> None:
    rows = typed(sf, "Contact", [{"LastName": "a'b", "Birthdate": dt.date(1990, 1, 2)}])
    rules = {"LastName": KeyRule.EXACT, "Birthdate": KeyRule.EXACT}
    [where] = conditions(sf.meta("Contact"), ["LastName", "Birthdate"], rows, rules)
    assert where == "(LastName = 'a\\'b' AND Birthdate = 1990-01-02)"


def test_the_version_is_the_system_modstamp_and_changes_with_the_record(
    sf: SalesforceConnector, sandbox: SalesforceSandbox
) -> None:
    first = _match(sf, "Account", [{"Ext_Id__c": "ACC-00002"}])
    [version] = first.column(VERSION_COLUMN).to_pylist()
    assert version.startswith("2024-01-02")
    sandbox.execute(
        'UPDATE sobject_account SET "SystemModstamp" = ? WHERE "Ext_Id__c" = ?',
        ("2025-06-01T10:00:00.000Z", "ACC-00002"),
    )
    again = _match(sf, "Account", [{"Ext_Id__c": "ACC-00002"}])
    assert again.column(VERSION_COLUMN).to_pylist() != [version]


def test_values_of_related_records_come_back_flat(sf: SalesforceConnector) -> None:
    found = _match(sf, "Contact", [{"Email": "noah.3@example.com"}], fields=("Account.Ext_Id__c",))
    assert found.column("Account.Ext_Id__c").to_pylist() == ["ACC-00002"]


def test_keys_salesforce_cannot_filter_on_are_config_errors(sf: SalesforceConnector) -> None:
    with pytest.raises(ConfigError, match="cannot match records on 'Description'"):
        _match(sf, "Account", [{"Description": "x"}])
    with pytest.raises(ConfigError, match="Nmae"):
        _match(sf, "Account", [{"Name": "x"}], fields=("Nmae",))


def test_the_stored_form_is_what_a_query_returns_after_the_save(
    sf: SalesforceConnector,
) -> None:
    moment = dt.datetime(2024, 5, 1, 12, 0, 0, 123456, tzinfo=dt.UTC)
    rows = [{"LastName": "", "AccountId": "0015g0000000001", "Birthdate": None}]
    stored = sf.stored_form("Contact", typed(sf, "Contact", rows))
    assert stored.to_pylist() == [
        {"LastName": None, "AccountId": "0015g0000000001AAA", "Birthdate": None}
    ]
    stamps = typed(sf, "Account", [{"Name": "x", "LastModifiedDate": moment}])
    cut = sf.stored_form("Account", stamps).column("LastModifiedDate")[0].as_py()
    assert cut == moment.replace(microsecond=123000)
