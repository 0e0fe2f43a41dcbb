"""Retries of reads on 5xx and dropped connections; what cannot be retried."""

from __future__ import annotations

import pytest
from salesforce_helpers import Connect, Sleeps, read_all

from crmbridge.errors import RemoteError, RetryableError
from crmbridge.sandbox.salesforce import SalesforceSandbox


def test_reads_are_retried_after_5xx_and_dropped_connections(
    connect: Connect, sandbox: SalesforceSandbox
) -> None:
    sleeps = Sleeps()
    sf = connect(sleep=sleeps)
    sandbox.faults.fail_next(2, 500, '[{"errorCode":"UNKNOWN_EXCEPTION","message":"boom"}]')
    assert len(read_all(sf, "Account", fields=["Id"])) == 10
    sandbox.faults.drop_next(1, only="query")
    assert len(read_all(sf, "Account", fields=["Id"])) == 10
    assert len(sleeps) == 3


def test_giving_up_after_the_retries(connect: Connect, sandbox: SalesforceSandbox) -> None:
    sf = connect(retries=2)
    sandbox.faults.fail_next(5, 503, "")
    with pytest.raises(RetryableError, match="gave up after 3 attempts"):
        sf.objects()


def test_a_refused_query_is_not_retried(connect: Connect, sandbox: SalesforceSandbox) -> None:
    sf = connect()
    api = sf.api

    def bad(sf_: object) -> object:
        return api.sf.query("SELECT Nope FROM Account")

    with pytest.raises(RemoteError, match=r"INVALID_FIELD: .*No such column 'Nope'"):
        api.call("query", bad)
    assert sandbox.faults.call_counts()["GET query"] == 1
