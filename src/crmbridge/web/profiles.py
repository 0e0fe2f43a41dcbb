"""Profiles: the list, the editor (form, mapping grid, YAML), checking expressions as they are
typed, the preview, and starting a run or a dry run."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import BaseModel, Field

from crmbridge.connections import ConnectionStore
from crmbridge.core.schema import FieldType
from crmbridge.errors import ConfigError
from crmbridge.profiles.loader import load_profile
from crmbridge.runner import preview_profile
from crmbridge.state import StateStore
from crmbridge.web.app import Svc
from crmbridge.web.editor import (
    INLINE,
    MODES,
    Editor,
    EditorForm,
    ExpressionCheck,
    MappingRow,
    build,
    check_expression,
    source_types,
)
from crmbridge.web.jobs import Job
from crmbridge.web.runs import JobView, RunView, job_view, run_view
from crmbridge.web.workspace import read_yaml

router = APIRouter(tags=["profiles"])
Name = Annotated[str, Query(description="The profile's path in the served folder.")]


class ProfileItem(BaseModel):
    name: str
    kind: str


class ProfileDetail(BaseModel):
    name: str
    yaml: str
    runs: list[RunView]
    #: what is wrong with it (empty: it checks out as a file; systems are asked on preview)
    problems: list[str]


class PreviewView(BaseModel):
    name: str
    columns: list[str]
    rows: list[dict[str, Any]]
    pushed_filter: list[str]
    local_filter: str | None
    read: int


class SaveProfile(BaseModel):
    name: str = Field(description="Path in the served folder, e.g. contacts.yaml")
    yaml: str


class EditRequest(BaseModel):
    yaml: str = ""
    #: the form's values to write into the YAML first
    form: EditorForm | None = None
    base: str | None = Field(default=None, description="the profile's path (for its folder)")


class CheckRequest(BaseModel):
    expression: str
    #: the fields it may read, with their types; none: check the syntax only
    fields: dict[str, FieldType] | None = None


class StartRun(BaseModel):
    profile: str
    dry_run: bool = False


@router.get("/api/profiles")
def api_profiles(svc: Svc) -> list[ProfileItem]:
    """The profiles (transfer and sync) in the served folder."""
    return [ProfileItem(name=f.name, kind=f.kind) for f in svc.workspace.files()]


@router.get("/profiles", include_in_schema=False)
def profiles_page(request: Request, svc: Svc) -> HTMLResponse:
    return svc.page(request, "profiles.html", profiles=api_profiles(svc))


def _detail(svc: Svc, name: str) -> ProfileDetail:
    found = svc.workspace.get(name, "profile")
    problems: list[str] = []
    try:
        loaded = load_profile(found.path, defer_unknown_settings=True)
        problems = [str(p) for p in loaded.problems]
        label = loaded.name
    except ConfigError as err:
        problems, label = [str(err)], found.path.stem
    with StateStore(svc.config.state_url) as state:
        runs = [run_view(r) for r in state.list_runs(profile=label, limit=10)]
    text = found.path.read_text(encoding="utf-8")
    return ProfileDetail(name=name, yaml=text, runs=runs, problems=problems)


@router.get("/api/profiles/detail")
def api_profile(svc: Svc, name: Name) -> ProfileDetail:
    """A profile: its YAML, what is wrong with it, its last runs."""
    return _detail(svc, name)


@router.get("/profiles/show", include_in_schema=False)
def profile_page(request: Request, svc: Svc, name: Name) -> HTMLResponse:
    return svc.page(request, "profile.html", profile=_detail(svc, name))


# -- the editor ---------------------------------------------------------------------------
def _editor(svc: Svc, text: str, base: str | None, form: EditorForm | None) -> Editor:
    folder = svc.workspace.path(base).parent if base else svc.workspace.folder
    return build(text, svc.catalog, folder, form)


@router.get("/api/profiles/editor")
def api_editor(svc: Svc, name: Annotated[str | None, Query()] = None) -> Editor:
    """The editor of a profile (or of a new one): form, mapping grid, YAML."""
    text = svc.workspace.get(name, "profile").path.read_text("utf-8") if name else ""
    return _editor(svc, text, name, None)


@router.post("/api/profiles/editor")
def api_edit(svc: Svc, body: EditRequest) -> Editor:
    """Write the form into the YAML (when given) and return the editor for the result."""
    return _editor(svc, body.yaml, body.base, body.form)


@router.get("/profiles/edit", include_in_schema=False)
def editor_page(
    request: Request, svc: Svc, name: Annotated[str | None, Query()] = None
) -> HTMLResponse:
    editor = api_editor(svc, name)
    return svc.page(request, "editor.html", **_editor_context(svc, editor, name))


def _editor_context(svc: Svc, editor: Editor, name: str | None) -> dict[str, Any]:
    return {
        "editor": editor,
        "name": name or "",
        "connections": svc.catalog.store().names(),
        "modes": MODES,
        "inline": INLINE,
    }


@router.post("/profiles/editor", include_in_schema=False)
async def edit(request: Request, svc: Svc) -> HTMLResponse:
    """htmx: the form changed (``changed=form``: written into the YAML) or the YAML did
    (``changed=yaml``: the form is read from it); the whole editor is drawn again."""
    data = await request.form()
    text = str(data.get("yaml", ""))
    name = str(data.get("name_of_file", "")) or None
    form = _form_of(data) if data.get("changed") != "yaml" else None
    editor = _editor(svc, text, name, form)
    return svc.page(request, "_editor.html", **_editor_context(svc, editor, name))


def _form_of(data: Any) -> EditorForm:
    targets, expressions_ = data.getlist("map_target"), data.getlist("map_expr")
    rows = [
        MappingRow(target=str(t), expression=str(e))
        for t, e in zip(targets, expressions_, strict=False)
    ]
    new_target = str(data.get("new_target", "")).strip()
    if new_target:
        rows.append(MappingRow(target=new_target, expression=str(data.get("new_expr", ""))))
    return EditorForm(
        name=str(data.get("profile_name", "")),
        source_connection=str(data.get("source_connection", "")),
        source_object=str(data.get("source_object", "")),
        source_filter=str(data.get("source_filter", "")),
        target_connection=str(data.get("target_connection", "")),
        target_object=str(data.get("target_object", "")),
        mode=str(data.get("mode", "insert")),
        match_keys=str(data.get("match_keys", "")),
        create=data.get("create") in ("on", "true", "1"),
        mapping=rows,
    )


def _save(svc: Svc, name: str, text: str) -> str:
    data = read_yaml(text)
    if not isinstance(data, dict) or "source" not in data or "target" not in data:
        raise ConfigError("a profile has a source and a target")
    if not name:
        name = svc.workspace.new_name(str(data.get("name") or ""))
    path = svc.workspace.path(name)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return name


@router.put("/api/profiles")
def api_save(svc: Svc, body: SaveProfile) -> ProfileDetail:
    """Save a profile's YAML into the served folder."""
    return _detail(svc, _save(svc, body.name, body.yaml))


