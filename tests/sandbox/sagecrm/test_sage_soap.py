"""The web services: WSDL, sessions, the query cursor, the record limit, access switches."""

from __future__ import annotations

import httpx
import pytest
import zeep
from sage_helpers import WSDL_PATH, Soap, SoapFaultError, more, records

from crmbridge.sandbox.sagecrm import RunningServer, SageSandbox, seed_counts


def test_the_wsdl_is_served_only_when_made_available(
    client: httpx.Client, sandbox: SageSandbox
) -> None:
    answer = client.get(WSDL_PATH)
    assert answer.status_code == 200
    assert 'complexType name="company"' in answer.text
    sandbox.configure(wsdl_available=False)
    assert client.get(WSDL_PATH).status_code == 404


def test_zeep_reads_the_wsdl_and_calls_the_service(server: RunningServer) -> None:
    client = zeep.Client(server.wsdl_url)
    sid = client.service.logon(username="admin", password="admin")
    header = client.get_element("{http://tempuri.org/type}SessionHeader")(sessionId=sid)
    answer = client.service.query(
        queryString="comp_companyid = 1", entityname="company", _soapheaders=[header]
    )
    assert answer.records[0].name == 'Acme & Sons "Q"'
    assert answer.records[0].address[0].city == "Dublin"


def test_the_wsdl_lists_only_web_service_entities_and_dropdowns_as_enumerations(
    client: httpx.Client, sandbox: SageSandbox
) -> None:
    sandbox.configure(web_entities=frozenset({"company"}), dropdowns_as_strings=False)
    text = client.get(WSDL_PATH).text
    assert 'name="company"' in text
    assert 'name="person"' not in text
    assert '<xsd:enumeration value="Customer"/>' in text


def test_every_call_but_logon_needs_a_live_session(client: httpx.Client) -> None:
    soap = Soap(client)
    with pytest.raises(SoapFaultError, match="Invalid session id"):
        soap.call("getversionstring")
    soap.logon()
    assert soap.call("getversionstring") == "Sage CRM 2024 R2"
    soap.call("logoff", sessionId=soap.session)
    with pytest.raises(SoapFaultError, match="Invalid session id"):
        soap.call("getversionstring")


def test_a_second_logon_of_the_same_user_ends_the_first_session(client: httpx.Client) -> None:
    first, second = Soap(client), Soap(client)
    first.logon()
    second.logon()
    assert second.call("getversionstring")
    with pytest.raises(SoapFaultError, match="ended by another logon"):
        first.call("getversionstring")


def test_wrong_passwords_lock_the_user_after_three(client: httpx.Client) -> None:
    soap = Soap(client)
    for _ in range(2):
        with pytest.raises(SoapFaultError, match="invalid user name or password"):
            soap.logon(password="wrong")
    with pytest.raises(SoapFaultError, match="locked out"):
        soap.logon(password="wrong")
    with pytest.raises(SoapFaultError, match="locked out"):
        soap.logon()  # the right password no longer helps


def test_a_user_without_web_service_access_cannot_log_on(
    client: httpx.Client, sandbox: SageSandbox
) -> None:
    sandbox.execute("UPDATE Users SET user_webservice = NULL WHERE user_logon = 'admin'")
    with pytest.raises(SoapFaultError, match="not allowed to use web services"):
        Soap(client).logon()


def test_web_services_switched_off_fault_every_call(soap: Soap, sandbox: SageSandbox) -> None:
    sandbox.configure(web_services=False)
    with pytest.raises(SoapFaultError, match="Web services are not enabled"):
        soap.call("getversionstring")


def test_an_entity_without_web_service_access_is_refused(soap: Soap, sandbox: SageSandbox) -> None:
    sandbox.configure(web_entities=frozenset({"person"}))
    with pytest.raises(SoapFaultError, match="Entity 'company' is not Web Service enabled"):
        soap.call("query", queryString="", entityname="company")


def test_query_answers_the_record_limit_and_next_the_rest(soap: Soap) -> None:
    first = soap.call("query", queryString="comp_companyid <= 12", entityname="company")
    assert [r["companyid"] for r in records(first)] == ["1", "2", "3", "4", "5"]
    assert more(first)
    second = soap.call("next")
    assert [r["companyid"] for r in records(second)] == ["6", "7", "8", "9", "10"]
    third = soap.call("next")
    assert [r["companyid"] for r in records(third)] == ["11", "12"]
    assert not more(third)
    with pytest.raises(SoapFaultError, match="no query in progress"):
        soap.call("next")


def test_any_other_call_closes_the_cursor(soap: Soap) -> None:
    assert more(soap.call("query", queryString="", entityname="company"))
    soap.call("getversionstring")
    with pytest.raises(SoapFaultError, match="no query in progress"):
        soap.call("next")


def test_a_record_limit_of_zero_answers_everything_at_once(
    soap: Soap, sandbox: SageSandbox
) -> None:
    sandbox.configure(max_records=0)
    answer = soap.call("query", queryString="", entityname="company")
    assert len(records(answer)) == seed_counts(20)["company"][0]
    assert not more(answer)


