"""One side of a sync, prepared: its connector, its fields, its subset, and its records as the
sync compares them.

A side's records become **rows** (:meth:`SideSetup.rows`), one Arrow batch at a time:

=========  ====================================================================================
column     what
=========  ====================================================================================
``id``     the record's id, as text
``st``     ``in`` (in the subset), ``out`` (exists, outside the subset), ``del`` (deleted)
``src``    ``read`` (by this run's read of the side) or ``fetched`` (by id, as a partner)
``mod``    the modified value as a number (seconds since 1970 for date-times), for ``newest``
``lk``     the link key: the link fields as the other side's, under the link's rules (text)
``si``     the value of the field that holds the other side's id (``link.store_in``)
``c<i>``   field pair *i*: this side's value, canonical (:mod:`crmbridge.sync.canon`)
``t<i>``   field pair *i*: the value this record gives the other side's field, in the other
           side's stored form, canonical (null when the pair does not go that way)
``w<i>``   the same value, typed for the other side: what is written there
``x<i>``   why that value cannot be written there (too long, not an option), or null
``lw<j>``  link field *j* as the other side's type (written to a record created there)
=========  ====================================================================================
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from sqlglot import exp

from crmbridge.connections import ConnectionStore, inline_connection
from crmbridge.connectors.base import (
    ROW_COLUMN,
    Connector,
    DeleteReporting,
    MatchRequest,
    ReadRequest,
    Since,
)
from crmbridge.core import expressions, identity
from crmbridge.core.expressions import BatchTransform
from crmbridge.core.identity import KeyRule
from crmbridge.core.outcomes import WriteMode
from crmbridge.core.plan import ID_COLUMN
from crmbridge.core.schema import ObjectSchema
from crmbridge.core.validate import TargetRules, validate
from crmbridge.errors import ConfigError, ErrorContext
from crmbridge.profiles.loader import LoadedSync
from crmbridge.profiles.model import InlineConnection
from crmbridge.profiles.sync_model import (
    DeletePolicy,
    Direction,
    InsertPolicy,
    Side,
    SyncProfile,
    TooLong,
)
from crmbridge.sync.canon import canon, instants

#: ids per fetch (match) call
FETCH_PAGE = 1000


@dataclass
class SideSetup:
    """Everything about one side a sync needs, checked up front."""

    name: str  # "a" or "b"
    spec: Side
    connector: Connector
    schema: ObjectSchema
    id_field: str
    #: this side's field of each field pair, in the profile's order
    fields: list[str]
    #: this side's link fields, in the link rule's order
    link_fields: list[str]
    #: the field that holds the other side's id, if any
    store_in: str | None
    #: pair index -> expression over this side's fields giving the other side's value
    towards: dict[int, exp.Expression] = field(default_factory=dict)
    #: pair index -> what a value too long for the other side does
    too_long: dict[int, TooLong] = field(default_factory=dict)
    #: the whole subset condition; the part the connector evaluates; the part evaluated here
    condition: exp.Expression | None = None
    pushed: exp.Expression | None = None
    local: exp.Expression | None = None
    other: SideSetup = field(init=False, repr=False)
    #: compiled transforms, by what they compute and over which columns (compiling one costs
    #: more than evaluating it on a batch)
    _transforms: dict[tuple[str, ...], BatchTransform] = field(default_factory=dict, repr=False)
    #: the other side's link field -> the rule both sides' link values compare under
    link_rules: dict[str, KeyRule] = field(default_factory=dict)

    def close(self) -> None:
        """Close the side's transforms and its connector."""
        for transform in self._transforms.values():
            transform.close()
        self._transforms.clear()
        self.connector.close()

    # -- what is read ---------------------------------------------------------------------
    @property
    def modified(self) -> str | None:
        return self.spec.modified

    @property
    def caps(self) -> Any:
        return self.connector.capabilities()

    @property
    def read_fields(self) -> list[str]:
        names = [self.id_field, *([self.modified] if self.modified else [])]
        names += [*self.fields, *self.link_fields, *([self.store_in] if self.store_in else [])]
        if self.spec.deleted_flag:
            names.append(self.spec.deleted_flag)
        if self.condition is not None:
            names += sorted(expressions.columns_of(self.condition))
        return list(dict.fromkeys(names))

    @property
    def incremental(self) -> bool:
        """Can this side read only what changed (a modified field the connector reads by)?"""
        return bool(self.modified) and bool(self.caps.incremental)

    @property
    def tombstones(self) -> bool:
        """Does a read of this side report deleted records?"""
        return self.caps.deletes is DeleteReporting.FLAG and self.schema.deleted_field is not None

    def read(
        self, *, since: Any = None, include_deleted: bool = False, batch_size: int = 10_000
    ) -> Iterator[pa.RecordBatch]:
        """The side's records as the connector returns them: the subset (its pushed part),
        from ``since`` on when given, deleted ones too with ``include_deleted``."""
        names = self.read_fields
        deleted = self.schema.deleted_field
        if include_deleted and deleted and deleted not in names:
            names = [*names, deleted]
        request = ReadRequest(
            self.spec.object,
            fields=names,
            filter=self.pushed,
            since=Since(self.modified, since, self.id_field)
            if since is not None and self.modified
            else None,
            batch_size=batch_size,
            include_deleted=include_deleted,
        )
        yield from self.connector.read(request)

    def fetch(self, ids: Sequence[str]) -> pa.RecordBatch | None:
        """The records with these ids as they are now (deleted ones are not returned), with
        their current values; None when the connector cannot look records up."""
        if not self.caps.match:
            return None
        unique = list(dict.fromkeys(ids))
        found: list[pa.RecordBatch] = []
        id_type = self.schema.field(self.id_field).arrow_type
        for start in range(0, len(unique), FETCH_PAGE):
            page = _try_cast(pa.array(unique[start : start + FETCH_PAGE], pa.string()), id_type)
            values = pa.RecordBatch.from_arrays([page.drop_null()], names=[self.id_field])
            if values.num_rows == 0:
                continue
            request = MatchRequest(
                self.spec.object,
                [self.id_field],
                values,
                rules={self.id_field: KeyRule.EXACT},
                fields=[n for n in self.read_fields if n != self.id_field],
                context=ErrorContext(object=self.spec.object),
            )
            answer = self.connector.match(request)
            if answer.num_rows:
                found.append(answer)
        names = self.read_fields
        if not found:
            return _empty(self.schema, names)
        table = pa.Table.from_batches(found)
        columns = {n: table.column(n) for n in names if n in table.column_names}
        if self.id_field not in columns:
            columns[self.id_field] = table.column(ID_COLUMN)
        return _typed(pa.table(columns), self.schema, names)

    # -- rows -----------------------------------------------------------------------------
    def rows(
        self, raw: pa.RecordBatch, *, src: str, whole_condition: bool = False
    ) -> tuple[pa.RecordBatch, list[tuple[str, str]]]:
        """``raw`` (records as read or fetched) as rows (see the module docstring), and the
        records that could not be prepared: (id, reason). ``whole_condition``: evaluate the
        whole subset condition here (records fetched by id), not only its local part."""
        names = self.read_fields
        batch = _typed(pa.Table.from_batches([raw]), self.schema, names)
        n = batch.num_rows
        batch = _with_instants(batch, self.spec.timezone)
        ids = pc.cast(batch.column(self.id_field), pa.string())
        condition = self.condition if whole_condition else self.local
        state = pa.repeat("in", n).cast(pa.string())
        if condition is not None and n:
            inside = self._evaluate({"keep": condition}, batch, {"keep": pa.bool_()})[0]
            state = pc.if_else(pc.fill_null(inside.column("keep"), False), "in", "out")
        for deleted in (self.schema.deleted_field, self.spec.deleted_flag):
            if deleted and deleted in raw.column_names:
                gone = pc.fill_null(_truthy(raw.column(deleted)), False)
                state = pc.if_else(gone, "del", state)
        columns: dict[str, pa.Array] = {
            "id": ids,
            "st": state,
            "src": pa.repeat(src, n).cast(pa.string()),
            "mod": _as_number(batch.column(self.modified))
            if self.modified
            else pa.nulls(n, pa.float64()),
        }
        link_values = self._link_values(batch)
        columns["lk"] = self._link_key(batch, link_values)
        columns["si"] = (
            pc.cast(batch.column(self.store_in), pa.string())
            if self.store_in
            else pa.nulls(n, pa.string())
        )
        for i, name in enumerate(self.fields):
            columns[f"c{i}"] = canon(batch.column(name))
        problems: list[tuple[str, str]] = []
        written, reasons, errors = self._towards(batch)
        for row, message in errors:
            problems.append((ids[row].as_py(), message))
        for i, other_name in enumerate(self.other.fields):
            if i in written:
                values = written[i]
                shown = self.other.connector.stored_form(
                    self.other.spec.object, pa.RecordBatch.from_arrays([values], [other_name])
                ).column(0)
                columns[f"t{i}"] = canon(shown)
                columns[f"w{i}"] = values
                columns[f"x{i}"] = reasons[i]
            else:
                columns[f"t{i}"] = pa.nulls(n, pa.string())
                columns[f"w{i}"] = pa.nulls(n, self.other.schema.field(other_name).arrow_type)
                columns[f"x{i}"] = pa.nulls(n, pa.string())
        for j, values in enumerate(link_values):
            columns[f"lw{j}"] = values
        result = pa.RecordBatch.from_pydict(columns)
        if problems:
            bad = pa.array([p[0] for p in problems], pa.string())
            result = result.filter(pc.invert(pc.fill_null(pc.is_in(ids, value_set=bad), False)))
        return result, problems

    def _evaluate(
        self,
        outputs: dict[str, exp.Expression],
        batch: pa.RecordBatch,
        types: dict[str, pa.DataType],
    ) -> tuple[pa.RecordBatch, list[tuple[int, str]]]:
        """``outputs`` evaluated over ``batch``, one value per row (null where a row fails),
        and the failing rows: (index, message)."""
        numbered = batch.append_column(ROW_COLUMN, pa.array(range(batch.num_rows), pa.int64()))
        # the trees are the side's own (its condition, its expressions): their ids name them
        key = (*(f"{name}:{id(tree)}" for name, tree in outputs.items()), str(numbered.schema))
        transform = self._transforms.get(key)
        if transform is None:
            transform = BatchTransform(numbered.schema, outputs, output_types=types)
            self._transforms[key] = transform
        result = transform.apply(numbered)
        got = result.batch
        failed = [(e.row, f"{e.field or 'filter'}: {e.message}") for e in result.errors]
        if got.num_rows == batch.num_rows:
            return got.drop_columns([ROW_COLUMN]), failed
        # rows that failed are missing: put nulls in their place
        at = pc.index_in(numbered.column(ROW_COLUMN), value_set=got.column(ROW_COLUMN))
        filled = {name: got.column(name).take(at) for name in outputs}
        return pa.RecordBatch.from_pydict(filled), failed

    def _towards(
        self, batch: pa.RecordBatch
    ) -> tuple[dict[int, pa.Array], dict[int, pa.Array], list[tuple[int, str]]]:
        """The values for the other side (pair index -> typed values), why each cannot be
        written there (pair index -> reason or null), and rows whose expressions failed."""
        if not self.towards or batch.num_rows == 0:
            return (
                {i: pa.nulls(batch.num_rows, self._other_type(i)) for i in self.towards},
                {i: pa.nulls(batch.num_rows, pa.string()) for i in self.towards},
                [],
            )
        outputs = {f"w{i}": tree for i, tree in self.towards.items()}
        types = {f"w{i}": self._other_type(i) for i in self.towards}
        got, failed = self._evaluate(outputs, batch, types)
        written = {i: got.column(f"w{i}") for i in self.towards}
        reasons = self._fit(written)
        return written, reasons, failed

    def _other_type(self, i: int) -> pa.DataType:
        return self.other.schema.field(self.other.fields[i]).arrow_type

    def _fit(self, written: dict[int, pa.Array]) -> dict[int, pa.Array]:
        """Values checked against the other side's schema: a value too long for its field is
        cut (``truncate``) or gets a reason (``reject``, ``hold``); so does one that is not
        among the field's options."""
        other = self.other
        reasons: dict[int, pa.Array] = {}
        for i, values in written.items():
            n = len(values)
            name = other.fields[i]
            cut = self.too_long.get(i) is TooLong.TRUNCATE
            batch = pa.RecordBatch.from_arrays(
                [values, pa.array(range(n), pa.int64())], [name, ROW_COLUMN]
            )
            rules = TargetRules(
                other.schema.select([name]), WriteMode.UPDATE, (), truncate=_always(cut)
            )
            kept, rejections = validate(batch, rules)
            text: list[str | None] = [None] * n
            for rejection in rejections:
                text[rejection.row] = f"{other.name}.{name}: {rejection.reason}"
            if cut and kept.num_rows == n:
                written[i] = kept.column(name)
            elif cut:
                at = pc.index_in(batch.column(ROW_COLUMN), value_set=kept.column(ROW_COLUMN))
                written[i] = pc.if_else(pc.is_valid(at), kept.column(name).take(at), values)
            reasons[i] = pa.array(text, pa.string())
        return reasons

    def _link_values(self, batch: pa.RecordBatch) -> list[pa.Array]:
        """This side's link fields as the other side's types (null where they do not
        convert)."""
        other = self.other
        return [
            _try_cast(batch.column(mine), other.schema.field(theirs).arrow_type)
            for mine, theirs in zip(self.link_fields, other.link_fields, strict=True)
        ]

    def _link_key(self, batch: pa.RecordBatch, link_values: list[pa.Array]) -> pa.Array:
        """The link key in the pairing form (side b's link fields, types and rules)."""
        b = self if self.name == "b" else self.other
        if self.name == "b":
            values = [batch.column(name) for name in self.link_fields]
        else:
            values = link_values
        table = pa.table(dict(zip(b.link_fields, values, strict=True)))
        rules = self.link_rules if self.name == "b" else self.other.link_rules
        return identity.encode(table, b.link_fields, rules)


