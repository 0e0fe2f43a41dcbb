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
    """Every instant (UTC) in ``(after, until]`` at which ``cron`` fires, oldest first (at most
    :data:`MAX_FIRES`, the latest ones)."""
    found: list[datetime] = []
    when = after
    while True:
        when = next_fire(cron, timezone, when)
        if when > until:
            return found
        found.append(when)
        if len(found) > MAX_FIRES:
            del found[0]


__all__ = ["MAX_FIRES", "fires_between", "instant", "next_fire"]
