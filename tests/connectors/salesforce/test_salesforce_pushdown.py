"""Pushdown: what is pushed into SOQL, literals formatted by us, and pushed = local."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pyarrow as pa
import pytest
from salesforce_helpers import read_all
from sqlglot import exp

from crmbridge.connectors.base import ROW_COLUMN, ReadRequest
from crmbridge.connectors.salesforce import SalesforceConnector
from crmbridge.connectors.salesforce.soql import literal, quote
from crmbridge.core.expressions import BatchTransform, parse
from crmbridge.sandbox.salesforce import SalesforceSandbox
from crmbridge.sandbox.salesforce.ids import make_id

AWKWARD = ["it's", 'say "hi"', "back\\slash", "two\nlines", "ACME", "acme", "100%", "a_b", "Zürich"]


@pytest.fixture
def tricky(sf: SalesforceConnector, sandbox: SalesforceSandbox) -> SalesforceConnector:
    for n, name in enumerate(AWKWARD):
        sandbox.execute(
            'INSERT INTO sobject_account ("Id", "IsDeleted", "Name", "NumberOfEmployees", '
            '"SystemModstamp", "Type") VALUES (?, 0, ?, ?, ?, ?)',
            (
                make_id("001", 200_000 + n),
                name,
                n if n % 3 else None,
                f"2024-06-0{1 + n % 5}T10:00:0{n % 3}.000Z",
                None if n % 2 else "Other",
            ),
        )
    return sf


def test_literals_are_quoted_and_escaped_by_us() -> None:
    assert quote('it\'s \\ "x"\n') == "'it\\'s \\\\ \\\"x\\\"\\n'"
    assert literal(dt.datetime(2024, 5, 1, 2, 0, tzinfo=dt.timezone(dt.timedelta(hours=2)))) == (
        "2024-05-01T00:00:00Z"
    )
    assert literal(dt.date(2024, 5, 1)) == "2024-05-01"
    assert literal(Decimal("1E+3")) == "1000"
    assert literal(True) == "true"
    assert literal(None) == "null"


PUSHED = [
    "Name = 'it''s'",
    "Name = 'acme'",
    "Name IN ('ACME', 'say \"hi\"', 'two\nlines')",
    "Name LIKE 'ac%'",
    "Name LIKE '_cme'",
    "Name = 'back\\slash'",
    "Name = 'Zürich'",
    "NumberOfEmployees = 4",
    "NumberOfEmployees <> 4",
    "NumberOfEmployees NOT IN (1, 2)",
    "NumberOfEmployees BETWEEN 2 AND 5",
    "NumberOfEmployees > 2 OR Name = 'acme'",
    "NumberOfEmployees IS NULL",
    "Type IS NOT NULL AND NumberOfEmployees >= 1",
    "SystemModstamp >= TIMESTAMPTZ '2024-06-03 10:00:00+00'",
    "SystemModstamp > '2024-06-03T10:00:00.5Z'",
    "SystemModstamp = TIMESTAMPTZ '2024-06-02T10:00:01Z'",
    "SystemModstamp < current_timestamp",
    "NOT IsDeleted",
    f"Id = '{make_id('001', 200_003)}'",
    f"Id = '{make_id('001', 200_003)[:15]}'",
]
LOCAL_ONLY = [
    "Name <> 'acme'",
    "Name NOT IN ('acme')",
    "Name < 'b'",
    "Name ILIKE 'a%'",
    "Name LIKE 'back\\%'",
    "lower(Name) = 'acme'",
    "Description = 'x'",
    "Id = 'not-an-id'",
    "Id = '0015g00000Y0003XXX'",
    "Name LIKE '%\\_%'",
    "Name = 'x' OR lower(Name) = 'y'",
]


@pytest.mark.parametrize("text", PUSHED)
def test_pushed_filters_select_what_local_evaluation_selects(
    tricky: SalesforceConnector, text: str
) -> None:
    predicate = parse(text, what="filter")
    assert tricky.can_push_down("Account", predicate), text
    fields = ["Id", "Name", "NumberOfEmployees", "SystemModstamp", "Type", "IsDeleted"]
    every = read_all(tricky, "Account", fields=fields)
    table = pa.Table.from_pylist(every).combine_chunks()
    rows = table.append_column(ROW_COLUMN, pa.array(range(table.num_rows), pa.int64()))
    with BatchTransform(rows.schema, {"Id": exp.column("Id", quoted=True)}, predicate) as local:
        expected = local.apply(rows.to_batches()[0]).batch.column(0).to_pylist()
    remote = read_all(tricky, "Account", fields=["Id"], filter=predicate)
    assert sorted(r["Id"] for r in remote) == sorted(expected), text


@pytest.mark.parametrize("text", LOCAL_ONLY)
def test_filters_soql_cannot_answer_exactly_are_refused(
    tricky: SalesforceConnector, text: str
) -> None:
    assert not tricky.can_push_down("Account", parse(text, what="filter"))


def test_the_query_sent_holds_the_pushed_condition(
    tricky: SalesforceConnector, sandbox: SalesforceSandbox
) -> None:
    from crmbridge.connectors.salesforce.reader import plan_read

    predicate = parse(
        "Name = 'it''s' AND SystemModstamp >= TIMESTAMPTZ '2024-06-01 10:00:00.250+00'",
        what="filter",
    )
    plan = plan_read(
        tricky._pushdown("Account"),
        ReadRequest("Account", fields=["Id"], filter=predicate),
        context=tricky.api.context("Account"),
    )
    assert plan.condition == "(Name = 'it\\'s' AND SystemModstamp >= 2024-06-01T10:00:00Z)"
    assert plan.soql().endswith("ORDER BY Id ASC")
