"""Fault knobs, call counters, and the sandbox over a real port (threads, dropped sockets)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import httpx
import pytest
from sugar_helpers import V4, V4_PATH, Rest

from crmbridge.sandbox.sugarcrm import Faults, RunningServer, SugarSandbox

SERVER_INFO = {"method": "get_server_info", "input_type": "JSON", "response_type": "JSON"}


def test_fail_next_answers_the_given_status_and_body_then_recovers(
    v4: V4, sandbox: SugarSandbox
) -> None:
    sandbox.faults.fail_next(2, status=503, body="maintenance")
    for _ in range(2):
        response = v4.post("get_server_info", [])
        assert (response.status_code, response.text) == (503, "maintenance")
    assert v4.post("get_server_info", []).status_code == 200


def test_fail_next_defaults_to_500_empty(rest: Rest, sandbox: SugarSandbox) -> None:
    sandbox.faults.fail_next(1)
    response = rest.get("ping")
    assert (response.status_code, response.content) == (500, b"")


def test_throttle_answers_429_with_retry_after_on_both_families(
    v4: V4, rest: Rest, sandbox: SugarSandbox
) -> None:
    sandbox.faults.throttle_next(2, retry_after=2.5)
    legacy = v4.post("get_server_info", [])
    assert (legacy.status_code, legacy.headers["Retry-After"]) == (429, "2.5")
    modern = rest.get("ping")
    assert (modern.status_code, modern.headers["Retry-After"]) == (429, "2.5")
    assert modern.json()["error"] == "too_many_requests"
    assert rest.get("ping").status_code == 200


def test_expire_sessions_after_n_calls(v4: V4, rest: Rest, sandbox: SugarSandbox) -> None:
    sandbox.faults.expire_sessions_after(2)
    count = [v4.session, "Accounts", "", 0]
    assert v4.call("get_entries_count", count) == {"result_count": "40"}
    assert v4.call("get_entries_count", count) == {"result_count": "40"}
    assert v4.call("get_entries_count", count)["number"] == 11
    v4.login()  # a fresh session lives for two more calls
    assert v4.call("get_entries_count", [v4.session, "Accounts", "", 0])["result_count"] == "40"
    assert rest.get("ping").status_code == 200
    assert rest.get("ping").status_code == 200
    expired = rest.get("ping")
    assert (expired.status_code, expired.json()["error"]) == (401, "need_login")
    sandbox.faults.expire_sessions_after(None)
    rest.login()
    for _ in range(5):
        assert rest.get("ping").status_code == 200


def test_latency_is_added_to_every_call(v4: V4, sandbox: SugarSandbox) -> None:
    sandbox.faults.latency = 0.15
    started = time.monotonic()
    v4.post("get_server_info", [])
    assert time.monotonic() - started >= 0.15
    sandbox.faults.reset()
    assert sandbox.faults.latency == 0.0


def test_call_counts_per_method(v4: V4, rest: Rest, sandbox: SugarSandbox) -> None:
    sandbox.faults.reset()
    v4.entry_list("Accounts")
    v4.entry_list("Accounts")
    rest.get("Accounts")
    rest.get("Accounts/abc")
    rest.post("Accounts/filter", json={})
    assert sandbox.faults.call_counts() == {
        "v4_1:get_entry_list": 2,
        "v10:GET /Accounts": 1,
        "v10:GET /Accounts/{id}": 1,
        "v10:POST /Accounts/filter": 1,
    }
    assert sandbox.faults.calls == 5


def test_faulted_calls_are_counted(v4: V4, sandbox: SugarSandbox) -> None:
    sandbox.faults.reset()
    sandbox.faults.fail_next(1)
    v4.post("get_server_info", [])
    assert sandbox.faults.call_counts() == {"v4_1:get_server_info": 1}


def test_drop_is_ignored_in_process(v4: V4, sandbox: SugarSandbox) -> None:
    sandbox.faults.drop_next(1)
    assert v4.post("get_server_info", []).status_code == 200


def test_faults_reset_turns_everything_off() -> None:
    faults = Faults()
    faults.fail_next(3)
    faults.throttle_next(3)
    faults.expire_sessions_after(1)
    faults.reset()
    assert faults.begin_call("x", real_socket=True) is None
    assert faults.session_call_limit is None


@pytest.fixture
def served(sandbox: SugarSandbox) -> Iterator[RunningServer]:
    with sandbox.serve() as server:
        yield server


def test_serves_over_a_real_port(served: RunningServer, sandbox: SugarSandbox) -> None:
    assert served.url.startswith("http://127.0.0.1:")
    with httpx.Client(base_url=served.url) as http:
        v4 = V4(http)
        v4.login()
        assert v4.entry_list("Accounts", max_results=5)["result_count"] == 5
        api = Rest(http)
        api.login()
        assert api.get("Accounts/count").json() == {"record_count": 40}


def test_drop_next_closes_the_socket_without_an_answer(
    served: RunningServer, sandbox: SugarSandbox
) -> None:
    sandbox.faults.drop_next(1)
    with httpx.Client(base_url=served.url) as http:
        with pytest.raises(httpx.RemoteProtocolError):
            http.post(V4_PATH, data={**SERVER_INFO, "rest_data": "[]"})
        assert http.post(V4_PATH, data={**SERVER_INFO, "rest_data": "[]"}).status_code == 200
    assert sandbox.faults.call_counts() == {"v4_1:get_server_info": 2}


def test_concurrent_clients_over_threads(served: RunningServer, sandbox: SugarSandbox) -> None:
    sandbox.faults.latency = 0.05
    errors: list[BaseException] = []
    created: list[str] = []

    def work(n: int) -> None:
        try:
            with httpx.Client(base_url=served.url) as http:
                v4 = V4(http)
                v4.login()
                for i in range(5):
                    created.append(v4.set_entry("Notes", {"name": f"t{n}-{i}"})["id"])
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(6)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(set(created)) == 30
    assert time.monotonic() - started < 6 * 6 * 0.05  # calls overlapped
    rows = sandbox.execute("SELECT COUNT(*) AS n FROM notes WHERE name LIKE 't%-%'")
    assert rows == [{"n": 30}]


def test_a_sandbox_bug_answers_500_and_prints_the_traceback(
    v4: V4, rest: Rest, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def broken(*args: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr("crmbridge.sandbox.sugarcrm.v4_1.handle", broken)
    monkeypatch.setattr("crmbridge.sandbox.sugarcrm.v10.dispatch", broken)
    legacy = v4.post("get_server_info", [])
    assert (legacy.status_code, legacy.content) == (500, b"")
    modern = rest.get("ping")
    assert (modern.status_code, modern.json()["error"]) == (500, "fatal_error")
    assert "RuntimeError: boom" in capsys.readouterr().err
