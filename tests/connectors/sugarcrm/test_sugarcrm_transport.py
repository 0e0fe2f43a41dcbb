"""The HTTP layer: which failures are retried, how long it waits, what a write may repeat."""

from __future__ import annotations

import email.utils
import time
from collections.abc import Callable, Iterator

import httpx
import pytest
from sugarcrm_helpers import settings

from crmbridge.connectors.sugarcrm.transport import (
    AmbiguousWriteError,
    Transport,
    is_transient,
    retry_after,
)
from crmbridge.errors import RetryableError

Handler = Callable[[httpx.Request], httpx.Response]
Make = Callable[..., Transport]


@pytest.fixture
def transport() -> Iterator[Make]:
    """``transport(handler, pauses, **settings)``: a Transport on a fake server."""
    made: list[Transport] = []

    def make(handler: Handler, pauses: list[float], **overrides: object) -> Transport:
        http = Transport(
            settings(**overrides), "crm", httpx.MockTransport(handler), sleep=pauses.append
        )
        made.append(http)
        return http

    yield make
    for http in made:
        http.close()


def test_retry_after_as_seconds_or_a_date() -> None:
    assert retry_after(httpx.Response(429, headers={"Retry-After": "2.5"})) == 2.5
    later = email.utils.formatdate(time.time() + 30, usegmt=True)
    wait = retry_after(httpx.Response(503, headers={"Retry-After": later}))
    assert wait is not None
    assert 25 < wait <= 30
    assert retry_after(httpx.Response(429, headers={"Retry-After": "soon"})) is None
    assert retry_after(httpx.Response(429)) is None


def test_which_statuses_are_transient() -> None:
    assert [s for s in (200, 400, 401, 404, 422, 429, 500, 502, 503, 504) if is_transient(s)] == [
        429,
        500,
        502,
        503,
        504,
    ]


def test_backoff_doubles_with_jitter(transport: Make) -> None:
    answers = iter([httpx.Response(502)] * 3 + [httpx.Response(200, text="ok")])
    pauses: list[float] = []
    http = transport(lambda request: next(answers), pauses, retry_backoff=1.0)
    assert http.send("GET", "http://sugar.test/x", what="x").text == "ok"
    assert len(pauses) == 3
    for n, pause in enumerate(pauses):
        assert 0.5 * 2**n <= pause <= 1.5 * 2**n


def test_dropped_connections_and_timeouts_are_retried_for_reads(transport: Make) -> None:
    failures: list[Exception] = [httpx.ReadTimeout("slow"), httpx.RemoteProtocolError("gone")]

    def handler(request: httpx.Request) -> httpx.Response:
        if failures:
            raise failures.pop(0)
        return httpx.Response(200, text="ok")

    pauses: list[float] = []
    assert transport(handler, pauses).send("GET", "http://sugar.test/x", what="x").text == "ok"
    assert len(pauses) == 2


@pytest.mark.parametrize(
    "failure",
    [
        httpx.Response(500),
        httpx.Response(504),
        httpx.ReadTimeout("slow"),
        httpx.RemoteProtocolError("gone"),
    ],
)
def test_a_write_that_may_have_been_applied_is_not_repeated_blindly(
    transport: Make, failure: httpx.Response | Exception
) -> None:
    calls: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        if isinstance(failure, Exception):
            raise failure
        return failure

    with pytest.raises(AmbiguousWriteError, match="may or may not have been applied"):
        transport(handler, []).send("POST", "http://sugar.test/x", what="save", changes=True)
    assert len(calls) == 1


def test_a_write_refused_before_processing_is_retried(transport: Make) -> None:
    answers = iter(
        [
            httpx.Response(429, headers={"Retry-After": "0"}),
            httpx.Response(503),
            httpx.Response(200, text="ok"),
        ]
    )
    pauses: list[float] = []
    http = transport(lambda request: next(answers), pauses)
    assert http.send("POST", "http://sugar.test/x", what="save", changes=True).text == "ok"
    assert len(pauses) == 2


def test_giving_up_is_retryable_and_keeps_the_servers_wish(transport: Make) -> None:
    pauses: list[float] = []
    http = transport(
        lambda request: httpx.Response(429, headers={"Retry-After": "7"}), pauses, retries=2
    )
    with pytest.raises(RetryableError, match=r"x: HTTP 429 Too Many Requests \(gave up after 3"):
        http.send("GET", "http://sugar.test/x", what="x")
    assert pauses == [7.0, 7.0]
