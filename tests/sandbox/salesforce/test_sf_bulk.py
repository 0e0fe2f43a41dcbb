"""Bulk API 2.0: ingest jobs (upload, state machine, results) and query jobs (locators)."""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest
from sf_helpers import Rest

from crmbridge.sandbox.salesforce import Settings


def _job(rest: Rest, **body: Any) -> dict[str, Any]:
    answer = rest.call(
        "POST", "jobs/ingest", json={"contentType": "CSV", "lineEnding": "LF", **body}
    )
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def _upload(rest: Rest, job_id: str, data: str) -> int:
    answer = rest.call(
        "PUT",
        f"jobs/ingest/{job_id}/batches",
        content=data.encode(),
        headers={"Content-Type": "text/csv"},
    )
    return answer.status_code


def _run(rest: Rest, data: str, **body: Any) -> dict[str, Any]:
    job = _job(rest, **body)
    assert _upload(rest, job["id"], data) == 201
    closed = rest.call("PATCH", f"jobs/ingest/{job['id']}", json={"state": "UploadComplete"})
    assert closed.json()["state"] == "UploadComplete"
    states = [rest.get(f"jobs/ingest/{job['id']}").json()["state"] for _ in range(2)]
    assert states[0] == "InProgress"
    return dict(rest.get(f"jobs/ingest/{job['id']}").json())


def _results(rest: Rest, job_id: str, kind: str) -> list[dict[str, str]]:
    answer = rest.get(f"jobs/ingest/{job_id}/{kind}")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/csv")
    return list(csv.DictReader(io.StringIO(answer.text)))


def test_insert_job_reports_successful_and_failed_records(rest: Rest) -> None:
    data = "Name,Ext_Id__c,AnnualRevenue\nB1,B-1,100\nB2,B-2,lots\n,B-3,\nB4,ACC-00001,\n"
    job = _run(rest, data, object="Account", operation="insert")
    assert (job["state"], job["numberRecordsProcessed"], job["numberRecordsFailed"]) == (
        "JobComplete",
        4,
        3,
    )
    ok = _results(rest, job["id"], "successfulResults")
    assert [(r["Name"], r["sf__Created"]) for r in ok] == [("B1", "true")]
    assert ok[0]["sf__Id"].startswith("001")
    failed = {r["Ext_Id__c"]: r["sf__Error"] for r in _results(rest, job["id"], "failedResults")}
    assert failed["B-2"].startswith("INVALID_TYPE_ON_FIELD_IN_RECORD:")
    assert failed["B-3"].startswith("REQUIRED_FIELD_MISSING:")
    assert failed["ACC-00001"].startswith("DUPLICATE_VALUE:")
    assert _results(rest, job["id"], "unprocessedrecords") == []


def test_upsert_update_and_the_null_marker(rest: Rest) -> None:
    job = _run(
        rest,
        "Ext_Id__c,Name,Phone,Website\nACC-00001,,#N/A,\nNEW-9,N9,1,\n",
        object="Account",
        operation="upsert",
        externalIdFieldName="Ext_Id__c",
    )
    assert sorted(r["sf__Created"] for r in _results(rest, job["id"], "successfulResults")) == [
        "false",
        "true",
    ]
    first = rest.records("SELECT Phone, Website FROM Account WHERE Ext_Id__c = 'ACC-00001'")[0]
    assert first["Phone"] is None  # #N/A sets null
    assert first["Website"] == "https://www.example1.com"  # an empty cell leaves it alone
    record_id = rest.records("SELECT Id FROM Account WHERE Ext_Id__c = 'NEW-9'")[0]["Id"]
    job = _run(rest, f"Id,Phone\n{record_id},42\n", object="Account", operation="update")
    assert job["numberRecordsFailed"] == 0


def test_delete_and_hard_delete(rest: Rest) -> None:
    ids = [r["Id"] for r in rest.records("SELECT Id FROM Lead ORDER BY Id LIMIT 2")]
    _run(rest, f"Id\n{ids[0]}\n", object="Lead", operation="delete")
    _run(rest, f"Id\n{ids[1]}\n", object="Lead", operation="hardDelete")
    seen = {
        r["Id"]: r["IsDeleted"] for r in rest.records("SELECT Id, IsDeleted FROM Lead", all=True)
    }
    assert seen[ids[0]] is True
    assert ids[1] not in seen


def test_results_come_in_no_particular_order(rest: Rest) -> None:
    rows = "".join(f"N{i:02d},S-{i:02d}\n" for i in range(30))
    job = _run(rest, "Name,Ext_Id__c\n" + rows, object="Account", operation="insert")
    names = [r["Name"] for r in _results(rest, job["id"], "successfulResults")]
    assert sorted(names) == [f"N{i:02d}" for i in range(30)]
    assert names != sorted(names)


def test_job_state_machine(rest: Rest) -> None:
    job = _job(rest, object="Account", operation="insert")
    assert job["state"] == "Open"
    assert job["contentUrl"].endswith("/batches")
    assert (
        rest.error(rest.get(f"jobs/ingest/{job['id']}/successfulResults"))[1] == "INVALIDJOBSTATE"
    )
    assert _upload(rest, job["id"], "Name\nA\n") == 201
    twice = rest.call(
        "PUT",
        f"jobs/ingest/{job['id']}/batches",
        content=b"Name\nB\n",
        headers={"Content-Type": "text/csv"},
    )
    assert "Found multiple contents for job" in rest.error(twice)[2]
    rest.call("PATCH", f"jobs/ingest/{job['id']}", json={"state": "UploadComplete"})
    again = rest.call("PATCH", f"jobs/ingest/{job['id']}", json={"state": "UploadComplete"})
    assert rest.error(again)[:2] == (409, "INVALIDJOBSTATE")
    late = rest.call(
        "PUT",
        f"jobs/ingest/{job['id']}/batches",
        content=b"Name\nC\n",
        headers={"Content-Type": "text/csv"},
    )
    assert rest.error(late)[0] == 409
    assert rest.error(rest.call("DELETE", f"jobs/ingest/{job['id']}"))[1] == "INVALIDJOBSTATE"
    assert rest.get("jobs/ingest").json()["records"][0]["id"] == job["id"]


