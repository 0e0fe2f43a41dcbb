"""Turns a loaded profile into a ready-to-run plan, checking everything before any write.

Resolves the two connections, describes the source and target objects, parses and checks
every expression, decides which filter parts the source evaluates itself (pushdown), and
collects *all* profile problems into one ProfileError naming file, line and field.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import TypeVar, cast

import pyarrow as pa
from sqlglot import exp

from crmbridge.connections import Connection, ConnectionStore, inline_connection
from crmbridge.connectors.base import (
    ROW_COLUMN,
    Capabilities,
    Connector,
    CreateIdentity,
    DeleteReporting,
    ReadRequest,
)
from crmbridge.core import expressions
from crmbridge.core.identity import KeyRule
from crmbridge.core.nested import spec_arrow_type
from crmbridge.core.outcomes import WriteMode
from crmbridge.core.plan import PlanSpec, effective_keys
from crmbridge.core.schema import FieldType, ObjectSchema
from crmbridge.core.validate import TargetRules
from crmbridge.errors import ConfigError, ErrorContext, ProfileProblem
from crmbridge.profiles.loader import LoadedProfile
from crmbridge.profiles.model import InlineConnection, Missing, Profile, TruncationAction
from crmbridge.runner.children import (
    ChildSpec,
    create_children,
    extra_lists,
    prepare_children,
)
from crmbridge.runner.create import infer_target_schema
from crmbridge.runner.incremental import Cursor
from crmbridge.runner.relations import extra_texts
from crmbridge.runner.value_maps import ValueMaps, expand_value_maps, is_free_function_name

Location = tuple[str | int, ...]
#: the columns an expression may read, with their types
Columns = Mapping[str, FieldType | pa.DataType]
T = TypeVar("T")


@dataclass
class Prepared:
    """Everything a run needs, decided and checked up front."""

    loaded: LoadedProfile
    source: Connector
    target: Connector
    source_schema: ObjectSchema  # the fields read, typed as the source delivers them
    target_schema: ObjectSchema
    read: ReadRequest  # with the pushed-down part of the filter
    source_types: dict[str, pa.DataType]  # conversions of untyped source fields (source.types)
    outputs: dict[str, exp.Expression]  # target field -> expression over source fields
    #: expressions references, links and deduplicate need (relations.extra_texts)
    extras: dict[str, exp.Expression]
    #: schemas of the target-side objects that references and links look records up in
    related: dict[str, ObjectSchema]
    local_filter: exp.Expression | None
    rules: TargetRules
    target_caps: Capabilities
    #: how the run's records are matched and planned (core/plan.py)
    plan_spec: PlanSpec
    #: source fields that identify a source record (None: its content and position)
    source_key: tuple[str, ...] | None
    #: fields whose values order the source read uniquely (see Connector.read_order)
    read_order: tuple[str, ...] | None
    #: False in a preview / dry run of a profile whose target would be created by the run
    target_exists: bool = True
    pushed: list[str] = field(default_factory=list)  # filter parts the source evaluates
    #: the ``children:`` sections, checked (runner/children.py)
    children: list[ChildSpec] = field(default_factory=list)

    @property
    def profile_key(self) -> str:
        """The profile's stable identity (docs/state.md)."""
        return self.loaded.key

    @property
    def inserted_scope(self) -> str:
        """Where the source keys of records inserted without match keys are remembered."""
        return f"inserted:{self.profile_key}"

    @property
    def profile(self) -> Profile:
        return self.loaded.profile

    @property
    def context(self) -> ErrorContext:
        return ErrorContext(profile=self.loaded.name, object=self.profile.target.object)

    @property
    def written_fields(self) -> list[str]:
        """Target fields the run writes: the mapped ones, then the references."""
        return written_order(self.outputs, self.profile)

    @property
    def transform_schema(self) -> pa.Schema:
        """Columns entering the mapping: source fields (converted) and the row number."""
        return _transform_schema(self.source_schema, self.source_types)

    def close(self) -> None:
        for connector in (self.source, self.target):
            connector.close()


