"""Discovery and reads on both API families: prefixes, children, paging, pushdown, incremental
reads and deletes."""

from __future__ import annotations

import datetime as dt

import pytest
from sagecrm_helpers import Connect, read_all

from crmbridge.connectors.base import DeleteReporting, ReadRequest, Since
from crmbridge.connectors.sagecrm import SageCrmConnector
from crmbridge.core.expressions import BatchTransform, parse
from crmbridge.core.schema import FieldType
from crmbridge.errors import ConfigError
from crmbridge.sandbox.sagecrm import SageSandbox

UTC = dt.UTC


def test_check_reports_the_version_the_api_and_the_user(connect: Connect) -> None:
    soap = connect("soap").check()
    assert (soap.system, soap.version) == ("Sage CRM", "2024 R2")
    assert soap.details == {"api": "soap", "user": "admin", "version string": "Sage CRM 2024 R2"}
    rest = connect("rest").check()
    assert (rest.details["api"], rest.details["user"]) == ("rest", "admin")
    assert "not reported by the sagecrm2 REST API" in rest.details["version string"]


def test_objects_are_the_web_service_entities(crm: SageCrmConnector, sandbox: SageSandbox) -> None:
    assert {"company", "person", "opportunity", "cases", "lead"} <= set(crm.objects())
    assert "users" not in crm.objects()


def test_describe_maps_prefixed_columns_to_plain_names_with_types(crm: SageCrmConnector) -> None:
    schema = crm.describe("company")
    assert schema.id_field == "companyid"
    name = schema.field("name")
    assert (name.type, name.length, name.required) == (FieldType.STRING, 60, True)
    kind = schema.field("type")
    assert kind.type is FieldType.ENUM
    assert kind.allowed_values is not None
    assert "Customer" in kind.allowed_values
    assert schema.field("updateddate").type is FieldType.DATETIME
    assert schema.field("updateddate").read_only
    assert schema.field("companyid").key
    assert schema.field("mailrestriction").type is FieldType.BOOLEAN
    assert not schema.has("comp_name")
    opportunity = crm.describe("opportunity")
    assert opportunity.field("forecast").type is FieldType.DECIMAL
    assert opportunity.field("note").type is FieldType.TEXT
    assert crm.meta("company").column("name") == "comp_name"


def test_soap_offers_the_flattened_children_rest_does_not(connect: Connect) -> None:
    soap = connect("soap").describe("company")
    for name in (
        "address.city",
        "address.postcode",
        "phone.business",
        "phone.fax_areacode",
        "email.business",
        "person.lastname",
    ):
        assert soap.has(name), name
    assert not connect("rest").describe("company").has("address.city")


def test_an_unknown_entity_suggests_close_names(crm: SageCrmConnector) -> None:
    with pytest.raises(ConfigError, match="did you mean 'company'"):
        crm.describe("compnay")


def test_reads_page_past_the_record_limit_in_id_order(crm: SageCrmConnector) -> None:
    rows = read_all(crm, "company", fields=["companyid", "name"], batch_size=3)
    assert [r["companyid"] for r in rows] == list(range(1, 21))
    assert rows[1]["name"] == "O'Brien Brothers Ltd"


def test_children_are_flattened(connect: Connect) -> None:
    crm = connect("soap")
    fields = [
        "companyid",
        "address.city",
        "phone.business",
        "phone.business_areacode",
        "phone.fax",
        "email.business",
        "person.firstname",
    ]
    row = read_all(crm, "company", fields=fields, filter=parse("companyid = 1", what="filter"))[0]
    assert row == {
        "companyid": 1,
        "address.city": "Dublin",
        "phone.business": "1000",
        "phone.business_areacode": "200",
        "phone.fax": "2000",
        "email.business": "info@acmesonsq.example.com",
        "person.firstname": "James",
    }


def test_dates_are_read_in_the_servers_zone(connect: Connect, sandbox: SageSandbox) -> None:
    sandbox.execute(
        "UPDATE Company SET comp_updateddate = '2024-07-01 13:00:00' WHERE comp_companyid = 1"
    )
    where = parse("companyid = 1", what="filter")
    row = read_all(connect("soap"), "company", fields=["updateddate"], filter=where)[0]
    assert row["updateddate"] == dt.datetime(2024, 7, 1, 12, 0, tzinfo=UTC)
    sandbox.configure(dates_utc=True)
    utc = connect("rest", dates_in_utc=True)
    assert read_all(utc, "company", fields=["updateddate"], filter=where)[0] == row


