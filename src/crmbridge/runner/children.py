"""Child records: a list of records in a source record, written as children of its parent.

    parents' outcomes (id in the target) + the list column of the mapped batch
        -> one child per item (its fields, crmbridge_position) -> mapping (DuckDB)
        -> parent_key := the parent's id -> target types -> validate
        -> match + plan + apply (runner/writing.TargetWriter, upsert on parent_key + match_keys)

Children are written in the same ledger step as their parents, after them: a batch carried
out again after a crash upserts its children again, and a child found by its keys is
``unchanged``, never a duplicate; a child missing is created. Each child has its own outcome
(in ``children-<field>.csv``) and counts as ``<field>.<outcome>`` in the run's counts.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from functools import partial
from typing import Any, TypeVar, cast

import pyarrow as pa
import pyarrow.compute as pc
from sqlglot import exp

from crmbridge.connectors.base import Connector, CreateIdentity
from crmbridge.core import expressions
from crmbridge.core.coerce import Coercer, Rejection
from crmbridge.core.expressions import BatchTransform
from crmbridge.core.nested import is_record_list
from crmbridge.core.outcomes import Outcome, RejectCode, WriteMode
from crmbridge.core.plan import SOURCE_KEY_COLUMN, PlanSpec
from crmbridge.core.schema import ROW_COLUMN, Field, ObjectSchema, field_type_of
from crmbridge.core.validate import TargetRules, validate
from crmbridge.errors import ConfigError, ErrorContext
from crmbridge.profiles.model import Children, Profile, TruncationAction
from crmbridge.runner.create import infer_target_schema
from crmbridge.runner.outputs import CODE, OUTCOME, REASON, TARGET_ID, outcome_table
from crmbridge.runner.writing import TargetWriter, planned_outcomes

#: the column a child's place in its list is in (1-based), for mappings and match keys
POSITION = "crmbridge_position"
#: the columns of a children outcome table
PARENT_ROW = "crmbridge_row"

T = TypeVar("T")
Attempt = Callable[[tuple[str | int, ...], Callable[[], T]], T | None]


def list_column(field: str) -> str:
    """The column of the mapped batch that carries a children section's list."""
    return f"__crmbridge_children_{field}"


def extra_lists(profile: Profile) -> dict[str, exp.Expression]:
    """The list columns the mapping must carry to the write step."""
    return {list_column(c.field): exp.column(c.field, quoted=True) for c in profile.children}


@dataclass
class ChildSpec:
    """One ``children:`` section, checked against the source's list and the child object."""

    section: Children
    item: pa.StructType
    schema: ObjectSchema
    outputs: dict[str, exp.Expression]
    spec: PlanSpec
    rules: TargetRules
    exists: bool = True

    @property
    def input_schema(self) -> pa.Schema:
        return _input_schema(self.item)


def _input_schema(item: pa.StructType) -> pa.Schema:
    """What a child mapping reads: the item's fields, its position, a row number."""
    fields = [pa.field(f.name, f.type) for f in item]
    return pa.schema([*fields, pa.field(POSITION, pa.int64()), pa.field(ROW_COLUMN, pa.int64())])


