"""Syncs: the list, a sync's page (its links, its link plan to accept, running it) and the
conflict inbox (per field base / a / b side by side; take a, take b or edit; one by one or
for all like it)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import BaseModel, Field

from crmbridge.errors import ConfigError
from crmbridge.profiles.loader import load_sync
from crmbridge.state import StateStore
from crmbridge.state.syncstate import Conflict
from crmbridge.sync import sync_key
from crmbridge.web.app import Number, Svc
from crmbridge.web.runs import JobView, job_view
from crmbridge.web.workspace import NotFoundError

router = APIRouter(tags=["syncs"])
Name = Annotated[str, Query(description="The sync profile's path in the served folder.")]
#: links shown on a sync's page
LINKS_SHOWN = 50


class SyncItem(BaseModel):
    name: str
    key: str | None
    links: int
    open_conflicts: int
    problem: str | None = None


class LinkView(BaseModel):
    a_id: str
    b_id: str
    base: str


class SyncDetail(BaseModel):
    item: SyncItem
    yaml: str
    links: list[LinkView]


class StartSync(BaseModel):
    profile: str
    dry_run: bool = False
    accept_links: bool = False


class ConflictView(BaseModel):
    id: int
    sync: str
    a_id: str | None
    b_id: str | None
    field: str
    base_a: Any
    base_b: Any
    a_value: Any
    b_value: Any
    policy: str
    decision: str
    status: str
    resolution: Any
    created_at: str


class Resolve(BaseModel):
    take: Literal["a", "b", "value"]
    value: str | None = Field(default=None, description="with take=value: the value both get")
    #: also every open conflict like this one (same sync and field; with a value, also the
    #: same values on both sides)
    all_like_this: bool = False


class Resolved(BaseModel):
    resolved: list[int]


def _key(path: Any) -> tuple[str | None, str | None]:
    try:
        return sync_key(load_sync(path)), None
    except ConfigError as err:
        return None, str(err)


def _items(svc: Svc) -> list[SyncItem]:
    found = [f for f in svc.workspace.files() if f.kind == "sync"]
    items = []
    with StateStore(svc.config.state_url) as state:
        open_ = state.sync.conflicts(status="open", limit=100_000)
        for f in found:
            key, problem = _key(f.path)
            items.append(
                SyncItem(
                    name=f.name,
                    key=key,
                    links=state.sync.count_links(key) if key else 0,
                    open_conflicts=sum(1 for c in open_ if c.sync_key == key),
                    problem=problem,
                )
            )
    return items


@router.get("/api/syncs")
def api_syncs(svc: Svc) -> list[SyncItem]:
    """The sync profiles in the served folder, with their links and open conflicts."""
    return _items(svc)


@router.get("/syncs", include_in_schema=False)
def syncs_page(request: Request, svc: Svc) -> HTMLResponse:
    return svc.page(request, "syncs.html", syncs=_items(svc))


def _detail(svc: Svc, name: str) -> SyncDetail:
    found = svc.workspace.get(name, "sync")
    item = next(i for i in _items(svc) if i.name == name)
    links: list[LinkView] = []
    if item.key:
        with StateStore(svc.config.state_url) as state:
            for batch in state.sync.all_links(item.key, batch=LINKS_SHOWN):
                links = [LinkView(a_id=k.a_id, b_id=k.b_id, base=k.base) for k in batch]
                break
    return SyncDetail(item=item, yaml=found.path.read_text(encoding="utf-8"), links=links)


@router.get("/api/syncs/detail")
def api_sync(svc: Svc, name: Name) -> SyncDetail:
    """A sync: its YAML, links and open conflicts."""
    return _detail(svc, name)


@router.get("/syncs/show", include_in_schema=False)
def sync_page(request: Request, svc: Svc, name: Name) -> HTMLResponse:
    return svc.page(request, "sync.html", sync=_detail(svc, name))


def _start(svc: Svc, body: StartSync) -> JobView:
    found = svc.workspace.get(body.profile, "sync")
    job = svc.jobs.start_sync(
        found.path, body.profile, dry_run=body.dry_run, accept_links=body.accept_links
    )
    return job_view(job)


@router.post("/api/syncs/run")
def api_start(svc: Svc, body: StartSync) -> JobView:
    """Start a sync (or its dry run: the link plan and what each side would get)."""
    return _start(svc, body)


@router.post("/syncs/run", include_in_schema=False)
def start(
    svc: Svc,
    profile: Annotated[str, Form()],
    dry_run: Annotated[bool, Form()] = False,
    accept_links: Annotated[bool, Form()] = False,
) -> Response:
    job = _start(svc, StartSync(profile=profile, dry_run=dry_run, accept_links=accept_links))
    return RedirectResponse(f"/jobs/{job.id}", status_code=303)


# -- conflicts ----------------------------------------------------------------------------
def conflict_view(c: Conflict) -> ConflictView:
    base = c.base if isinstance(c.base, list) and len(c.base) == 2 else [c.base, c.base]
    name = c.sync_key.removeprefix("sync:").removeprefix("id:").split("@", 1)[0]
    return ConflictView(
        id=c.id,
        sync=name,
        a_id=c.a_id,
        b_id=c.b_id,
        field=c.field,
        base_a=base[0],
        base_b=base[1],
        a_value=c.a_value,
        b_value=c.b_value,
        policy=c.policy,
        decision=c.decision,
        status=c.status,
        resolution=c.resolution,
        created_at=c.created_at.strftime("%Y-%m-%d %H:%M:%S"),
    )


Status = Annotated[Literal["open", "resolved", "closed", "all"], Query()]


def _conflicts(svc: Svc, status: str) -> list[ConflictView]:
    with StateStore(svc.config.state_url) as state:
        found = state.sync.conflicts(status=None if status == "all" else status, limit=1000)
    return [conflict_view(c) for c in found]


@router.get("/api/conflicts")
def api_conflicts(svc: Svc, status: Status = "open") -> list[ConflictView]:
    """The conflicts (default: the open ones, held for a person), oldest first."""
    return _conflicts(svc, status)


@router.get("/conflicts", include_in_schema=False)
def conflicts_page(request: Request, svc: Svc, status: Status = "open") -> HTMLResponse:
    return svc.page(request, "conflicts.html", conflicts=_conflicts(svc, status), status=status)


def _resolve(svc: Svc, conflict_id: Number, body: Resolve) -> Resolved:
    if body.take == "value" and body.value is None:
        raise ConfigError("give the value both sides get")
    resolution = (
        {"take": body.take} if body.take != "value" else {"take": "value", "value": body.value}
    )
    with StateStore(svc.config.state_url) as state:
        try:
            chosen = state.sync.conflict(conflict_id)
        except ConfigError:
            raise NotFoundError(f"no conflict {conflict_id}") from None
        targets = [chosen]
        if body.all_like_this:
            targets += [
                c
                for c in state.sync.conflicts(chosen.sync_key, status="open", limit=100_000)
                if c.id != chosen.id and _alike(c, chosen, body.take)
            ]
        for c in targets:
            state.sync.resolve(c.id, resolution)
    return Resolved(resolved=[c.id for c in targets])


def _alike(c: Conflict, chosen: Conflict, take: str) -> bool:
    if c.field != chosen.field:
        return False
    return take != "value" or (c.a_value, c.b_value) == (chosen.a_value, chosen.b_value)


@router.post("/api/conflicts/{conflict_id}/resolve")
def api_resolve(svc: Svc, conflict_id: Number, body: Resolve) -> Resolved:
    """Decide an open conflict (and, with all_like_this, every open one like it); the next
    sync writes the decision."""
    return _resolve(svc, conflict_id, body)


@router.post("/conflicts/{conflict_id}/resolve", include_in_schema=False)
def resolve(
    svc: Svc,
    conflict_id: Number,
    take: Annotated[Literal["a", "b", "value"], Form()],
    value: Annotated[str | None, Form()] = None,
    all_like_this: Annotated[bool, Form()] = False,
) -> Response:
    done = _resolve(svc, conflict_id, Resolve(take=take, value=value, all_like_this=all_like_this))
    return RedirectResponse(f"/conflicts?resolved={len(done.resolved)}", status_code=303)
