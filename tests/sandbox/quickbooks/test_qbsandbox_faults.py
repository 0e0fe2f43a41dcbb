"""Throttling, fault knobs and the server over a real port; the CLI."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time

import httpx
import pytest
from qb_sandbox_helpers import Qbo, fault

from crmbridge.sandbox.quickbooks import QuickBooksSandbox


def test_requests_a_minute_are_limited_with_429() -> None:
    box = QuickBooksSandbox(customers=3, requests_per_minute=5, batch_requests_per_minute=2)
    try:
        with httpx.Client(
            transport=httpx.WSGITransport(app=box.wsgi_app), base_url="http://qbo.test"
        ) as client:
            qbo = Qbo(client, box)
            answers = [qbo.query("select * from Item").status_code for _ in range(6)]
            assert answers == [200] * 5 + [429]
            throttled = qbo.query("select * from Item")
            assert fault(throttled)["code"] == "3001"
            box.throttle.reset()
            batch = {"BatchItemRequest": [{"bId": "1", "Query": "select * from Item"}]}
            codes = [qbo.request("POST", "batch", json=batch).status_code for _ in range(3)]
            assert codes == [200, 200, 429]
    finally:
        box.close()


def test_ten_calls_at_once_at_most() -> None:
    box = QuickBooksSandbox(customers=3, concurrent=2)
    box.faults.latency = 0.3
    try:
        with box.serve() as server, httpx.Client(base_url=server.url) as client:
            qbo = Qbo(client, box)
            codes: list[int] = []
            threads = [
                threading.Thread(
                    target=lambda: codes.append(qbo.query("select * from Item").status_code)
                )
                for _ in range(4)
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            assert sorted(codes) == [200, 200, 429, 429]
    finally:
        box.close()


def test_fail_throttle_latency_and_counts(qbo: Qbo, sandbox: QuickBooksSandbox) -> None:
    sandbox.faults.reset()
    sandbox.faults.fail_next(2, status=503, body="down")
    assert [qbo.query("select * from Item").status_code for _ in range(3)] == [503, 503, 200]
    sandbox.faults.throttle_next(1, retry_after=2)
    throttled = qbo.query("select * from Item")
    assert (throttled.status_code, throttled.headers["Retry-After"]) == (429, "2")
    sandbox.faults.latency = 0.1
    started = time.monotonic()
    qbo.query("select * from Item")
    assert time.monotonic() - started >= 0.1
    assert sandbox.faults.call_counts()["GET /query"] == 5


def test_tokens_expire_after_n_calls_or_at_once(qbo: Qbo, sandbox: QuickBooksSandbox) -> None:
    sandbox.faults.expire_tokens_after(2)
    assert [qbo.query("select * from Item").status_code for _ in range(3)] == [200, 200, 401]
    sandbox.faults.expire_tokens_after(None)
    fresh = Qbo(qbo.client, sandbox)
    assert fresh.query("select * from Item").status_code == 200
    sandbox.faults.expire_tokens()
    assert fresh.query("select * from Item").status_code == 401


def test_dropped_and_lost_answers_over_a_real_port() -> None:
    box = QuickBooksSandbox(customers=3)
    try:
        with box.serve() as server, httpx.Client(base_url=server.url) as client:
            qbo = Qbo(client, box)
            box.faults.drop_next(1)
            with pytest.raises(httpx.TransportError):
                qbo.post("Customer", {"DisplayName": "Dropped"}, requestid="d-1")
            box.faults.lose_answer_next(1)
            with pytest.raises(httpx.TransportError):
                qbo.post("Customer", {"DisplayName": "Lost"}, requestid="l-1")
            names = [r["DisplayName"] for r in qbo.rows("select * from Customer", "Customer")]
            assert "Dropped" not in names
            assert "Lost" in names
            replay = qbo.post("Customer", {"DisplayName": "Lost"}, requestid="l-1")
            assert replay.status_code == 200
            assert replay.json()["Customer"]["DisplayName"] == "Lost"
    finally:
        box.close()


def test_the_data_file_keeps_the_books_and_tokens(tmp_path: object) -> None:
    path = f"{tmp_path}/books.sqlite"
    first = QuickBooksSandbox(path, customers=5)
    token = first.issue_refresh_token()
    first.close()
    again = QuickBooksSandbox(path, customers=50)  # seeded only once
    try:
        assert (
            again.execute("SELECT COUNT(*) AS n FROM objects WHERE entity = 'Customer'")[0]["n"]
            == 5
        )
        with httpx.Client(
            transport=httpx.WSGITransport(app=again.wsgi_app), base_url="http://qbo.test"
        ) as client:
            from qb_sandbox_helpers import refresh

            assert refresh(client, again, token).status_code == 200
    finally:
        again.close()


def test_cli_busy_port_is_one_line_and_exit_2() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = subprocess.run(
            [sys.executable, "-m", "crmbridge", "sandbox", "quickbooks", "--port", str(port)],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"error: cannot listen on 127.0.0.1:{port}: the port is in use"
    ]


def test_cli_serves_and_prints_how_to_connect() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "crmbridge.sandbox.quickbooks",
            "--port",
            str(port),
            "--customers",
            "3",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        lines = [process.stdout.readline() for _ in range(7)]
        assert lines[0].strip() == f"QuickBooks Online sandbox at http://127.0.0.1:{port}"
        assert any(line.strip().startswith("refresh_token: RT1-") for line in lines)
        answer = httpx.post(f"http://127.0.0.1:{port}/oauth2/v1/tokens/bearer", data={})
        assert answer.status_code == 401
    finally:
        process.terminate()
        process.wait(timeout=30)
        if process.stdout is not None:
            process.stdout.close()