class _Problems:
    """The problems found so far, starting with those the loader left for us (unknown
    setting names), so that every problem is reported at once."""

    def __init__(self, loaded: LoadedProfile) -> None:
        self.loaded = loaded
        self.items: list[ProfileProblem] = list(loaded.problems)
        self._inherited = len(self.items)

    def add(self, location: Location, message: str) -> None:
        self.items.append(self.loaded.problem(location, message))

    def attempt(self, location: Location, action: Callable[[], T]) -> T | None:
        """``action()``, or None when it raised a ConfigError: a problem at ``location``."""
        try:
            return action()
        except ConfigError as err:
            self.add(location, err.message)
            return None

    def raise_if_any(self, *, final: bool = False) -> None:
        """Stop with every problem when a check found one that later checks depend on, or
        (``final``) when there is any at all."""
        if len(self.items) > self._inherited or (final and self.items):
            raise self.loaded.error(self.items)


def resolve(loaded: LoadedProfile, side: str, store: ConnectionStore | None) -> Connection:
    ref = getattr(loaded.profile, side).connection
    if isinstance(ref, InlineConnection):
        return inline_connection(f"{loaded.name}.{side}", ref.type, ref.settings())
    if store is None:
        raise ConfigError(f"connection {ref!r} needs the connection store")
    return store.get(ref)


def base_dir(loaded: LoadedProfile, side: str) -> Path | None:
    """Relative paths of an inline connection are relative to the profile's folder; a saved
    connection's are absolute (or, saved by an older crmbridge, relative to the current
    folder, as for `crmbridge connection test`)."""
    inline = isinstance(getattr(loaded.profile, side).connection, InlineConnection)
    return loaded.base_dir if inline else None


def prepare(
    loaded: LoadedProfile,
    store: ConnectionStore | None,
    *,
    create: bool = False,
    cursor: Cursor | None = None,
    source: Connector | None = None,
) -> Prepared:
    """Check the profile against both systems and plan the run. Opens both connectors.

    ``create``: create a missing target object (a real run); preview and dry run leave it.
    ``cursor``: an incremental read's cursor: the source reads from it when it can
    (``ReadRequest.since``), else the condition is evaluated locally. ``source``: the
    profile's source connector, opened already (``runner/unchanged.py``); it is closed with
    the run, or here when the profile is wrong."""
    profile = loaded.profile
    problems = _Problems(loaded)
    opened: list[Connector] = [] if source is None else [source]
    try:
        sides = ("source", "target") if source is None else ("target",)
        found = {
            side: problems.attempt((side, "connection"), partial(resolve, loaded, side, store))
            for side in sides
        }
        problems.raise_if_any()
        for side in sides:
            connection = found[side]
            assert connection is not None
            connector = connection.connector(base_dir=base_dir(loaded, side))
            connector.open()
            opened.append(connector)
        source, target = opened
        return _plan(loaded, profile, problems, source, target, create, cursor)
    except BaseException:
        for connector in opened:
            connector.close()
        raise


