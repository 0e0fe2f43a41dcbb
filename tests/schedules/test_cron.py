"""Cron times in a time zone, across daylight-saving changes."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

import pytest

from crmbridge.schedules.cron import fires_between, next_fire

BERLIN = "Europe/Berlin"


def _utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def test_a_daily_time_is_read_in_the_schedules_time_zone() -> None:
    # 02:00 in Berlin in winter is 01:00 UTC, in summer 00:00 UTC
    assert next_fire("0 2 * * *", BERLIN, _utc(2026, 1, 10, 12)) == _utc(2026, 1, 11, 1)
    assert next_fire("0 2 * * *", BERLIN, _utc(2026, 7, 10, 12)) == _utc(2026, 7, 11, 0)
    assert next_fire("0 2 * * *", "UTC", _utc(2026, 7, 10, 12)) == _utc(2026, 7, 11, 2)


def test_a_time_the_clocks_skip_in_spring_still_runs_once_that_day() -> None:
    # 2026-03-29: Berlin goes from 02:00 CET straight to 03:00 CEST; 02:30 does not happen
    fires = fires_between("30 2 * * *", BERLIN, _utc(2026, 3, 27, 12), _utc(2026, 3, 31, 12))
    assert fires == [
        _utc(2026, 3, 28, 1, 30),  # 02:30 CET
        _utc(2026, 3, 29, 1, 30),  # 03:30 CEST: the same offset after the change
        _utc(2026, 3, 30, 0, 30),  # 02:30 CEST
        _utc(2026, 3, 31, 0, 30),
    ]


def test_a_time_that_happens_twice_in_autumn_runs_once() -> None:
    # 2026-10-25: Berlin goes back from 03:00 CEST to 02:00 CET; 02:30 happens twice
    fires = fires_between("30 2 * * *", BERLIN, _utc(2026, 10, 23, 12), _utc(2026, 10, 27, 12))
    assert fires == [
        _utc(2026, 10, 24, 0, 30),
        _utc(2026, 10, 25, 0, 30),  # the first 02:30 (CEST) only
        _utc(2026, 10, 26, 1, 30),
        _utc(2026, 10, 27, 1, 30),
    ]


def test_frequent_schedules_stay_in_order_across_both_changes() -> None:
    for after, until in [
        (_utc(2026, 3, 28, 22), _utc(2026, 3, 29, 4)),
        (_utc(2026, 10, 24, 22), _utc(2026, 10, 25, 4)),
    ]:
        fires = fires_between("*/15 * * * *", BERLIN, after, until)
        assert fires == sorted(set(fires))
        gaps = {(b - a).total_seconds() for a, b in itertools.pairwise(fires)}
        assert gaps <= {900.0, 900.0 * 5}  # the repeated hour's times fire once


@pytest.mark.parametrize("after", [_utc(2026, 3, 29, 0, 59), _utc(2026, 10, 25, 0, 45)])
def test_next_fire_is_always_after_the_instant_given(after: datetime) -> None:
    when = after
    for _ in range(50):
        nxt = next_fire("*/10 * * * *", BERLIN, when)
        assert nxt > when
        when = nxt


def test_a_long_downtime_of_a_frequent_schedule_is_looked_at_quickly() -> None:
    import time

    from crmbridge.schedules.cron import MAX_FIRES

    started = time.monotonic()
    fires = fires_between("* * * * *", BERLIN, _utc(2025, 6, 1), _utc(2026, 6, 1, 12, 30))
    assert time.monotonic() - started < 5
    assert fires[-1] == _utc(2026, 6, 1, 12, 30)
    assert len(fires) >= MAX_FIRES
    assert fires == sorted(set(fires))
