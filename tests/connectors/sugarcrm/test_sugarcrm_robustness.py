"""Sessions, retries, faults and error messages."""

from __future__ import annotations

import hashlib
import io
import json
import logging
import threading
import time
from collections.abc import Iterable, Iterator
from typing import Any

import httpx
import pytest
from sugarcrm_helpers import (
    Connect,
    add_accounts,
    batch_of,
    connector_factory,
    read_all,
    settings,
)

from crmbridge.connectors.base import ReadRequest
from crmbridge.connectors.sugarcrm import SugarCrmConnector
from crmbridge.core.outcomes import WriteMode
from crmbridge.errors import ConfigError, ConnectionFailedError, RemoteError, RetryableError
from crmbridge.sandbox.sugarcrm import RunningServer, SugarSandbox
from crmbridge.testing.writes import write_records


def v4_error(number: int | str, name: str) -> str:
    return json.dumps({"name": name, "number": number, "description": name})


@pytest.fixture
def served(sandbox: SugarSandbox) -> Iterator[RunningServer]:
    with sandbox.serve() as server:
        yield server


# -- sessions -------------------------------------------------------------------------------
def test_an_expired_session_is_renewed_once_and_the_call_repeated(
    connect: Connect, sandbox: SugarSandbox, api: str
) -> None:
    crm = connect(api, page_size=3, concurrency=1)
    expected = len(read_all(crm, "Contacts", fields=["id"]))
    sandbox.faults.reset()
    sandbox.faults.expire_sessions_after(2)
    assert len(read_all(crm, "Contacts", fields=["id"])) == expected
    counts = sandbox.faults.call_counts()
    renewals = counts.get("v4_1:login", 0) + counts.get("v10:POST /oauth2/token", 0)
    assert renewals >= 3


def test_logging_out_when_closing(connect: Connect, sandbox: SugarSandbox, api: str) -> None:
    connect(api).close()
    counts = sandbox.faults.call_counts()
    assert counts.get("v4_1:logout", 0) + counts.get("v10:POST /oauth2/logout", 0) == 1