def _plan(
    loaded: LoadedProfile,
    profile: Profile,
    problems: _Problems,
    source: Connector,
    target: Connector,
    create: bool,
    cursor: Cursor | None,
) -> Prepared:
    described = problems.attempt(
        ("source", "object"), partial(source.describe, profile.source.object)
    )
    source_caps = source.capabilities()
    target_caps = target.capabilities()
    if profile.source.include_deleted and source_caps.deletes is DeleteReporting.NONE:
        problems.add(
            ("source", "include_deleted"),
            f"{source.type_name} sources cannot tell deleted records apart",
        )
    target_schema = _describe_target(profile, problems, target, target_caps)
    problems.raise_if_any()
    assert described is not None
    # an unknown source field is a problem, and the checks go on with the known ones
    names = list(described.default_field_names)
    if profile.source.fields:
        names = []
        for i, name in enumerate(profile.source.fields):
            if problems.attempt(("source", "fields", i), partial(described.field, name)):
                names.append(name)
    typed: dict[str, pa.DataType] = {}
    for name, declared in profile.source.types.items():
        if problems.attempt(("source", "types", name), partial(described.field, name)):
            typed[name] = spec_arrow_type(declared)
    for i, name in enumerate(profile.source.key or []):
        if problems.attempt(("source", "key", i), partial(described.field, name)):
            names += [] if name in names else [name]
    if profile.source.incremental:  # the cursor and the key are always read
        inc = profile.source.incremental
        for part, name in (("field", inc.field), ("key", inc.key)):
            where: Location = ("source", "incremental", part)
            if problems.attempt(where, partial(described.field, name)) and name not in names:
                names.append(name)
    source_schema = described.select(names)
    source_types = typed
    column_types: dict[str, FieldType | pa.DataType] = {
        f.name: f.type for f in source_schema.fields
    }
    column_types.update(typed)

    filter_tree = _parse_filter(profile, problems, column_types)
    outputs = _outputs(profile, problems, column_types, source_schema, target_schema)
    extras = extra_lists(profile) | {
        name: tree
        for name, (where, text) in extra_texts(profile).items()
        if (
            tree := problems.attempt(
                where, partial(_expression, text, column_types, profile.value_maps, where[0])
            )
        )
    }
    related = _related(profile, problems, target, target_caps)
    for name in profile.value_maps:
        if not is_free_function_name(name):
            problems.add(
                ("value_maps", name),
                f"{name!r} is the name of a SQL function; give the value map another name",
            )
    _check_mode(profile, problems, target, target_caps)
    written = {**dict.fromkeys(profile.references), **outputs}
    target_exists = target_schema is not None
    if target_schema is None:  # to be created: its fields come from the (valid) mapping
        problems.raise_if_any()
        transform_schema = _transform_schema(source_schema, source_types)
        typed_source = ObjectSchema(
            source_schema.name,
            tuple(
                replace(f, type=declared, length=None)
                if isinstance(declared := profile.source.types.get(f.name), FieldType)
                else f
                for f in source_schema.fields
            ),
        )
        target_schema = infer_target_schema(
            profile.target.object,
            outputs,
            transform_schema,
            typed_source,
            profile.target.match_keys,
            list(profile.references),
        )
    _check_target(profile, problems, target, target_caps, target_schema, written)
    children = prepare_children(profile, problems.attempt, target, source_types, loaded.key)
    problems.raise_if_any(final=True)
    if not target_exists and create:
        target_schema = target.create_object(target_schema, profile.target.match_keys)
        target_exists = True
    if create:
        children = create_children(children, target)

    since = cursor.since() if cursor is not None and source_caps.incremental else None
    local_since = cursor.predicate() if cursor is not None and since is None else None
    pushed, local = _split_filter(source, profile, filter_tree, set(source_types))
    if local_since is not None:
        local.append(local_since)
    read = ReadRequest(
        profile.source.object,
        fields=source_schema.field_names,
        filter=expressions.conjoin(pushed),
        since=since,
        batch_size=profile.batch_size,
        include_deleted=profile.source.include_deleted,
    )
    read_order = source.read_order(read)
    missing_order = [n for n in read_order or () if n not in source_schema.field_names]
    if missing_order:  # read them too: a resumed run continues after their last values
        source_schema = described.select([*source_schema.field_names, *missing_order])
        read = replace(read, fields=source_schema.field_names)
    keys = effective_keys(
        profile.target.mode,
        profile.target.match_keys,
        list(written),
        target_schema.id_field,
        target_schema.key_fields,
    )
    plan_spec = PlanSpec(
        object=profile.target.object,
        mode=profile.target.mode,
        fields=tuple(written_order(outputs, profile)),
        keys=keys,
        rules={k: _key_rule(profile, target_schema, k) for k in keys},
        update_fields=(
            tuple(profile.target.update_fields)
            if profile.target.update_fields is not None
            else None
        ),
        keep_when_null=frozenset(profile.target.keep_when_null),
        on_multiple=profile.target.on_multiple_matches,
        client_ids=target_caps.create_identity is CreateIdentity.CLIENT_ID,
        namespace=loaded.key,
        id_field=target_schema.id_field,
    )
    source_key = tuple(profile.source.key or ()) or _source_identity(source_schema)
    truncation = profile.truncation
    rules = TargetRules(
        target_schema.select([n for n in target_schema.field_names if n in written]),
        profile.target.mode,
        profile.target.match_keys,
        truncate=lambda name: truncation.action(name) is TruncationAction.TRUNCATE,
        allow_unlisted_values=profile.allow_unlisted_values,
    )
    return Prepared(
        loaded=loaded,
        source=source,
        target=target,
        source_schema=source_schema,
        target_schema=target_schema,
        read=read,
        source_types=source_types,
        outputs=outputs,
        extras=extras,
        related=related,
        local_filter=expressions.conjoin(local),
        rules=rules,
        target_caps=target_caps,
        plan_spec=plan_spec,
        source_key=source_key,
        read_order=read_order,
        target_exists=target_exists,
        pushed=[p.sql(dialect="duckdb") for p in pushed] + _since_text(cursor, since),
        children=children,
    )


