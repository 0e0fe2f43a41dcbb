"""The legacy v4_1 REST endpoint (``/service/v4_1/rest.php``): transport, session and metadata.

A call is a form-encoded POST (GET works too) with ``method``, ``input_type``,
``response_type`` and ``rest_data``. ``rest_data`` is bound to the PHP parameters: a JSON array
positionally, a JSON object by exact parameter name (any other key is a PHP 8 "unknown named
parameter" error: HTTP 500, empty body). Errors are HTTP 200 objects
``{"name","number","description"}``. Without ``response_type=JSON`` the answer is PHP
``print_r`` text and errors are HTTP 500 HTML.
"""

from __future__ import annotations

import inspect
import json
import sqlite3
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

from crmbridge.sandbox.sugarcrm import v4_1_records as records
from crmbridge.sandbox.sugarcrm.context import Context, md5_hex
from crmbridge.sandbox.sugarcrm.sqlfragment import MalformedQueryError, QueryRejectedError
from crmbridge.sandbox.sugarcrm.v4_1_errors import PhpFatalError, V4Error, v4_error
from crmbridge.sandbox.sugarcrm.values import print_r, utc_now
from crmbridge.sandbox.sugarcrm.vardefs import DROPDOWNS

DB_FAILURE = "Database failure. Please refer to suitecrm.log for details."


@dataclass(frozen=True)
class Reply:
    """An HTTP answer."""

    status: int
    body: bytes
    content_type: str = "application/json; charset=UTF-8"


#: Parameter names of each method, in PHP order.
PARAMS: dict[str, tuple[str, ...]] = {
    "login": ("user_auth", "application", "name_value_list"),
    "logout": ("session",),
    "get_server_info": (),
    "get_user_id": ("session",),
    "get_available_modules": ("session", "filter"),
    "get_module_fields": ("session", "module_name", "fields"),
    "get_entry_list": (
        "session", "module_name", "query", "order_by", "offset", "select_fields",
        "link_name_to_fields_array", "max_results", "deleted", "favorites",
    ),
    "get_entries_count": ("session", "module_name", "query", "deleted"),
    "get_entry": (
        "session", "module_name", "id", "select_fields", "link_name_to_fields_array",
        "track_view",
    ),
    "get_entries": (
        "session", "module_name", "ids", "select_fields", "link_name_to_fields_array",
        "track_view",
    ),
    "set_entry": ("session", "module_name", "name_value_list", "track_view"),
    "set_entries": ("session", "module_name", "name_value_lists"),
    "set_relationship": (
        "session", "module_name", "module_id", "link_field_name", "related_ids",
        "name_value_list", "delete",
    ),
    "get_relationships": (
        "session", "module_name", "module_id", "link_field_name", "related_module_query",
        "related_fields", "related_module_link_name_to_fields_array", "deleted", "order_by",
        "offset", "limit",
    ),
    "search_by_module": (
        "session", "search_string", "modules", "offset", "max_results", "assigned_user_id",
        "select_fields", "unified_search_only", "favorites",
    ),
}  # fmt: skip

#: Accepted spellings besides the PHP names (the reference documents ``application_name``).
_ALIASES = {"login": {"application_name": "application"}}


def parse_form(environ: Mapping[str, Any]) -> dict[str, str]:
    """The request fields, like PHP's ``$_REQUEST`` (query string, then the POST body)."""
    fields = {k: v[-1] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}
    length = int(environ.get("CONTENT_LENGTH") or 0)
    if length:
        body = environ["wsgi.input"].read(length).decode("utf-8", "replace")
        fields.update({k: v[-1] for k, v in parse_qs(body, keep_blank_values=True).items()})
    return fields


def call_name(form: Mapping[str, str]) -> str:
    """The name a call is counted under, e.g. ``v4_1:get_entry_list``."""
    return f"v4_1:{form.get('method', '')}"