@pytest.mark.parametrize(
    "query",
    [
        "comp_nonsense = 1",
        "comp_name = 'a'; DROP TABLE Company",
        "comp_name = 'a' -- comment",
        "comp_companyid IN (SELECT pers_companyid FROM Person)",
        "name = 'Acme'",
        "comp_updateddate > 'yesterday'",
        "comp_companyid = 'one'",
        "comp_name = ",
    ],
)
def test_a_query_the_server_cannot_run_fails_the_call(soap: Soap, query: str) -> None:
    with pytest.raises(SoapFaultError, match=r"^Query failed to run successfully$"):
        soap.call("query", queryString=query, entityname="company")


def test_query_strings_follow_sql_server(soap: Soap) -> None:
    def ids(query: str) -> list[str]:
        found = records(soap.call("query", queryString=query, entityname="company"))
        return [r["companyid"] for r in found]

    assert ids("comp_name = N'o''brien brothers ltd'") == ["2"]  # case-insensitive
    assert ids("comp_name LIKE 'Z%' AND NOT comp_companyid > 3") == ["3"]
    assert ids("comp_companyid BETWEEN 2 AND 3 OR comp_companyid IN (5)") == ["2", "3", "5"]
    assert ids("comp_supplierid IS NOT NULL AND comp_companyid < 8") == ["3", "7"]
    assert ids("comp_updateddate < '2024-01-03'") == ["1"]
    assert ids("comp_updateddate < getdate() AND comp_companyid = 1") == ["1"]


def test_typed_answers_nest_children_and_use_unprefixed_names(soap: Soap) -> None:
    company = records(soap.call("queryentity", entityname="company", id="1"))[0]
    assert company["name"] == 'Acme & Sons "Q"'
    assert company["updateddate"] == "2024-01-02T08:00:00"
    assert "comp_name" not in company
    assert company["address"]["city"] == ["Dublin"]
    assert company["phone"]["type"] == ["Business"]


def test_queryrecord_answers_untyped_fields_in_the_order_asked(soap: Soap) -> None:
    answer = soap.call(
        "queryrecord",
        fieldlist="comp_name,comp_companyid",
        queryString="comp_companyid <= 3",
        entityname="company",
        orderby="comp_name desc",
    )
    rows = answer["records"]
    assert rows[0]["entityname"] == ["company"]
    names = [r["records"][0]["value"][0] for r in rows]
    assert names == ["Zürich Trading AG", "O'Brien Brothers Ltd", 'Acme & Sons "Q"']
    assert rows[0]["records"][1] == {
        "name": ["comp_companyid"],
        "value": ["3"],
        "type": ["integer"],
    }


def test_getmetadata_and_getdropdownvalues_describe_the_columns(soap: Soap) -> None:
    fields = soap.call("getmetadata", entityname="company")["records"]
    name = next(f for f in fields if f["name"] == ["comp_name"])
    assert (name["type"], name["length"], name["required"]) == (["text"], ["60"], ["true"])
    created = next(f for f in fields if f["name"] == ["comp_createddate"])
    assert created["readonly"] == ["true"]
    lists = soap.call("getdropdownvalues", entityname="company")["records"]
    types = next(d for d in lists if d["fieldname"] == ["comp_type"])
    assert "Customer" in types["records"]


def test_answers_in_the_other_namespace_and_in_utc(soap: Soap, sandbox: SageSandbox) -> None:
    sandbox.configure(answer_namespace="http://tempuri.org/", dates_utc=True)
    response = soap.post("queryentity", entityname="company", id="1")
    assert 'xmlns="http://tempuri.org/"' in response.text
    sandbox.configure(server_zone="Europe/Berlin")
    company = records(soap.call("queryentity", entityname="company", id="1"))[0]
    assert company["updateddate"] == "2024-01-02T07:00:00"  # stored 08:00 Berlin time


def test_the_seed_is_deterministic(sandbox: SageSandbox) -> None:
    other = SageSandbox(companies=20)
    try:
        query = "SELECT comp_name, comp_updateddate FROM Company ORDER BY comp_companyid"
        assert sandbox.execute(query) == other.execute(query)
        counts = seed_counts(20)
        live = other.execute("SELECT COUNT(*) AS n FROM Company WHERE comp_deleted IS NULL")
        assert live[0]["n"] == counts["company"][0]
        assert other.execute("SELECT COUNT(*) AS n FROM Person")[0]["n"] == counts["person"][0]
    finally:
        other.close()


@pytest.mark.parametrize(
    ("operation", "params"),
    [
        ("queryrecord", {"fieldlist": "comp_companyid", "queryString": "", "orderby": ""}),
        ("queryid", {"queryString": "", "fromdate": "2000-01-01T00:00:00"}),
    ],
)
def test_the_record_limit_holds_for_queryrecord_and_queryid(
    soap: Soap, operation: str, params: dict[str, str]
) -> None:
    first = soap.call(operation, entityname="company", **params)
    assert len(first["records"]) == 5
    assert more(first)
    seen = len(first["records"])
    while True:
        page = soap.call("next")
        seen += len(page.get("records", []))
        if not more(page):
            break
    live, deleted = seed_counts(20)["company"]
    assert seen == (live + deleted if operation == "queryid" else live)
