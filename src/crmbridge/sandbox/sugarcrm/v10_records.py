"""REST v10/v11 record endpoints: list, filter, count, CRUD, links and sync-key upserts.

Records are JSON the Sugar 7+ way: datetimes ISO 8601 in the user's time zone, booleans and
integers typed, currency as a decimal string, e-mail as a list of address objects.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from zoneinfo import ZoneInfo

from crmbridge.sandbox.sugarcrm.context import DEFAULT_PAGE_SIZE, Context
from crmbridge.sandbox.sugarcrm.store import field_expr, link_condition
from crmbridge.sandbox.sugarcrm.v4_1_records import lead_with_notes
from crmbridge.sandbox.sugarcrm.v10_errors import ApiError
from crmbridge.sandbox.sugarcrm.v10_filter import FilterError, compile_filter
from crmbridge.sandbox.sugarcrm.values import (
    decode_multienum,
    iso_in_zone,
    parse_client_datetime,
    parse_date,
    truthy,
)
from crmbridge.sandbox.sugarcrm.vardefs import FieldDef, ModuleDef

Args = Mapping[str, Any]


def module(ctx: Context, name: str) -> ModuleDef:
    mdef = ctx.modules.get(name)
    if mdef is None:
        raise ApiError(404, "not_found", f"Could not find module: {name}")
    return mdef


def _json_value(fdef: FieldDef, value: Any, zone: ZoneInfo) -> Any:
    if fdef.type == "bool":
        return bool(value)
    if fdef.type == "multienum":  # a list of keys, as SugarFieldMultienum formats it
        return decode_multienum(value)
    if value is None:
        return "" if fdef.type not in ("int",) else None
    if fdef.type == "datetime":
        return iso_in_zone(str(value), zone)
    if fdef.type == "currency":
        return f"{float(value):.6f}"
    if fdef.type == "int":
        return int(value)
    return str(value)


def record_json(
    ctx: Context, mdef: ModuleDef, row: Mapping[str, Any], zone: ZoneInfo, fields: Any = None
) -> dict[str, Any]:
    """One record as v10 answers it (``fields``: a list of names to keep, or None for all)."""
    wanted = set(fields) | {"id", "date_modified"} if fields else None
    out: dict[str, Any] = {}
    for fdef in mdef.fields:
        if wanted is None or fdef.name in wanted:
            out[fdef.name] = _json_value(fdef, row.get(fdef.name), zone)
    if mdef.field("email1") and (wanted is None or "email" in wanted):
        out["email"] = [
            {
                "email_address": e["email_address"],
                "email_address_id": e["id"],
                "primary_address": bool(e["primary_address"]),
                "reply_to_address": bool(e["reply_to_address"]),
                "opt_out": bool(e["opt_out"]),
                "invalid_email": bool(e["invalid_email"]),
            }
            for e in ctx.store.emails(mdef, str(row["id"]))
        ]
    out["_acl"] = {"fields": {}}
    out["_module"] = mdef.name
    return out


def _fields_arg(args: Args) -> list[str] | None:
    fields = args.get("fields")
    if isinstance(fields, list):
        return [str(f) for f in fields]
    if isinstance(fields, str) and fields.strip():
        return [f.strip() for f in fields.split(",") if f.strip()]
    return None


def _order(mdef: ModuleDef, order_by: Any) -> str:
    """``"date_modified:ASC,id:ASC"`` as SQL (direction defaults to DESC, id breaks ties)."""
    text = str(order_by or "date_modified:DESC")
    terms: list[str] = []
    direction = "DESC"
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        name, _, direction = item.partition(":")
        direction = (direction or "DESC").upper()
        fdef = mdef.field(name.strip())
        if fdef is None or direction not in ("ASC", "DESC"):
            raise ApiError(422, "invalid_parameter", f"Invalid order_by: {item}")
        terms.append(f"{field_expr(mdef, fdef)} {direction}")
    if not any(t.startswith(f"{mdef.table}.id ") for t in terms):
        terms.append(f"{mdef.table}.id {direction}")
    return ", ".join(terms)


def _int_arg(args: Args, name: str, default: int) -> int:
    raw = args.get(name)
    if raw in (None, ""):
        return default
    try:
        return int(raw)
    except (TypeError, ValueError):
        raise ApiError(422, "invalid_parameter", f"{name} must be an integer") from None


def _where(ctx: Context, mdef: ModuleDef, args: Args, zone: ZoneInfo) -> tuple[str, list[Any]]:
    try:
        where, params = compile_filter(args.get("filter"), mdef, zone)
    except FilterError as error:
        raise ApiError(422, "invalid_parameter", str(error)) from None
    q = str(args.get("q") or "").strip()
    if q:
        likes = " OR ".join(f"{mdef.table}.{c} LIKE ?" for c in mdef.search_fields)
        where = f"{where} AND ({likes})" if where else f"({likes})"
        params += [f"{q}%"] * len(mdef.search_fields)
    return where, params


def list_records(
    ctx: Context,
    user_id: str,
    mdef: ModuleDef,
    args: Args,
    extra: tuple[str, list[Any]] | None = None,
) -> dict[str, Any]:
    """A page of records: ``{"next_offset", "records"}`` (``next_offset`` -1 on the last page)."""
    zone = ctx.user_zone(user_id)
    where, params = _where(ctx, mdef, args, zone)
    if extra:
        where = f"{extra[0]} AND {where}" if where else extra[0]
        params = [*extra[1], *params]
    max_num = _int_arg(args, "max_num", DEFAULT_PAGE_SIZE)
    max_num = DEFAULT_PAGE_SIZE if max_num <= 0 else max_num
    if ctx.settings.max_list_limit:
        max_num = min(max_num, ctx.settings.max_list_limit)
    offset = max(0, _int_arg(args, "offset", 0))
    with ctx.store.lock:
        ids = ctx.store.select_ids(
            mdef,
            where,
            params,
            order=_order(mdef, args.get("order_by")),
            include_deleted=truthy(args.get("deleted")),
            offset=offset,
            limit=max_num + 1,
        )
        rows = ctx.store.fetch(mdef, ids[:max_num])
        records = [record_json(ctx, mdef, r, zone, _fields_arg(args)) for r in rows]
    more = len(ids) > max_num
    return {"next_offset": offset + len(records) if more else -1, "records": records}


def count_records(ctx: Context, user_id: str, mdef: ModuleDef, args: Args) -> dict[str, Any]:
    where, params = _where(ctx, mdef, args, ctx.user_zone(user_id))
    count = ctx.store.count(mdef, where, params, include_deleted=truthy(args.get("deleted")))
    return {"record_count": count}


def _storage_values(
    mdef: ModuleDef, body: Mapping[str, Any], zone: ZoneInfo
) -> tuple[dict[str, Any], list[dict[str, Any]] | None]:
    """Client JSON as store values (datetimes to UTC) and the e-mail list, if sent."""
    values: dict[str, Any] = {}
    for name, value in body.items():
        fdef = mdef.field(name)
        if fdef is None:
            continue
        try:
            if fdef.type == "datetime" and value not in (None, ""):
                value = parse_client_datetime(str(value), zone)
            elif fdef.type == "date" and value not in (None, ""):
                value = parse_date(str(value))
        except ValueError:
            raise ApiError(
                422, "invalid_parameter", f"Invalid value for field {name}: {value!r}"
            ) from None
        values[name] = value
    emails = body.get("email")
    if emails is not None and not isinstance(emails, list):
        raise ApiError(422, "invalid_parameter", "email must be a list of addresses")
    return values, [e for e in emails if isinstance(e, dict)] if emails is not None else None


def _body(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise ApiError(422, "missing_parameter", "The request body must be a JSON object")
    return body


def get_record(ctx: Context, user_id: str, mdef: ModuleDef, record_id: str) -> dict[str, Any]:
    row = ctx.store.get(mdef, record_id)
    if row is None:
        raise ApiError(
            404, "not_found", f"Could not find record: {record_id} in module: {mdef.name}"
        )
    return row  # type: ignore[no-any-return]


def read(ctx: Context, user_id: str, mdef: ModuleDef, record_id: str, args: Args) -> dict[str, Any]:
    row = get_record(ctx, user_id, mdef, record_id)
    return record_json(ctx, mdef, row, ctx.user_zone(user_id), _fields_arg(args))


def create(ctx: Context, user_id: str, mdef: ModuleDef, body: Any) -> dict[str, Any]:
    body = _body(body)
    values, emails = _storage_values(mdef, body, ctx.user_zone(user_id))
    wanted_id = str(body.get("id") or "") or None
    if wanted_id and ctx.store.get(mdef, wanted_id, include_deleted=True) is not None:
        raise ApiError(409, "duplicate_record", f"Record {wanted_id} already exists")
    record_id = ctx.store.save(mdef, values, user_id=user_id, record_id=wanted_id, emails=emails)
    return read(ctx, user_id, mdef, record_id, {})


def update(
    ctx: Context, user_id: str, mdef: ModuleDef, record_id: str, body: Any
) -> dict[str, Any]:
    get_record(ctx, user_id, mdef, record_id)
    values, emails = _storage_values(mdef, _body(body), ctx.user_zone(user_id))
    ctx.store.save(mdef, values, user_id=user_id, record_id=record_id, emails=emails)
    return read(ctx, user_id, mdef, record_id, {})


def delete(ctx: Context, user_id: str, mdef: ModuleDef, record_id: str) -> dict[str, Any]:
    get_record(ctx, user_id, mdef, record_id)
    failing = lead_with_notes(ctx, mdef, record_id) and ctx.faults.take_lead_delete_failure()
    ctx.store.save(mdef, {"deleted": 1}, user_id=user_id, record_id=record_id)
    if failing:  # applied, then the PHP error in the relationship clean-up
        raise ApiError(500, "fatal_error", "Attempt to read property on null")
    return {"id": record_id}


def _link(mdef: ModuleDef, name: str) -> Any:
    link = mdef.link(name)
    if link is None or link.kind == "email":
        raise ApiError(404, "not_found", f"Could not find a relationship named: {name}")
    return link


def list_links(
    ctx: Context, user_id: str, mdef: ModuleDef, record_id: str, link_name: str, args: Args
) -> dict[str, Any]:
    get_record(ctx, user_id, mdef, record_id)
    link = _link(mdef, link_name)
    related = ctx.modules[link.module]
    condition = link_condition(link, mdef, related)
    return list_records(ctx, user_id, related, args, (condition, [record_id]))


def change_link(
    ctx: Context,
    user_id: str,
    mdef: ModuleDef,
    record_id: str,
    link_name: str,
    remote_id: str,
    *,
    add: bool,
) -> dict[str, Any]:
    """Link or unlink; answers ``{"record", "related_record"}``."""
    get_record(ctx, user_id, mdef, record_id)
    link = _link(mdef, link_name)
    related = ctx.modules[link.module]
    get_record(ctx, user_id, related, remote_id)
    if add:
        ctx.store.add_link(mdef, record_id, link, remote_id)
    else:
        ctx.store.remove_link(mdef, record_id, link, remote_id)
    return {
        "record": read(ctx, user_id, mdef, record_id, {}),
        "related_record": read(ctx, user_id, related, remote_id, {}),
    }


def sync_key_id(ctx: Context, mdef: ModuleDef, key: str) -> str | None:
    ids = ctx.store.select_ids(mdef, f"{mdef.table}.sync_key = ?", [key], limit=1)
    return ids[0] if ids else None


def upsert_by_sync_key(
    ctx: Context, user_id: str, mdef: ModuleDef, key: str, body: Any
) -> tuple[int, dict[str, Any]]:
    """PATCH ``/<M>/sync_key/<key>``: 200 and the record when updated, 201 when created."""
    existing = sync_key_id(ctx, mdef, key)
    values, emails = _storage_values(mdef, _body(body), ctx.user_zone(user_id))
    values["sync_key"] = key
    record_id = ctx.store.save(mdef, values, user_id=user_id, record_id=existing, emails=emails)
    return (200 if existing else 201), read(ctx, user_id, mdef, record_id, {})
