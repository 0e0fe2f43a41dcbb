"""The REST API under ``/services/data/vXX.X/``: describe, query / queryAll with cursors,
single-record calls, upsert by external id, sObject Collections and limits. Bulk API 2.0
lives in :mod:`bulk`."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from typing import Any

from crmbridge.sandbox.salesforce import soql
from crmbridge.sandbox.salesforce.context import Context, Request, Response
from crmbridge.sandbox.salesforce.errors import ApiError, RecordRefusedError, not_found
from crmbridge.sandbox.salesforce.objects import (
    LONG_TEXT,
    OBJECTS,
    FieldDef,
    ObjectDef,
    find_object,
)
from crmbridge.sandbox.salesforce.records import MultipleMatchesError, Records
from crmbridge.sandbox.salesforce.values import to_json

MAX_COLLECTION = 200
MIN_BATCH, MAX_BATCH = 200, 2000


def sobject(name: str) -> ObjectDef:
    odef = find_object(name)
    if odef is None:
        raise ApiError(404, "NOT_FOUND", "The requested resource does not exist")
    return odef


def record_url(version: str, odef: ObjectDef, record_id: str) -> str:
    return f"/services/data/v{version}/sobjects/{odef.name}/{record_id}"


# -- describe ---------------------------------------------------------------------------------
def _soap_type(fdef: FieldDef) -> str:
    return {
        "id": "tns:ID", "reference": "tns:ID", "boolean": "xsd:boolean", "int": "xsd:int",
        "double": "xsd:double", "currency": "xsd:double", "percent": "xsd:double",
        "date": "xsd:date", "datetime": "xsd:dateTime",
    }.get(fdef.type, "xsd:string")  # fmt: skip


def describe_field(fdef: FieldDef) -> dict[str, Any]:
    return {
        "name": fdef.name,
        "label": fdef.label,
        "type": fdef.type,
        "soapType": _soap_type(fdef),
        "length": fdef.length if fdef.type not in ("boolean", "date", "datetime") else 0,
        "byteLength": fdef.length * 3,
        "precision": fdef.precision,
        "scale": fdef.scale,
        "digits": fdef.precision if fdef.type == "int" else 0,
        "nillable": fdef.nillable,
        "createable": fdef.createable,
        "updateable": fdef.updateable,
        "defaultedOnCreate": fdef.defaulted or fdef.system,
        "calculated": fdef.calculated,
        "autoNumber": False,
        "custom": fdef.custom,
        "externalId": fdef.external_id,
        "idLookup": fdef.id_lookup,
        "unique": fdef.unique,
        "caseSensitive": fdef.case_sensitive,
        "filterable": fdef.filterable,
        "sortable": fdef.sortable,
        "groupable": fdef.type != "textarea" or fdef.length <= LONG_TEXT,
        "restrictedPicklist": fdef.restricted,
        "picklistValues": [
            {"value": v, "label": v, "active": True, "defaultValue": i == 0 and fdef.defaulted}
            for i, v in enumerate(fdef.picklist)
        ],
        "referenceTo": list(fdef.reference_to),
        "relationshipName": fdef.relationship,
        "cascadeDelete": False,
        "htmlFormatted": False,
    }


def describe_global(version: str) -> dict[str, Any]:
    return {
        "encoding": "UTF-8",
        "maxBatchSize": MAX_COLLECTION,
        "sobjects": [_object_summary(o, version) for o in OBJECTS.values()],
    }


def _object_summary(odef: ObjectDef, version: str) -> dict[str, Any]:
    base = f"/services/data/v{version}/sobjects/{odef.name}"
    writable = odef.name != "User"
    return {
        "name": odef.name,
        "label": odef.label,
        "labelPlural": odef.plural,
        "keyPrefix": odef.prefix,
        "custom": False,
        "queryable": True,
        "retrieveable": True,
        "searchable": True,
        "createable": writable,
        "updateable": writable,
        "deletable": writable,
        "replicateable": True,
        "urls": {
            "sobject": base,
            "describe": f"{base}/describe",
            "rowTemplate": f"{base}/{{ID}}",
        },
    }


def describe(ctx: Context, req: Request, name: str) -> Response:
    odef = sobject(name)
    body = _object_summary(odef, req.version)
    body["fields"] = [describe_field(f) for f in odef.fields]
    body["childRelationships"] = [
        {"relationshipName": rel, "childSObject": child, "field": fld, "cascadeDelete": False}
        for rel, child, fld in odef.children
    ]
    return Response(200, body)


# -- query ------------------------------------------------------------------------------------
@dataclass
class Cursor:
    records: list[dict[str, Any]]
    endpoint: str
    used_at: float


def json_record(version: str, compiled: soql.Compiled, row: dict[str, Any]) -> dict[str, Any]:
    """A query row as the REST answer shows it (parents as nested records)."""
    odef = compiled.odef
    out: dict[str, Any] = {
        "attributes": {"type": odef.name, "url": record_url(version, odef, row["__id"])}
    }
    for column in compiled.columns:
        value = to_json(column.fdef, row[column.path])
        ref = column.relationship
        if ref is None:
            out[column.fdef.name] = value
            continue
        name = str(ref.relationship)
        parent_id = row[f"__{name}"]
        if parent_id is None:
            out[name] = None
            continue
        parent = out.get(name)
        if parent is None:
            parent = out[name] = {
                "attributes": {
                    "type": column.odef.name,
                    "url": record_url(version, column.odef, parent_id),
                }
            }
        parent[column.fdef.name] = value
    return out


def query(ctx: Context, req: Request, *, include_deleted: bool) -> Response:
    text = req.args.get("q")
    if not text:
        raise ApiError(400, "MALFORMED_QUERY", "A query string has to be specified")
    compiled = soql.compile_query(text, include_deleted=include_deleted)
    if compiled.count_only:
        total = soql.count(ctx.store, compiled)
        return Response(200, {"totalSize": total, "done": True, "records": []})
    rows = soql.run(ctx.store, compiled)
    records = [json_record(req.version, compiled, r) for r in rows]
    endpoint = "queryAll" if include_deleted else "query"
    return _page(ctx, req, records, endpoint, None, 0)


def _batch_size(ctx: Context, req: Request) -> int:
    options = req.headers.get("sforce-query-options", "")
    for part in options.split(","):
        key, _, value = part.strip().partition("=")
        if key.strip().lower() == "batchsize" and value.strip().isdigit():
            return max(MIN_BATCH, min(MAX_BATCH, int(value)))
    return ctx.settings.query_batch_size


def _page(
    ctx: Context,
    req: Request,
    records: list[dict[str, Any]],
    endpoint: str,
    locator: str | None,
    start: int,
) -> Response:
    size = _batch_size(ctx, req)
    end = min(len(records), start + size)
    body: dict[str, Any] = {"totalSize": len(records), "done": end >= len(records)}
    if end < len(records):
        with ctx.lock:
            if locator is None:
                locator = "01g5g" + secrets.token_hex(5).upper()[:10]
                ctx.cursors[locator] = Cursor(records, endpoint, time.monotonic())
        body["nextRecordsUrl"] = f"/services/data/v{req.version}/{endpoint}/{locator}-{end}"
    elif locator is not None:
        with ctx.lock:
            ctx.cursors.pop(locator, None)
    body["records"] = records[start:end]
    return Response(200, body)


def query_more(ctx: Context, req: Request, endpoint: str, token: str) -> Response:
    locator, _, position = token.rpartition("-")
    with ctx.lock:
        cursor = ctx.cursors.get(locator)
        ttl = ctx.settings.query_locator_ttl
        if cursor is not None and time.monotonic() - cursor.used_at > ttl:
            del ctx.cursors[locator]
            cursor = None
        if cursor is not None:
            cursor.used_at = time.monotonic()
    if cursor is None or not position.isdigit() or int(position) > len(cursor.records):
        raise ApiError(400, "INVALID_QUERY_LOCATOR", "invalid query locator")
    return _page(ctx, req, cursor.records, endpoint, locator, int(position))


# -- single records ---------------------------------------------------------------------------
def _record_body(req: Request) -> dict[str, Any]:
    body = req.json()
    if not isinstance(body, dict):
        raise ApiError(
            400, "JSON_PARSER_ERROR", "Cannot deserialize instance of sObject from the body"
        )
    return body


def create(ctx: Context, req: Request, name: str) -> Response:
    odef = sobject(name)
    records = Records(ctx.store, req.user_id)
    try:
        new_id = records.create(odef, _record_body(req))
    except RecordRefusedError as failure:
        raise ApiError(400, failure.code, failure.message, failure.fields) from None
    return Response(201, {"id": new_id, "success": True, "errors": []})


def read(ctx: Context, req: Request, name: str, record_id: str) -> Response:
    odef = sobject(name)
    records = Records(ctx.store, req.user_id)
    try:
        found = records.live_id(odef, record_id)
    except RecordRefusedError:
        raise not_found() from None
    wanted = [f for f in req.args.get("fields", "").split(",") if f.strip()]
    fields = [odef.field(f.strip()) for f in wanted] if wanted else list(odef.fields)
    if any(f is None for f in fields):
        raise ApiError(400, "INVALID_FIELD", f"No such column on sobject of type {odef.name}")
    row = ctx.store.row(odef, found) or {}
    out: dict[str, Any] = {
        "attributes": {"type": odef.name, "url": record_url(req.version, odef, found)}
    }
    for fdef in fields:
        assert fdef is not None
        out[fdef.name] = to_json(fdef, row.get(fdef.name))
    return Response(200, out)


def update(ctx: Context, req: Request, name: str, record_id: str) -> Response:
    odef = sobject(name)
    try:
        Records(ctx.store, req.user_id).update(odef, record_id, _record_body(req))
    except RecordRefusedError as failure:
        if failure.code in ("INVALID_CROSS_REFERENCE_KEY", "MALFORMED_ID") and not failure.fields:
            raise not_found() from None
        status = 404 if failure.code == "ENTITY_IS_DELETED" else 400
        raise ApiError(status, failure.code, failure.message, failure.fields) from None
    return Response(204)


def delete(ctx: Context, req: Request, name: str, record_id: str) -> Response:
    odef = sobject(name)
    try:
        Records(ctx.store, req.user_id).delete(odef, record_id)
    except RecordRefusedError as failure:
        if failure.code == "ENTITY_IS_DELETED":
            raise ApiError(404, failure.code, failure.message) from None
        raise not_found() from None
    return Response(204)


def external_field(odef: ObjectDef, name: str) -> FieldDef:
    fdef = odef.field(name)
    if fdef is None or not (fdef.external_id or fdef.name == "Id"):
        raise ApiError(
            404,
            "NOT_FOUND",
            f"Provided external ID field does not exist or is not accessible: {name}",
        )
    return fdef


def upsert(ctx: Context, req: Request, name: str, field_name: str, value: str) -> Response:
    """``PATCH /sobjects/{object}/{externalIdField}/{value}``: 201 created, 200 updated,
    300 with the matching records' URLs when several match."""
    odef = sobject(name)
    ext = external_field(odef, field_name)
    body = _record_body(req)
    given = next((v for k, v in body.items() if k.lower() == ext.name.lower()), None)
    if given is not None and str(given) != value:
        raise ApiError(
            400,
            "INVALID_FIELD",
            f"The value of {ext.name} in the body ({given}) differs from the one in the URL",
        )
    try:
        saved = Records(ctx.store, req.user_id).upsert(odef, ext, value, body)
    except MultipleMatchesError as many:
        return Response(300, [record_url(req.version, odef, i) for i in many.ids])
    except RecordRefusedError as failure:
        raise ApiError(400, failure.code, failure.message, failure.fields) from None
    answer = {"id": saved.id, "success": True, "errors": [], "created": saved.created}
    return Response(201 if saved.created else 200, answer)