# -- opening ------------------------------------------------------------------------------
def open_sides(loaded: LoadedSync, store: ConnectionStore | None) -> tuple[SideSetup, SideSetup]:
    """Both sides, connectors opened and everything checked (a ConfigError names the
    setting)."""
    profile = loaded.profile
    opened: list[Connector] = []
    try:
        sides = []
        for name in ("a", "b"):
            spec: Side = getattr(profile, name)
            connector = _connection(loaded, name, spec, store).connector(base_dir=loaded.base_dir)
            connector.open()
            opened.append(connector)
            sides.append(_setup(profile, name, spec, connector))
        a, b = sides
        a.other, b.other = b, a
        _link_rules(profile, a, b)
        _expressions(profile, a, b)
        for side in (a, b):
            _writable(profile, side)
        return a, b
    except BaseException:
        for connector in opened:
            connector.close()
        raise


def _connection(loaded: LoadedSync, name: str, spec: Side, store: ConnectionStore | None) -> Any:
    ref = spec.connection
    if isinstance(ref, InlineConnection):
        return inline_connection(f"{loaded.name}.{name}", ref.type, ref.settings())
    if store is None:
        raise ConfigError(f"{name}.connection: connection {ref!r} needs the connection store")
    return store.get(ref)


def _setup(profile: SyncProfile, name: str, spec: Side, connector: Connector) -> SideSetup:
    try:
        schema = connector.describe(spec.object)
    except ConfigError as err:
        raise err.with_context(field=f"{name}.object") from None
    id_field = spec.id or schema.id_field or (schema.key_fields[0] if schema.key_fields else None)
    if id_field is None:
        raise ConfigError(
            f"{name}.id: {spec.object} has no id field or primary key: name the field that "
            "identifies a record"
        )
    fields = [getattr(pair, name) for pair in profile.fields]
    link_fields = list(getattr(profile.link, name))
    store_in = profile.link.store_in.get(name)
    context = ErrorContext(object=spec.object)
    for needed in [id_field, *fields, *link_fields, *([store_in] if store_in else [])]:
        schema.field(needed, context=context)  # unknown -> ConfigError with close names
    for default in [*spec.defaults, *([spec.deleted_flag] if spec.deleted_flag else [])]:
        schema.field(default, context=context)
    if spec.modified:
        schema.field(spec.modified, context=context)
    setup = SideSetup(name, spec, connector, schema, id_field, fields, link_fields, store_in)
    if spec.filter:
        tree = expressions.parse(spec.filter, what=f"{name}.filter")
        types = {f.name: f.type for f in schema.fields}
        expressions.check_columns(tree, types, what=f"{name}.filter")
        parts = expressions.conjuncts(tree)
        pushed = [p for p in parts if connector.can_push_down(spec.object, p)]
        setup.condition = tree
        setup.pushed = expressions.conjoin(pushed)
        setup.local = expressions.conjoin([p for p in parts if p not in pushed])
    return setup


