"""The daily API quota: paced calls above quota_slow_down, a clear stop before it runs out."""

from __future__ import annotations

import pytest
from salesforce_helpers import Connect, Sleeps, read_all

from crmbridge.connectors.salesforce import QuotaError
from crmbridge.connectors.salesforce.quota import parse_usage
from crmbridge.sandbox.salesforce import SalesforceSandbox


def test_usage_is_read_from_every_answer(connect: Connect, sandbox: SalesforceSandbox) -> None:
    sf = connect()
    sf.objects()
    assert (sf.api.quota.used, sf.api.quota.limit) == (1, 15000)
    assert parse_usage("api-usage=25/5000; per-app-api-usage=17/250(appName=x)") == (25, 5000)
    assert parse_usage("per-app-api-usage=17/250(appName=x)") is None


def test_calls_are_paced_once_the_quota_is_mostly_used(
    connect: Connect, sandbox: SalesforceSandbox
) -> None:
    sleeps = Sleeps()
    sf = connect(sleep=sleeps, quota_slow_down=0.5, quota_stop=0.9, quota_pause=1.0)
    sandbox.set_api_usage(10, 100)
    sf.objects()
    sf.describe("Account")  # Account and the objects it refers to
    assert sleeps == []  # 11% used
    sandbox.set_api_usage(70, 100)
    sf.check()  # learns 71/100
    read_all(sf, "Account", fields=["Id"])
    assert len(sleeps) == 1
    assert 1.0 < sleeps[0] < 10.0


def test_the_run_stops_before_the_quota_runs_out(
    connect: Connect, sandbox: SalesforceSandbox
) -> None:
    sf = connect(quota_stop=0.9)
    sandbox.set_api_usage(89, 100)
    sf.objects()  # now 90/100
    calls = sandbox.faults.calls
    with pytest.raises(QuotaError) as info:
        sf.describe("Account")
    assert "90 of 100 (90%) daily API requests are used" in str(info.value)
    assert "connection 'sf'" in str(info.value)
    assert sandbox.faults.calls == calls  # the call was not made


def test_request_limit_exceeded_is_a_quota_error(
    connect: Connect, sandbox: SalesforceSandbox
) -> None:
    sf = connect(quota_stop=1.0, quota_slow_down=1.0)
    sandbox.set_api_usage(100, 100)
    with pytest.raises(QuotaError, match="daily API request limit is used up"):
        sf.objects()