def by_external_id(ctx: Context, req: Request, name: str, field_name: str, value: str) -> Response:
    odef = sobject(name)
    ext = external_field(odef, field_name)
    matches = ctx.store.ids_where(odef, ext, value)
    if len(matches) > 1:
        return Response(300, [record_url(req.version, odef, i) for i in matches])
    if not matches:
        raise not_found()
    return read(ctx, req, odef.name, matches[0])


# -- sObject Collections ----------------------------------------------------------------------
def _collection(body: Any) -> tuple[list[dict[str, Any]], bool]:
    if not isinstance(body, dict) or not isinstance(body.get("records"), list):
        raise ApiError(400, "JSON_PARSER_ERROR", "records is required")
    records = body["records"]
    if len(records) > MAX_COLLECTION:
        raise ApiError(
            400,
            "EXCEEDED_ID_LIMIT",
            f"record limit reached. cannot submit more than {MAX_COLLECTION} records into "
            "this call",
        )
    if not all(isinstance(r, dict) for r in records):
        raise ApiError(400, "JSON_PARSER_ERROR", "every record must be an object")
    return records, bool(body.get("allOrNone", False))


def _type_of(record: dict[str, Any], default: ObjectDef | None) -> ObjectDef:
    attributes = record.get("attributes")
    kind = attributes.get("type") if isinstance(attributes, dict) else None
    if kind is None and default is not None:
        return default
    odef = find_object(str(kind or ""))
    if odef is None:
        raise ApiError(400, "INVALID_TYPE", f"sObject type '{kind}' is not supported.")
    if default is not None and odef is not default:
        raise ApiError(400, "INVALID_TYPE", f"Every record must be a {default.name}")
    return odef


