"""The FastAPI application: pages, their JSON twins, logging in, errors."""

from __future__ import annotations

import secrets
from importlib import resources
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, FastAPI, Form, Path, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from markupsafe import escape
from pydantic import BaseModel

from crmbridge import __version__
from crmbridge.errors import ConfigError, CrmBridgeError
from crmbridge.web.catalog import Catalog
from crmbridge.web.config import WebConfig
from crmbridge.web.jobs import Jobs
from crmbridge.web.security import (
    CSRF_FIELD,
    LOGIN_COOKIE,
    SESSION_COOKIE,
    CsrfError,
    Guard,
    LoginRequiredError,
)
from crmbridge.web.workspace import NotFoundError, Workspace

PACKAGE = resources.files("crmbridge.web")


class Health(BaseModel):
    status: str
    version: str


class Services:
    """What every route uses: the configuration, the login guard, the profiles, the jobs."""

    def __init__(self, config: WebConfig) -> None:
        self.config = config
        self.guard = Guard(config)
        self.workspace = Workspace(config.folder)
        self.catalog = Catalog()
        self.jobs = Jobs(config.state_url)
        self.templates = Jinja2Templates(directory=str(PACKAGE / "templates"))
        self.templates.env.globals["version"] = __version__

    def page(
        self, request: Request, template: str, status_code: int = 200, **context: Any
    ) -> HTMLResponse:
        context.setdefault("csrf", self.guard.csrf_token(request))
        context.setdefault("csrf_field", CSRF_FIELD)
        context.setdefault("logged_in", self.guard.session_of(request) is not None)
        return self.templates.TemplateResponse(request, template, context, status_code=status_code)


def services(request: Request) -> Services:
    found: Services = request.app.state.services
    return found


Svc = Annotated[Services, Depends(services)]
#: a run, job or conflict number (the state store keeps 64-bit integers)
Number = Annotated[int, Path(ge=1, le=2**62)]


async def _guard(request: Request) -> None:
    await services(request).guard.check(request)


def create_app(config: WebConfig) -> FastAPI:
    from crmbridge.web import connections, profiles, runs, schedules, syncs

    app = FastAPI(
        title="crmbridge",
        version=__version__,
        description="The JSON twins of the crmbridge web UI's pages. Log in with "
        "`Authorization: Bearer <the token crmbridge serve printed>`.",
        docs_url="/api/docs",
        redoc_url=None,
        openapi_url="/openapi.json",
    )
    app.state.services = Services(config)
    app.mount("/static", StaticFiles(directory=str(PACKAGE / "static")), name="static")
    app.include_router(public)
    for module in (connections, profiles, runs, syncs, schedules):
        app.include_router(module.router, dependencies=[Depends(_guard)])
    _handlers(app)
    return app


def _is_api(request: Request) -> bool:
    return request.url.path.startswith("/api/")


def _handlers(app: FastAPI) -> None:
    @app.exception_handler(LoginRequiredError)
    async def login_required(request: Request, exc: LoginRequiredError) -> Response:
        if _is_api(request) or request.method != "GET":
            return JSONResponse({"detail": "log in first"}, status_code=401)
        here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/login?next={quote(here, safe='/')}", status_code=303)

    @app.exception_handler(CsrfError)
    async def csrf_missing(request: Request, exc: CsrfError) -> Response:
        message = "the form is out of date (missing or wrong CSRF token): reload the page"
        return _problem(request, message, 403)

    @app.exception_handler(CrmBridgeError)
    async def crmbridge_error(request: Request, exc: CrmBridgeError) -> Response:
        status = 404 if isinstance(exc, NotFoundError) else 400
        if not isinstance(exc, ConfigError):
            status = 502  # a system did not answer or refused
        return _problem(request, str(exc), status)

    @app.exception_handler(OSError)
    async def os_error(request: Request, exc: OSError) -> Response:
        where = f"{exc.filename}: " if exc.filename else ""
        return _problem(request, f"{where}{exc.strerror or exc}", 400)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> Response:
        if _is_api(request):
            return JSONResponse({"detail": jsonable_encoder(exc.errors())}, status_code=422)
        lines = [f"{'.'.join(str(p) for p in e['loc'][1:])}: {e['msg']}" for e in exc.errors()]
        return _problem(request, "; ".join(lines), 422)


def _problem(request: Request, message: str, status: int) -> Response:
    """The error as the caller reads it: JSON for the API, a paragraph for htmx (shown in
    the page's flash area), else an error page."""
    if _is_api(request):
        return JSONResponse({"detail": message}, status_code=status)
    if request.headers.get("hx-request"):
        return HTMLResponse(f'<p class="error" role="alert">{escape(message)}</p>', status)
    return services(request).page(request, "error.html", status, message=message)


# -- the routes that need no login --------------------------------------------------------
public = APIRouter()


@public.get("/health", tags=["operations"])
def health() -> Health:
    """Whether the server is up (no login needed)."""
    return Health(status="ok", version=__version__)


@public.get("/login", include_in_schema=False)
def login_page(request: Request, svc: Svc, next: str = "/", token: str | None = None) -> Response:
    if token is not None and svc.guard.accepts(token):  # the link crmbridge serve printed
        return _logged_in(svc, next)
    nonce = request.cookies.get(LOGIN_COOKIE) or secrets.token_urlsafe(16)
    response = svc.page(
        request,
        "login.html",
        csrf=svc.guard.csrf_for("login:" + nonce),
        next=_local(next),
        password=svc.config.password is not None,
    )
    response.set_cookie(LOGIN_COOKIE, nonce, httponly=True, samesite="strict")
    return response


@public.post("/login", include_in_schema=False)
async def login(
    request: Request,
    svc: Svc,
    secret: Annotated[str, Form()],
    next: Annotated[str, Form()] = "/",
) -> Response:
    nonce = request.cookies.get(LOGIN_COOKIE, "")
    await svc.guard.check_csrf(request, svc.guard.csrf_for("login:" + nonce))
    if not svc.guard.accepts(secret.strip()):
        return svc.page(
            request,
            "login.html",
            401,
            next=_local(next),
            password=svc.config.password is not None,
            message="That is not the token crmbridge serve printed"
            + (" nor the password." if svc.config.password is not None else "."),
        )
    response = _logged_in(svc, next)
    response.delete_cookie(LOGIN_COOKIE)
    return response


def _logged_in(svc: Services, next: str) -> Response:
    response = RedirectResponse(_local(next), status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        svc.guard.new_session(),
        httponly=True,
        samesite="strict",
        secure=svc.config.https,
    )
    return response


@public.post("/logout", include_in_schema=False)
async def logout(request: Request, svc: Svc) -> Response:
    session = svc.guard.session_of(request)
    if session is not None:
        await svc.guard.check_csrf(request, svc.guard.csrf_for(session))
    svc.guard.end_session(session)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE)
    return response


def _local(target: str) -> str:
    """Only a path of this server (no open redirect)."""
    return target if target.startswith("/") and not target.startswith("//") else "/"