def _link_rules(profile: SyncProfile, a: SideSetup, b: SideSetup) -> None:
    rules = {}
    for mine, theirs in zip(a.link_fields, b.link_fields, strict=True):
        rules[theirs] = profile.link.rules.get(mine) or b.schema.field(theirs).key_rule
    a.link_rules = b.link_rules = rules


def _expressions(profile: SyncProfile, a: SideSetup, b: SideSetup) -> None:
    """Each side's expressions for the other side's fields, and their length policies."""
    default = profile.conflicts.too_long
    for i, pair in enumerate(profile.fields):
        for this, text, direction in (
            (a, pair.a_to_b, Direction.A_TO_B),
            (b, pair.b_to_a, Direction.B_TO_A),
        ):
            if pair.direction not in (Direction.BOTH, direction):
                continue
            what = f"fields {pair.a}/{pair.b}"
            source_field = this.fields[i]
            tree = (
                expressions.parse(text, what=what)
                if text
                else exp.column(source_field, quoted=True)
            )
            columns = {f.name: f.type for f in this.schema.fields}
            expressions.check_columns(tree, columns, what=what)
            this.towards[i] = tree
            this.too_long[i] = pair.too_long or default


def _writable(profile: SyncProfile, side: SideSetup) -> None:
    """A side whose connector cannot update records (a file is written whole) takes no
    writes: say so before anything is read, not when its first write fails."""
    if WriteMode.UPDATE in side.caps.write_modes:
        return
    n, o = side.name, side.other.name
    towards = f"{o}_to_{n}"
    wants = [
        f"fields {p.a}/{p.b} go {p.direction.value}"
        for i, p in enumerate(profile.fields)
        if i in side.other.towards
    ]
    insert = getattr(profile.inserts, towards)
    if insert is not InsertPolicy.NEVER:
        wants.append(f"inserts.{towards} is {insert.value}")
    delete = getattr(profile.deletes, towards)
    if delete in (DeletePolicy.SOFT, DeletePolicy.HARD):
        wants.append(f"deletes.{towards} is {delete.value}")
    if side.store_in:
        wants.append(f"link.store_in names a field of {n}")
    if wants:
        raise ConfigError(
            f"{n}.object: {side.spec.object} cannot be updated (a file is only written whole), "
            f"so a sync writes nothing to it, but {'; '.join(wants)}: make those fields "
            f"{n}_to_{o}, inserts.{towards} never and deletes.{towards} ignore"
        )


