"""A plan kept in a file and carried out later, exactly: ``--plan-out FILE`` and ``apply FILE``.

    crmbridge run leads.yaml --dry-run --plan-out leads.plan.parquet   # review it, then:
    crmbridge apply leads.plan.parquet

The file is Parquet (open it with DuckDB, pandas, or a spreadsheet tool that reads Parquet;
``crmbridge plan show FILE`` prints it): one row per planned operation, with

* the action (``create``, ``update``, ``delete``, ``unchanged``, ``reject``, ``skip``), the
  target record's id and version when planned, the reason of a rejection, the fields an update
  changes (``changed``);
* the values to write, the matched record's values before (``before.<field>``), and the source
  record (``source.<field>``);
* in the file's metadata: the profile (path, identity, parameters), the target, the mode, the
  keys and their rules, and the counts.

``apply`` carries out those operations and no others. Before it writes a batch it matches the
batch's records again: an operation whose record changed since the plan (its version, or its
values where the system has no version), was deleted, or — for a create — appeared meanwhile
is refused (rejected ``stale``, listed in the error file), never written. An apply holds the
profile's lock and is recorded in the ledger like a run: killed, it is continued by the next
``apply`` of the same file, the batch in flight carried out again and confirmed.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from crmbridge.core import identity
from crmbridge.core.identity import KeyRule
from crmbridge.core.outcomes import RejectCode, WriteMode
from crmbridge.core.plan import (
    ACTION_COLUMN,
    CHANGED_COLUMN,
    CODE_COLUMN,
    ID_COLUMN,
    REASON_COLUMN,
    VERSION_COLUMN,
    WRITES,
    Action,
    OnMultiple,
    Plan,
    PlanSpec,
    plan_schema,
)
from crmbridge.core.schema import ROW_COLUMN
from crmbridge.errors import ConfigError

FORMAT = "crmbridge plan 1"
BEFORE = "before."
SOURCE = "source."
#: operations per batch of an apply (one Parquet row group each)
ROW_GROUP = 10_000


@dataclass
class PlanHeader:
    """What a plan file says about itself."""

    profile_path: str
    profile_key: str
    profile_name: str
    params: dict[str, str]
    target: str
    object: str
    mode: WriteMode
    keys: tuple[str, ...]
    rules: dict[str, KeyRule]
    fields: tuple[str, ...]
    update_fields: tuple[str, ...] | None
    client_ids: bool
    namespace: str
    created_at: str
    counts: dict[str, int] = field(default_factory=dict)

    def spec(self) -> PlanSpec:
        return PlanSpec(
            object=self.object,
            mode=self.mode,
            fields=self.fields,
            keys=self.keys,
            rules=self.rules,
            update_fields=self.update_fields,
            on_multiple=OnMultiple.FIRST,  # the plan decided already
            client_ids=self.client_ids,
            namespace=self.namespace,
        )

    def encode(self) -> dict[bytes, bytes]:
        data = {
            "format": FORMAT,
            "profile_path": self.profile_path,
            "profile_key": self.profile_key,
            "profile_name": self.profile_name,
            "params": self.params,
            "target": self.target,
            "object": self.object,
            "mode": self.mode.value,
            "keys": list(self.keys),
            "rules": {k: r.value for k, r in self.rules.items()},
            "fields": list(self.fields),
            "update_fields": list(self.update_fields) if self.update_fields is not None else None,
            "client_ids": self.client_ids,
            "namespace": self.namespace,
            "created_at": self.created_at,
            "counts": self.counts,
        }
        return {b"crmbridge": json.dumps(data).encode("utf-8")}

    @classmethod
    def decode(cls, path: Path, metadata: Mapping[bytes, bytes] | None) -> PlanHeader:
        raw = (metadata or {}).get(b"crmbridge")
        data = json.loads(raw) if raw else {}
        if data.get("format") != FORMAT:
            raise ConfigError(f"{path} is not a crmbridge plan (crmbridge run --plan-out)")
        return cls(
            profile_path=data["profile_path"],
            profile_key=data["profile_key"],
            profile_name=data["profile_name"],
            params=dict(data.get("params") or {}),
            target=data["target"],
            object=data["object"],
            mode=WriteMode(data["mode"]),
            keys=tuple(data["keys"]),
            rules={k: KeyRule(v) for k, v in data["rules"].items()},
            fields=tuple(data["fields"]),
            update_fields=(
                tuple(data["update_fields"]) if data["update_fields"] is not None else None
            ),
            client_ids=bool(data["client_ids"]),
            namespace=data["namespace"],
            created_at=data["created_at"],
            counts={k: int(v) for k, v in (data.get("counts") or {}).items()},
        )


class PlanWriter:
    """Writes a dry run's plan, batch by batch (``crmbridge run --dry-run --plan-out``)."""

    def __init__(self, path: Path, header: PlanHeader) -> None:
        self.path = path
        self.header = header
        self._writer: pq.ParquetWriter | None = None
        self._schema: pa.Schema | None = None
        self._counts: dict[str, int] = {}
        self._pending: list[pa.Table] = []

    def add(self, plan: Plan, source: pa.RecordBatch) -> None:
        """One batch's plan with its source records."""
        ops = plan.ops
        if ops.num_rows == 0:
            return
        for item in pc.value_counts(ops.column(ACTION_COLUMN)).to_pylist():
            self._counts[item["values"]] = self._counts.get(item["values"], 0) + item["counts"]
        before = plan.before.rename_columns([BEFORE + n for n in plan.before.column_names])
        first = source.column(ROW_COLUMN)[0].as_py()
        records = pa.Table.from_batches([source]).take(pc.subtract(ops.column(ROW_COLUMN), first))
        texts = {
            SOURCE + name: _as_text(records.column(name))
            for name in records.column_names
            if name != ROW_COLUMN
        }
        table = ops
        for name in before.column_names:
            table = table.append_column(name, before.column(name))
        for name, values in texts.items():
            table = table.append_column(name, values)
        if self._writer is None:
            self._schema = table.schema
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._writer = pq.ParquetWriter(str(self.path) + ".partial", table.schema)
        assert self._schema is not None
        self._writer.write_table(table.cast(self._schema), row_group_size=ROW_GROUP)

    def close(self) -> None:
        """Finish the file (written under a temporary name, renamed into place)."""
        self.header.counts = dict(self._counts)
        if self._writer is None:  # nothing planned: an empty plan
            schema = plan_schema([pa.field(f, pa.string()) for f in self.header.fields])
            self._writer = pq.ParquetWriter(str(self.path) + ".partial", schema)
            self._schema = schema
        self._writer.close()
        assert self._schema is not None
        table = pq.read_table(str(self.path) + ".partial")
        schema = table.schema.with_metadata(self.header.encode())
        pq.write_table(table.cast(schema), self.path, row_group_size=ROW_GROUP)
        Path(str(self.path) + ".partial").unlink()