def prepare_children(
    profile: Profile,
    attempt: Attempt[Any],
    target: Connector,
    source_types: Mapping[str, pa.DataType],
    namespace: str,
) -> list[ChildSpec]:
    """Check every ``children:`` section; problems go to ``attempt`` with their location."""
    specs = []
    caps = target.capabilities()
    cut = profile.truncation.default is TruncationAction.TRUNCATE
    for i, section in enumerate(profile.children):
        where: tuple[str | int, ...] = ("children", i)
        found = attempt((*where, "field"), partial(_item_type, section, source_types))
        if found is None:
            continue
        if not caps.match or WriteMode.UPSERT not in caps.write_modes:
            attempt(
                (*where, "object"),
                partial(_refuse, f"{target.type_name} targets cannot write child records"),
            )
            continue
        item: pa.StructType = found
        columns = {f.name: f.type for f in item} | {POSITION: pa.int64()}
        outputs: dict[str, exp.Expression] = {}
        for name, text in section.mapping.items():
            what = f"children mapping for {name!r}"
            tree = attempt((*where, "mapping", name), partial(_expression, text, columns, what))
            if tree is not None:
                outputs[name] = tree
        for name, value in section.constants.items():
            outputs[name] = cast(exp.Expression, exp.convert(value))
        described = _describe(section, attempt, where, target, item, outputs)
        if described is None or len(outputs) < len(section.mapping) + len(section.constants):
            continue
        schema, exists = described
        fields = [*outputs, section.parent_key]
        missing = [n for n in fields if not schema.has(n)]
        if missing:
            attempt(
                (*where, "mapping"),
                partial(_refuse, f"{section.object} has no field {missing[0]!r}"),
            )
            continue
        keys = (section.parent_key, *section.match_keys)
        spec = PlanSpec(
            object=section.object,
            mode=WriteMode.UPSERT,
            fields=tuple(fields),
            keys=keys,
            rules={k: schema.field(k).key_rule for k in keys},
            client_ids=caps.create_identity is CreateIdentity.CLIENT_ID,
            namespace=f"{namespace}\x1fchildren {section.field}",
            id_field=schema.id_field,
        )
        rules = TargetRules(
            schema.select(fields),
            WriteMode.UPSERT,
            list(keys),
            truncate=lambda _: cut,
            allow_unlisted_values=profile.allow_unlisted_values,
        )
        specs.append(ChildSpec(section, item, schema, outputs, spec, rules, exists))
    return specs


def create_children(specs: list[ChildSpec], target: Connector) -> list[ChildSpec]:
    """Create the child objects that do not exist yet (``create: true``; a real run)."""
    made = []
    for child in specs:
        if not child.exists:
            keys = [child.section.parent_key, *child.section.match_keys]
            child = replace(child, schema=target.create_object(child.schema, keys), exists=True)
        made.append(child)
    return made


def _refuse(message: str) -> None:
    raise ConfigError(message)


def _item_type(section: Children, types: Mapping[str, pa.DataType]) -> pa.StructType:
    dtype = types.get(section.field)
    if dtype is None or not is_record_list(dtype):
        raise ConfigError(
            f"{section.field!r} is not declared as a list of records; declare it in "
            f"source.types, e.g. {section.field}: [{{sku: string, quantity: integer}}]"
        )
    item = dtype.value_type
    assert isinstance(item, pa.StructType)
    return item


def _expression(text: str, columns: Mapping[str, pa.DataType], what: str) -> exp.Expression:
    tree = expressions.parse(text, what=what)
    expressions.check_columns(tree, columns, what=what)
    return tree


def _describe(
    section: Children,
    attempt: Attempt[Any],
    where: tuple[str | int, ...],
    target: Connector,
    item: pa.StructType,
    outputs: dict[str, exp.Expression],
) -> tuple[ObjectSchema, bool] | None:
    """The child object's schema and whether it exists; inferred from the mapping when it may
    be created."""
    try:
        return target.describe(section.object), True
    except ConfigError as err:
        if not section.create:
            attempt((*where, "object"), partial(_refuse, err.message))
            return None
    typed = ObjectSchema(section.field, tuple(Field(f.name, field_type_of(f.type)) for f in item))
    inferred = infer_target_schema(
        section.object, outputs, _input_schema(item), typed, section.match_keys
    )
    parent = Field(section.parent_key, field_type_of(pa.string()), key=True, required=True)
    return ObjectSchema(section.object, (parent, *inferred.fields)), False


#: a children outcome table: the parent's row, the child's place, then its outcome
CHILD_OUTCOMES = pa.schema(
    [
        pa.field(PARENT_ROW, pa.int64()),
        pa.field(POSITION, pa.int64()),
        pa.field(OUTCOME, pa.string()),
        pa.field(TARGET_ID, pa.string()),
        pa.field(REASON, pa.string()),
        pa.field(CODE, pa.string()),
    ]
)

