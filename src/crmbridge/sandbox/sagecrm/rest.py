"""The sagecrm2 REST API: ``/sdata/{install}j/sagecrm2/-/{entity}`` over the same store.

Stateless: every request carries HTTP Basic credentials (``Authorization`` or
``X-Sage-Authorization``). Records are JSON objects of prefixed column names plus ``$key`` and
``$url``; lists are ``{"$resources": [...], "$totalResults", "$startIndex", "$itemsPerPage"}``
with ``$next`` while more follow. Every link is ``http://``, whatever the request came over.
``orderBy`` is honoured from 2024 R2 on and ignored before. Errors are
``{"$diagnoses": [{"severity": "error", "message": ...}]}``.
"""

from __future__ import annotations

import base64
import json
import re
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

from crmbridge.sandbox.sagecrm.conditions import order_clause, rest_condition
from crmbridge.sandbox.sagecrm.context import Context
from crmbridge.sandbox.sagecrm.entities import DROPDOWN, DROPDOWNS, ENTITIES, Entity
from crmbridge.sandbox.sagecrm.problems import ApiError
from crmbridge.sandbox.sagecrm.soap_ops import caption
from crmbridge.sandbox.sagecrm.values import from_db, to_json

DEFAULT_COUNT = 100
_KEYED = re.compile(r"^(?P<entity>[A-Za-z_]+)\(\s*'?(?P<key>[^')]*)'?\s*\)$")


@dataclass(frozen=True)
class Request:
    method: str
    parts: list[str]  # path after /sdata/{install}j/sagecrm2/-/
    query: Mapping[str, str]
    headers: Mapping[str, str]
    body: bytes
    host: str
    base: str  # /sdata/{install}j/sagecrm2/-


@dataclass(frozen=True)
class Response:
    status: int
    body: Any


def diagnosis(message: str, status: int) -> Response:
    return Response(status, {"$diagnoses": [{"severity": "error", "message": message}]})


def handle(ctx: Context, request: Request) -> Response:
    try:
        user_id = _authenticate(ctx, request.headers)
        return _route(ctx, request, user_id)
    except ApiError as error:
        return diagnosis(error.message, error.status)


def _authenticate(ctx: Context, headers: Mapping[str, str]) -> int:
    value = headers.get("x-sage-authorization") or headers.get("authorization") or ""
    scheme, _, encoded = value.partition(" ")
    if scheme.lower() != "basic" or not encoded:
        raise ApiError("Authentication required (HTTP Basic)", 401)
    try:
        user, _, password = base64.b64decode(encoded).decode("utf-8").partition(":")
    except ValueError:
        raise ApiError("Invalid Basic credentials", 401) from None
    return ctx.check_password(user, password)


def _route(ctx: Context, request: Request, user_id: int) -> Response:
    parts = request.parts
    if not parts:
        if request.method != "GET":
            raise ApiError("Method not allowed", 405)
        names = sorted(ctx.settings.web_entities)
        return Response(200, {"$resources": [{"$key": n, "name": n} for n in names]})
    keyed = _KEYED.match(parts[0])
    entity = ctx.entity(keyed.group("entity") if keyed else parts[0])
    if len(parts) == 2 and parts[1] == "$schema" and not keyed and request.method == "GET":
        return Response(200, _schema(entity))
    if len(parts) > 1:
        raise ApiError("Not found", 404)
    if keyed:
        record_id = _record_id(keyed.group("key"))
        if request.method == "GET":
            row = ctx.store.get(entity, record_id)
            if row is None:
                raise ApiError(f"Record {record_id} of entity '{entity.name}' does not exist", 404)
            return Response(200, _resource(ctx, request, entity, row))
        if request.method == "PUT":
            ctx.check_right(user_id, entity, "edit")
            values = _body(request)
            clean = ctx.store.clean(entity, values, ctx.settings.wire_zone, creating=False)
            ctx.store.update(entity, record_id, clean, user_id)
            return Response(200, _resource(ctx, request, entity, ctx.store.get(entity, record_id)))
        if request.method == "DELETE":
            ctx.check_right(user_id, entity, "delete")
            ctx.store.soft_delete(entity, record_id, user_id)
            return Response(200, {"$key": str(record_id), "deleted": True})
        raise ApiError("Method not allowed", 405)
    if request.method == "GET":
        return _list(ctx, request, entity)
    if request.method == "POST":
        ctx.check_right(user_id, entity, "insert")
        values = _body(request)
        clean = ctx.store.clean(entity, values, ctx.settings.wire_zone, creating=True)
        new_id = ctx.store.create(entity, clean, user_id)
        return Response(201, _resource(ctx, request, entity, ctx.store.get(entity, new_id)))
    raise ApiError("Method not allowed", 405)


