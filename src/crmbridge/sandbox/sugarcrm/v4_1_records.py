"""v4_1 methods that read and write records (``get_entry_list``, ``set_entry`` ...).

Values are answered the v4_1 way (:func:`values.v4_value`): strings only, ``"0"``/``"1"``,
``""`` for null, UTC datetimes, ``< > " '`` HTML-encoded.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from crmbridge.sandbox.sugarcrm.context import DEFAULT_PAGE_SIZE, Context
from crmbridge.sandbox.sugarcrm.sqlfragment import translate_order_by, translate_where
from crmbridge.sandbox.sugarcrm.store import link_condition
from crmbridge.sandbox.sugarcrm.v4_1_errors import PhpFatalError, V4Error
from crmbridge.sandbox.sugarcrm.values import email_caps, htmlentities, php_truthy, v4_value
from crmbridge.sandbox.sugarcrm.vardefs import FieldDef, LinkDef, ModuleDef

_VALID_ID = re.compile(r"^[a-zA-Z0-9_-]{1,36}$")
_EMAIL_FIELDS = (
    "id",
    "email_address",
    "email_address_caps",
    "invalid_email",
    "opt_out",
    "primary_address",
    "reply_to_address",
)
_NOT_FOUND = "Access to this object is denied since it has been deleted or does not exist"


def auth(ctx: Context, session: Any) -> str:
    """The user id of a live session; error 11 otherwise."""
    user_id = ctx.sessions.use_v4(session)
    if user_id is None:
        raise V4Error("invalid_session")
    return user_id


def module(ctx: Context, name: Any) -> ModuleDef:
    """The module called ``name``; error 20 otherwise."""
    mdef = ctx.modules.get(name) if isinstance(name, str) else None
    if mdef is None:
        raise V4Error("no_module")
    return mdef


def v4_fields(mdef: ModuleDef) -> list[FieldDef]:
    """The fields v4_1 knows (``sync_key`` is a v10-only field)."""
    return [f for f in mdef.fields if f.source != "v10"]


def _page_size(ctx: Context, max_results: Any) -> int:
    """PHP's ``if ($max_results > 0)`` then arithmetic: a non-numeric string is a TypeError."""
    if max_results is None or max_results == "" or isinstance(max_results, bool):
        return DEFAULT_PAGE_SIZE
    if isinstance(max_results, str):
        try:
            max_results = float(max_results.strip())
        except ValueError:
            raise PhpFatalError("Unsupported operand types: string + int") from None
    if not isinstance(max_results, int | float):
        raise PhpFatalError("Unsupported operand types: array + int")
    size = int(max_results)
    if size <= 0:
        return DEFAULT_PAGE_SIZE
    cap = ctx.settings.max_list_limit
    return min(size, cap) if cap else size


def _offset(offset: Any) -> int:
    if offset in (None, "", False) or offset == -1:
        return 0
    try:
        return max(0, int(float(offset)))
    except (TypeError, ValueError):
        raise PhpFatalError("offset must be numeric") from None


def _limit(limit: Any) -> int | None:
    """``get_relationships``'s ``limit``: None (all) unless a positive number."""
    if not php_truthy(limit):
        return None
    try:
        count = int(float(limit))
    except (TypeError, ValueError):
        raise PhpFatalError("limit must be numeric") from None
    return count if count > 0 else None


def _name_values(fields: Sequence[FieldDef], row: Mapping[str, Any]) -> dict[str, Any]:
    return {f.name: {"name": f.name, "value": v4_value(f, row.get(f.name))} for f in fields}


def _selected(mdef: ModuleDef, select_fields: Any) -> list[FieldDef]:
    known = v4_fields(mdef)
    if not isinstance(select_fields, list) or not select_fields:
        return known
    by_name = {f.name: f for f in known}
    return [by_name[n] for n in select_fields if isinstance(n, str) and n in by_name]


def _entry(mdef: ModuleDef, row: Mapping[str, Any], select_fields: Any) -> dict[str, Any]:
    return {
        "id": row["id"],
        "module_name": mdef.name,
        "name_value_list": _name_values(_selected(mdef, select_fields), row),
    }


def _email_records(ctx: Context, mdef: ModuleDef, record_id: str, wanted: Any) -> list[Any]:
    names = [n for n in wanted if n in _EMAIL_FIELDS] if isinstance(wanted, list) else []
    out = []
    for email in ctx.store.emails(mdef, record_id):
        values = {n: email.get(n) for n in names or _EMAIL_FIELDS}
        out.append({n: {"name": n, "value": _email_value(v)} for n, v in values.items()})
    return out


