"""The web service operations, each answering the XML inside its ``<xxxResponse>``.

``query``, ``queryrecord`` and ``queryid`` answer at most "Maximum number of records to return"
records and ``more``; the rest waits in the session's cursor for ``next``. ``add``, ``update``
and ``delete`` take at most that many records too and are all or nothing: the first record the
server refuses fails the whole call, naming its position.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from typing import Any
from xml.sax.saxutils import escape

from crmbridge.sandbox.sagecrm.conditions import columns_of, order_clause, soap_condition
from crmbridge.sandbox.sagecrm.context import Context
from crmbridge.sandbox.sagecrm.entities import DROPDOWN, DROPDOWNS, ENTITIES, Column, Entity
from crmbridge.sandbox.sagecrm.problems import QUERY_FAILED, ApiError
from crmbridge.sandbox.sagecrm.sessions import Cursor, Session
from crmbridge.sandbox.sagecrm.values import DB_FORMAT, from_db, parse_moment, to_text

NO_CURSOR = "There is no query in progress: call query before next"


def _value_xml(ctx: Context, name: str, column: Column, raw: Any) -> str:
    if raw is None:
        return ""
    zone = ctx.settings
    value = from_db(column, raw, server=zone.zone, wire=zone.wire_zone)
    return f"<{name}>{escape(to_text(value))}</{name}>"


def typed_xml(ctx: Context, entity: Entity, row: dict[str, Any], *, nested: bool = True) -> str:
    """One record as the entity's typed element (children nested for companies, people)."""
    body = [_value_xml(ctx, c.short, c, row.get(c.name)) for c in entity.columns]
    if "type" in row and entity.name in ("address", "phone", "email"):
        body.append(f"<type>{escape(str(row['type']))}</type>")
    if nested and entity.children:
        record_id = int(row[entity.id_column])
        for kind, rows in ctx.store.children(entity, record_id).items():
            if kind not in ctx.settings.web_entities:
                continue
            child = ENTITIES[kind]
            for child_row in rows:
                inner = typed_xml(ctx, child, child_row, nested=False)
                body.append(f"<{kind}>{inner}</{kind}>")
    return "".join(body)


def _records(ctx: Context, entity: Entity) -> Callable[[Sequence[Any]], str]:
    def render(ids: Sequence[Any]) -> str:
        return "".join(
            f'<records xsi:type="tns:{entity.name}">{typed_xml(ctx, entity, row)}</records>'
            for row in ctx.store.fetch(entity, list(ids))
        )

    return render


def _open(ctx: Context, session: Session, items: Sequence[Any], render: Any) -> str:
    limit = ctx.settings.max_records
    first = list(items[:limit]) if limit else list(items)
    more = len(first) < len(items)
    if more:
        session.cursor = Cursor(items, render, position=len(first))
    return f"<result>{render(first)}<more>{'true' if more else 'false'}</more></result>"


def next_batch(ctx: Context, session: Session) -> str:
    cursor = session.cursor
    if cursor is None:
        raise ApiError(NO_CURSOR)
    limit = ctx.settings.max_records or len(cursor.items)
    batch = cursor.items[cursor.position : cursor.position + limit]
    cursor.position += len(batch)
    more = cursor.position < len(cursor.items)
    if not more:
        session.cursor = None
    return f"<result>{cursor.render(batch)}<more>{'true' if more else 'false'}</more></result>"


def _select(
    ctx: Context, entity: Entity, where: str, params: list[Any], **options: Any
) -> list[int]:
    try:
        return ctx.store.select_ids(entity, where, params, **options)
    except sqlite3.Error:
        raise ApiError(QUERY_FAILED) from None


def query(ctx: Context, session: Session, entity: Entity, query_string: str) -> str:
    where, params = soap_condition(entity, query_string)
    return _open(ctx, session, _select(ctx, entity, where, params), _records(ctx, entity))


