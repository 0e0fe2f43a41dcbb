"""Time as the sandbox company sees it: an adjustable clock, and the API's datetime format.

The company lives in America/Los_Angeles, so datetimes are shown with its offset
(``2024-05-01T10:20:30-07:00``, whole seconds) and ``time`` in answers has milliseconds.
The clock can be set and moved by tests (``sandbox.clock.advance(days=31)``).
"""

from __future__ import annotations

import datetime as dt
import threading
from zoneinfo import ZoneInfo

COMPANY_ZONE = ZoneInfo("America/Los_Angeles")


class Clock:
    """The sandbox's "now": real time plus an offset that tests may change."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._offset = dt.timedelta(0)

    def now(self) -> dt.datetime:
        """The current instant, UTC, whole seconds."""
        with self._lock:
            offset = self._offset
        return (dt.datetime.now(dt.UTC) + offset).replace(microsecond=0)

    def advance(self, **delta: float) -> None:
        """Move the clock forward (``days=31``, ``seconds=5``)."""
        with self._lock:
            self._offset += dt.timedelta(**delta)

    def set(self, moment: dt.datetime) -> None:
        """Make "now" this instant (the clock keeps running from there)."""
        with self._lock:
            self._offset = moment - dt.datetime.now(dt.UTC)


def show(moment: dt.datetime) -> str:
    """An instant as the API shows it: company time with its offset, whole seconds."""
    return moment.astimezone(COMPANY_ZONE).replace(microsecond=0).isoformat()


def show_time(moment: dt.datetime) -> str:
    """The ``time`` of an answer: company time with milliseconds."""
    local = moment.astimezone(COMPANY_ZONE)
    return local.isoformat(timespec="milliseconds")


def parse_instant(text: str) -> dt.datetime | None:
    """An ISO 8601 datetime (offset or ``Z``; none means company time) as UTC, or None."""
    try:
        value = dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        try:
            day = dt.date.fromisoformat(text.strip())
        except ValueError:
            return None
        value = dt.datetime(day.year, day.month, day.day)
    if value.tzinfo is None:
        value = value.replace(tzinfo=COMPANY_ZONE)
    return value.astimezone(dt.UTC)


def storage(moment: dt.datetime) -> str:
    """An instant as stored (UTC, sortable text)."""
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def utc_text(text: str | None) -> str | None:
    """An API datetime text as storage text (for comparisons in SQL); None when invalid."""
    if text is None:
        return None
    moment = parse_instant(str(text))
    return storage(moment) if moment is not None else None


def company_date(moment: dt.datetime) -> str:
    return moment.astimezone(COMPANY_ZONE).date().isoformat()