def _email_value(value: Any) -> str:
    return "" if value is None else str(value)


def _link_records(ctx: Context, mdef: ModuleDef, record_id: str, spec: Any) -> list[Any]:
    """``[{"name": link, "records": [name-value dicts]}]`` for ``link_name_to_fields_array``."""
    out: list[Any] = []
    for item in spec if isinstance(spec, list) else []:
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            continue
        link = mdef.link(item["name"])
        if link is None:
            continue
        if link.kind == "email":
            rows = _email_records(ctx, mdef, record_id, item.get("value"))
        else:
            related = ctx.modules[link.module]
            fields = _selected(related, item.get("value"))
            ids = ctx.store.related_ids(mdef, record_id, link)
            rows = [_name_values(fields, r) for r in ctx.store.fetch(related, ids)]
        out.append({"name": link.name, "records": rows})
    return out


def _wrapped_links(links: list[Any]) -> dict[str, Any]:
    """The v4 shape: ``{"link_list": [{"name", "records": [{"link_value": ...}]}]}``."""
    return {
        "link_list": [
            {"name": link["name"], "records": [{"link_value": r} for r in link["records"]]}
            for link in links
        ]
    }


def get_entry_list(
    ctx: Context,
    session: Any,
    module_name: Any = None,
    query: Any = "",
    order_by: Any = "",
    offset: Any = 0,
    select_fields: Any = None,
    link_name_to_fields_array: Any = None,
    max_results: Any = None,
    deleted: Any = 0,
    favorites: Any = False,
) -> dict[str, Any]:
    auth(ctx, session)
    mdef = module(ctx, module_name)
    where = translate_where(str(query or ""))
    order = translate_order_by(str(order_by or ""), mdef)
    limit = _page_size(ctx, max_results)
    start = _offset(offset)
    include_deleted = php_truthy(deleted)
    store = ctx.store
    with store.lock:
        ids = store.select_ids(
            mdef, where, order=order, include_deleted=include_deleted, offset=start, limit=limit
        )
        total = store.count(mdef, where, include_deleted=include_deleted)
        rows = store.fetch(mdef, ids)
        entries = [_entry(mdef, row, select_fields) for row in rows]
        relationships = (
            [
                _wrapped_links(_link_records(ctx, mdef, row["id"], link_name_to_fields_array))
                for row in rows
            ]
            if link_name_to_fields_array
            else []
        )
    return {
        "result_count": len(entries),
        "total_count": str(total) if total else 0,
        "next_offset": start + len(entries),
        "entry_list": entries,
        "relationship_list": relationships,
    }


def get_entries_count(
    ctx: Context,
    session: Any,
    module_name: Any = None,
    query: Any = "",
    deleted: Any = 0,
) -> dict[str, Any]:
    auth(ctx, session)
    mdef = module(ctx, module_name)
    where = translate_where(str(query or ""))
    return {"result_count": str(ctx.store.count(mdef, where, include_deleted=php_truthy(deleted)))}


def get_entries(
    ctx: Context,
    session: Any,
    module_name: Any = None,
    ids: Any = None,
    select_fields: Any = None,
    link_name_to_fields_array: Any = None,
    track_view: Any = False,
) -> dict[str, Any]:
    auth(ctx, session)
    mdef = module(ctx, module_name)
    entries: list[Any] = []
    relationships: list[Any] = []
    for record_id in ids if isinstance(ids, list) else [ids]:
        row = ctx.store.get(mdef, str(record_id)) if record_id else None
        if row is None:
            warning = [
                {"name": "warning", "value": _NOT_FOUND},
                {"name": "deleted", "value": "1"},
            ]
            entries.append({"id": record_id, "module_name": mdef.name, "name_value_list": warning})
            continue
        entries.append(_entry(mdef, row, select_fields))
        if link_name_to_fields_array:
            links = _link_records(ctx, mdef, row["id"], link_name_to_fields_array)
            relationships.append(_wrapped_links(links))
    return {"entry_list": entries, "relationship_list": relationships}


def get_entry(
    ctx: Context,
    session: Any,
    module_name: Any = None,
    id: Any = None,
    select_fields: Any = None,
    link_name_to_fields_array: Any = None,
    track_view: Any = False,
) -> dict[str, Any]:
    return get_entries(
        ctx, session, module_name, [id], select_fields, link_name_to_fields_array, track_view
    )


