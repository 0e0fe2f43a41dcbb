"""Fault knobs, call counters and the command line."""

from __future__ import annotations

import socket
import subprocess
import sys
import time

import httpx
import pytest
from sage_helpers import Soap, SoapFaultError, record

from crmbridge.sandbox.sagecrm import RunningServer, SageSandbox


def test_latency_is_added_to_every_call(soap: Soap, sandbox: SageSandbox) -> None:
    sandbox.faults.latency = 0.2
    started = time.monotonic()
    soap.call("getversionstring")
    assert time.monotonic() - started >= 0.2
    sandbox.faults.reset()
    assert sandbox.faults.latency == 0.0


def test_fail_next_answers_the_status_without_doing_anything(
    soap: Soap, sandbox: SageSandbox
) -> None:
    sandbox.faults.fail_next(2, status=503, body="maintenance")
    for _ in range(2):
        response = soap.post("add", entityname="company", records=[record(name="Never")])
        assert (response.status_code, response.text) == (503, "maintenance")
    assert not sandbox.execute("SELECT 1 FROM Company WHERE comp_name = 'Never'")
    assert soap.call("getversionstring")


def test_drop_next_closes_the_connection_unanswered(soap: Soap, sandbox: SageSandbox) -> None:
    sandbox.faults.drop_next(1)
    with pytest.raises(httpx.TransportError):
        soap.post("add", entityname="company", records=[record(name="Dropped")])
    assert not sandbox.execute("SELECT 1 FROM Company WHERE comp_name = 'Dropped'")
    assert soap.call("getversionstring")


def test_lose_answer_applies_the_call_then_drops_it(soap: Soap, sandbox: SageSandbox) -> None:
    sandbox.faults.lose_answer_next(1)
    with pytest.raises(httpx.TransportError):
        soap.post("add", entityname="company", records=[record(name="Applied")])
    assert sandbox.execute("SELECT 1 FROM Company WHERE comp_name = 'Applied'")


def test_lose_answer_can_wait_for_one_operation(soap: Soap, sandbox: SageSandbox) -> None:
    sandbox.faults.lose_answer_next(1, call="soap:add")
    assert soap.call("getversionstring")  # not this one
    with pytest.raises(httpx.TransportError):
        soap.post("add", entityname="company", records=[record(name="Applied")])
    assert sandbox.execute("SELECT 1 FROM Company WHERE comp_name = 'Applied'")
    soap.call("add", entityname="company", records=[record(name="Answered")])


def test_lose_answer_in_process_is_a_504(sandbox: SageSandbox) -> None:
    transport = httpx.WSGITransport(app=sandbox.wsgi_app)
    with httpx.Client(transport=transport, base_url="http://sage.test") as client:
        soap = Soap(client)
        soap.logon()
        sandbox.faults.lose_answer_next(1)
        assert (
            soap.post("add", entityname="company", records=[record(name="Lost")]).status_code == 504
        )
    assert sandbox.execute("SELECT 1 FROM Company WHERE comp_name = 'Lost'")


def test_take_over_ends_the_session_for_good(soap: Soap, sandbox: SageSandbox) -> None:
    sandbox.faults.take_over_next(1)
    with pytest.raises(SoapFaultError, match="ended by another logon"):
        soap.call("getversionstring")
    with pytest.raises(SoapFaultError, match="Invalid session id"):
        soap.call("getversionstring")
    soap.logon()
    assert soap.call("getversionstring")


def test_call_counts_per_operation(soap: Soap, rest: httpx.Client, sandbox: SageSandbox) -> None:
    sandbox.faults.reset()
    soap.call("query", queryString="", entityname="company")
    soap.call("next")
    rest.get("/company")
    rest.get("/company('1')")
    assert sandbox.faults.call_counts() == {
        "soap:query": 1,
        "soap:next": 1,
        "rest:GET company": 2,
    }
    assert sandbox.faults.calls == 4


def test_a_request_over_the_maximum_size_is_refused(soap: Soap, sandbox: SageSandbox) -> None:
    sandbox.configure(max_request_size=300)
    with pytest.raises(SoapFaultError, match="maximum size of request"):
        soap.call("add", entityname="company", records=[record(name="x" * 200)])


def test_the_command_line_refuses_a_busy_port_in_one_line(server: RunningServer) -> None:
    port = int(server.url.rsplit(":", 1)[1])
    done = subprocess.run(
        [sys.executable, "-m", "crmbridge", "sandbox", "sagecrm", "--port", str(port)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"error: port {port} on 127.0.0.1 is in use; choose another with --port"
    ]
    assert "Traceback" not in done.stderr


def test_the_command_line_serves_until_stopped() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "crmbridge.sandbox.sagecrm",
            "--port",
            str(port),
            "--companies",
            "3",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        assert process.stdout.readline().startswith("Sage CRM sandbox at http://127.0.0.1:")
        answer = httpx.get(f"http://127.0.0.1:{port}/crm/eware.dll/webservices/webservice.wsdl")
        assert answer.status_code == 200
    finally:
        process.terminate()
        process.wait(timeout=30)
        if process.stdout is not None:
            process.stdout.close()