def _run_all(ctx: Context, items: list[Any], apply: Any, all_or_none: bool) -> list[dict[str, Any]]:
    """Apply ``apply(item) -> result dict`` to each item; with ``all_or_none`` either every
    record is saved or none is (the others then report ALL_OR_NONE_OPERATION_ROLLED_BACK)."""
    results: list[dict[str, Any]] = []

    class _RollbackError(Exception):
        pass

    try:
        with ctx.store.transaction():
            for item in items:
                with ctx.store.locked():
                    try:
                        with ctx.store.transaction():
                            results.append(apply(item))
                    except RecordRefusedError as failure:
                        results.append({"id": None, "success": False, "errors": [failure.payload]})
                    except MultipleMatchesError as many:
                        results.append(
                            {"id": None, "success": False, "errors": [many.failure().payload]}
                        )
            if all_or_none and not all(r["success"] for r in results):
                raise _RollbackError
    except _RollbackError:
        rolled = {
            "statusCode": "ALL_OR_NONE_OPERATION_ROLLED_BACK",
            "message": "Record rolled back because not all records were valid and the request "
            "was using AllOrNone header",
            "fields": [],
        }
        for result in results:
            if result["success"]:
                result.update(id=None, success=False, errors=[rolled])
                result.pop("created", None)
    return results