@router.post("/profiles/save", include_in_schema=False)
def save(
    svc: Svc,
    yaml: Annotated[str, Form()],
    name_of_file: Annotated[str, Form()] = "",
) -> Response:
    saved = _save(svc, name_of_file, yaml)
    return RedirectResponse(f"/profiles/show?name={saved}", status_code=303)


# -- expressions --------------------------------------------------------------------------
@router.post("/api/expressions/check")
def api_check(body: CheckRequest) -> ExpressionCheck:
    """Check an expression (filter or mapping) with crmbridge's expression parser."""
    return check_expression(body.expression, body.fields)


@router.post("/profiles/check", include_in_schema=False)
async def check(request: Request, svc: Svc) -> HTMLResponse:
    """htmx, as a mapping or the filter is typed: the answer beside the field."""
    data = await request.form()
    what = str(data.get("check", ""))
    text = str(data.get(what, "")) if what else ""
    if what.startswith("map_expr."):
        index = what.removeprefix("map_expr.")
        texts = data.getlist("map_expr")
        text = str(texts[int(index)]) if index.isdigit() and int(index) < len(texts) else ""
    name = str(data.get("name_of_file", "")) or None
    folder = svc.workspace.path(name).parent if name else svc.workspace.folder
    fields = source_types(str(data.get("yaml", "")), svc.catalog, folder)
    answer = check_expression(text, fields)
    return svc.page(request, "_check.html", answer=answer)


# -- preview and runs ---------------------------------------------------------------------
def _preview(svc: Svc, name: str, limit: int) -> PreviewView:
    loaded = load_profile(svc.workspace.get(name, "profile").path, defer_unknown_settings=True)
    result = preview_profile(loaded, connections=ConnectionStore(), limit=limit)
    first = ["record", "action", "reason", "target_id"]
    columns = first + [c for c in result.records.column_names if c not in first]
    return PreviewView(
        name=name,
        columns=columns,
        rows=[{k: _plain(v) for k, v in row.items()} for row in result.records.to_pylist()],
        pushed_filter=result.pushed_filter,
        local_filter=result.local_filter,
        read=result.read,
    )


def _plain(value: Any) -> Any:
    return value if value is None or isinstance(value, str | int | float | bool) else str(value)


Limit = Annotated[int, Query(ge=1, le=1000)]


@router.get("/api/profiles/preview")
def api_preview(svc: Svc, name: Name, limit: Limit = 10) -> PreviewView:
    """The first records after filter and mapping, with what the run would do to each."""
    return _preview(svc, name, limit)


@router.get("/profiles/preview", include_in_schema=False)
def preview_page(request: Request, svc: Svc, name: Name, limit: Limit = 10) -> HTMLResponse:
    return svc.page(request, "preview.html", preview=_preview(svc, name, limit))


def _start(svc: Svc, profile: str, dry_run: bool) -> Job:
    found = svc.workspace.get(profile, "profile")
    return svc.jobs.start_run(found.path, profile, dry_run=dry_run)


@router.post("/api/runs")
def api_start(svc: Svc, body: StartRun) -> JobView:
    """Start a run (or a dry run) of a profile; follow it at /api/jobs/{id}."""
    return job_view(_start(svc, body.profile, body.dry_run))


@router.post("/runs", include_in_schema=False)
def start(
    svc: Svc, profile: Annotated[str, Form()], dry_run: Annotated[bool, Form()] = False
) -> Response:
    job = _start(svc, profile, dry_run)
    return RedirectResponse(f"/jobs/{job.id}", status_code=303)
