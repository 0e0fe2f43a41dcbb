"""The REST v10/v11 API (``/rest/v10/...``, ``/rest/v11/...``, ``/rest/v11_N/...``): routing,
OAuth2 tokens, server/user/metadata endpoints and bulk calls. Record endpoints live in
:mod:`v10_records`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, parse_qsl

from crmbridge.sandbox.sugarcrm import v10_records as rec
from crmbridge.sandbox.sugarcrm.context import Context, md5_hex
from crmbridge.sandbox.sugarcrm.v10_errors import ApiError
from crmbridge.sandbox.sugarcrm.vardefs import DROPDOWNS, ModuleDef

_VERSION = re.compile(r"^v(10|11)(?:_(\d+))?$")


@dataclass
class Request:
    """One v10 call, already split: ``parts`` is the path after ``/rest/<version>/``."""

    method: str
    version: str
    parts: list[str]
    args: dict[str, Any] = field(default_factory=dict)
    body: Any = None
    token: str | None = None


@dataclass(frozen=True)
class Response:
    status: int
    body: Any
    headers: tuple[tuple[str, str], ...] = ()


Handler = Callable[[Context, Request, str, dict[str, str]], Any]


def version_tuple(version: str) -> tuple[int, int] | None:
    """``"v11_10"`` -> (11, 10); None when it is not a REST version."""
    match = _VERSION.match(version)
    return (int(match.group(1)), int(match.group(2) or 0)) if match else None


def php_query(query: str) -> dict[str, Any]:
    """A query string the way PHP reads it: ``filter[0][name][$starts]=A`` becomes nested data."""
    out: dict[str, Any] = {}
    for key, value in parse_qsl(query, keep_blank_values=True):
        base, _, rest = key.partition("[")
        path = [base, *re.findall(r"\[([^\[\]]*)\]", "[" + rest)] if rest else [base]
        node = out
        for part in path[:-1]:
            part = part or str(len(node))
            if not isinstance(node.get(part), dict):
                node[part] = {}
            node = node[part]
        node[path[-1] or str(len(node))] = value
    return {k: _lists(v) for k, v in out.items()}


def _lists(value: Any) -> Any:
    if not isinstance(value, dict):
        return value
    items = {k: _lists(v) for k, v in value.items()}
    if items and all(k.isdigit() for k in items):
        return [items[k] for k in sorted(items, key=int)]
    return items


def _arg_filter(args: dict[str, Any]) -> dict[str, Any]:
    if isinstance(args.get("filter"), str):
        try:
            args["filter"] = json.loads(args["filter"])
        except ValueError:
            raise ApiError(422, "invalid_parameter", "filter is not valid JSON") from None
    return args


# -- handlers ---------------------------------------------------------------------------------


def _token(ctx: Context, req: Request, user_id: str, m: dict[str, str]) -> Any:
    body = req.body if isinstance(req.body, dict) else {}
    grant = body.get("grant_type")
    if grant == "refresh_token":
        tokens = ctx.sessions.refresh(str(body.get("refresh_token") or ""))
        if tokens is None:
            raise ApiError(401, "invalid_grant", "Invalid refresh token")
        return tokens
    if grant != "password":
        raise ApiError(400, "unsupported_grant_type", f"Grant type {grant!r} is not supported")
    if body.get("client_id") != "sugar":
        raise ApiError(401, "invalid_client", "The client credentials are invalid")
    password = md5_hex(str(body.get("password") or ""))
    found = ctx.check_password(str(body.get("username") or ""), password)
    if found is None:
        raise ApiError(401, "invalid_grant", "Your username or password was incorrect.")
    return ctx.sessions.grant(found, str(body.get("platform") or "base"))


def _logout(ctx: Context, req: Request, user_id: str, m: dict[str, str]) -> Any:
    ctx.sessions.logout_token(req.token)
    return {"success": True}


def _server_info(ctx: Context) -> dict[str, Any]:
    info: dict[str, Any] = {
        "flavor": ctx.settings.flavor,
        "version": ctx.settings.version,
        "build": "1",
        "marketing_version": ctx.settings.version,
        "product_name": f"SugarCRM {ctx.settings.flavor}",
    }
    if ctx.settings.suitecrm_version:  # the same server as v4_1's get_server_info describes
        info["suitecrm_version"] = ctx.settings.suitecrm_version
        info["product_name"] = "SuiteCRM"
    return info


def _me(ctx: Context, req: Request, user_id: str, m: dict[str, str]) -> Any:
    user = ctx.user(user_id)
    zone = str(user.get("time_zone") or "UTC")
    return {
        "current_user": {
            "id": user_id,
            "user_name": user["user_name"],
            "full_name": f"{user.get('first_name') or ''} {user.get('last_name') or ''}".strip(),
            "type": "admin" if user.get("is_admin") else "user",
            "is_admin": bool(user.get("is_admin")),
            "preferences": {"timezone": zone, "datepref": "m/d/Y", "timepref": "h:ia"},
        }
    }


def _metadata(ctx: Context, req: Request, user_id: str, m: dict[str, str]) -> Any:
    """Module fields (``type``, ``len``, ``required``, ``options`` = list name) and the lists."""
    filters = str(req.args.get("type_filter") or "module_list,modules,app_list_strings,server_info")
    kinds = {k.strip() for k in filters.split(",")}
    wanted = str(req.args.get("module_filter") or "")
    names = [n for n in ctx.modules if not wanted or n in wanted.split(",")]
    out: dict[str, Any] = {}
    if "module_list" in kinds:
        out["module_list"] = {n: n for n in ctx.modules}
    if "modules" in kinds:
        out["modules"] = {n: _module_meta(ctx.modules[n]) for n in names}
    if "app_list_strings" in kinds:
        out["app_list_strings"] = DROPDOWNS
    if "server_info" in kinds:
        out["server_info"] = _server_info(ctx)
    out["_hash"] = md5_hex(json.dumps(out, sort_keys=True))
    return out


def _module_meta(mdef: ModuleDef) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for f in mdef.fields:
        meta: dict[str, Any] = {"name": f.name, "type": f.type, "vname": f.display_label}
        if f.shown_len is not None:
            meta["len"] = f.shown_len
        meta["required"] = f.required
        if f.options:
            meta["options"] = f.options
        if f.read_only:
            meta["readonly"] = True
        fields[f.name] = meta
    if mdef.field("email1"):
        fields["email"] = {"name": "email", "type": "email", "vname": "Email Address:"}
    for link in mdef.links:
        fields[link.name] = {
            "name": link.name,
            "type": "link",
            "relationship": link.relationship,
            "module": link.shown_module,
        }
    return {"fields": fields, "table": mdef.table}


def _enum(ctx: Context, req: Request, user_id: str, m: dict[str, str]) -> Any:
    fdef = rec.module(ctx, m["M"]).field(m["field"])
    if fdef is None or not fdef.options:
        raise ApiError(404, "not_found", f"Could not find an enum field: {m['field']}")
    return DROPDOWNS[fdef.options]


def _sync_key(ctx: Context, req: Request, user_id: str, m: dict[str, str]) -> Any:
    if (version_tuple(req.version) or (0, 0)) < (11, 10):
        raise ApiError(404, "no_method", "Could not find a route with 3 elements")
    mdef = rec.module(ctx, m["M"])
    if req.method == "GET":
        found = rec.sync_key_id(ctx, mdef, m["key"])
        if found is None:
            raise ApiError(404, "not_found", f"Could not find record with sync_key: {m['key']}")
        return rec.read(ctx, user_id, mdef, found, req.args)
    status, body = rec.upsert_by_sync_key(ctx, user_id, mdef, m["key"], req.body)
    return Response(status, body)


def _bulk(ctx: Context, req: Request, user_id: str, m: dict[str, str]) -> Any:
    requests = req.body.get("requests") if isinstance(req.body, dict) else None
    if not isinstance(requests, list):
        raise ApiError(422, "missing_parameter", "requests is required")
    out = []
    for item in requests:
        sub = _sub_request(item, req)
        answer = dispatch(ctx, sub) if sub else Response(404, _no_route(0))
        out.append(
            {
                "contents": answer.body,
                "headers": {"Content-Type": "application/json", **dict(answer.headers)},
                "status": answer.status,
            }
        )
    return out


def _sub_request(item: Any, outer: Request) -> Request | None:
    if not isinstance(item, dict) or not isinstance(item.get("url"), str):
        return None
    path, _, query = item["url"].partition("?")
    parts = [p for p in path.split("/") if p]
    if parts and parts[0] == "rest":
        parts = parts[1:]
    if not parts or version_tuple(parts[0]) is None:
        return None
    data = item.get("data")
    if isinstance(data, str):
        try:
            data = json.loads(data) if data.strip() else None
        except ValueError:
            data = None
    headers: dict[str, Any] = item["headers"] if isinstance(item.get("headers"), dict) else {}
    method = str(item.get("method") or "GET").upper()
    args = php_query(query)
    if method == "GET" and isinstance(data, dict):
        args.update(data)
    token = str(headers.get("OAuth-Token") or outer.token or "") or None
    return Request(method, parts[0], parts[1:], args, data, token)


# -- routing ----------------------------------------------------------------------------------


def _rec(fn: Callable[..., Any], *keys: str, body: bool = False, args: bool = False) -> Handler:
    """Adapt a v10_records function taking (ctx, user, mdef, *path values[, body|args])."""

    def handler(ctx: Context, req: Request, user_id: str, m: dict[str, str]) -> Any:
        extra = [req.body] if body else [req.args] if args else []
        return fn(ctx, user_id, rec.module(ctx, m["M"]), *[m[k] for k in keys], *extra)

    return handler


_ROUTES: list[tuple[str, tuple[str, ...], Handler, bool]] = [
    ("POST", ("oauth2", "token"), _token, False),
    ("POST", ("oauth2", "logout"), _logout, True),
    ("GET", ("ping",), lambda c, r, u, m: "pong", True),
    ("GET", ("me",), _me, True),
    ("GET", ("serverinfo",), lambda c, r, u, m: _server_info(c), True),
    ("GET", ("metadata", "public"), lambda c, r, u, m: {"server_info": _server_info(c)}, False),
    ("GET", ("metadata",), _metadata, True),
    ("POST", ("bulk",), _bulk, True),
    ("GET", ("{M}",), _rec(rec.list_records, args=True), True),
    ("POST", ("{M}",), _rec(rec.create, body=True), True),
    ("GET", ("{M}", "filter"), _rec(rec.list_records, args=True), True),
    ("POST", ("{M}", "filter"), _rec(rec.list_records, args=True), True),
    ("GET", ("{M}", "filter", "count"), _rec(rec.count_records, args=True), True),
    ("POST", ("{M}", "filter", "count"), _rec(rec.count_records, args=True), True),
    ("GET", ("{M}", "count"), _rec(rec.count_records, args=True), True),
    ("GET", ("{M}", "enum", "{field}"), _enum, True),
    ("GET", ("{M}", "sync_key", "{key}"), _sync_key, True),
    ("PATCH", ("{M}", "sync_key", "{key}"), _sync_key, True),
    ("GET", ("{M}", "{id}"), _rec(rec.read, "id", args=True), True),
    ("PUT", ("{M}", "{id}"), _rec(rec.update, "id", body=True), True),
    ("DELETE", ("{M}", "{id}"), _rec(rec.delete, "id"), True),
    ("GET", ("{M}", "{id}", "link", "{link}"), _rec(rec.list_links, "id", "link", args=True), True),
    (
        "POST", ("{M}", "{id}", "link", "{link}", "{remote}"),
        lambda c, r, u, m: rec.change_link(
            c, u, rec.module(c, m["M"]), m["id"], m["link"], m["remote"], add=True),
        True,
    ),
    (
        "DELETE", ("{M}", "{id}", "link", "{link}", "{remote}"),
        lambda c, r, u, m: rec.change_link(
            c, u, rec.module(c, m["M"]), m["id"], m["link"], m["remote"], add=False),
        True,
    ),
]  # fmt: skip


def _match(req: Request) -> tuple[str, Handler | None, bool, dict[str, str]]:
    """(template, handler, needs auth, path values); handler None when no route matches."""
    for method, pattern, handler, needs_auth in _ROUTES:
        if method != req.method or len(pattern) != len(req.parts):
            continue
        values: dict[str, str] = {}
        for want, got in zip(pattern, req.parts, strict=True):
            if want.startswith("{"):
                values[want[1:-1]] = got
            elif want != got:
                break
        else:
            template = "/".join(values["M"] if p == "{M}" else p for p in pattern)
            return f"/{template}", handler, needs_auth, values
    return "/" + "/".join(req.parts), None, False, {}


def call_name(req: Request) -> str:
    """The name a call is counted under, e.g. ``v10:GET /Accounts/{id}``."""
    return f"v10:{req.method} {_match(req)[0]}"


def _no_route(n: int) -> dict[str, Any]:
    return {"error": "no_method", "error_message": f"Could not find a route with {n} elements"}


def dispatch(ctx: Context, req: Request) -> Response:
    """Answer one v10 call (errors become their JSON answers)."""
    _, handler, needs_auth, values = _match(req)
    if handler is None:
        return Response(404, _no_route(len(req.parts)))
    try:
        user_id = ""
        if needs_auth:
            found = ctx.sessions.use_token(req.token)
            if found is None:
                raise ApiError(401, "need_login", "No valid authentication for user.")
            user_id = found
        _arg_filter(req.args)
        result = handler(ctx, req, user_id, values)
    except ApiError as error:
        return Response(error.status, error.payload)
    return result if isinstance(result, Response) else Response(200, result)


def build_request(environ: Mapping[str, Any], version: str, parts: list[str]) -> Request:
    """A Request from a WSGI environ (JSON or form body; query string args)."""
    length = int(environ.get("CONTENT_LENGTH") or 0)
    raw = environ["wsgi.input"].read(length).decode("utf-8", "replace") if length else ""
    body: Any = None
    if raw.strip():
        if "json" in str(environ.get("CONTENT_TYPE", "")) or raw.lstrip()[:1] in "{[":
            try:
                body = json.loads(raw)
            except ValueError:
                body = None
        else:
            body = {k: v[-1] for k, v in parse_qs(raw).items()}
    args = php_query(environ.get("QUERY_STRING", ""))
    if isinstance(body, dict):
        args.update(body)
    token = environ.get("HTTP_OAUTH_TOKEN") or None
    method = str(environ.get("REQUEST_METHOD", "GET")).upper()
    return Request(method, version, parts, args, body, token)