def _pairs(name_value_list: Any) -> list[tuple[str, Any]]:
    """``[{"name","value"}]`` or ``{name: value}`` (or ``{name: {"name","value"}}``) as pairs."""
    if isinstance(name_value_list, dict):
        items: list[Any] = [
            v if isinstance(v, dict) and "name" in v else {"name": k, "value": v}
            for k, v in name_value_list.items()
        ]
    elif isinstance(name_value_list, list):
        items = name_value_list
    else:
        raise V4Error("invalid_data_format")
    return [
        (str(item["name"]), item.get("value"))
        for item in items
        if isinstance(item, dict) and "name" in item
    ]


def _duplicate_contact(ctx: Context, values: Mapping[str, Any]) -> str | None:
    first, last = str(values.get("first_name") or ""), str(values.get("last_name") or "")
    if not last:
        return None
    where = "contacts.first_name = ? AND contacts.last_name = ?"
    params: list[Any] = [first, last]
    if values.get("email1"):
        where += (
            " AND contacts.id IN (SELECT r.bean_id FROM email_addr_bean_rel r JOIN "
            "email_addresses ea ON ea.id = r.email_address_id WHERE r.bean_module = 'Contacts' "
            "AND r.deleted = 0 AND ea.email_address_caps = ?)"
        )
        params.append(email_caps(str(values["email1"])))
    found = ctx.store.select_ids(ctx.modules["Contacts"], where, params, limit=1)
    return found[0] if found else None


def _echo(value: Any) -> str:
    """A sent value as ``set_entry`` answers it: PHP string conversion, then htmlentities."""
    if value is None or value is False:
        return ""
    if value is True:
        return "1"
    return htmlentities(value if isinstance(value, str) else str(value))


def _save_one(
    ctx: Context, user_id: str, mdef: ModuleDef, pairs: list[tuple[str, Any]], *, dedupe: bool
) -> tuple[str | None, dict[str, Any]]:
    """Save one ``name_value_list``; returns (id or None for an invalid id, echoed values)."""
    values = dict(pairs)
    record_id = values.get("id")
    known = {f.name for f in v4_fields(mdef)}
    echo = {name: {"name": name, "value": _echo(value)} for name, value in pairs if name in known}
    if record_id not in (None, ""):
        record_id = str(record_id)
        if not _VALID_ID.match(record_id):
            return None, {}
        exists = bool(ctx.store.query(f"SELECT 1 FROM {mdef.table} WHERE id = ?", (record_id,)))
        if not exists and not php_truthy(values.get("new_with_id")):
            return record_id, echo  # Sugar runs an UPDATE that touches no row
    elif dedupe and mdef.name == "Contacts":
        duplicate = _duplicate_contact(ctx, values)
        if duplicate:
            return duplicate, echo
    deleting = php_truthy(values.get("deleted")) and lead_with_notes(ctx, mdef, record_id)
    saved = ctx.store.save(mdef, values, user_id=user_id, record_id=record_id or None)
    if deleting and ctx.faults.take_lead_delete_failure():
        raise PhpFatalError("SugarRelationship.php: Attempt to read property on null")
    return saved, echo


def lead_with_notes(ctx: Context, mdef: ModuleDef, record_id: Any) -> bool:
    """Whether ``record_id`` is a live Lead that has Notes (whose delete may fail)."""
    if mdef.name != "Leads" or not record_id:
        return False
    rows = ctx.store.query(
        "SELECT 1 FROM leads l JOIN notes n ON n.parent_id = l.id AND n.parent_type = 'Leads' "
        "AND n.deleted = 0 WHERE l.id = ? AND l.deleted = 0 LIMIT 1",
        (str(record_id),),
    )
    return bool(rows)


def set_entry(
    ctx: Context,
    session: Any,
    module_name: Any = None,
    name_value_list: Any = None,
    track_view: Any = False,
) -> dict[str, Any] | None:
    user_id = auth(ctx, session)
    mdef = module(ctx, module_name)
    record_id, echo = _save_one(ctx, user_id, mdef, _pairs(name_value_list), dedupe=False)
    if record_id is None:
        return None
    return {"id": record_id, "entry_list": echo}


def set_entries(
    ctx: Context,
    session: Any,
    module_name: Any = None,
    name_value_lists: Any = None,
) -> dict[str, Any]:
    user_id = auth(ctx, session)
    mdef = module(ctx, module_name)
    dedupe = ctx.settings.duplicate_check
    ids = [
        _save_one(ctx, user_id, mdef, _pairs(nvl), dedupe=dedupe)[0]
        for nvl in (name_value_lists if isinstance(name_value_lists, list) else [])
    ]
    return {"ids": ids}


def _link(mdef: ModuleDef, name: Any) -> LinkDef | None:
    link = mdef.link(name) if isinstance(name, str) else None
    return link if link is not None and link.kind != "email" else None