def queryrecord(
    ctx: Context, session: Session, entity: Entity, fieldlist: str, query_string: str, order: str
) -> str:
    names = [n for n in fieldlist.split(",") if n.strip()]
    columns = columns_of(entity, names) if names else list(entity.columns)
    where, params = soap_condition(entity, query_string)
    ordered = order_clause(entity, order, rest=False) if order.strip() else None
    ids = _select(ctx, entity, where, params, order=ordered)

    def render(batch: Sequence[Any]) -> str:
        out = []
        for row in ctx.store.fetch(entity, list(batch)):
            fields = []
            for column in columns:
                raw = row.get(column.name)
                if raw is None:
                    value = '<value xsi:nil="true"/>'
                else:
                    settings = ctx.settings
                    shown = from_db(column, raw, server=settings.zone, wire=settings.wire_zone)
                    value = f"<value>{escape(to_text(shown))}</value>"
                fields.append(
                    f"<records><name>{column.name}</name>{value}<type>{column.type}</type>"
                    "</records>"
                )
            out.append(
                f'<records xsi:type="tns:crmrecord"><entityname>{entity.name}</entityname>'
                f"{''.join(fields)}</records>"
            )
        return "".join(out)

    return _open(ctx, session, ids, render)


def queryentity(ctx: Context, entity: Entity, record_id: str) -> str:
    try:
        number = int(record_id.strip())
    except ValueError:
        raise ApiError(f"Invalid id '{record_id}'") from None
    row = ctx.store.get(entity, number)
    if row is None:
        return "<result/>"
    return (
        f'<result><records xsi:type="tns:{entity.name}">{typed_xml(ctx, entity, row)}'
        "</records></result>"
    )


def queryid(
    ctx: Context, session: Session, entity: Entity, query_string: str, fromdate: str
) -> str:
    """Ids changed (updated date) at or after ``fromdate``, deleted ones included, in updated
    date order, flagged added (created since), deleted, or else updated."""
    settings = ctx.settings
    try:
        since = parse_moment(fromdate, settings.wire_zone).astimezone(settings.zone)
    except ValueError:
        raise ApiError(f"Invalid fromdate '{fromdate}'") from None
    stamp = since.strftime(DB_FORMAT)
    p = entity.prefix
    where, params = soap_condition(entity, query_string)
    condition = f"{p}_updateddate >= ?" + (f" AND ({where})" if where else "")
    ids = _select(
        ctx,
        entity,
        condition,
        [stamp, *params],
        include_deleted=True,
        order=f"{p}_updateddate, {entity.id_column}",
    )
    created = entity.column(f"{p}_createddate")
    updated = entity.column(f"{p}_updateddate")
    assert created is not None
    assert updated is not None

    def render(batch: Sequence[Any]) -> str:
        out = []
        for row in ctx.store.fetch(entity, list(batch)):
            added = (row[created.name] or "") >= stamp
            deleted = row[f"{p}_deleted"] == 1
            flags = {"added": added, "updated": not added and not deleted, "deleted": deleted}
            out.append(
                f'<records xsi:type="tns:aisid"><id>{row[entity.id_column]}</id>'
                + _value_xml(ctx, "createddate", created, row[created.name])
                + _value_xml(ctx, "updateddate", updated, row[updated.name])
                + "".join(f"<{k}>{str(v).lower()}</{k}>" for k, v in flags.items())
                + "</records>"
            )
        return "".join(out)

    return _open(ctx, session, ids, render)


def _check_count(ctx: Context, count: int) -> None:
    limit = ctx.settings.max_records
    if limit and count > limit:
        raise ApiError(
            f"Too many records in one call ({count}): the maximum number of records is {limit}"
        )