PREDICATES = [
    "name = 'o''brien brothers ltd'",
    "name = 'O''Brien Brothers Ltd'",
    "name IN ('Zürich Trading AG', 'nobody')",
    "name LIKE 'A%' OR name LIKE '%Ltd'",
    "name LIKE '[A]%'",
    "name <> 'Acme'",
    "companyid BETWEEN 3 AND 7 AND companyid <> 5",
    "companyid IN (1, 2, 19) OR companyid > 18",
    "supplierid IS NULL AND companyid < 5",
    "supplierid IS NOT NULL",
    "updateddate >= TIMESTAMPTZ '2024-01-20 10:00:00+00'",
    "updateddate < TIMESTAMPTZ '2024-01-05 12:00:00.5+00'",
    "type = 'Customer' AND status = 'Active'",
    "mailrestriction",
    "website LIKE 'http://www.%'",
]


@pytest.mark.parametrize("text", PREDICATES)
def test_pushed_filters_select_what_local_evaluation_selects(
    crm: SageCrmConnector, text: str
) -> None:
    import pyarrow as pa
    from sqlglot import exp

    from crmbridge.connectors.base import ROW_COLUMN

    fields = [
        "companyid",
        "name",
        "supplierid",
        "updateddate",
        "type",
        "status",
        "mailrestriction",
        "website",
    ]
    full = pa.Table.from_pylist(read_all(crm, "company", fields=fields))
    predicate = parse(text, what="filter")
    remote = read_all(crm, "company", fields=["companyid"], filter=predicate)
    rows = full.append_column(ROW_COLUMN, pa.array(range(1, full.num_rows + 1), pa.int64()))
    with BatchTransform(
        rows.schema, {"companyid": exp.column("companyid", quoted=True)}, predicate
    ) as local:
        expected = local.apply(rows.combine_chunks().to_batches()[0]).batch.column(0).to_pylist()
    assert sorted(r["companyid"] for r in remote) == sorted(expected)


def test_what_is_pushed_down(connect: Connect) -> None:
    soap, rest = connect("soap"), connect("rest")

    def pushed(crm: SageCrmConnector, text: str) -> bool:
        return crm.can_push_down("company", parse(text, what="filter"))

    for text in (
        "name = 'x'",
        "name LIKE 'A%'",
        "companyid IN (1, 2)",
        "companyid <> 3",
        "updateddate > TIMESTAMPTZ '2024-01-01 00:00:00+00'",
    ):
        assert pushed(soap, text), text
        assert pushed(rest, text), text
    for text in (
        "name <> 'x'",
        "name < 'x'",
        "name LIKE '[a]%'",
        "mailrestriction",
        "\"address.city\" = 'Cork'",
        "lower(name) = 'x'",
        "companyid NOT IN (1)",
    ):
        assert not pushed(soap, text), text
    assert pushed(soap, "supplierid IS NULL")
    assert not pushed(rest, "supplierid IS NULL")


def test_filters_are_sent_with_every_literal_quoted(
    crm: SageCrmConnector, sandbox: SageSandbox
) -> None:
    sandbox.faults.reset()
    evil = "x' OR comp_companyid > 0 OR comp_name = 'y"
    assert (
        read_all(
            crm,
            "company",
            fields=["companyid"],
            filter=parse(f"name = {_sql(evil)}", what="filter"),
        )
        == []
    )
    assert sum(n for k, n in sandbox.faults.call_counts().items() if "query" in k or "GET" in k)


