"""The overview, the run history (counts, files, the rejected records) and the jobs the UI
started (live progress)."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import FileResponse, HTMLResponse
from pydantic import BaseModel, Field

from crmbridge.errors import ConfigError
from crmbridge.runner.ledger import close_dead_runs
from crmbridge.runner.outputs import CODE, OUTCOME, RAW, REASON, ROW, TARGET_ID
from crmbridge.state import RunRecord, StateStore
from crmbridge.web.app import Number, Svc
from crmbridge.web.jobs import Job
from crmbridge.web.workspace import NotFoundError

router = APIRouter(tags=["runs"])
#: rejected records shown at most (the error file has them all)
REJECTS_SHOWN = 500


class RunView(BaseModel):
    id: int
    profile: str
    source: str
    target: str
    mode: str
    started_at: str
    ended_at: str | None
    status: str
    dry_run: bool
    counts: dict[str, int]
    error: str | None
    has_success_file: bool
    has_error_file: bool


class Rejected(BaseModel):
    row: str
    reason: str
    code: str
    values: dict[str, str]


class RejectsView(BaseModel):
    run_id: int
    total: int
    shown: list[Rejected]
    codes: list[str]


class RunDetail(BaseModel):
    run: RunView
    rejects: RejectsView


class JobView(BaseModel):
    id: int
    kind: str
    profile: str
    state: str
    read: int
    done: int
    total: int | None
    seconds: float
    records_per_second: float
    eta_seconds: float | None
    run_id: int | None
    status: str | None
    counts: dict[str, int]
    error: str | None
    result: dict[str, Any] = Field(default_factory=dict)


class Overview(BaseModel):
    connections: int
    profiles: int
    syncs: int
    open_conflicts: int
    runs: list[RunView]


def run_view(r: RunRecord) -> RunView:
    return RunView(
        id=r.id,
        profile=r.profile,
        source=r.source,
        target=r.target,
        mode=r.mode,
        started_at=r.started_at.strftime("%Y-%m-%d %H:%M:%S"),
        ended_at=r.ended_at.strftime("%Y-%m-%d %H:%M:%S") if r.ended_at else None,
        status=r.status.value,
        dry_run=r.dry_run,
        counts={k: v for k, v in r.counts.items() if v},
        error=r.error,
        has_success_file=bool(r.success_file and Path(r.success_file).is_file()),
        has_error_file=bool(r.error_file and Path(r.error_file).is_file()),
    )


def job_view(job: Job) -> JobView:
    return JobView(
        id=job.id,
        kind=job.kind,
        profile=job.profile,
        state=job.state,
        read=job.read,
        done=job.done,
        total=job.total,
        seconds=round(job.seconds, 2),
        records_per_second=round(job.rate, 1),
        eta_seconds=round(job.eta, 1) if job.eta is not None else None,
        run_id=job.run_id,
        status=job.status,
        counts=job.counts,
        error=job.error,
        result=job.result,
    )


# -- the overview -------------------------------------------------------------------------
def _overview(svc: Svc) -> Overview:
    files = svc.workspace.files()
    with StateStore(svc.config.state_url) as state:
        close_dead_runs(state)
        runs = [run_view(r) for r in state.list_runs(limit=5)]
        conflicts = len(state.sync.conflicts(status="open", limit=10_000))
    return Overview(
        connections=len(svc.catalog.store().names()),
        profiles=sum(1 for f in files if f.kind == "profile"),
        syncs=sum(1 for f in files if f.kind == "sync"),
        open_conflicts=conflicts,
        runs=runs,
    )


@router.get("/api/overview")
def api_overview(svc: Svc) -> Overview:
    """How many connections, profiles, syncs and open conflicts there are; the last runs."""
    return _overview(svc)


@router.get("/", include_in_schema=False)
def home(request: Request, svc: Svc) -> HTMLResponse:
    return svc.page(request, "home.html", overview=_overview(svc))


# -- the history --------------------------------------------------------------------------
def _runs(svc: Svc, profile: str | None, limit: int) -> list[RunView]:
    with StateStore(svc.config.state_url) as state:
        close_dead_runs(state)
        return [run_view(r) for r in state.list_runs(profile=profile, limit=limit)]


RunLimit = Annotated[int, Query(ge=1, le=1000)]


@router.get("/api/runs")
def api_runs(svc: Svc, profile: str | None = None, limit: RunLimit = 50) -> list[RunView]:
    """Recent runs, newest first."""
    return _runs(svc, profile, limit)


@router.get("/runs", include_in_schema=False)
def runs_page(
    request: Request, svc: Svc, profile: str | None = None, limit: RunLimit = 50
) -> HTMLResponse:
    return svc.page(request, "runs.html", runs=_runs(svc, profile, limit), profile=profile)


def _record(svc: Svc, run_id: Number) -> RunRecord:
    with StateStore(svc.config.state_url) as state:
        close_dead_runs(state)
        try:
            return state.get_run(run_id)
        except ConfigError:
            raise NotFoundError(f"no run {run_id}") from None


def _rejects(record: RunRecord, q: str, code: str) -> RejectsView:
    """The rejected records of the run's error file, filtered by text and reason code."""
    path = Path(record.error_file) if record.error_file else None
    shown: list[Rejected] = []
    codes: set[str] = set()
    total = 0
    needle = q.strip().lower()
    if path is not None and path.is_file():
        with path.open(encoding="utf-8", newline="") as f:
            for line in csv.DictReader(f):
                codes.add(line.get(CODE) or "")
                if code and (line.get(CODE) or "") != code:
                    continue
                if needle and needle not in " ".join(str(v) for v in line.values()).lower():
                    continue
                total += 1
                if len(shown) < REJECTS_SHOWN:
                    shown.append(_rejected(line))
    return RejectsView(run_id=record.id, total=total, shown=shown, codes=sorted(codes - {""}))