def session_of(form: Mapping[str, str]) -> str | None:
    """The session id a call carries (its PHP session is locked while it runs), if any."""
    method = form.get("method", "")
    if not _is_json(form) or "session" not in PARAMS.get(method, ()):
        return None
    try:
        session = _bind(method, form.get("rest_data", "")).get("session")
    except PhpFatalError:
        return None
    return session if isinstance(session, str) and session else None


def _bind(method: str, rest_data: str) -> dict[str, Any]:
    """``rest_data`` bound to the method's parameters (PhpFatalError where PHP 8 would throw)."""
    names = PARAMS[method]
    try:
        data: Any = json.loads(rest_data) if rest_data.strip() else []
    except ValueError:
        data = None  # PHP's json_decode gives null, which becomes the first argument
    if isinstance(data, list):
        return dict(zip(names, data, strict=False))
    if not isinstance(data, dict):
        return dict(zip(names, [data], strict=False))
    aliases = _ALIASES.get(method, {})
    bound: dict[str, Any] = {}
    for key, value in data.items():
        name = aliases.get(key, key)
        if name not in names:
            raise PhpFatalError(f"Unknown named parameter ${key}")
        bound[name] = value
    return bound


def _php_json(value: Any) -> Any:
    """Empty PHP arrays encode as ``[]``, never ``{}``."""
    if isinstance(value, dict):
        return {k: _php_json(v) for k, v in value.items()} if value else []
    if isinstance(value, list):
        return [_php_json(v) for v in value]
    return value


def encode_json(value: Any) -> bytes:
    """``json_encode`` output: ASCII only, slashes escaped."""
    return json.dumps(_php_json(value), separators=(",", ":")).replace("/", "\\/").encode("ascii")


def handle(ctx: Context, form: Mapping[str, str]) -> Reply:
    """Answer one rest.php call."""
    method = form.get("method", "")
    as_json = form.get("response_type", "").lower() == "json"
    if method not in PARAMS:
        return _answer(v4_error("invalid_call"), as_json, fault=True)
    function = _METHODS[method]
    try:
        args = _bind(method, form.get("rest_data", "")) if _is_json(form) else {}
        try:
            inspect.signature(function).bind(ctx, **args)
        except TypeError as error:
            raise PhpFatalError(str(error)) from None
        result = function(ctx, **args)
    except V4Error as error:
        return _answer(error.payload, as_json, fault=True)
    except QueryRejectedError:
        return _answer(v4_error("no_access"), as_json, fault=True)
    except (MalformedQueryError, sqlite3.Error):
        return Reply(500, DB_FAILURE.encode(), "text/html; charset=UTF-8")
    except PhpFatalError:
        return Reply(500, b"", "text/html; charset=UTF-8")
    return _answer(result, as_json, fault=False)


def _is_json(form: Mapping[str, str]) -> bool:
    """Only ``input_type=JSON`` decodes ``rest_data``; otherwise PHP calls with no arguments."""
    return form.get("input_type", "").lower() == "json"


def _answer(value: Any, as_json: bool, *, fault: bool) -> Reply:
    if as_json:
        return Reply(200, encode_json(value))
    if fault:
        text = f"<br>500 Internal Server Error <br>{value['number']}: {value['name']}<br>"
        return Reply(500, (text + value.get("description", "")).encode(), "text/html")
    return Reply(200, print_r(value).encode("utf-8"), "text/html; charset=UTF-8")


# -- session and metadata methods -------------------------------------------------------------