def _record_id(key: str) -> int:
    try:
        return int(key)
    except ValueError:
        raise ApiError(f"Invalid key '{key}'", 400) from None


def _body(request: Request) -> dict[str, Any]:
    try:
        body = json.loads(request.body or b"{}")
    except ValueError:
        raise ApiError("The body is not JSON", 400) from None
    if not isinstance(body, dict):
        raise ApiError("The body must be a JSON object", 400)
    return {k: v for k, v in body.items() if not k.startswith("$")}


def _int(request: Request, name: str, default: int, minimum: int) -> int:
    text = request.query.get(name)
    if text is None or text == "":
        return default
    try:
        value = int(text)
    except ValueError:
        raise ApiError(f"Invalid {name}: {text}", 400) from None
    if value < minimum:
        raise ApiError(f"Invalid {name}: {text}", 400)
    return value


def _list(ctx: Context, request: Request, entity: Entity) -> Response:
    start = _int(request, "startIndex", 1, 1)
    count = _int(request, "count", DEFAULT_COUNT, 1)
    limit = ctx.settings.max_records
    if limit:
        count = min(count, limit)
    where, params = rest_condition(entity, request.query.get("where", ""))
    order_text = request.query.get("orderBy", "")
    order = None
    if order_text.strip() and ctx.settings.has_release("2024 R2"):
        order = order_clause(entity, order_text, rest=True)
    try:
        ids = ctx.store.select_ids(entity, where, params, order=order)
    except sqlite3.Error:
        raise ApiError("Invalid where clause", 400) from None
    page = ids[start - 1 : start - 1 + count]
    rows = ctx.store.fetch(entity, page)
    body: dict[str, Any] = {
        "$url": _url(request, entity.name),
        "$totalResults": len(ids),
        "$startIndex": start,
        "$itemsPerPage": count,
        "$resources": [_resource(ctx, request, entity, row) for row in rows],
    }
    if start - 1 + count < len(ids):
        query = dict(request.query, startIndex=str(start + count), count=str(count))
        body["$next"] = _url(request, entity.name) + "?" + urlencode(query, quote_via=quote)
    return Response(200, body)


def _url(request: Request, tail: str) -> str:
    return f"http://{request.host}{request.base}/{tail}"


def _resource(ctx: Context, request: Request, entity: Entity, row: Any) -> dict[str, Any]:
    settings = ctx.settings
    key = str(row[entity.id_column])
    out: dict[str, Any] = {"$key": key, "$url": _url(request, f"{entity.name}('{key}')")}
    for column in entity.columns:
        value = from_db(column, row.get(column.name), server=settings.zone, wire=settings.wire_zone)
        out[column.name] = to_json(value)
    return out


def _schema(entity: Entity) -> dict[str, Any]:
    fields = []
    for column in entity.columns:
        item: dict[str, Any] = {
            "name": column.name,
            "type": column.type,
            "length": column.length,
            "required": column.required,
            "readonly": column.system,
            "caption": caption(column),
        }
        if column.type == DROPDOWN:
            item["values"] = list(DROPDOWNS.get(column.name, ()))
        fields.append(item)
    return {"name": entity.name, "table": ENTITIES[entity.name].table, "fields": fields}