def read_header(path: Path) -> PlanHeader:
    try:
        metadata = pq.read_schema(path).metadata
    except (OSError, pa.ArrowInvalid) as err:
        raise ConfigError(f"cannot read the plan {path}: {err}") from None
    return PlanHeader.decode(path, metadata)


def row_groups(path: Path) -> tuple[int, pq.ParquetFile]:
    handle = pq.ParquetFile(path)
    return handle.num_row_groups, handle


def split(table: pa.Table, header: PlanHeader) -> tuple[Plan, pa.Table]:
    """A row group of the file as the plan to carry out and its source records."""
    before_names = [n for n in table.column_names if n.startswith(BEFORE)]
    source_names = [n for n in table.column_names if n.startswith(SOURCE)]
    ops = table.drop_columns([*before_names, *source_names])
    before = table.select(before_names).rename_columns([n[len(BEFORE) :] for n in before_names])
    sources = table.select(source_names).rename_columns([n[len(SOURCE) :] for n in source_names])
    sources = sources.append_column(ROW_COLUMN, table.column(ROW_COLUMN))
    del header
    return Plan(ops, before), sources


def stale(plan: Plan, current: pa.RecordBatch | None, header: PlanHeader) -> pa.Array:
    """Per operation: why it must not be carried out any more (null: it may).

    ``current``: the target's answer to ``match`` for the operations' keys, now."""
    ops = plan.ops
    n = ops.num_rows
    reasons: list[str | None] = [None] * n
    actions = ops.column(ACTION_COLUMN).to_pylist()
    if not header.keys:
        return pa.array(reasons, pa.string())
    ids_now: dict[str, int] = {}
    versions: list[Any] = []
    values_now: pa.Table | None = None
    wanted = identity.encode(ops, header.keys, header.rules)
    there = pa.array([], pa.string())
    if current is not None and current.num_rows:
        table = pa.Table.from_batches([current])
        there = identity.encode(table, header.keys, header.rules)
        ids_now = {str(v): i for i, v in enumerate(table.column(ID_COLUMN).to_pylist())}
        versions = table.column(VERSION_COLUMN).to_pylist()
        values_now = table
    found = identity.match_counts(wanted, there).to_pylist()
    planned_ids = ops.column(ID_COLUMN).to_pylist()
    planned_versions = ops.column(VERSION_COLUMN).to_pylist()
    value_fields = [f for f in header.spec().value_fields if f in plan.before.column_names]
    for i, action in enumerate(actions):
        if action not in (a.value for a in WRITES):
            continue
        if action == Action.CREATE.value:
            if found[i]:
                reasons[i] = "a record with this key was created since the plan was made"
            continue
        record = planned_ids[i]
        at = ids_now.get(str(record)) if record is not None else None
        if at is None:
            reasons[i] = f"the record {record} is gone since the plan was made"
            continue
        if planned_versions[i] is not None:
            if versions[at] != planned_versions[i]:
                reasons[i] = (
                    f"the record {record} changed since the plan was made (version "
                    f"{planned_versions[i]}, now {versions[at]})"
                )
        elif values_now is not None:
            for name in value_fields:
                if name not in values_now.column_names:
                    continue
                was = plan.before.column(name)[i].as_py()
                now = values_now.column(name)[at].as_py()
                if was != now:
                    reasons[i] = (
                        f"the record {record} changed since the plan was made ({name} was "
                        f"{was!r}, now {now!r})"
                    )
                    break
    return pa.array(reasons, pa.string())