def _rejected(line: dict[str, str]) -> Rejected:
    hidden = {ROW, OUTCOME, TARGET_ID, REASON, CODE}
    values = {k: v for k, v in line.items() if k not in hidden and v not in (None, "")}
    if not values.get(RAW):
        values.pop(RAW, None)
    return Rejected(
        row=line.get(ROW) or "",
        reason=line.get(REASON) or "",
        code=line.get(CODE) or "",
        values=values,
    )


Filter = Annotated[str, Query(description="text the record or its reason contains")]
Code = Annotated[str, Query(description="only this reason code")]


@router.get("/api/runs/{run_id}")
def api_run(svc: Svc, run_id: Number, q: Filter = "", code: Code = "") -> RunDetail:
    """One run: counts, status, error, its files, and its rejected records (filtered)."""
    record = _record(svc, run_id)
    return RunDetail(run=run_view(record), rejects=_rejects(record, q, code))


@router.get("/runs/{run_id}", include_in_schema=False)
def run_page(
    request: Request, svc: Svc, run_id: Number, q: str = "", code: str = ""
) -> HTMLResponse:
    detail = api_run(svc, run_id, q, code)
    if request.headers.get("hx-request"):
        return svc.page(request, "_rejects.html", detail=detail, q=q, code=code)
    return svc.page(request, "run.html", detail=detail, q=q, code=code)


@router.get("/api/runs/{run_id}/files/{which}")
def run_file(svc: Svc, run_id: Number, which: str) -> FileResponse:
    """Download the run's success file (``success``) or error file (``error``)."""
    record = _record(svc, run_id)
    if which not in ("success", "error"):
        raise NotFoundError("a run has a success file and an error file")
    name = record.success_file if which == "success" else record.error_file
    if not name or not Path(name).is_file():
        raise NotFoundError(f"run {run_id} has no {which} file")
    return FileResponse(name, media_type="text/csv", filename=f"run-{run_id}-{which}.csv")


# -- jobs ---------------------------------------------------------------------------------
def _job(svc: Svc, job_id: Number) -> Job:
    job = svc.jobs.get(job_id)
    if job is None:
        raise NotFoundError(f"no job {job_id} (jobs are kept while the server runs)")
    return job


@router.get("/api/jobs")
def api_jobs(svc: Svc) -> list[JobView]:
    """The runs and syncs started from the UI since the server started."""
    return [job_view(j) for j in reversed(svc.jobs.all())]


@router.get("/api/jobs/{job_id}")
def api_job(svc: Svc, job_id: Number) -> JobView:
    """A run started from the UI: its progress (records/s, ETA) and, when it ended, its
    outcome."""
    return job_view(_job(svc, job_id))


@router.get("/jobs/{job_id}", include_in_schema=False)
def job_page(request: Request, svc: Svc, job_id: Number) -> HTMLResponse:
    template = "_job.html" if request.headers.get("hx-request") else "job.html"
    return svc.page(request, template, job=job_view(_job(svc, job_id)))
