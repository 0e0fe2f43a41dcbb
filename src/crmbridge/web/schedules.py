"""Schedules: the profiles and syncs of the folder that name one (``schedule:`` in their
YAML), shown as they are written. The scheduler that runs them is started with the server
(``cli/serve.py``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from pydantic import BaseModel

from crmbridge.errors import ConfigError
from crmbridge.web.app import Svc
from crmbridge.web.workspace import read_yaml

router = APIRouter(tags=["schedules"])


class ScheduleItem(BaseModel):
    name: str
    kind: str
    #: the ``schedule:`` setting as written (e.g. cron and time zone)
    schedule: dict[str, Any]


def _items(svc: Svc) -> list[ScheduleItem]:
    found = []
    for f in svc.workspace.files():
        try:
            data = read_yaml(f.path.read_text(encoding="utf-8"))
        except (ConfigError, OSError, UnicodeDecodeError):
            continue
        schedule = data.get("schedule") if isinstance(data, Mapping) else None
        if isinstance(schedule, str):
            schedule = {"cron": schedule}
        if isinstance(schedule, Mapping):
            shown = {
                str(k): v if isinstance(v, str | int | float | bool) else str(v)
                for k, v in schedule.items()
            }
            found.append(ScheduleItem(name=f.name, kind=f.kind, schedule=shown))
    return found


@router.get("/api/schedules")
def api_schedules(svc: Svc) -> list[ScheduleItem]:
    """The profiles and syncs that name a schedule, with the schedule as written."""
    return _items(svc)


@router.get("/schedules", include_in_schema=False)
def schedules_page(request: Request, svc: Svc) -> HTMLResponse:
    return svc.page(request, "schedules.html", schedules=_items(svc))