def login(
    ctx: Context,
    user_auth: Any,
    application: Any = None,
    name_value_list: Any = None,
) -> dict[str, Any]:
    if not isinstance(user_auth, dict):
        raise V4Error("invalid_login")
    password = str(user_auth.get("password") or "")
    if str(user_auth.get("encryption", "")) == "PLAIN":
        password = md5_hex(password)
    user_id = ctx.check_password(str(user_auth.get("user_name") or ""), password)
    if user_id is None:
        raise V4Error("invalid_login")
    user = ctx.user(user_id)
    session = ctx.sessions.login_v4(user_id)
    values: list[tuple[str, Any]] = [
        ("user_id", user_id),
        ("user_name", user["user_name"]),
        ("user_language", "en_us"),
        ("user_currency_id", "-99"),
        ("user_is_admin", bool(user.get("is_admin"))),
        ("user_default_team_id", None),
        ("user_default_dateformat", "m/d/Y"),
        ("user_default_timeformat", "h:ia"),
        ("user_number_seperator", ","),
        ("user_decimal_seperator", "."),
        ("mobile_max_list_entries", 10),
        ("mobile_max_subpanel_entries", 3),
        ("user_currency_name", "US Dollars"),
    ]
    return {
        "id": session,
        "module_name": "Users",
        "name_value_list": {k: {"name": k, "value": v} for k, v in values},
    }


def logout(ctx: Context, session: Any) -> None:
    records.auth(ctx, session)
    ctx.sessions.logout_v4(session)


def get_server_info(ctx: Context) -> dict[str, Any]:
    info: dict[str, Any] = {"flavor": ctx.settings.flavor, "version": ctx.settings.version}
    if ctx.settings.suitecrm_version:
        info["suitecrm_version"] = ctx.settings.suitecrm_version
    info["gmt_time"] = utc_now()
    return info


def get_user_id(ctx: Context, session: Any) -> str:
    return records.auth(ctx, session)


def get_available_modules(ctx: Context, session: Any, filter: Any = "default") -> dict[str, Any]:
    records.auth(ctx, session)
    names = [n for n in ctx.modules if filter == "all" or n != "Users"]
    acls = [
        {"action": a, "access": True}
        for a in ("edit", "delete", "list", "view", "import", "export")
    ]
    return {
        "modules": [
            {"module_key": n, "module_label": n, "favorite_enabled": False, "acls": acls}
            for n in names
        ]
    }


def get_module_fields(
    ctx: Context, session: Any, module_name: Any = None, fields: Any = None
) -> dict[str, Any]:
    records.auth(ctx, session)
    mdef = records.module(ctx, module_name)
    wanted = set(fields) if isinstance(fields, list) and fields else None
    module_fields: dict[str, Any] = {}
    for f in records.v4_fields(mdef):
        if wanted is not None and f.name not in wanted:
            continue
        options = DROPDOWNS.get(f.options or "", {})
        module_fields[f.name] = {
            "name": f.name,
            "type": f.type,
            "group": "",
            "id_name": "",
            "label": f.display_label,
            "required": int(f.required),
            "options": {k: {"name": k, "value": v} for k, v in options.items()},
            "related_module": "",
            "calculated": False,
            "len": f.shown_len if f.shown_len is not None else "",
        }
    link_fields = {
        link.name: {
            "name": link.name,
            "type": "link",
            "group": "",
            "id_name": "",
            "relationship": link.relationship,
            "module": link.shown_module,
            "bean_name": _bean(ctx, link.module) if link.module_shown else "",
        }
        for link in mdef.links
        if wanted is None or link.name in wanted
    }
    return {
        "module_name": mdef.name,
        "table_name": mdef.table,
        "module_fields": module_fields,
        "link_fields": link_fields,
    }


def _bean(ctx: Context, module: str) -> str:
    mdef = ctx.modules.get(module)
    return mdef.bean if mdef is not None else ""


_METHODS: dict[str, Callable[..., Any]] = {
    "login": login,
    "logout": logout,
    "get_server_info": get_server_info,
    "get_user_id": get_user_id,
    "get_available_modules": get_available_modules,
    "get_module_fields": get_module_fields,
    "get_entry_list": records.get_entry_list,
    "get_entries_count": records.get_entries_count,
    "get_entry": records.get_entry,
    "get_entries": records.get_entries,
    "set_entry": records.set_entry,
    "set_entries": records.set_entries,
    "set_relationship": records.set_relationship,
    "get_relationships": records.get_relationships,
    "search_by_module": records.search_by_module,
}
