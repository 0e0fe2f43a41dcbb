"""Filter pushdown: what is pushed, how it is rendered, and that it selects what local
evaluation selects (on both APIs, against the sandbox, with awkward data)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from sugarcrm_helpers import batch_of, check_equivalence, read_all

from crmbridge.connectors.sugarcrm import SugarCrmConnector
from crmbridge.connectors.sugarcrm.discovery import RawField, RawModule, build_meta
from crmbridge.connectors.sugarcrm.query import FilterBuilder, keyset, quote, to_filter, to_sql
from crmbridge.core.expressions import parse
from crmbridge.core.outcomes import WriteMode
from crmbridge.testing.writes import write_records

META = build_meta(
    RawModule(
        "Contacts",
        [
            RawField("id", "id", "36"),
            RawField("first_name", "varchar", "100"),
            RawField("last_name", "varchar", "100"),
            RawField("email1", "varchar", "100"),
            RawField("date_modified", "datetime"),
            RawField("birthdate", "date"),
            RawField("do_not_call", "bool"),
            RawField("lead_score_c", "int"),
            RawField("amount", "currency", "26,6"),
            RawField("account_name", "relate", "255"),
        ],
    ),
    {},
)
PLANNER = FilterBuilder(META, filterable=lambda name: True)


def sql(text: str) -> str | None:
    node = PLANNER.plan(parse(text, what="filter"))
    return None if node is None else to_sql(node, META)


def v10(text: str) -> Any:
    node = PLANNER.plan(parse(text, what="filter"))
    return None if node is None else to_filter(node, META)


def test_literals_are_quoted_by_us_and_cannot_break_out() -> None:
    assert sql("last_name = 'x'' OR 1=1 --'") == "contacts.last_name = 'x'' OR 1=1 --'"
    assert quote("O'Brien") == "'O''Brien'"
    with pytest.raises(ValueError, match="backslash"):
        quote("a\\'")


def test_a_backslash_never_reaches_the_sql_it_becomes_a_like_wildcard() -> None:
    assert sql("last_name = 'a\\'' OR 1=1 --'") == "contacts.last_name LIKE 'a_'' OR 1=1 --'"
    assert sql("last_name IN ('x', 'c:\\temp')") == (
        "(contacts.last_name = 'x' OR contacts.last_name LIKE 'c:_temp')"
    )


def test_rendering_of_each_supported_form() -> None:
    assert sql("last_name IN ('A', 'B')") == "contacts.last_name IN ('A', 'B')"
    assert sql("first_name IS NULL") == (
        "(contacts.first_name IS NULL OR contacts.first_name = '')"
    )
    assert sql("birthdate IS NOT NULL") == "contacts.birthdate IS NOT NULL"
    assert sql("lead_score_c_x = 1") is None  # unknown column: not pushed
    assert sql("custom_c = 1") is None
    assert sql("lead_score_c >= 50 AND NOT do_not_call") == (
        "(contacts_cstm.lead_score_c >= 50 AND "
        "(contacts.do_not_call = 0 OR contacts.do_not_call IS NULL))"
    )
    assert sql("birthdate BETWEEN DATE '2000-01-01' AND '2000-12-31'") == (
        "(contacts.birthdate >= '2000-01-01' AND contacts.birthdate <= '2000-12-31')"
    )
    assert sql("email1 = ' Ann@Example.com'") == (
        "contacts.id IN (SELECT eabr.bean_id FROM email_addr_bean_rel eabr JOIN "
        "email_addresses ea ON ea.id = eabr.email_address_id WHERE eabr.bean_module = "
        "'Contacts' AND eabr.deleted = 0 AND ea.email_address_caps = 'ANN@EXAMPLE.COM')"
    )


def test_datetime_bounds_are_rounded_outwards_to_whole_seconds() -> None:
    assert sql("date_modified >= TIMESTAMPTZ '2024-05-02 12:00:00.7+02:00'") == (
        "contacts.date_modified >= '2024-05-02 10:00:00'"
    )
    assert sql("date_modified < TIMESTAMP '2024-05-02 10:00:00.2'") == (
        "contacts.date_modified < '2024-05-02 10:00:01'"
    )
    assert v10("date_modified > '2024-05-02T10:00:00Z'") == {
        "date_modified": {"$gt": "2024-05-02T10:00:00+00:00"}
    }


def test_money_is_compared_with_a_tolerance_and_checked_again_locally() -> None:
    assert sql("amount = 10.5") == (
        "(contacts.amount >= 10.499999 AND contacts.amount <= 10.500001)"
    )
    assert sql("amount <> 10.5") is None


@pytest.mark.parametrize(
    "text",
    [
        "last_name <> 'Smith'",  # MySQL would also drop 'SMITH'
        "last_name NOT IN ('Smith')",
        "last_name < 'M'",  # collation order is not code point order
        "last_name ILIKE 'sm%'",  # a case-sensitive collation would miss rows
        "last_name NOT LIKE 'S%'",
        "lower(last_name) = 'smith'",
        "email1 IS NULL",
        "account_name = 'Acme'",  # computed from another table
        "last_name = first_name",
        "last_name IN ('a', NULL)",
        "lead_score_c = '12'",  # text compared with a number: DuckDB casts, we do not guess
        "birthdate >= TIMESTAMP '2000-01-01 10:00:00'",
        "do_not_call IN (TRUE, FALSE)",
    ],
)
def test_predicates_that_are_not_pushed(text: str) -> None:
    assert sql(text) is None


def test_v10_filters() -> None:
    assert v10("last_name IN ('A', 'B') OR lead_score_c >= 5") == {
        "$or": [{"last_name": {"$in": ["A", "B"]}}, {"lead_score_c": {"$gte": 5}}]
    }
    assert v10("email1 = ' Ann@B.c'") == {"email": {"$in": ["Ann@B.c", "ann@b.c"]}}
    assert v10("first_name IS NULL") == {
        "$or": [{"first_name": {"$is_null": ""}}, {"first_name": {"$equals": ""}}]
    }
    assert v10("last_name LIKE 'Sm%th'") == {"last_name": {"$starts": "Sm"}}
    assert v10("last_name LIKE '%mit%'") == {"last_name": {"$contains": "mit"}}
    assert v10("last_name LIKE '%ith'") == {"last_name": {"$ends": "ith"}}
    assert v10("do_not_call = TRUE") == {"do_not_call": {"$equals": True}}


# -- equivalence against the sandbox ----------------------------------------------------------
AWKWARD = [
    {"last_name": "smith", "first_name": "", "title": "CEO", "external_id_c": "T-1"},
    {"last_name": "SMITH ", "first_name": None, "title": "ceo", "external_id_c": "T-2"},
    {"last_name": "O'Brien", "first_name": "Zoë", "title": None, "external_id_c": "t-3"},
    {"last_name": "a\\b", "first_name": "x%y", "title": "50%_off", "external_id_c": "T_4"},
    {"last_name": "Ünal", "first_name": "ünal", "title": "Ceo", "external_id_c": "T-5"},
]
CONTACT_PREDICATES = [
    "last_name = 'smith'",
    "last_name = 'SMITH '",
    "last_name IN ('smith', 'O''Brien', 'a\\b')",
    "last_name LIKE 's%'",
    "last_name LIKE '%i_h%'",
    "last_name = 'Ünal'",
    "first_name IS NULL",
    "first_name IS NOT NULL",
    "first_name = 'x%y'",
    "first_name LIKE 'x\\%'",
    "title = 'CEO' OR title LIKE '50%'",
    "title IS NULL AND last_name LIKE 'O%'",
    "external_id_c = 'T-1'",
    "external_id_c LIKE 'T_%'",
    "external_id_c IN ('t-3', 'T-5')",
    "lead_source = 'Web Site'",
    "lead_source IN ('Web Site', 'Other', 'Cold Call')",
    "lead_source IS NULL",
    "email1 LIKE '%@example.net'",
    "email1 = 'MICHAEL.SVENSSON6@example.net'",
    "do_not_call",
    "NOT do_not_call",
    "birthdate IS NULL",
    "date_modified >= TIMESTAMPTZ '2024-01-03 13:00:00+00:00'",
    "date_modified < DATE '2024-01-04'",
    "last_name <> 'smith'",
    "lower(last_name) = 'smith'",
    "last_name ILIKE 'S%'",
]
PUSHED = {
    "v4_1": [p for p in CONTACT_PREDICATES if p not in CONTACT_PREDICATES[-3:]],
    "v10": [p for p in CONTACT_PREDICATES if p not in CONTACT_PREDICATES[-3:]],
}


def test_pushed_filters_select_what_local_evaluation_selects(
    crm: SugarCrmConnector, api: str
) -> None:
    batch = batch_of(crm, "Contacts", AWKWARD)
    result = write_records(crm, "Contacts", batch, WriteMode.INSERT)
    assert result.counts()["created"] == len(AWKWARD)
    assert check_equivalence(crm, "Contacts", CONTACT_PREDICATES) == PUSHED[api]


def test_numbers_money_and_dates_pushed_match_local_evaluation(crm: SugarCrmConnector) -> None:
    opportunities = [
        "amount >= 50000",
        "amount = 75000",
        "amount < 10000.5 OR amount > 90000",
        "probability IN (10, 90)",
        "probability <> 10",
        "probability NOT IN (10, 20)",
        "date_closed >= DATE '2024-06-01'",
        "date_closed <> DATE '2024-06-01'",
        "sales_stage IN ('Closed Won', 'Closed Lost')",
    ]
    assert check_equivalence(crm, "Opportunities", opportunities) == opportunities
    leads = ["lead_score_c >= 50", "lead_score_c BETWEEN 10 AND 40", "lead_score_c IS NULL"]
    assert check_equivalence(crm, "Leads", leads) == leads


def test_a_filter_on_a_field_that_is_not_a_column_is_evaluated_locally(
    crm: SugarCrmConnector,
) -> None:
    predicate = parse("account_name LIKE 'M%'", what="filter")
    assert not crm.can_push_down("Contacts", predicate)
    # account_id is a field of Contacts but not a column of the contacts table
    assert not crm.can_push_down("Contacts", parse("account_id = 'x'", what="filter")) or (
        crm.api.kind == "v10"
    )


def test_constant_expressions_are_evaluated_before_pushing(crm: SugarCrmConnector) -> None:
    predicate = parse("date_modified >= current_date - INTERVAL 30000 DAY", what="filter")
    assert crm.can_push_down("Accounts", predicate)
    assert len(read_all(crm, "Accounts", fields=["id"], filter=predicate)) == len(
        read_all(crm, "Accounts", fields=["id"])
    )


def test_seed_dates_are_what_the_equivalence_tests_expect(crm: SugarCrmConnector) -> None:
    dates = {r["date_modified"] for r in read_all(crm, "Contacts", fields=["date_modified"])}
    assert min(dates) < dt.datetime(2024, 1, 3, 13, tzinfo=dt.UTC) < max(dates)


def test_keyset_conditions_in_both_forms() -> None:
    """The records after (date_modified, id) of the last one read; v10 says "the same
    second" with $gte and $lte, never $equals (a whole day on Sugar for a date alone)."""
    moment = dt.datetime(2024, 3, 1, 12, 0, 5, tzinfo=dt.UTC)
    after = keyset(("date_modified", "id"), (moment, "o'b-1"))
    assert to_sql(after, META) == (
        "(contacts.date_modified > '2024-03-01 12:00:05' OR "
        "(contacts.date_modified = '2024-03-01 12:00:05' AND contacts.id > 'o''b-1'))"
    )
    iso = "2024-03-01T12:00:05+00:00"
    assert to_filter(after, META) == {
        "$or": [
            {"date_modified": {"$gt": iso}},
            {
                "$and": [
                    {"$and": [{"date_modified": {"$gte": iso}}, {"date_modified": {"$lte": iso}}]},
                    {"id": {"$gt": "o'b-1"}},
                ]
            },
        ]
    }
    assert to_sql(keyset(("id",), ("40",), "<"), META) == "contacts.id < '40'"
    assert to_sql(keyset(("id",), ("40",), ">="), META) == "contacts.id >= '40'"
    with pytest.raises(ValueError, match="backslash"):  # never pasted into the SQL
        to_sql(keyset(("id",), ("a\\b",)), META)