#: parent outcomes whose record is in the target (its children are written)
_WRITTEN = pa.array([o.value for o in (Outcome.CREATED, Outcome.UPDATED, Outcome.UNCHANGED)])


class ChildWriter:
    """Writes the children of one section for each batch of written parents."""

    def __init__(
        self, child: ChildSpec, target: Connector, context: ErrorContext, *, dry_run: bool
    ) -> None:
        self.child = child
        self.dry_run = dry_run
        self._transform = BatchTransform(child.input_schema, child.outputs)
        types = {f.name: f.arrow_type for f in child.schema.fields if f.name in child.spec.fields}
        self._coercer = Coercer(types)
        self.writer = TargetWriter(
            target,
            child.spec,
            context.merge(object=child.section.object),
            target_exists=child.exists,
            max_batch_size=target.capabilities().max_batch_size,
            remember=dry_run,
        )

    @property
    def field(self) -> str:
        return self.child.section.field

    def close(self) -> None:
        self._transform.close()
        self._coercer.close()

    def write(self, proposed: pa.RecordBatch, parents: pa.Table) -> pa.Table:
        """The children of the records of ``proposed`` whose outcome in ``parents`` put them
        in the target: planned and (unless a dry run) written; one outcome per child."""
        items, origin = self._items(proposed, parents)
        if items.num_rows == 0:
            return CHILD_OUTCOMES.empty_table()
        result = self._transform.apply(items.drop_columns(["parent_id", SOURCE_KEY_COLUMN]))
        rejected = [Rejection(e.row, e.field, e.message) for e in result.errors]
        at = pc.index_in(result.batch.column(ROW_COLUMN), value_set=items.column(ROW_COLUMN))
        mapped = result.batch.append_column(
            self.child.section.parent_key, items.column("parent_id").take(at)
        ).append_column(SOURCE_KEY_COLUMN, items.column(SOURCE_KEY_COLUMN).take(at))
        converted, more = self._coercer.apply(mapped)
        parent_key = self.child.section.parent_key
        # a dry run's parents to be created have no id yet: checked with a stand-in
        column = converted.schema.get_field_index(parent_key)
        ids = converted.column(column)
        stand_in = _stand_in(ids.type)
        converted = converted.set_column(
            column, converted.schema.field(column), pc.fill_null(ids, stand_in)
        )
        marked = converted.append_column("__new", pc.is_null(ids))
        valid, more2 = validate(marked, self.child.rules)
        rejected += more + more2
        fields = list(self.child.spec.fields)
        known = pc.invert(valid.column("__new"))
        planned = valid.filter(known).select([*fields, ROW_COLUMN, SOURCE_KEY_COLUMN])
        outcomes = [_rejections(rejected)]
        if planned.num_rows:
            plan = self.writer.plan(planned)
            done = planned_outcomes(plan.ops) if self.dry_run else self.writer.apply(plan)
            outcomes.append(done)
        new = valid.filter(pc.invert(known)).column(ROW_COLUMN)
        if len(new):  # planned as created with the parent; a real run knows every parent id
            word = Outcome.CREATED if self.dry_run else Outcome.REJECTED
            reason = None if self.dry_run else "the parent record has no id in the target"
            code = None if self.dry_run else RejectCode.REFERENCE.value
            outcomes.append(_table(new, word.value, reason, code))
        table = pa.concat_tables(outcomes)
        index = pc.index_in(table.column(ROW_COLUMN), value_set=origin.column(ROW_COLUMN))
        out = pa.table(
            {
                PARENT_ROW: origin.column(PARENT_ROW).take(index),
                POSITION: origin.column(POSITION).take(index),
                OUTCOME: table.column(OUTCOME),
                TARGET_ID: table.column(TARGET_ID),
                REASON: table.column(REASON),
                CODE: table.column(CODE),
            },
            schema=CHILD_OUTCOMES,
        )
        return out.take(pc.sort_indices(out, [(PARENT_ROW, "ascending"), (POSITION, "ascending")]))

    def _items(self, proposed: pa.RecordBatch, parents: pa.Table) -> tuple[pa.Table, pa.Table]:
        """One row per child: its fields, POSITION, ROW_COLUMN (a number of its own), the
        parent's id and a source key (the parent's, with the position); and per child number
        the parent's row and the position."""
        written = parents.filter(pc.is_in(parents.column(OUTCOME), value_set=_WRITTEN))
        at = pc.index_in(written.column(ROW_COLUMN), value_set=proposed.column(ROW_COLUMN))
        kept = pc.is_valid(at)
        written, at = written.filter(kept), at.filter(kept)
        lists = proposed.column(list_column(self.child.section.field)).take(at)
        if not isinstance(lists, pa.ListArray):
            lists = pa.array(lists.to_pylist(), pa.list_(self.child.item))
        lists = pc.fill_null(lists, pa.scalar([], lists.type))
        owner = pc.list_parent_indices(lists)
        flat = pc.list_flatten(lists)
        starts = pc.list_value_length(lists).to_pylist()
        positions = [p for n in starts for p in range(1, n + 1)]
        count = len(flat)
        item = flat if isinstance(flat, pa.StructArray) else flat.combine_chunks()
        columns = {f.name: item.field(i) for i, f in enumerate(self.child.item)}
        ids = written.column(TARGET_ID).combine_chunks().take(owner)
        parent_rows = written.column(ROW_COLUMN).combine_chunks().take(owner)
        keys = proposed.column(SOURCE_KEY_COLUMN).take(at).take(owner)
        position = pa.array(positions, pa.int64())
        numbers = pa.array(range(1, count + 1), pa.int64())
        items = pa.table(
            {
                **columns,
                POSITION: position,
                ROW_COLUMN: numbers,
                "parent_id": ids,
                SOURCE_KEY_COLUMN: pc.binary_join_element_wise(
                    pc.fill_null(keys, ""), pc.cast(position, pa.string()), "\x1f"
                ),
            }
        )
        origin = pa.table({ROW_COLUMN: numbers, PARENT_ROW: parent_rows, POSITION: position})
        return items, origin