def _sql(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def test_incremental_reads_by_updated_date(crm: SageCrmConnector, sandbox: SageSandbox) -> None:
    since = Since("updateddate", dt.datetime(2024, 1, 20, 11, 0, tzinfo=UTC))
    before = read_all(crm, "company", fields=["companyid", "updateddate"], since=since)
    assert [r["companyid"] for r in before] == list(range(13, 21))  # 13 at 11:00 GMT exactly
    sandbox.execute(
        "UPDATE Company SET comp_updateddate = '2024-05-01 10:00:00' WHERE comp_companyid = 2"
    )
    later = Since("updateddate", dt.datetime(2024, 4, 1, tzinfo=UTC))
    assert [
        r["companyid"] for r in read_all(crm, "company", fields=["companyid"], since=later)
    ] == [2]


def test_an_incremental_field_that_cannot_be_filtered_is_a_config_error(
    crm: SageCrmConnector,
) -> None:
    with pytest.raises(ConfigError, match="cannot read incrementally"):
        read_all(
            crm,
            "company",
            since=Since("address.city" if crm.config.api == "soap" else "mailrestriction", "x"),
        )


def test_soap_reads_deletes_as_tombstones(connect: Connect, sandbox: SageSandbox) -> None:
    crm = connect("soap")
    sandbox.execute(
        "UPDATE Company SET comp_deleted = 1, comp_updateddate = '2024-06-01 09:00:00' "
        "WHERE comp_companyid = 4"
    )
    since = Since("updateddate", dt.datetime(2024, 5, 1, tzinfo=UTC))
    rows = read_all(
        crm,
        "company",
        fields=["companyid", "name", "deleted", "updateddate"],
        since=since,
        include_deleted=True,
    )
    assert rows == [
        {
            "companyid": 4,
            "name": None,
            "deleted": True,
            "updateddate": dt.datetime(2024, 6, 1, 8, 0, tzinfo=UTC),
        }
    ]
    everything = read_all(crm, "company", fields=["companyid", "deleted"], include_deleted=True)
    assert {r["companyid"] for r in everything if r["deleted"]} == {4, 21}
    assert len(everything) == 21


def test_soap_incremental_reads_come_in_updated_date_order(
    connect: Connect, sandbox: SageSandbox
) -> None:
    crm = connect("soap")
    sandbox.execute(
        "UPDATE Company SET comp_updateddate = '2024-06-01 10:00:00' WHERE comp_companyid = 3"
    )
    sandbox.execute(
        "UPDATE Company SET comp_updateddate = '2024-06-01 10:00:00' WHERE comp_companyid = 1"
    )
    since = Since("updateddate", dt.datetime(2024, 1, 28, tzinfo=UTC), "companyid")
    rows = read_all(crm, "company", fields=["companyid"], since=since, batch_size=2)
    assert [r["companyid"] for r in rows] == [19, 20, 1, 3]


def test_soap_incremental_reads_use_the_updated_date(connect: Connect) -> None:
    since = Since("createddate", dt.datetime(2024, 1, 28, tzinfo=UTC))
    with pytest.raises(ConfigError, match="use 'updateddate'"):
        read_all(connect("soap"), "company", since=since)


def test_rest_reads_incrementally_only_with_order_by(connect: Connect) -> None:
    assert not connect("rest").capabilities().incremental
    assert connect("rest", rest_order_by=True).capabilities().incremental


def test_rest_cannot_read_deletes(connect: Connect) -> None:
    with pytest.raises(ConfigError, match="over SOAP only"):
        read_all(connect("rest"), "company", include_deleted=True)
    assert connect("rest").capabilities().deletes is DeleteReporting.NONE
    assert connect("soap").capabilities().deletes is DeleteReporting.FLAG


def test_rest_pages_by_id_when_the_server_has_order_by(
    connect: Connect, sandbox: SageSandbox
) -> None:
    crm = connect("rest", rest_order_by=True, page_size=6)
    crm.describe("company")
    sandbox.faults.reset()
    rows = read_all(crm, "company", fields=["companyid"])
    assert [r["companyid"] for r in rows] == list(range(1, 21))
    assert sandbox.faults.call_counts()["rest:GET company"] == 4  # 5 a page (the record limit)


def test_reads_of_a_read_request_with_no_rows_yield_one_empty_batch(crm: SageCrmConnector) -> None:
    batches = list(
        crm.read(
            ReadRequest(
                "company", fields=["companyid"], filter=parse("companyid > 1000", what="filter")
            )
        )
    )
    assert len(batches) == 1
    assert batches[0].num_rows == 0