def collection_create(ctx: Context, req: Request) -> Response:
    records, all_or_none = _collection(req.json())
    writer = Records(ctx.store, req.user_id)
    typed = [(_type_of(r, None), r) for r in records]

    def apply(item: tuple[ObjectDef, dict[str, Any]]) -> dict[str, Any]:
        odef, record = item
        return {"id": writer.create(odef, record), "success": True, "errors": []}

    return Response(200, _run_all(ctx, typed, apply, all_or_none))


def collection_update(ctx: Context, req: Request) -> Response:
    records, all_or_none = _collection(req.json())
    writer = Records(ctx.store, req.user_id)
    typed = [(_type_of(r, None), r) for r in records]

    def apply(item: tuple[ObjectDef, dict[str, Any]]) -> dict[str, Any]:
        odef, record = item
        record_id = record.get("id", record.get("Id"))
        body = {k: v for k, v in record.items() if k.lower() != "id"}
        return {"id": writer.update(odef, record_id, body), "success": True, "errors": []}

    return Response(200, _run_all(ctx, typed, apply, all_or_none))


def collection_upsert(ctx: Context, req: Request, name: str, field_name: str) -> Response:
    odef = sobject(name)
    ext = external_field(odef, field_name)
    records, all_or_none = _collection(req.json())
    writer = Records(ctx.store, req.user_id)
    for record in records:
        _type_of(record, odef)
    keys = [_key_of(record, ext) for record in records]
    repeated = {k for k in keys if k is not None and keys.count(k) > 1}

    def apply(record: dict[str, Any]) -> dict[str, Any]:
        key = _key_of(record, ext)
        if key in repeated:
            raise RecordRefusedError(
                "DUPLICATE_VALUE", f"Duplicate external id specified: {key}", [ext.name]
            )
        value = next((v for k, v in record.items() if k.lower() == ext.name.lower()), None)
        saved = writer.upsert(odef, ext, value, record)
        return {"id": saved.id, "success": True, "errors": [], "created": saved.created}

    return Response(200, _run_all(ctx, records, apply, all_or_none))


def _key_of(record: dict[str, Any], ext: FieldDef) -> str | None:
    value = next((v for k, v in record.items() if k.lower() == ext.name.lower()), None)
    if value in (None, ""):
        return None
    return str(value) if ext.case_sensitive else str(value).lower()


def collection_delete(ctx: Context, req: Request) -> Response:
    given = [i for i in req.args.get("ids", "").split(",") if i]
    if not given:
        raise ApiError(400, "MISSING_ARGUMENT", "ids is required")
    if len(given) > MAX_COLLECTION:
        raise ApiError(
            400,
            "EXCEEDED_ID_LIMIT",
            f"record limit reached. cannot submit more than {MAX_COLLECTION} records into "
            "this call",
        )
    all_or_none = req.args.get("allOrNone", "false").lower() == "true"
    writer = Records(ctx.store, req.user_id)

    def apply(record_id: str) -> dict[str, Any]:
        return {"id": writer.delete(None, record_id), "success": True, "errors": []}

    results = _run_all(ctx, given, apply, all_or_none)
    for record_id, result in zip(given, results, strict=True):
        if not result["success"] and result["id"] is None:
            result["id"] = record_id
    return Response(200, results)


# -- limits -----------------------------------------------------------------------------------
def limits(ctx: Context, req: Request) -> Response:
    used, limit = ctx.quota.used, ctx.quota.limit
    return Response(
        200,
        {
            "DailyApiRequests": {"Max": limit, "Remaining": max(0, limit - used)},
            "DailyBulkV2QueryJobs": {"Max": 10000, "Remaining": 10000},
            "DailyBulkApiBatches": {"Max": 15000, "Remaining": 15000},
        },
    )