def _always(answer: bool) -> Callable[[str], bool]:
    return lambda _field: answer


# -- values -------------------------------------------------------------------------------
def _empty(schema: ObjectSchema, names: Sequence[str]) -> pa.RecordBatch:
    return pa.RecordBatch.from_pylist([], schema=schema.select(list(names)).arrow_schema())


def _typed(table: pa.Table, schema: ObjectSchema, names: Sequence[str]) -> pa.RecordBatch:
    """The columns ``names`` typed as the schema says (missing ones null)."""
    arrays = []
    for name in names:
        dtype = schema.field(name).arrow_type
        if name in table.column_names:
            column = table.column(name).combine_chunks()
            arrays.append(column if column.type == dtype else _try_cast(column, dtype))
        else:
            arrays.append(pa.nulls(table.num_rows, dtype))
    return pa.RecordBatch.from_arrays(arrays, names=list(names))


def _with_instants(batch: pa.RecordBatch, zone: str) -> pa.RecordBatch:
    if zone == "UTC":
        return batch
    arrays = [instants(column, zone) for column in batch.columns]
    return pa.RecordBatch.from_arrays(arrays, names=batch.schema.names)


def _try_cast(values: pa.Array, dtype: pa.DataType) -> pa.Array:
    """``values`` as ``dtype``; a value that does not convert becomes null."""
    if values.type == dtype:
        return values
    try:
        return values.cast(dtype)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass
    out = []
    for value in values.to_pylist():
        try:
            out.append(pa.array([value]).cast(dtype)[0].as_py())
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
            out.append(None)
    return pa.array(out, dtype)


def _truthy(values: pa.Array | pa.ChunkedArray) -> pa.Array:
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    if pa.types.is_boolean(values.type):
        return values
    if pa.types.is_integer(values.type) or pa.types.is_floating(values.type):
        return pc.not_equal(values, 0)
    text = pc.utf8_lower(pc.cast(values, pa.string()))
    return pc.is_in(text, value_set=pa.array(["1", "true", "t", "yes", "y"]))


def _as_number(values: pa.Array) -> pa.Array:
    """Modified values as numbers: date-times as seconds since 1970 (UTC)."""
    dtype = values.type
    if pa.types.is_timestamp(dtype):
        micros = values.cast(pa.timestamp("us", tz=dtype.tz)).cast(pa.int64())
        return pc.divide(micros.cast(pa.float64()), 1e6)
    if pa.types.is_date(dtype):
        days = values.cast(pa.date32()).cast(pa.int32())
        return pc.multiply(days.cast(pa.float64()), 86400.0)
    if pa.types.is_integer(dtype) or pa.types.is_floating(dtype) or pa.types.is_decimal(dtype):
        return values.cast(pa.float64())
    return pa.nulls(len(values), pa.float64())


__all__ = ["FETCH_PAGE", "SideSetup", "open_sides"]
