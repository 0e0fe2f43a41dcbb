"""Sessions, lost cursors, faults, retries and the messages of refusals."""

from __future__ import annotations

import pytest
from sagecrm_helpers import Connect, read_all, settings

from crmbridge.connectors.base import ReadRequest, Since
from crmbridge.connectors.sagecrm import SageCrmConnector
from crmbridge.connectors.sagecrm.robust import server_error
from crmbridge.errors import (
    ConfigError,
    ConnectionFailedError,
    ErrorContext,
    RemoteError,
    RetryableError,
)
from crmbridge.sandbox.sagecrm import RunningServer, SageSandbox


def test_connectors_of_one_user_share_one_session(connect: Connect, sandbox: SageSandbox) -> None:
    first, second = connect("soap"), connect("soap")
    assert first.check().version == second.check().version
    assert sandbox.faults.call_counts()["soap:logon"] == 1
    assert len(sandbox.sessions.live_users()) == 1
    first.close()
    assert sandbox.sessions.live_users() == [1]  # the other one still uses it
    second.close()
    assert sandbox.sessions.live_users() == []
    assert sandbox.faults.call_counts()["soap:logoff"] == 1


def test_a_taken_over_session_is_renewed_once(connect: Connect, sandbox: SageSandbox) -> None:
    crm = connect("soap")
    sandbox.faults.take_over_next(1)
    assert crm.check().version == "2024 R2"
    assert sandbox.faults.call_counts()["soap:logon"] == 2


def test_a_session_taken_over_again_right_away_is_a_clear_error(
    connect: Connect, sandbox: SageSandbox
) -> None:
    crm = connect("soap")
    sandbox.faults.take_over_next(2)
    with pytest.raises(ConnectionFailedError, match="another program is logged on"):
        crm.check()


def test_a_read_resumes_after_its_cursor_is_lost(connect: Connect, sandbox: SageSandbox) -> None:
    crm = connect("soap")
    crm.describe("company")
    batches = crm.read(ReadRequest("company", fields=["companyid"], batch_size=5))
    first = next(batches).to_pylist()
    other = connect("soap")  # shares the session: its call closes the cursor
    other.check()
    rest = [r for b in batches for r in b.to_pylist()]
    ids = [r["companyid"] for r in first + rest]
    assert ids == list(range(1, 21))


def test_a_read_resumes_after_next_was_dropped(connect: Connect, sandbox: SageSandbox) -> None:
    crm = connect("soap")
    crm.describe("company")
    sandbox.faults.reset()
    batches = crm.read(ReadRequest("company", fields=["companyid"]))
    first = next(batches).to_pylist()
    sandbox.faults.lose_answer_next(1)  # next() is served (the cursor moves), its answer lost
    rest = [r for b in batches for r in b.to_pylist()]
    assert [r["companyid"] for r in first + rest] == list(range(1, 21))
    assert sandbox.faults.call_counts()["soap:query"] == 2


def test_a_wrong_password_is_tried_once_and_never_again(
    server: RunningServer, sandbox: SageSandbox
) -> None:
    for _ in range(2):
        crm = SageCrmConnector("crm", settings(server.url, password="wrong"))
        with pytest.raises(ConnectionFailedError, match="refused the logon") as info:
            crm.open()
        assert "does not try again" in str(info.value)
        assert "wrong" not in str(info.value)
    assert sandbox.faults.call_counts()["soap:logon"] == 1
    assert sandbox.sessions.failures("admin") == 1  # far from the lockout


def test_rest_stops_after_the_first_refused_password(
    server: RunningServer, sandbox: SageSandbox
) -> None:
    crm = SageCrmConnector("crm", settings(server.url, api="rest", password="wrong"))
    crm.open()
    with pytest.raises(ConnectionFailedError, match="refused the logon"):
        crm.objects()
    assert sandbox.sessions.failures("admin") == 1
    crm.close()


def test_an_entity_without_web_service_access_says_how_to_enable_it(
    crm: SageCrmConnector, sandbox: SageSandbox
) -> None:
    crm.describe("company")
    sandbox.configure(web_entities=frozenset({"person"}))
    with pytest.raises(ConfigError) as info:
        read_all(crm, "company", fields=["companyid"])
    assert str(info.value).endswith(
        "Entity 'company' is not Web Service enabled: enable 'Allow Web Service Access' for it "
        "in Administration"
    )


def test_a_missing_wsdl_says_which_switch_to_set(
    server: RunningServer, sandbox: SageSandbox
) -> None:
    sandbox.configure(wsdl_available=False)
    with pytest.raises(ConnectionFailedError, match="Make WSDL available to all"):
        SageCrmConnector("crm", settings(server.url)).open()


def test_web_services_switched_off(server: RunningServer, sandbox: SageSandbox) -> None:
    sandbox.configure(web_services=False)
    with pytest.raises(ConnectionFailedError, match="Enable Web Services"):
        SageCrmConnector("crm", settings(server.url)).open()


def test_reads_back_off_on_5xx(connect: Connect, sandbox: SageSandbox, api: str) -> None:
    pauses: list[float] = []
    crm = connect(api, sleep=pauses.append)
    crm.describe("company")
    sandbox.faults.fail_next(2, status=503, body="<html>busy</html>")
    assert len(read_all(crm, "company", fields=["companyid"])) == 20
    assert len(pauses) == 2
    assert pauses[1] > pauses[0] / 3  # doubling, with jitter


def test_reads_give_up_with_a_retryable_error(
    connect: Connect, sandbox: SageSandbox, api: str
) -> None:
    crm = connect(api, sleep=lambda s: None, retries=1)
    crm.describe("company")
    sandbox.faults.fail_next(5, status=502)
    with pytest.raises(RetryableError, match="gave up after 2 attempts"):
        read_all(crm, "company", fields=["companyid"])


def test_dropped_connections_are_retried_for_reads(
    connect: Connect, sandbox: SageSandbox, api: str
) -> None:
    crm = connect(api, sleep=lambda s: None)
    crm.describe("company")
    sandbox.faults.drop_next(1)
    assert len(read_all(crm, "company", fields=["companyid"])) == 20


def test_an_incremental_value_the_crm_cannot_compare_is_a_config_error(
    crm: SageCrmConnector,
) -> None:
    with pytest.raises(ConfigError, match="cannot read incrementally"):
        list(crm.read(ReadRequest("company", since=Since("updateddate", "not a date"))))


@pytest.mark.parametrize(
    ("fault", "kind", "text"),
    [
        ("Query failed to run successfully", RemoteError, "could not run the query"),
        ("Entity 'lead' is not Web Service enabled", ConfigError, "Allow Web Service Access"),
        ("Web services are not enabled on this server", ConnectionFailedError, "Enable Web"),
        ("Something else", RemoteError, "query failed: Something else"),
    ],
)
def test_server_messages_become_clear_errors(fault: str, kind: type, text: str) -> None:
    error = server_error(fault, what="query", context=ErrorContext(connection="crm"))
    assert isinstance(error, kind)
    assert text in str(error)


def test_answers_in_the_other_namespace_are_read(connect: Connect, sandbox: SageSandbox) -> None:
    sandbox.configure(answer_namespace="http://tempuri.org/")
    crm = connect("soap")
    assert len(read_all(crm, "company", fields=["companyid", "address.city"])) == 20