def set_relationship(
    ctx: Context,
    session: Any,
    module_name: Any = None,
    module_id: Any = None,
    link_field_name: Any = None,
    related_ids: Any = None,
    name_value_list: Any = None,
    delete: Any = 0,
) -> dict[str, int]:
    auth(ctx, session)
    mdef = module(ctx, module_name)
    link = _link(mdef, link_field_name)
    if link is None or ctx.store.get(mdef, str(module_id)) is None:
        return {"created": 0, "failed": 1, "deleted": 0}
    others = related_ids if isinstance(related_ids, list) else [related_ids]
    with ctx.store.transaction():
        for other in others:
            if php_truthy(delete):
                ctx.store.remove_link(mdef, str(module_id), link, str(other))
            else:
                ctx.store.add_link(mdef, str(module_id), link, str(other))
    if php_truthy(delete):
        return {"created": 0, "failed": 0, "deleted": 1}
    return {"created": 1, "failed": 0, "deleted": 0}


def get_relationships(
    ctx: Context,
    session: Any,
    module_name: Any = None,
    module_id: Any = None,
    link_field_name: Any = None,
    related_module_query: Any = "",
    related_fields: Any = None,
    related_module_link_name_to_fields_array: Any = None,
    deleted: Any = 0,
    order_by: Any = "",
    offset: Any = 0,
    limit: Any = False,
) -> dict[str, Any]:
    auth(ctx, session)
    mdef = module(ctx, module_name)
    where = translate_where(str(related_module_query or ""))
    link = mdef.link(link_field_name) if isinstance(link_field_name, str) else None
    empty: dict[str, Any] = {"entry_list": [], "relationship_list": []}
    if link is None or ctx.store.get(mdef, str(module_id)) is None:
        return empty
    if link.kind == "email":
        emails = _email_records(ctx, mdef, str(module_id), related_fields)
        return {
            "entry_list": [
                {"id": e["id"]["value"], "module_name": "EmailAddresses", "name_value_list": e}
                for e in emails
            ],
            "relationship_list": [],
        }
    related = ctx.modules[link.module]
    condition = link_condition(link, mdef, related)
    full_where = f"{condition} AND ({where})" if where else condition
    count = _limit(limit)
    ids = ctx.store.select_ids(
        related,
        full_where,
        [str(module_id)],
        order=translate_order_by(str(order_by or ""), related),
        include_deleted=php_truthy(deleted),
        offset=_offset(offset),
        limit=count,
    )
    rows = ctx.store.fetch(related, ids)
    return {
        "entry_list": [_entry(related, row, related_fields) for row in rows],
        "relationship_list": [
            _link_records(ctx, related, row["id"], related_module_link_name_to_fields_array)
            for row in rows
        ]
        if related_module_link_name_to_fields_array
        else [],
    }


def search_by_module(
    ctx: Context,
    session: Any,
    search_string: Any = "",
    modules: Any = None,
    offset: Any = 0,
    max_results: Any = None,
    assigned_user_id: Any = "",
    select_fields: Any = None,
    unified_search_only: Any = True,
    favorites: Any = False,
) -> dict[str, Any]:
    auth(ctx, session)
    text = str(search_string or "").strip()
    limit = _page_size(ctx, max_results)
    out = []
    for name in modules if isinstance(modules, list) else []:
        mdef = ctx.modules.get(name) if isinstance(name, str) else None
        if mdef is None or not text:
            continue
        columns = [f"{mdef.table}.{c} LIKE ?" for c in mdef.search_fields]
        params: list[Any] = [f"{text}%"] * len(columns)
        if mdef.field("email1"):
            columns.append(
                f"{mdef.table}.id IN (SELECT r.bean_id FROM email_addr_bean_rel r JOIN "
                "email_addresses ea ON ea.id = r.email_address_id WHERE r.deleted = 0 "
                f"AND r.bean_module = '{mdef.name}' AND ea.email_address_caps LIKE ?)"
            )
            params.append(f"{text.upper()}%")
        where = " OR ".join(columns)
        if assigned_user_id:
            where = f"({where}) AND {mdef.table}.assigned_user_id = ?"
            params.append(str(assigned_user_id))
        ids = ctx.store.select_ids(mdef, where, params, offset=_offset(offset), limit=limit)
        fields = _selected(mdef, select_fields)
        out.append(
            {
                "name": mdef.name,
                "records": [_name_values(fields, r) for r in ctx.store.fetch(mdef, ids)],
            }
        )
    return {"entry_list": out}
