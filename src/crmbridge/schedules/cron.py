"""When a cron expression fires, in a time zone, across daylight-saving changes.

The expression is read on the wall clock of its time zone (croniter walks the wall-clock
times), and each wall-clock time becomes one instant:

* a time that happens twice when the clocks go back (02:30 on the last Sunday of October in
  Europe/Berlin) fires once, the first time;
* a time that does not happen when the clocks go forward (02:30 on the last Sunday of March)
  fires at the same offset after the change (03:30): a nightly run is never lost.

So a daily schedule runs exactly once a day, every day of the year.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from croniter import croniter

#: wall-clock times looked at past the first one that fits, in case a time moved by a
#: clock change comes out earlier than the one before it
_LOOKAHEAD = 4
#: the most scheduled times a look back over a long downtime counts
MAX_FIRES = 10_000


def instant(wall: datetime, zone: ZoneInfo) -> datetime:
    """The UTC instant of wall-clock time ``wall`` (naive) in ``zone``: the first one when it
    happens twice, the same offset after the change when it does not happen."""
    return wall.replace(tzinfo=zone, fold=0).astimezone(UTC)


def _walls(cron: str, start: datetime) -> Iterator[datetime]:
    """Wall-clock times of ``cron`` after naive ``start``, in order."""
    it = croniter(cron, start)
    while True:
        yield it.get_next(datetime)


def next_fire(cron: str, timezone: str, after: datetime) -> datetime:
    """The first instant (UTC) after ``after`` (aware) at which ``cron`` fires in ``timezone``."""
    zone = ZoneInfo(timezone)
    # start an hour early: a time after ``after`` may be on a wall clock that was set back
    start = (after.astimezone(zone) - timedelta(hours=1)).replace(tzinfo=None)
    best: datetime | None = None
    looked = 0
    for wall in _walls(cron, start):
        when = instant(wall, zone)
        if when <= after:
            continue
        best = when if best is None or when < best else best
        looked += 1
        if looked > _LOOKAHEAD:
            break
    assert best is not None
    return best


def fires_between(cron: str, timezone: str, after: datetime, until: datetime) -> list[datetime]:
    """Instants (UTC) in ``(after, until]`` at which ``cron`` fires, oldest first. After
    :data:`MAX_FIRES` of them (a frequent schedule after a long downtime) the look jumps to
    the last day before ``until``: the list then has the first ones and the last day's, so
    the latest time is always right and the count is a lower bound."""
    zone = ZoneInfo(timezone)
    found, complete = _collect(cron, zone, after, until, MAX_FIRES)
    if not complete:
        rest, _ = _collect(cron, zone, max(found[-1], until - timedelta(days=1)), until, None)
        found = sorted({*found, *rest})
    return found


def _collect(
    cron: str, zone: ZoneInfo, after: datetime, until: datetime, limit: int | None
) -> tuple[list[datetime], bool]:
    """The instants in ``(after, until]`` (up to ``limit``), and whether that is all of them.
    One walk over the wall clock: instants moved by a clock change are at most an hour or
    two out of order, so the walk goes on a little past ``until``."""
    start = (after.astimezone(zone) - timedelta(hours=1)).replace(tzinfo=None)
    stop = until + timedelta(hours=3)
    found: set[datetime] = set()
    for wall in _walls(cron, start):
        when = instant(wall, zone)
        if when > stop:
            return sorted(found), True
        if after < when <= until:
            found.add(when)
            if limit is not None and len(found) >= limit:
                return sorted(found), False
    raise AssertionError("a cron expression fires forever")  # pragma: no cover


__all__ = ["MAX_FIRES", "fires_between", "instant", "next_fire"]
