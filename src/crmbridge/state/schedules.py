"""The schedules the scheduler keeps: which profile files run by themselves, and how far it got.

One row per schedule, named (by default the profile's name): the profile file, whether it is a
transfer or a sync, the cron expression / time zone / missed-run policy when given by
``crmbridge schedule add`` (None: the file's own ``schedule:`` applies), and
``handled_until``: every scheduled time up to that instant has been dealt with (run, skipped
because the profile was busy, or missed). A scheduler that was down finds the times it missed
after ``handled_until``; a new schedule starts from the moment it was added, so adding one never
makes up runs from the past.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from crmbridge.errors import ConfigError
from crmbridge.state.tables import schedules


@dataclass(frozen=True)
class ScheduleRecord:
    name: str
    path: str
    #: "transfer" or "sync"
    kind: str
    cron: str | None
    timezone: str | None
    missed: str | None
    created_at: datetime
    handled_until: datetime
    last_fired_at: datetime | None
    last_outcome: str | None


class Schedules:
    """The schedules of one state store (``StateStore.schedules``)."""

    def __init__(self, engine: sa.Engine) -> None:
        self._engine = engine

    def add(
        self,
        name: str,
        *,
        path: str,
        kind: str,
        cron: str | None,
        timezone: str | None,
        missed: str | None,
        now: datetime | None = None,
    ) -> ScheduleRecord:
        """Add schedule ``name``, or replace it (its progress starts again from ``now``)."""
        when = now or datetime.now(UTC)
        row = {
            "name": name,
            "path": path,
            "kind": kind,
            "cron": cron,
            "timezone": timezone,
            "missed": missed,
            "created_at": when,
            "handled_until": when,
            "last_fired_at": None,
            "last_outcome": None,
        }
        with self._engine.begin() as conn:
            conn.execute(schedules.delete().where(schedules.c.name == name))
            conn.execute(schedules.insert().values(**row))
        return self.get(name)

    def get(self, name: str) -> ScheduleRecord:
        """Schedule ``name``; an unknown name is a ConfigError listing the known ones."""
        with self._engine.begin() as conn:
            row = conn.execute(schedules.select().where(schedules.c.name == name)).one_or_none()
        if row is None:
            known = ", ".join(s.name for s in self.list()) or "none"
            raise ConfigError(f"no schedule named {name!r} (schedules: {known})")
        return _record(row)

    def list(self) -> list[ScheduleRecord]:
        with self._engine.begin() as conn:
            rows = conn.execute(schedules.select().order_by(schedules.c.name)).all()
        return [_record(row) for row in rows]

    def remove(self, name: str) -> None:
        with self._engine.begin() as conn:
            result = conn.execute(schedules.delete().where(schedules.c.name == name))
        if not result.rowcount:
            self.get(name)  # raises the ConfigError naming the known schedules

    def handled(
        self, name: str, until: datetime, *, fired_at: datetime | None, outcome: str
    ) -> bool:
        """Every scheduled time of ``name`` up to ``until`` is dealt with; ``outcome`` says
        how (with ``fired_at``, the scheduled time it was about). Only moves forward: False
        when another scheduler got there first (the time must not be handled twice)."""
        values: dict[str, Any] = {"handled_until": until, "last_outcome": outcome}
        if fired_at is not None:
            values["last_fired_at"] = fired_at
        with self._engine.begin() as conn:
            result = conn.execute(
                schedules.update()
                .where(schedules.c.name == name, schedules.c.handled_until < until)
                .values(**values)
            )
        return bool(result.rowcount)

    def note(self, name: str, outcome: str) -> None:
        """Replace the last outcome's text (a run started has ended)."""
        with self._engine.begin() as conn:
            conn.execute(
                schedules.update().where(schedules.c.name == name).values(last_outcome=outcome)
            )


def _record(row: sa.Row[Any]) -> ScheduleRecord:
    m = row._mapping
    return ScheduleRecord(
        name=m["name"],
        path=m["path"],
        kind=m["kind"],
        cron=m["cron"],
        timezone=m["timezone"],
        missed=m["missed"],
        created_at=m["created_at"],
        handled_until=m["handled_until"],
        last_fired_at=m["last_fired_at"],
        last_outcome=m["last_outcome"],
    )


__all__ = ["ScheduleRecord", "Schedules"]