def refuse(plan: Plan, reasons: pa.Array) -> Plan:
    """``plan`` with the operations that have a reason turned into rejections (stale)."""
    hit = pc.is_valid(reasons)
    if not pc.any(hit).as_py():
        return plan
    ops = plan.ops
    action = pc.if_else(hit, Action.REJECT.value, ops.column(ACTION_COLUMN))
    code = pc.if_else(hit, RejectCode.STALE.value, ops.column(CODE_COLUMN))
    reason = pc.if_else(hit, reasons, ops.column(REASON_COLUMN))
    for name, values in ((ACTION_COLUMN, action), (CODE_COLUMN, code), (REASON_COLUMN, reason)):
        ops = ops.set_column(ops.column_names.index(name), name, values)
    return Plan(ops, plan.before)


def summary_rows(path: Path, limit: int | None = None) -> pa.Table:
    """The file's operations as a person reads them (``crmbridge plan show``)."""
    table = pq.read_table(path)
    header = read_header(path)
    names = [
        ROW_COLUMN,
        ACTION_COLUMN,
        ID_COLUMN,
        CHANGED_COLUMN,
        REASON_COLUMN,
        *header.fields,
        *(BEFORE + f for f in header.fields if BEFORE + f in table.column_names),
    ]
    table = table.select([n for n in names if n in table.column_names])
    shown = {
        ROW_COLUMN: "record",
        ACTION_COLUMN: "action",
        ID_COLUMN: "target_id",
        CHANGED_COLUMN: "changed",
        REASON_COLUMN: "reason",
    }
    table = table.rename_columns([shown.get(n, n) for n in table.column_names])
    return table.slice(0, limit) if limit is not None else table


def now_text() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def _as_text(column: pa.ChunkedArray | pa.Array) -> pa.Array:
    flat = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    if pa.types.is_string(flat.type):
        return flat
    try:
        return pc.cast(flat, pa.string())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return pa.array([None if v is None else str(v) for v in flat.to_pylist()], pa.string())


__all__ = [
    "PlanHeader",
    "PlanWriter",
    "now_text",
    "read_header",
    "refuse",
    "row_groups",
    "split",
    "stale",
    "summary_rows",
]
