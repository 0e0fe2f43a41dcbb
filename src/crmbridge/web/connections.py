"""Connections: list, add (secret fields masked, never shown back), test, remove."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import BaseModel, Field

from crmbridge.errors import ConfigError, CrmBridgeError
from crmbridge.web.app import Svc
from crmbridge.web.catalog import ConnectionView, SettingInfo, settings_of, types

router = APIRouter(tags=["connections"])


class ConnectionsPage(BaseModel):
    connections: list[ConnectionView]
    types: list[str]


class NewConnection(BaseModel):
    name: str
    type: str
    #: settings by name, secrets included (they are stored encrypted, never shown back)
    settings: dict[str, Any] = Field(default_factory=dict)
    replace: bool = False


class FieldView(BaseModel):
    name: str
    type: str
    required: bool
    key: bool
    read_only: bool
    allowed_values: list[str] | None


class ObjectView(BaseModel):
    connection: str
    object: str
    fields: list[FieldView]
    write_modes: list[str]
    pushdown: str


class ObjectsView(BaseModel):
    connection: str
    objects: list[str]


class TestAnswer(BaseModel):
    ok: bool
    system: str | None = None
    version: str | None = None
    details: dict[str, str] = Field(default_factory=dict)
    error: str | None = None


def _page(svc: Svc) -> ConnectionsPage:
    return ConnectionsPage(connections=svc.catalog.connections(), types=types())


@router.get("/api/connections")
def api_connections(svc: Svc) -> ConnectionsPage:
    """The saved connections (which secrets are stored, never their values) and the types."""
    return _page(svc)


@router.get("/connections", include_in_schema=False)
def connections_page(request: Request, svc: Svc, type: str = "csv") -> HTMLResponse:
    page = _page(svc)
    chosen = type if type in page.types else "csv"
    return svc.page(
        request, "connections.html", page=page, chosen=chosen, settings=settings_of(chosen)
    )


@router.get("/api/connection-types/{type_name}")
def api_connection_type(type_name: str) -> list[SettingInfo]:
    """The settings a connection of this type takes (secret ones flagged)."""
    if type_name not in types():
        raise ConfigError(f"unknown connection type {type_name!r}")
    return settings_of(type_name)


@router.get("/connections/fields", include_in_schema=False)
def connection_fields(request: Request, svc: Svc, type: str) -> HTMLResponse:
    """The form's settings for a type (htmx swaps them in when the type changes)."""
    if type not in types():
        raise ConfigError(f"unknown connection type {type!r}")
    return svc.page(request, "_connection_fields.html", settings=settings_of(type))


@router.post("/api/connections")
def api_add(svc: Svc, body: NewConnection) -> ConnectionView:
    """Save a connection (replace=true replaces one of that name)."""
    return svc.catalog.add(body.name, body.type, body.settings, replace=body.replace)


@router.post("/connections", include_in_schema=False)
async def add(
    request: Request,
    svc: Svc,
    name: Annotated[str, Form()],
    type: Annotated[str, Form()],
    replace: Annotated[bool, Form()] = False,
) -> Response:
    form = await request.form()
    known = {s.name for s in settings_of(type)}
    settings = {
        key.removeprefix("setting."): value
        for key, value in form.items()
        if key.startswith("setting.") and key.removeprefix("setting.") in known
    }
    saved = svc.catalog.add(name.strip(), type, settings, replace=replace)
    return RedirectResponse(f"/connections?added={saved.name}", status_code=303)


def _test(svc: Svc, name: str) -> TestAnswer:
    store = svc.catalog.store()
    connection = store.get(name)  # an unknown name is a 400, not a failed test
    try:
        with connection.connector() as connector:
            info = connector.check()
    except CrmBridgeError as err:
        return TestAnswer(ok=False, error=str(err))
    return TestAnswer(ok=True, system=info.system, version=info.version, details=info.details)


@router.post("/api/connections/{name}/test")
def api_test(svc: Svc, name: str) -> TestAnswer:
    """Connect and say what answered (system, version, user ...), or why it did not."""
    return _test(svc, name)


@router.post("/connections/{name}/test", include_in_schema=False)
def test(request: Request, svc: Svc, name: str) -> HTMLResponse:
    return svc.page(request, "_test_answer.html", answer=_test(svc, name), name=name)


@router.delete("/api/connections/{name}")
def api_remove(svc: Svc, name: str) -> ConnectionsPage:
    """Delete a saved connection and its secrets."""
    svc.catalog.remove(name)
    return _page(svc)


@router.post("/connections/{name}/remove", include_in_schema=False)
def remove(svc: Svc, name: str) -> Response:
    svc.catalog.remove(name)
    return RedirectResponse("/connections", status_code=303)


# -- what a connection can see (``crmbridge objects`` and ``describe``) ------------------
@router.get("/api/connections/{name}/objects")
def api_objects(svc: Svc, name: str) -> ObjectsView:
    """The objects (tables, files, sheets, modules) the connection can see."""
    return ObjectsView(connection=name, objects=svc.catalog.objects(name))


@router.get("/connections/{name}/objects", include_in_schema=False)
def objects_page(request: Request, svc: Svc, name: str) -> HTMLResponse:
    return svc.page(request, "objects.html", found=api_objects(svc, name))


@router.get("/api/connections/{name}/describe")
def api_describe(svc: Svc, name: str, object: str) -> ObjectView:
    """An object's fields: type, required, key, read-only, allowed values; and what the
    connection can write to it."""
    schema = svc.catalog.describe(name, object)
    with svc.catalog.store().get(name).connector() as connector:
        caps = connector.capabilities()
    return ObjectView(
        connection=name,
        object=schema.name,
        fields=[
            FieldView(
                name=f.name,
                type=f.describe_type(),
                required=f.required,
                key=f.key,
                read_only=f.read_only,
                allowed_values=list(f.allowed_values) if f.allowed_values else None,
            )
            for f in schema.fields
        ],
        write_modes=sorted(m.value for m in caps.write_modes),
        pushdown=str(caps.pushdown),
    )


@router.get("/connections/{name}/describe", include_in_schema=False)
def describe_page(request: Request, svc: Svc, name: str, object: str) -> HTMLResponse:
    return svc.page(request, "describe.html", found=api_describe(svc, name, object))