def _stand_in(dtype: pa.DataType) -> pa.Scalar:
    """A value of ``dtype`` standing for an id not known yet (a dry run's new parent)."""
    try:
        return pa.scalar("\x00new").cast(dtype)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return pa.scalar(0).cast(dtype)


def _table(rows: pa.Array, outcome: str, reason: str | None, code: str | None) -> pa.Table:
    n = len(rows)
    return outcome_table(
        rows,
        pa.array([outcome] * n, pa.string()),
        pa.nulls(n, pa.string()),
        pa.array([reason] * n, pa.string()),
        pa.array([code] * n, pa.string()),
    )


def _rejections(rejected: list[Rejection]) -> pa.Table:
    return outcome_table(
        pa.array([r.row for r in rejected], pa.int64()),
        pa.array([Outcome.REJECTED.value] * len(rejected), pa.string()),
        pa.nulls(len(rejected), pa.string()),
        pa.array(
            [f"field {r.field!r}: {r.reason}" if r.field else r.reason for r in rejected],
            pa.string(),
        ),
        pa.array([r.code.value for r in rejected], pa.string()),
    )


def count(field: str, outcomes: pa.Table) -> dict[str, int]:
    """``{'lines.created': 3, ...}``: a children outcome table's counts."""
    counted = pc.value_counts(outcomes.column(OUTCOME)).to_pylist()
    return {f"{field}.{item['values']}": item["counts"] for item in counted}


__all__ = [
    "CHILD_OUTCOMES",
    "POSITION",
    "ChildSpec",
    "ChildWriter",
    "count",
    "create_children",
    "extra_lists",
    "list_column",
    "prepare_children",
]