def test_aborted_job_leaves_every_record_unprocessed(rest: Rest) -> None:
    job = _job(rest, object="Account", operation="insert")
    _upload(rest, job["id"], "Name\nA1\nA2\n")
    aborted = rest.call("PATCH", f"jobs/ingest/{job['id']}", json={"state": "Aborted"}).json()
    assert aborted["state"] == "Aborted"
    assert [r["Name"] for r in _results(rest, job["id"], "unprocessedrecords")] == ["A1", "A2"]
    assert rest.call("DELETE", f"jobs/ingest/{job['id']}").status_code == 204


def test_job_that_stops_early_reports_unprocessed_records(rest: Rest) -> None:
    rest.sandbox.settings = Settings(bulk_stop_after=2)
    job = _run(rest, "Name\nA\nB\nC\nD\n", object="Account", operation="insert")
    assert job["state"] == "Failed"
    assert "stopped after 2" in job["errorMessage"]
    assert len(_results(rest, job["id"], "successfulResults")) == 2
    assert [r["Name"] for r in _results(rest, job["id"], "unprocessedrecords")] == ["C", "D"]


@pytest.mark.parametrize(
    ("data", "body", "message"),
    [
        ("Name,Bogus\nA,1\n", {}, "Field name not found : Bogus"),
        ("Name\r\nA\r\n", {}, "LineEnding is invalid"),
        ("Phone\n1\n", {"operation": "update"}, "Field name not found : Id"),
    ],
)
def test_jobs_that_fail_whole(rest: Rest, data: str, body: dict[str, str], message: str) -> None:
    job = _run(rest, data, **{"object": "Account", "operation": "insert", **body})
    assert job["state"] == "Failed"
    assert message in job["errorMessage"]


def test_refused_job_definitions(rest: Rest) -> None:
    bad = [
        {"object": "Nope", "operation": "insert"},
        {"object": "Account", "operation": "merge"},
        {"object": "Account", "operation": "upsert"},
        {"object": "Account", "operation": "insert", "contentType": "JSON"},
    ]
    for body in bad:
        answer = rest.call("POST", "jobs/ingest", json=body)
        assert answer.status_code == 400, body


def test_query_job_results_paged_with_locator(rest: Rest) -> None:
    answer = rest.call(
        "POST",
        "jobs/query",
        json={
            "operation": "query",
            "query": "SELECT Id, Name, AnnualRevenue, IsDeleted FROM Account",
        },
    )
    job = answer.json()
    assert job["state"] == "UploadComplete"
    assert rest.error(rest.get(f"jobs/query/{job['id']}/results"))[1] == "INVALIDJOBSTATE"
    assert rest.get(f"jobs/query/{job['id']}").json()["state"] == "InProgress"
    assert rest.get(f"jobs/query/{job['id']}").json()["state"] == "JobComplete"
    rows: list[dict[str, str]] = []
    locator = ""
    pages = 0
    while True:
        params = {"maxRecords": "4", **({"locator": locator} if locator else {})}
        page = rest.get(f"jobs/query/{job['id']}/results", params=params)
        pages += 1
        batch = list(csv.DictReader(io.StringIO(page.text)))
        assert int(page.headers["Sforce-NumberOfRecords"]) == len(batch)
        rows += batch
        locator = page.headers["Sforce-Locator"]
        if locator == "null":
            break
    assert (pages, len(rows)) == (3, 10)
    assert rows[0]["Name"] == 'Acme & Sons "Q"'
    assert rows[0]["IsDeleted"] == "false"
    assert rest.error(rest.get(f"jobs/query/{job['id']}/results", params={"locator": "zz9"}))[
        1
    ] == ("INVALIDLOCATOR")


def test_query_jobs_check_the_query(rest: Rest) -> None:
    answer = rest.call(
        "POST", "jobs/query", json={"operation": "query", "query": "SELECT Nope FROM Account"}
    )
    assert rest.error(answer)[:2] == (400, "INVALID_FIELD")
    answer = rest.call(
        "POST", "jobs/query", json={"operation": "query", "query": "SELECT COUNT() FROM Account"}
    )
    assert rest.error(answer)[1] == "INVALIDJOB"


def test_query_all_job_includes_deleted_rows(rest: Rest) -> None:
    record_id = rest.records("SELECT Id FROM Account LIMIT 1")[0]["Id"]
    rest.call("DELETE", f"sobjects/Account/{record_id}")
    job = rest.call(
        "POST",
        "jobs/query",
        json={"operation": "queryAll", "query": "SELECT Id, IsDeleted FROM Account"},
    ).json()
    rest.get(f"jobs/query/{job['id']}")
    rest.get(f"jobs/query/{job['id']}")
    rows = list(csv.DictReader(io.StringIO(rest.get(f"jobs/query/{job['id']}/results").text)))
    assert [r["IsDeleted"] for r in rows].count("true") == 1


def test_crlf_jobs_take_crlf_data(rest: Rest) -> None:
    job = _run(
        rest, "Name\r\nCR1\r\nCR2\r\n", object="Account", operation="insert", lineEnding="CRLF"
    )
    assert (job["state"], job["numberRecordsProcessed"]) == ("JobComplete", 2)
    job = _run(rest, "Name\nLF1\n", object="Account", operation="insert", lineEnding="CRLF")
    assert job["state"] == "Failed"