def _since_text(cursor: Cursor | None, since: object) -> list[str]:
    """The incremental condition the source evaluates, for the summary."""
    tree = cursor.predicate() if cursor is not None and since is not None else None
    return [tree.sql(dialect="duckdb")] if tree is not None else []


def written_order(outputs: Mapping[str, exp.Expression], profile: Profile) -> list[str]:
    """Target fields the run writes: the mapped ones, then the references."""
    return [*outputs, *(r for r in profile.references if r not in outputs)]


def _key_rule(profile: Profile, schema: ObjectSchema, key: str) -> KeyRule:
    chosen = profile.target.key_rules.get(key)
    if chosen is not None:
        return chosen
    return schema.field(key).key_rule if schema.has(key) else KeyRule.EXACT


def _source_identity(schema: ObjectSchema) -> tuple[str, ...] | None:
    """The source's own record identity: its id field or its primary key, when read."""
    if schema.id_field and schema.has(schema.id_field):
        return (schema.id_field,)
    primary = schema.key_fields
    return tuple(primary) if primary else None


def _describe_target(
    profile: Profile, problems: _Problems, target: Connector, caps: Capabilities
) -> ObjectSchema | None:
    """The target's schema; None when it does not exist and may be created."""
    try:
        return target.describe(profile.target.object)
    except ConfigError as err:
        policy = caps.create_objects
        if policy == "always" or (policy == "on_request" and profile.target.create):
            return None
        hint = "; or set `target.create: true` to create it" if policy == "on_request" else ""
        problems.add(("target", "object"), err.message + hint)
        return None


def _transform_schema(source: ObjectSchema, types: dict[str, pa.DataType]) -> pa.Schema:
    fields = [pa.field(f.name, types.get(f.name, f.arrow_type)) for f in source.fields]
    return pa.schema([*fields, pa.field(ROW_COLUMN, pa.int64())])


def _parse_filter(profile: Profile, problems: _Problems, columns: Columns) -> exp.Expression | None:
    text = profile.source.filter
    if not text:
        return None
    parse = partial(_expression, text, columns, profile.value_maps, "filter")
    return problems.attempt(("source", "filter"), parse)


def _expression(text: str, columns: Columns, maps: ValueMaps, what: str | int) -> exp.Expression:
    tree = expressions.parse(expand_value_maps(text, maps), what=str(what))
    expressions.check_columns(tree, columns, what=str(what))
    return tree


def _related(
    profile: Profile, problems: _Problems, target: Connector, caps: Capabilities
) -> dict[str, ObjectSchema]:
    """Describe the objects references and links look records up in; check what they need."""
    needs: list[tuple[Location, str, dict[str, str]]] = [
        (("references", name), ref.object, ref.match | ref.values)
        for name, ref in profile.references.items()
    ]
    needs += [(("links", i), link.object, link.match) for i, link in enumerate(profile.links)]
    if needs and not caps.match:
        problems.add(needs[0][0], f"{target.type_name} targets cannot look records up")
    if profile.links and not caps.links:
        problems.add(("links",), f"{target.type_name} targets cannot link records")
    creates = [n for n, r in profile.references.items() if r.missing is Missing.CREATE]
    if creates and WriteMode.INSERT not in caps.write_modes:
        problems.add(("references", creates[0], "missing"), "the target cannot create records")
    schemas: dict[str, ObjectSchema] = {}
    for where, object_name, fields in needs:
        if object_name not in schemas:
            found = problems.attempt((*where, "object"), partial(target.describe, object_name))
            if found is None:
                continue
            schemas[object_name] = found
        for name in fields:
            problems.attempt((*where, "match"), partial(schemas[object_name].field, name))
    return schemas


