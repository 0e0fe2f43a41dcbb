"""The API quota (Sforce-Limit-Info, REQUEST_LIMIT_EXCEEDED), fault knobs, seed, command line."""

from __future__ import annotations

import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from sf_helpers import Rest

from crmbridge.sandbox.salesforce import SalesforceSandbox, seed_counts


def test_every_answer_shows_the_api_usage(rest: Rest) -> None:
    first = rest.get("limits")
    second = rest.query("SELECT Id FROM Account")
    assert first.headers["Sforce-Limit-Info"] == "api-usage=1/15000"
    assert second.headers["Sforce-Limit-Info"] == "api-usage=2/15000"
    assert first.json()["DailyApiRequests"] == {"Max": 15000, "Remaining": 14999}


def test_a_used_up_quota_refuses_calls(rest: Rest) -> None:
    rest.sandbox.set_api_usage(99, 100)
    assert rest.get("limits").status_code == 200
    refused = rest.get("limits")
    assert rest.error(refused) == (403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.")
    assert refused.headers["Sforce-Limit-Info"] == "api-usage=100/100"
    assert rest.sandbox.api_usage == (100, 100)


def test_failures_are_answered_without_acting(rest: Rest) -> None:
    rest.sandbox.faults.fail_next(1, 503, '[{"errorCode":"SERVER_UNAVAILABLE","message":"x"}]')
    failed = rest.call("POST", "sobjects/Account", json={"Name": "Never"})
    assert failed.status_code == 503
    assert failed.json()[0]["errorCode"] == "SERVER_UNAVAILABLE"
    assert rest.records("SELECT Id FROM Account WHERE Name = 'Never'") == []


def test_dropped_calls_are_not_applied(rest: Rest) -> None:
    rest.sandbox.faults.drop_next(1)
    with pytest.raises(httpx.RemoteProtocolError):
        rest.call("POST", "sobjects/Account", json={"Name": "Dropped"})
    assert rest.records("SELECT Id FROM Account WHERE Name = 'Dropped'") == []


def test_lost_answers_were_applied(rest: Rest) -> None:
    rest.sandbox.faults.lose_next(1, only="composite/sobjects")
    assert rest.get("limits").status_code == 200  # other routes are not touched
    with pytest.raises(httpx.RemoteProtocolError):
        rest.call(
            "POST",
            "composite/sobjects",
            json={"records": [{"attributes": {"type": "Account"}, "Name": "Lost"}]},
        )
    assert len(rest.records("SELECT Id FROM Account WHERE Name = 'Lost'")) == 1


def test_a_lost_answer_can_come_after_some_calls(rest: Rest) -> None:
    rest.sandbox.faults.lose_next(1, only="composite/sobjects", after=1)
    for name in ("First", "Second"):
        body = {"records": [{"attributes": {"type": "Account"}, "Name": name}]}
        if name == "First":
            assert rest.call("POST", "composite/sobjects", json=body).status_code == 200
        else:
            with pytest.raises(httpx.RemoteProtocolError):
                rest.call("POST", "composite/sobjects", json=body)
    assert len(rest.records("SELECT Id FROM Account WHERE Name IN ('First', 'Second')")) == 2


def test_latency_and_call_counts(rest: Rest) -> None:
    rest.sandbox.faults.latency = 0.05
    started = time.monotonic()
    rest.get("limits")
    assert time.monotonic() - started >= 0.05
    rest.query("SELECT Id FROM Account")
    counts = rest.sandbox.faults.call_counts()
    assert counts["POST oauth2/token"] == 1
    assert counts["GET limits"] == 1
    assert counts["GET query"] == 1
    rest.sandbox.faults.reset()
    assert rest.sandbox.faults.calls == 0


def test_seed_is_deterministic_and_as_documented(tls_dir: Path) -> None:
    boxes = [SalesforceSandbox(accounts=40, tls_dir=tls_dir) for _ in range(2)]
    try:
        counts = seed_counts(40)
        for name, (live, deleted) in counts.items():
            table = f"sobject_{name.lower()}"
            rows = boxes[0].execute(
                f'SELECT "IsDeleted" AS d, COUNT(*) AS n FROM {table} GROUP BY 1'
            )
            found = {r["d"]: r["n"] for r in rows}
            assert (found.get(0, 0), found.get(1, 0)) == (live, deleted), name
        sql = 'SELECT "Id", "Name", "SystemModstamp" FROM sobject_account ORDER BY "Id"'
        assert boxes[0].execute(sql) == boxes[1].execute(sql)
        stamps = [r["SystemModstamp"] for r in boxes[0].execute(sql)]
        assert stamps.count(stamps[0]) == 7  # groups of seven share a second
    finally:
        for box in boxes:
            box.close()


def test_a_data_file_keeps_its_changes(tmp_path: Path, tls_dir: Path) -> None:
    data = tmp_path / "org.sqlite"
    box = SalesforceSandbox(data, accounts=3, tls_dir=tls_dir)
    box.execute("DELETE FROM sobject_account")
    box.close()
    again = SalesforceSandbox(data, accounts=3, tls_dir=tls_dir)
    assert again.execute("SELECT COUNT(*) AS n FROM sobject_account")[0]["n"] == 0
    again.close()


def test_a_data_file_made_before_a_field_was_added_gets_it(tmp_path: Path, tls_dir: Path) -> None:
    data = tmp_path / "org.sqlite"
    box = SalesforceSandbox(data, accounts=1, tls_dir=tls_dir)
    box.execute("DROP INDEX idx_sobject_account_crmbridge_key__c")
    box.execute('ALTER TABLE sobject_account DROP COLUMN "Crmbridge_Key__c"')
    box.close()
    again = SalesforceSandbox(data, accounts=1, tls_dir=tls_dir)
    found = again.execute('SELECT "Crmbridge_Key__c" FROM sobject_account')
    assert found == [{"Crmbridge_Key__c": None}]
    again.close()


def test_the_ca_folder_is_reused(tmp_path: Path) -> None:
    first = SalesforceSandbox(accounts=1, tls_dir=tmp_path)
    pem = first.ca_file.read_bytes()
    first.close()
    second = SalesforceSandbox(accounts=1, tls_dir=tmp_path)
    assert second.ca_file.read_bytes() == pem
    with second.serve() as server:
        context = ssl.create_default_context(cafile=second.ca_file)
        with httpx.Client(verify=context) as http:
            assert http.get(server.url + "/services/data").status_code == 200
    second.close()


def test_the_command_refuses_a_busy_port_in_one_line() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = subprocess.run(
            [sys.executable, "-m", "crmbridge", "sandbox", "salesforce", "--port", str(port)],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0
    assert f"cannot listen on 127.0.0.1:{port}" in done.stderr


def test_the_command_serves_and_prints_the_ca_file(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    data = tmp_path / "org.sqlite"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "crmbridge",
            "sandbox",
            "salesforce",
            "--port",
            str(port),
            "--data",
            str(data),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        lines = [proc.stdout.readline() for _ in range(2)]
        assert lines[0].strip() == f"Salesforce sandbox at https://127.0.0.1:{port}"
        ca_file = lines[1].split(": ", 1)[1].strip()
        assert Path(ca_file).parent == Path(f"{data}.tls")
        context = ssl.create_default_context(cafile=ca_file)
        with httpx.Client(verify=context) as http:
            assert http.get(f"https://127.0.0.1:{port}/services/data").status_code == 200
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        if proc.stdout is not None:
            proc.stdout.close()