def test_wrong_password_names_the_connection_and_hides_the_secret(
    connect: Connect, api: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with pytest.raises(ConnectionFailedError) as info:
        connect(api, password="s3cret-pw")
    message = str(info.value)
    assert "wrong user name or password for connection 'crm'" in message
    assert "'admin'" in message
    digest = hashlib.md5(b"s3cret-pw").hexdigest()
    for text in (message, caplog.text):
        assert "s3cret-pw" not in text
        assert digest not in text


@pytest.mark.parametrize(
    ("number", "expected"),
    [
        (60, "too many sessions for user 'admin'"),
        (1008, "the password of user 'admin' has expired"),
        (1009, "user 'admin' is locked out"),
    ],
)
def test_login_refusals_are_explained(
    connect: Connect, sandbox: SugarSandbox, number: int, expected: str
) -> None:
    sandbox.faults.fail_next(1, status=200, body=v4_error(number, "refused"))
    with pytest.raises(ConnectionFailedError, match=expected):
        connect("v4_1")


def test_auto_detects_the_api(connect: Connect) -> None:
    assert connect("auto").api.kind == "v10"
    legacy = SugarSandbox(seed=False, v10=False)
    try:
        with connector_factory(legacy.wsgi_app) as make:
            assert make("auto").api.kind == "v4_1"
            with pytest.raises(ConnectionFailedError, match="set api: v4_1"):
                make("v10")
    finally:
        legacy.close()


@pytest.mark.parametrize("api", ["v4_1", "v10", "auto"])
def test_check_shows_suitecrm_and_its_own_version_on_every_api(connect: Connect, api: str) -> None:
    info = connect(api).check()
    assert (info.system, info.version) == ("SuiteCRM", "7.14.6")
    assert info.details == {
        "api": "v10" if api == "auto" else api,
        "user": "admin",
        "sugar-compatible": "CE 6.5.25",
    }


@pytest.mark.parametrize("api", ["v4_1", "v10"])
def test_check_shows_a_sugarcrm_as_such(api: str) -> None:
    box = SugarSandbox(flavor="ENT", version="12.0.2", suitecrm_version=None, seed=False)
    try:
        with connector_factory(box.wsgi_app) as make:
            info = make(api).check()
    finally:
        box.close()
    assert (info.system, info.version, info.details["flavor"]) == ("SugarCRM", "12.0.2", "ENT")


# -- retries --------------------------------------------------------------------------------
def test_server_errors_are_retried_then_succeed(
    connect: Connect, sandbox: SugarSandbox, api: str
) -> None:
    crm = connect(api)
    crm.describe("Accounts")
    sandbox.faults.reset()
    sandbox.faults.fail_next(2, status=500)
    assert len(read_all(crm, "Accounts", fields=["id"])) == 10
    assert sandbox.faults.calls == 3


def test_retries_give_up_with_a_retryable_error(connect: Connect, sandbox: SugarSandbox) -> None:
    crm = connect("v4_1", retries=2)
    crm.describe("Accounts")
    sandbox.faults.fail_next(3, status=500)
    with pytest.raises(RetryableError) as info:
        read_all(crm, "Accounts", fields=["id"])
    message = str(info.value)
    assert message.startswith("connection 'crm', object 'Accounts': get_entry_list: ")
    assert "HTTP 500 with an empty body" in message
    assert "parameter names or types" in message
    assert "gave up after 3 attempts" in message


def test_throttling_honours_retry_after(connect: Connect, sandbox: SugarSandbox, api: str) -> None:
    pauses: list[float] = []
    crm = connect(api, retry_backoff=0.0, sleep=pauses.append)
    sandbox.faults.throttle_next(2, retry_after=1.5)
    assert len(read_all(crm, "Accounts", fields=["id"])) == 10
    assert pauses == [1.5, 1.5]


def test_a_retry_after_beyond_the_limit_is_handed_to_the_caller(
    connect: Connect, sandbox: SugarSandbox
) -> None:
    crm = connect("v4_1", max_retry_after=10)
    sandbox.faults.throttle_next(1, retry_after=600)
    with pytest.raises(RetryableError, match="asks to wait 600 s") as info:
        read_all(crm, "Accounts", fields=["id"])
    assert info.value.retry_after == 600


def test_retry_after_and_dropped_connections_over_a_real_port(
    sandbox: SugarSandbox, served: RunningServer, api: str
) -> None:
    with connector_factory(url=served.url) as make:
        crm = make(api, page_size=4, concurrency=3)
        sandbox.faults.throttle_next(1, retry_after=0.3)
        started = time.monotonic()
        assert len(read_all(crm, "Accounts", fields=["id"])) == 10
        assert time.monotonic() - started >= 0.3
        sandbox.faults.drop_next(2)
        assert len(read_all(crm, "Contacts", fields=["id"])) == 20


def test_the_connection_limit_holds_with_many_parallel_pages(empty_sandbox: SugarSandbox) -> None:
    add_accounts(empty_sandbox, 60)
    busy = {"now": 0, "most": 0}
    lock = threading.Lock()

    def app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        with lock:
            busy["now"] += 1
            busy["most"] = max(busy["most"], busy["now"])
        try:
            time.sleep(0.01)
            return list(empty_sandbox.wsgi_app(environ, start_response))
        finally:
            with lock:
                busy["now"] -= 1

    with connector_factory(app) as make:
        crm = make("v4_1", page_size=3, concurrency=8, max_connections=2)
        assert len(read_all(crm, "Accounts", fields=["id"])) == 60
    assert busy["most"] == 2


# -- errors ---------------------------------------------------------------------------------
def test_a_refused_filter_is_named(crm: SugarCrmConnector, api: str) -> None:
    meta = crm.meta("Accounts")
    bad: Any = (
        "accounts.name = 'x'; DELETE FROM accounts"
        if api == "v4_1"
        else [{"name": {"$sounds_like": "x"}}]
    )
    with pytest.raises(RemoteError, match="the CRM refused the filter: ") as info:
        crm.api.list_page(meta, bad, ["id"], 10, order=("id",))
    assert ("DELETE FROM accounts" if api == "v4_1" else "$sounds_like") in str(info.value)


def test_a_database_failure_is_not_retried(connect: Connect, sandbox: SugarSandbox) -> None:
    crm = connect("v4_1")
    meta = crm.meta("Accounts")
    sandbox.faults.reset()
    with pytest.raises(RemoteError, match="Database failure") as info:
        crm.api.list_page(meta, "accounts.no_such_column = 1", ["id"], 10, order=("id",))
    assert "with the filter: accounts.no_such_column = 1" in str(info.value)
    assert sandbox.faults.calls == 1


def test_unknown_modules_and_methods(crm: SugarCrmConnector, sandbox: SugarSandbox) -> None:
    with pytest.raises(ConfigError, match="unknown module 'Acounts'; did you mean 'Accounts'"):
        crm.describe("Acounts")
    if crm.api.kind == "v4_1":
        with pytest.raises(ConfigError, match="module 'Nope' does not exist on the CRM"):
            crm.api.module("Nope")
        sandbox.faults.fail_next(1, status=200, body=v4_error("-1", "Invalid call"))
        with pytest.raises(RemoteError, match="does not know the method 'get_module_fields'"):
            crm.api.module("Accounts")


# -- writes that fail half-way --------------------------------------------------------------
ROWS = [{"last_name": f"Half{n}", "external_id_c": f"H-{n}"} for n in range(3)]


def test_a_write_call_failing_before_the_server_acted_is_sent_again(
    connect: Connect, sandbox: SugarSandbox, api: str
) -> None:
    crm = connect(api)
    batch = batch_of(crm, "Contacts", ROWS)
    sandbox.faults.reset()
    sandbox.faults.fail_next(1, status=502)
    result = write_records(crm, "Contacts", batch, WriteMode.INSERT)
    assert result.outcome.to_pylist() == ["created"] * 3
    names = [r["last_name"] for r in read_all(crm, "Contacts", fields=["last_name"])]
    assert sorted(n for n in names if n.startswith("Half")) == ["Half0", "Half1", "Half2"]


def test_a_write_applied_but_unanswered_is_not_sent_twice(sandbox: SugarSandbox, api: str) -> None:
    save_route = "/rest/v11/bulk" if api == "v10" else "set_entries"
    lost = {"left": 1}

    def app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        is_save = save_route in environ.get("PATH_INFO", "") or _is_v4_save(environ)
        if is_save and lost["left"]:
            lost["left"] -= 1
            list(sandbox.wsgi_app(environ, lambda *a: None))  # the server does the work ...
            start_response("504 Gateway Timeout", [("Content-Type", "text/plain")])
            return [b""]  # ... but the answer is lost on the way
        return sandbox.wsgi_app(environ, start_response)

    with connector_factory(app) as make:
        crm = make(api)
        result = write_records(crm, "Contacts", batch_of(crm, "Contacts", ROWS), WriteMode.INSERT)
        assert result.outcome.to_pylist() == ["created"] * 3
        names = [r["last_name"] for r in read_all(crm, "Contacts", fields=["last_name"])]
    assert sorted(n for n in names if n.startswith("Half")) == ["Half0", "Half1", "Half2"]


def _is_v4_save(environ: dict[str, Any]) -> bool:
    if "rest.php" not in environ.get("PATH_INFO", ""):
        return False
    body = environ["wsgi.input"].read()
    environ["wsgi.input"] = io.BytesIO(body)
    return b"method=set_entries" in body


def test_v10_renews_an_expired_token_with_the_refresh_token(sandbox: SugarSandbox) -> None:
    grants: list[str] = []

    def app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        if environ.get("PATH_INFO", "").endswith("/oauth2/token"):
            body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
            grants.append(json.loads(body)["grant_type"])
            environ["wsgi.input"] = io.BytesIO(body)
        return sandbox.wsgi_app(environ, start_response)

    with connector_factory(app) as make:
        crm = make("v10", page_size=5, concurrency=1)
        crm.describe("Contacts")
        sandbox.faults.expire_sessions_after(1)
        assert len(read_all(crm, "Contacts", fields=["id"])) == 20
    assert grants[0] == "password"
    assert "refresh_token" in grants[1:]


def test_a_refused_lookup_stops_the_batch_before_anything_is_written(
    connect: Connect, sandbox: SugarSandbox
) -> None:
    crm = connect("v4_1")
    batch = batch_of(crm, "Contacts", ROWS)
    crm.api.can_filter(crm.meta("Contacts"), "external_id_c")
    sandbox.faults.reset()
    sandbox.faults.fail_next(1, status=200, body=v4_error(40, "Access Denied"))
    with pytest.raises(RemoteError, match=r"the CRM refused the filter: contacts_cstm\.external"):
        write_records(crm, "Contacts", batch, WriteMode.UPSERT, keys=["external_id_c"])
    assert "v4_1:set_entries" not in sandbox.faults.call_counts()


def test_a_total_count_of_zero_as_text_or_number_ends_the_read() -> None:
    answers = iter(['{"result_count":0,"total_count":"0","next_offset":0,"entry_list":[]}'])

    def handler(request: httpx.Request) -> httpx.Response:
        method = dict(httpx.QueryParams(request.content.decode()))["method"]
        replies = {
            "login": '{"id":"s1"}',
            "get_available_modules": '{"modules":[{"module_key":"Accounts"}]}',
            "get_module_fields": '{"module_fields":{"id":{"name":"id","type":"id"}},'
            '"link_fields":[]}',
            "logout": "null",
        }
        return httpx.Response(200, text=replies.get(method) or next(answers))

    crm = SugarCrmConnector("crm", settings(api="v4_1"), transport=httpx.MockTransport(handler))
    with crm:
        batches = list(crm.read(ReadRequest("Accounts")))
    assert [b.num_rows for b in batches] == [0]


def test_an_unreachable_server_is_retryable_and_the_url_keeps_no_password() -> None:
    crm = SugarCrmConnector(
        "crm", settings("http://bob:hunter2@127.0.0.1:9", api="v4_1", retries=1)
    )
    with pytest.raises(RetryableError, match=r"cannot connect to http://127\.0\.0\.1:9") as info:
        crm.open()
    assert "hunter2" not in str(info.value)


def test_closing_tries_to_log_out_once_and_never_fails(
    connect: Connect, sandbox: SugarSandbox, api: str
) -> None:
    crm = connect(api)
    sandbox.faults.reset()
    sandbox.faults.fail_next(5, status=503)
    crm.close()
    assert sandbox.faults.calls == 1


@pytest.mark.parametrize(
    ("encryption", "sent"),
    [
        ("md5", {"user_name": "admin", "password": hashlib.md5(b"admin").hexdigest()}),
        ("plain", {"user_name": "admin", "password": "admin", "encryption": "PLAIN"}),
    ],
)
def test_v4_1_login_sends_the_password_as_configured(
    sandbox: SugarSandbox, encryption: str, sent: dict[str, str]
) -> None:
    logins: list[Any] = []

    def app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        environ["wsgi.input"] = io.BytesIO(body)
        form = dict(httpx.QueryParams(body.decode()))
        if form.get("method") == "login":
            logins.append(json.loads(form["rest_data"]))
        return sandbox.wsgi_app(environ, start_response)

    with connector_factory(app) as make:
        assert make("v4_1", password_encryption=encryption).check().system == "SuiteCRM"
    # positional arguments: PHP 8 servers refuse keys that differ from the PHP parameter names
    assert logins == [[sent, "crmbridge", []]]