def _split(entity: Entity, values: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Column values by prefixed name, and nested children by kind."""
    columns: dict[str, Any] = {}
    children: dict[str, Any] = {}
    for name, value in values.items():
        if isinstance(value, list):
            if name not in entity.children or name == "person":
                raise ApiError(f"'{name}' cannot be nested in a {entity.name} record")
            children[name] = value
            continue
        column = entity.by_short(name)
        columns[column.name if column else name] = value
    return columns, children


def _write_children(
    ctx: Context, entity: Entity, record_id: int, children: dict[str, Any], user: int
) -> None:
    for kind, items in children.items():
        for item in items:
            ctx.store.set_child(entity, record_id, kind, item, ctx.settings.wire_zone, user)


def add(ctx: Context, session: Session, entity: Entity, records: list[dict[str, Any]]) -> str:
    _check_count(ctx, len(records))
    store = ctx.store
    ids = []
    with store.transaction():
        for n, values in enumerate(records, 1):
            try:
                ctx.check_right(session.user_id, entity, "insert")
                columns, children = _split(entity, values)
                clean = store.clean(entity, columns, ctx.settings.wire_zone, creating=True)
                record_id = store.create(entity, clean, session.user_id)
                _write_children(ctx, entity, record_id, children, session.user_id)
            except ApiError as error:
                raise ApiError(f"Record {n}: {error.message}") from None
            ids.append(record_id)
    return "<result>" + "".join(f"<records><crmid>{i}</crmid></records>" for i in ids) + "</result>"


def update(ctx: Context, session: Session, entity: Entity, records: list[dict[str, Any]]) -> str:
    _check_count(ctx, len(records))
    store = ctx.store
    id_name = entity.columns[0].short
    with store.transaction():
        for n, values in enumerate(records, 1):
            try:
                ctx.check_right(session.user_id, entity, "edit")
                raw_id = values.pop(id_name, None)
                if raw_id in (None, ""):
                    raise ApiError(f"no {id_name} given")
                try:
                    record_id = int(str(raw_id))
                except ValueError:
                    raise ApiError(f"invalid {id_name} '{raw_id}'") from None
                columns, children = _split(entity, values)
                clean = store.clean(entity, columns, ctx.settings.wire_zone, creating=False)
                store.update(entity, record_id, clean, session.user_id)
                _write_children(ctx, entity, record_id, children, session.user_id)
            except ApiError as error:
                raise ApiError(f"Record {n}: {error.message}") from None
    return "<result><updatesuccess>true</updatesuccess></result>"


def delete(ctx: Context, session: Session, entity: Entity, ids: list[str]) -> str:
    _check_count(ctx, len(ids))
    with ctx.store.transaction():
        for n, raw in enumerate(ids, 1):
            try:
                ctx.check_right(session.user_id, entity, "delete")
                ctx.store.soft_delete(entity, int(raw.strip()), session.user_id)
            except ValueError:
                raise ApiError(f"Record {n}: invalid id '{raw}'") from None
            except ApiError as error:
                raise ApiError(f"Record {n}: {error.message}") from None
    return (
        f"<result><deletesuccess>true</deletesuccess><numberdeleted>{len(ids)}</numberdeleted>"
        "</result>"
    )


def caption(column: Column) -> str:
    return column.short.replace("_", " ").title()


def metadata(entity: Entity) -> str:
    rows = []
    for column in entity.columns:
        length = f"<length>{column.length}</length>" if column.length else ""
        rows.append(
            f"<records><name>{column.name}</name><type>{column.type}</type>{length}"
            f"<required>{str(column.required).lower()}</required>"
            f"<readonly>{str(column.system).lower()}</readonly>"
            f"<caption>{escape(caption(column))}</caption></records>"
        )
    return "<result>" + "".join(rows) + "</result>"


def dropdowns(entity: Entity) -> str:
    rows = []
    for column in entity.columns:
        if column.type != DROPDOWN:
            continue
        codes = "".join(f"<records>{escape(c)}</records>" for c in DROPDOWNS.get(column.name, ()))
        rows.append(f"<records><fieldname>{column.name}</fieldname>{codes}</records>")
    return "<result>" + "".join(rows) + "</result>"
