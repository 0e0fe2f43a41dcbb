"""add / update / delete through SOAP: server-set dates, validation, soft deletes, queryid."""

from __future__ import annotations

import httpx
import pytest
from sage_helpers import REST_PATH, Soap, SoapFaultError, record, records

from crmbridge.sandbox.sagecrm import RunningServer, SageSandbox


def company(sandbox: SageSandbox, company_id: str) -> dict[str, object]:
    return sandbox.execute("SELECT * FROM Company WHERE comp_companyid = ?", (company_id,))[0]


def test_add_sets_ids_dates_users_timestamp_and_territory(soap: Soap, sandbox: SageSandbox) -> None:
    answer = soap.call(
        "add",
        entityname="company",
        records=[
            record(name="New One", type="customer", createddate="2001-01-01T00:00:00"),
            record(name="New Two", secterr="-1845493753"),
        ],
    )
    ids = [r["crmid"][0] for r in answer["records"]]
    assert ids == ["22", "23"]  # after 20 live and 1 deleted seed companies
    first, second = company(sandbox, ids[0]), company(sandbox, ids[1])
    assert first["comp_type"] == "Customer"  # the code as listed
    assert first["comp_createddate"] != "2001-01-01 00:00:00"  # the server's, not ours
    assert first["comp_createddate"] == first["comp_updateddate"] == first["comp_timestamp"]
    assert (first["comp_createdby"], first["comp_updatedby"]) == (1, 1)
    assert first["comp_secterr"] == -2147483640  # the user's home territory
    assert second["comp_secterr"] == -1845493753
    assert first["comp_deleted"] is None


@pytest.mark.parametrize(
    ("values", "reason"),
    [
        ({"name": "X", "type": "Bogus"}, "not in its selection list"),
        ({"name": "X" * 61}, "would be truncated"),
        ({"type": "Customer"}, "Required field comp_name"),
        ({"name": "X", "secterr": "12"}, "Invalid territory"),
        ({"name": "X", "nosuchfield": "1"}, "does not exist"),
    ],
)
def test_add_is_all_or_nothing_and_names_the_refused_record(
    soap: Soap, sandbox: SageSandbox, values: dict[str, str], reason: str
) -> None:
    before = sandbox.execute("SELECT COUNT(*) AS n FROM Company")[0]["n"]
    with pytest.raises(SoapFaultError, match=f"^Record 2: .*{reason}"):
        soap.call("add", entityname="company", records=[record(name="Fine"), record(**values)])
    assert sandbox.execute("SELECT COUNT(*) AS n FROM Company")[0]["n"] == before


def test_a_call_over_the_record_limit_is_refused(soap: Soap) -> None:
    with pytest.raises(SoapFaultError, match="maximum number of records is 5"):
        soap.call("add", entityname="company", records=[record(name=f"C{n}") for n in range(6)])


def test_add_and_update_write_nested_children(soap: Soap, sandbox: SageSandbox) -> None:
    address = record(city="Galway", postcode="H91", type="Business")
    phone = record(areacode="091", number="555 1234", type="Business")
    answer = soap.call(
        "add",
        entityname="company",
        records=[record(name="Nested", address=[address], phone=[phone])],
    )
    new_id = answer["records"][0]["crmid"][0]
    soap.call(
        "update",
        entityname="company",
        records=[record(companyid=new_id, address=[record(city="Sligo", type="Business")])],
    )
    found = records(soap.call("queryentity", entityname="company", id=new_id))[0]
    assert found["address"]["city"] == ["Sligo"]
    assert found["address"]["postcode"] == ["H91"]
    assert found["phone"]["number"] == ["555 1234"]
    assert company(sandbox, new_id)["comp_primaryaddressid"] is not None


def test_update_moves_the_updated_date_and_refuses_a_missing_record(
    soap: Soap, sandbox: SageSandbox
) -> None:
    soap.call("update", entityname="company", records=[record(companyid="1", website="x.ie")])
    row = company(sandbox, "1")
    assert row["comp_website"] == "x.ie"
    assert row["comp_updateddate"] > row["comp_createddate"]
    assert row["comp_createddate"] == "2024-01-02 08:00:00"
    with pytest.raises(SoapFaultError, match=r"Record 1: Record 999 .* does not exist"):
        soap.call("update", entityname="company", records=[record(companyid="999", name="x")])
    with pytest.raises(SoapFaultError, match="Record 1: no companyid given"):
        soap.call("update", entityname="company", records=[record(name="x")])


def test_delete_is_soft(soap: Soap, sandbox: SageSandbox) -> None:
    answer = soap.call("delete", entityname="company", id=["4", "5"])
    assert answer == {"deletesuccess": ["true"], "numberdeleted": ["2"]}
    assert company(sandbox, "4")["comp_deleted"] == 1
    assert soap.call("queryentity", entityname="company", id="4") is None
    live = records(
        soap.call("query", queryString="comp_companyid IN (3,4,5,6)", entityname="company")
    )
    assert [r["companyid"] for r in live] == ["3", "6"]
    with pytest.raises(SoapFaultError, match=r"Record 1: Record 4 .* does not exist"):
        soap.call("delete", entityname="company", id=["4"])


def test_queryid_flags_added_updated_and_deleted_records(soap: Soap, sandbox: SageSandbox) -> None:
    since = sandbox.execute("SELECT MAX(comp_updateddate) AS d FROM Company")[0]["d"]
    soap.call("update", entityname="company", records=[record(companyid="2", website="y.ie")])
    soap.call("delete", entityname="company", id=["3"])
    added = soap.call("add", entityname="company", records=[record(name="Fresh")])
    new_id = added["records"][0]["crmid"][0]
    answer = soap.call(
        "queryid", entityname="company", queryString="", fromdate=since.replace(" ", "T") + "Z"
    )
    flags = {
        r["id"]: (r["added"], r["updated"], r["deleted"])
        for r in records(answer)
        if r["id"] in ("2", "3", new_id)
    }
    assert flags == {
        "2": ("false", "true", "false"),
        "3": ("false", "false", "true"),
        new_id: ("true", "false", "false"),
    }


def test_a_right_the_security_profile_withholds_refuses_the_record(
    server: RunningServer, sandbox: SageSandbox
) -> None:
    sandbox.configure(denied=frozenset({("admin", "company", "delete")}))
    with httpx.Client(base_url=server.url) as http:
        soap = Soap(http)
        soap.logon()
        with pytest.raises(SoapFaultError, match=r"^Record 1: User 'admin' has no right to delete"):
            soap.call("delete", entityname="company", id=["4"])
        soap.call("delete", entityname="person", id=["4"])  # other entities are allowed
    assert company(sandbox, "4")["comp_deleted"] is None
    with httpx.Client(base_url=server.url + REST_PATH, auth=("admin", "admin")) as rest:
        answer = rest.delete("/company('4')")
        assert answer.status_code == 403
        assert "no right to delete company records" in answer.json()["$diagnoses"][0]["message"]
        assert rest.put("/company('4')", json={"comp_website": "x.ie"}).status_code == 200