def _outputs(
    profile: Profile,
    problems: _Problems,
    columns: Columns,
    source_schema: ObjectSchema,
    target_schema: ObjectSchema | None,
) -> dict[str, exp.Expression]:
    """Target field -> expression, from mapping, constants and defaults.

    ``target_schema`` None: the target will be created, so any field name is fine."""

    def known(section: str, name: str) -> bool:
        if target_schema is None:
            return True
        return problems.attempt((section, name), partial(target_schema.field, name)) is not None

    mapping = dict(profile.mapping)
    if not mapping and not profile.constants:
        # no mapping: fields with the same name (case-insensitive) on both sides
        names = target_schema.field_names if target_schema else source_schema.field_names
        by_lower = {n.lower(): n for n in names}
        mapping = {
            by_lower[f.lower()]: exp.column(f, quoted=True).sql(dialect="duckdb")
            for f in source_schema.field_names
            if f.lower() in by_lower
        }
        if not mapping:
            problems.add(("mapping",), "no mapping, and no source field has a target namesake")
    outputs: dict[str, exp.Expression] = {}
    for name, text in mapping.items():
        if not known("mapping", name):
            continue
        what = f"mapping for {name!r}"
        parse = partial(_expression, text, columns, profile.value_maps, what)
        tree = problems.attempt(("mapping", name), parse)
        if tree is not None:
            outputs[name] = tree
    for name, value in profile.constants.items():
        if known("constants", name):
            outputs[name] = _literal(value)
    for name, value in profile.defaults.items():
        if not known("defaults", name):
            continue
        given = outputs.get(name)
        default = _literal(value)
        outputs[name] = (
            cast(exp.Expression, exp.func("coalesce", given, default)) if given else default
        )
    return outputs


def _literal(value: str | int | float | bool | None) -> exp.Expression:
    return cast(exp.Expression, exp.convert(value))


def _check_mode(
    profile: Profile, problems: _Problems, target: Connector, caps: Capabilities
) -> None:
    mode = profile.target.mode
    if not target.writable or not caps.write_modes:
        problems.add(("target", "connection"), f"{target.type_name} connections are read-only")
    elif mode not in caps.write_modes:
        modes = ", ".join(sorted(m.value for m in caps.write_modes))
        message = f"{target.type_name} targets cannot {mode.value} (they can: {modes})"
        problems.add(("target", "mode"), message)


def _check_target(
    profile: Profile,
    problems: _Problems,
    target: Connector,
    caps: Capabilities,
    schema: ObjectSchema,
    outputs: Collection[str],
) -> None:
    mode = profile.target.mode
    for i, key in enumerate(profile.target.match_keys):
        known = problems.attempt(("target", "match_keys", i), partial(schema.field, key))
        if known and key not in outputs:
            problems.add(("target", "match_keys", i), f"match key {key!r} is not mapped")
    if profile.target.match_keys and not caps.match and not caps.atomic:
        problems.add(("target", "match_keys"), f"{target.type_name} targets cannot look records up")
    for name in profile.target.key_rules:
        if name not in profile.target.match_keys:
            problems.add(("target", "key_rules", name), f"{name!r} is not a match key")
    for i, name in enumerate(profile.target.keep_when_null):
        if name not in outputs:
            problems.add(("target", "keep_when_null", i), f"field {name!r} is not written")
    for name in outputs:
        if (
            schema.has(name)
            and schema.field(name).read_only
            and name not in profile.target.match_keys
        ):
            problems.add(("mapping", name), f"target field {name!r} is read-only")
    if mode is WriteMode.INSERT:
        missing = [
            f.name
            for f in schema.fields
            if f.required and not f.read_only and f.name not in outputs
        ]
        if missing:
            problems.add(
                ("mapping",), f"required target fields are not mapped: {', '.join(missing)}"
            )


def _split_filter(
    source: Connector,
    profile: Profile,
    tree: exp.Expression | None,
    converted: set[str],
) -> tuple[list[exp.Expression], list[exp.Expression]]:
    """(parts the source evaluates, parts evaluated locally)."""
    if tree is None:
        return [], []
    pushed, local = [], []
    for part in expressions.conjuncts(tree):
        # a field typed by the profile is text at the source: compare it here, typed
        pushable = not (expressions.columns_of(part) & converted)
        pushable = pushable and not expressions.has_paths(part)  # records, JSON: evaluated here
        if pushable and source.can_push_down(profile.source.object, part):
            pushed.append(part)
        else:
            local.append(part)
    return pushed, local


__all__ = ["Prepared", "prepare"]
