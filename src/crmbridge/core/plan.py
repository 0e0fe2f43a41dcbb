"""The plan of a write: one operation per record, decided from what the target holds.

    proposed records ──┐
                       ├──▶ planner.Planner.plan() ──▶ Plan: per record create / update (fields) /
    match candidates ──┘                        delete / unchanged / reject (code, reason) / skip

A preview and a dry run *are* the plan; a real run hands the plan's operations to the target
(``Connector.apply``). Because both come from this one computation they cannot disagree.

What is compared, and how:

* **which record**: the match keys under their rules (:mod:`crmbridge.core.identity`), on the
  values in the target's stored form (what the target keeps after a save);
* **changed or not**: each written field that is not a key (only ``update_fields`` when
  given), value by value, also in stored form; a field in ``keep_when_null`` whose value is
  null is left alone. An update writes only the fields that changed.

Records that share a key in one batch are planned one after the other (in *waves*): the
second sees the record the first creates or changes. A planner that ``remember`` s (a dry run)
also carries what it planned into later batches, since nothing was written for the target to
show; a real run matches each batch after the previous one was applied.

Every operation has an **operation key** derived from the source record's identity; with
``client_ids`` it is a UUID derived from the profile's identity too, and a created record gets
it as its id: the same record planned again (a retry, a resumed run) gets the same id, so the
target recognises a create it already carried out.
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc

from crmbridge.core import identity
from crmbridge.core.identity import KeyRule
from crmbridge.core.outcomes import Outcome, WriteMode
from crmbridge.core.schema import ROW_COLUMN
from crmbridge.errors import ConfigError, ErrorContext

#: columns of a match answer and of an operation
ID_COLUMN = "_crmbridge_id"
VERSION_COLUMN = "_crmbridge_version"
ACTION_COLUMN = "_crmbridge_action"
OP_KEY_COLUMN = "_crmbridge_op_key"
#: the source record's identity (text), from which operation keys are derived
SOURCE_KEY_COLUMN = "_crmbridge_source_key"
#: plan-only columns
CODE_COLUMN = "_crmbridge_code"
REASON_COLUMN = "_crmbridge_reason"
CHANGED_COLUMN = "_crmbridge_changed"
WAVE_COLUMN = "_crmbridge_wave"
#: the operation key of the create (earlier in the run) whose record this operation acts on,
#: when that record's id is not known before the create is carried out
CREATED_BY_COLUMN = "_crmbridge_created_by"
#: prefix of the boolean column per field: does the operation write this field?
SET_PREFIX = "_crmbridge_set:"

# the state of candidate records while planning
_IDENTITY = "_crmbridge_identity"
_HANDLE = "_crmbridge_handle"  # the record's id, or "+<op key>" of the create that makes it
_FROM_ROW = "_crmbridge_from_row"  # the source row whose create makes it (this run)
_DELETED = "_crmbridge_deleted"

#: namespace of operation keys (uuid5)
OP_NAMESPACE = uuid.UUID("5b0c7a64-8f3e-4f5e-9d53-3c1f7e2a9b10")


class Action(enum.StrEnum):
    CREATE = "create"
    UPDATE = "update"
    DELETE = "delete"
    UNCHANGED = "unchanged"
    REJECT = "reject"
    SKIP = "skip"

    @property
    def outcome(self) -> Outcome | None:
        """The outcome of the record when the plan is carried out (None: skipped)."""
        return _OUTCOMES.get(self)


_OUTCOMES = {
    Action.CREATE: Outcome.CREATED,
    Action.UPDATE: Outcome.UPDATED,
    Action.DELETE: Outcome.DELETED,
    Action.UNCHANGED: Outcome.UNCHANGED,
    Action.REJECT: Outcome.REJECTED,
}
#: the actions the target carries out
WRITES = (Action.CREATE, Action.UPDATE, Action.DELETE)


class OnMultiple(enum.StrEnum):
    """What a record that matches several target records does."""

    REJECT = "reject"  # rejected: ambiguous_match
    FIRST = "first"  # acts on the first match (in the target's order)
    ALL = "all"  # acts on every match, one operation each


@dataclass(frozen=True)
class PlanSpec:
    """How the records of one profile are planned."""

    object: str
    mode: WriteMode
    #: the written fields (columns of the proposed batch besides ROW and SOURCE_KEY)
    fields: tuple[str, ...]
    keys: tuple[str, ...] = ()
    rules: Mapping[str, KeyRule] = field(default_factory=dict)
    #: update / upsert: the only fields written to records that exist (None: all)
    update_fields: tuple[str, ...] | None = None
    #: fields whose null value means "leave the stored value alone", not "set to null"
    keep_when_null: frozenset[str] = frozenset()
    on_multiple: OnMultiple = OnMultiple.REJECT
    #: the target takes the operation key as the id of a created record
    client_ids: bool = False
    #: part of every client id: the profile's identity (and a generation for ``--again``)
    namespace: str = ""
    #: with client ids: the target's id field; a record that brings its own id is created
    #: with it
    id_field: str | None = None

    def __post_init__(self) -> None:
        context = ErrorContext(object=self.object)
        if self.mode is not WriteMode.INSERT and not self.keys:
            raise ConfigError(
                f"{self.mode.value} needs match keys to find the records", context=context
            )
        for key in self.keys:
            if key not in self.fields:
                raise ConfigError(
                    f"match key {key!r} is not among the written fields",
                    context=context.merge(field=key),
                )

    @property
    def value_fields(self) -> tuple[str, ...]:
        """What an update compares and writes: the written fields that are not keys."""
        wanted = self.update_fields
        return tuple(
            f for f in self.fields if f not in self.keys and (wanted is None or f in wanted)
        )

    def op_keys(self, source_keys: pa.Array) -> pa.Array:
        """The operation key of each source record: with client ids a UUID derived from the
        namespace and the source key, else the source key itself."""
        if not self.client_ids:
            return source_keys
        prefix = f"{self.namespace}\x1f"
        return pa.array(
            [
                str(uuid.uuid5(OP_NAMESPACE, prefix + v)) if v is not None else str(uuid.uuid4())
                for v in source_keys.to_pylist()
            ],
            pa.string(),
        )


@dataclass
class Plan:
    """One row per operation (several for a record with ``on_multiple: all``), in source
    order: the plan columns (:func:`plan_schema`), then the proposed values of the fields."""

    ops: pa.Table
    #: the matched record's current values (update / unchanged / delete / duplicate rows; else
    #: null), aligned with ``ops``: what an update changes from
    before: pa.Table
    #: the identities (``core.identity.encode``, the target's stored form) of the records the
    #: plan was made for; None: unknown. Another batch's plan made while this one is written
    #: holds only while no identity is in both (:meth:`shares_records_with`)
    touches: pa.Array | None = None

    def shares_records_with(self, other: Plan) -> bool:
        """Whether the two plans may be about one record (always, when one cannot tell)."""
        if self.touches is None or other.touches is None:
            return True
        return identity.shared(self.touches, other.touches)

    @property
    def actions(self) -> pa.ChunkedArray:
        return self.ops.column(ACTION_COLUMN)

    def select(self, *actions: Action) -> pa.Table:
        wanted = pa.array([a.value for a in actions], pa.string())
        return self.ops.filter(pc.is_in(self.actions, value_set=wanted))

    def counts(self) -> dict[Action, int]:
        counts = dict.fromkeys(Action, 0)
        if self.ops.num_rows:
            for item in pc.value_counts(self.actions).to_pylist():
                counts[Action(item["values"])] = item["counts"]
        return counts


def effective_keys(
    mode: WriteMode,
    match_keys: Sequence[str],
    written: Sequence[str],
    id_field: str | None,
    primary_key: Sequence[str],
) -> tuple[str, ...]:
    """The keys a write matches on: the match keys; without any, the target's own key when it
    is written (its id; for an insert also its primary key), so a record that exists is
    recognised instead of duplicated."""
    if match_keys:
        return tuple(match_keys)
    if id_field and id_field in written:
        return (id_field,)
    if mode is WriteMode.INSERT and primary_key and all(k in written for k in primary_key):
        return tuple(primary_key)
    return ()


def plan_schema(fields: Sequence[pa.Field]) -> pa.Schema:
    """The columns of :attr:`Plan.ops` for the written ``fields``."""
    head = [
        pa.field(ROW_COLUMN, pa.int64()),
        pa.field(SOURCE_KEY_COLUMN, pa.string()),
        pa.field(ACTION_COLUMN, pa.string()),
        pa.field(ID_COLUMN, pa.string()),
        pa.field(OP_KEY_COLUMN, pa.string()),
        pa.field(VERSION_COLUMN, pa.string()),
        pa.field(CREATED_BY_COLUMN, pa.string()),
        pa.field(WAVE_COLUMN, pa.int32()),
        pa.field(CODE_COLUMN, pa.string()),
        pa.field(REASON_COLUMN, pa.string()),
        pa.field(CHANGED_COLUMN, pa.string()),
    ]
    sets = [pa.field(SET_PREFIX + f.name, pa.bool_()) for f in fields]
    return pa.schema([*head, *sets, *fields])


def decided_plan(
    spec: PlanSpec,
    *,
    actions: Sequence[Action],
    ids: Sequence[str | None],
    source_keys: Sequence[str],
    values: pa.Table,
    sets: Mapping[str, Sequence[bool]],
    before: pa.Table | None = None,
    reasons: Sequence[str | None] | None = None,
    codes: Sequence[str | None] | None = None,
) -> Plan:
    """A plan of operations decided elsewhere (a two-way sync's merge decides per field what
    each side gets), in the form every plan has, so that previews, dry runs, the ledger and
    ``TargetWriter.apply`` treat it like any other. ``values``: the fields' values, typed per
    the target; ``sets``: per field, which operations write it (an update writes only those;
    a create writes every field that has a value); ``ids``: the target record of an update or
    delete. Operation keys follow from ``source_keys`` as in :meth:`PlanSpec.op_keys`."""
    n = len(actions)
    fields = list(spec.fields)
    action = pa.array([a.value for a in actions], pa.string())
    source = pa.array(list(source_keys), pa.string())
    is_create = pc.equal(action, Action.CREATE.value)
    is_update = pc.equal(action, Action.UPDATE.value)
    masks = {}
    for name in fields:
        wanted = pa.array(list(sets.get(name, [False] * n)), pa.bool_())
        masks[name] = pc.or_(pc.and_(is_create, pc.is_valid(values.column(name))), wanted)
    none = [None] * n
    ops = pa.table(
        {
            ROW_COLUMN: pa.array(range(n), pa.int64()),
            SOURCE_KEY_COLUMN: source,
            ACTION_COLUMN: action,
            ID_COLUMN: pa.array(list(ids), pa.string()),
            OP_KEY_COLUMN: spec.op_keys(source),
            VERSION_COLUMN: pa.nulls(n, pa.string()),
            CREATED_BY_COLUMN: pa.nulls(n, pa.string()),
            WAVE_COLUMN: pa.repeat(0, n).cast(pa.int32()),
            CODE_COLUMN: pa.array(list(codes or none), pa.string()),
            REASON_COLUMN: pa.array(list(reasons or none), pa.string()),
            CHANGED_COLUMN: changed_text(masks, fields, is_update),
            **{SET_PREFIX + name: masks[name] for name in fields},
            **{name: values.column(name) for name in fields},
        }
    )
    shown = before if before is not None else pa.table({f: pa.nulls(n) for f in fields})
    return Plan(ops, shown)


def changed_text(sets: Mapping[str, pa.Array], fields: Sequence[str], update: pa.Array) -> pa.Array:
    """``"phone, status"``: the fields an update changes (null for other operations)."""
    none = pa.scalar(None, pa.string())
    if not fields or not pc.any(update).as_py():  # e.g. a batch of creates only
        return pa.nulls(len(update), pa.string())
    parts = [pc.if_else(sets[f], f + ", ", "") for f in fields]
    joined = parts[0] if len(parts) == 1 else pc.binary_join_element_wise(*parts, "")
    joined = pc.replace_substring_regex(joined, pattern=", $", replacement="")
    return pc.if_else(pc.and_(update, pc.not_equal(joined, "")), joined, none)


__all__ = [
    "ACTION_COLUMN",
    "CHANGED_COLUMN",
    "CODE_COLUMN",
    "CREATED_BY_COLUMN",
    "ID_COLUMN",
    "OP_KEY_COLUMN",
    "REASON_COLUMN",
    "SET_PREFIX",
    "SOURCE_KEY_COLUMN",
    "VERSION_COLUMN",
    "WAVE_COLUMN",
    "WRITES",
    "Action",
    "OnMultiple",
    "Plan",
    "PlanSpec",
    "changed_text",
    "decided_plan",
    "effective_keys",
    "plan_schema",
]
