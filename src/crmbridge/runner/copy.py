"""``crmbridge copy``: every object of a connection (or some) into a SQL database, for reporting.

One ordinary run per object, of a profile made here: the object read whole the first time and
incrementally afterwards (by the field its changes are ordered by, through the state store's
cursor, runner/incremental.py), upserted by its id into a table of the same name created from
``describe`` (SQL types, lengths and the id as the primary key). So a copy has everything a run
has: the run ledger (a killed copy continues), history, success and error files.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from crmbridge.connections import ConnectionStore
from crmbridge.connectors.base import Connector, ReadRequest
from crmbridge.core.schema import FieldType, ObjectSchema
from crmbridge.errors import ConfigError
from crmbridge.profiles.loader import parse_profile
from crmbridge.runner.run import RunSummary, run_profile
from crmbridge.state import StateStore, home_dir

#: fields that hold when a record last changed, by system (the first found is the cursor)
MODIFIED_FIELDS = (
    "SystemModstamp",
    "LastModifiedDate",
    "date_modified",
    "updated_at",
    "modified_at",
    "LastUpdatedTime",
)


@dataclass(frozen=True)
class CopyPlan:
    """How one object is copied."""

    object: str
    table: str
    key: str
    cursor: str | None  # the incremental field; None: every run reads everything


def table_name(object_name: str, prefix: str = "") -> str:
    """``Accounts`` -> ``accounts``; characters a table name should not have become ``_``."""
    return prefix + (re.sub(r"[^A-Za-z0-9_]+", "_", object_name).strip("_").lower() or "object")


def plan_copy(
    source: Connector, objects: Sequence[str] | None, prefix: str = ""
) -> tuple[list[CopyPlan], list[str]]:
    """What to copy: a plan per object that has an id, and why the others are left out."""
    names = list(objects) if objects else source.objects()
    known = {n.lower(): n for n in source.objects()} if objects else {}
    plans, left_out = [], []
    for name in names:
        if objects and name.lower() not in known:
            raise ConfigError(f"{source.type_name} has no object {name!r}")
        name = known.get(name.lower(), name)
        try:
            schema = source.describe(name)
        except ConfigError as err:
            left_out.append(f"{name}: {err.message}")
            continue
        key = schema.id_field or (schema.key_fields[0] if len(schema.key_fields) == 1 else None)
        if key is None:
            left_out.append(f"{name}: it has no id field to copy it by")
            continue
        plans.append(CopyPlan(name, table_name(name, prefix), key, _cursor(source, schema)))
    return plans, left_out


def _cursor(source: Connector, schema: ObjectSchema) -> str | None:
    """The field records are ordered by when they change, when the source reads by it."""
    if not source.capabilities().incremental:
        return None
    order = source.read_order(ReadRequest(schema.name)) or ()
    candidates = [*order[:1], *MODIFIED_FIELDS]
    for name in candidates:
        if schema.has(name) and schema.field(name).type is FieldType.DATETIME:
            return name
    return None


def copy_profile(connection: str, url: str, plan: CopyPlan) -> str:
    """The profile text of one object's copy (its identity ties it to the pair and object)."""
    source: dict[str, object] = {"connection": connection, "object": plan.object}
    if plan.cursor is not None:
        source["incremental"] = {"field": plan.cursor, "key": plan.key}
    profile = {
        "id": f"copy {connection} {plan.object} -> {_safe_url(url)} {plan.table}",
        "name": f"copy-{connection}-{plan.table}",
        "source": source,
        "target": {
            "connection": {"type": "sql", "url": url},
            "object": plan.table,
            "mode": "upsert",
            "match_keys": [plan.key],
            "create": True,
        },
    }
    return json.dumps(profile, ensure_ascii=False, indent=2)  # JSON is YAML


def _safe_url(url: str) -> str:
    """The URL without a password, for the profile's identity."""
    return re.sub(r"://([^:/@]+):[^@]*@", r"://\1@", url)


def copy_connection(
    connection: str,
    url: str,
    *,
    connections: ConnectionStore,
    state: StateStore | None,
    objects: Sequence[str] | None = None,
    prefix: str = "",
    dry_run: bool = False,
    output_dir: Path | None = None,
    on_object: Callable[[CopyPlan], None] | None = None,
) -> tuple[list[RunSummary], list[str]]:
    """Copy ``objects`` (default: every object) of ``connection`` into the database at
    ``url``; the summary of each object's run, and the objects left out with the reason."""
    source = connections.get(connection).connector()
    source.open()
    try:
        plans, left_out = plan_copy(source, objects, prefix)
    finally:
        source.close()
    folder = home_dir() / "copies"
    summaries = []
    for plan in plans:
        if on_object is not None:
            on_object(plan)
        loaded = parse_profile(copy_profile(connection, url, plan), folder / f"{plan.table}.yaml")
        out = output_dir / plan.table if output_dir is not None else None
        summaries.append(
            run_profile(
                loaded, connections=connections, state=state, dry_run=dry_run, output_dir=out
            )
        )
    return summaries, left_out


__all__ = ["MODIFIED_FIELDS", "CopyPlan", "copy_connection", "copy_profile", "plan_copy"]
