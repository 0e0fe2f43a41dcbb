"""The profile editor: the form, its mapping grid and the YAML, kept in step.

The YAML is the one truth. The form edits the settings a novice needs (source, filter,
target, write mode, match keys, the mapping) in the YAML's own data, so every other setting
and every comment survives an edit; reading the YAML fills the form again. The grid has a
row per target field (or per source field when the target is created), fed by ``describe``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field
from ruamel.yaml.comments import CommentedMap

from crmbridge.core import expressions
from crmbridge.core.outcomes import WriteMode
from crmbridge.core.schema import FieldType, ObjectSchema
from crmbridge.errors import ConfigError, CrmBridgeError
from crmbridge.web.catalog import Catalog
from crmbridge.web.workspace import read_yaml, write_yaml

#: the form's value for a connection written in the profile itself
INLINE = "@inline"
MODES = [m.value for m in WriteMode]


class MappingRow(BaseModel):
    target: str
    expression: str = ""
    type: str | None = None
    required: bool = False
    #: the value ``constants:`` gives the field (it is not mapped then)
    constant: str | None = None


class EditorForm(BaseModel):
    """What the editor's form holds."""

    name: str = ""
    source_connection: str = ""
    source_object: str = ""
    source_filter: str = ""
    target_connection: str = ""
    target_object: str = ""
    mode: str = "insert"
    match_keys: str = ""
    create: bool = False
    mapping: list[MappingRow] = Field(default_factory=list)


class Editor(BaseModel):
    """The editor as shown: the form, the grid's choices, the YAML and what is wrong."""

    form: EditorForm
    yaml: str
    source_fields: list[str] = Field(default_factory=list)
    source_objects: list[str] = Field(default_factory=list)
    target_objects: list[str] = Field(default_factory=list)
    problems: list[str] = Field(default_factory=list)


def form_of(data: Any) -> EditorForm:
    """The form's values from the profile's data."""
    data = data if isinstance(data, Mapping) else {}
    source = data.get("source") if isinstance(data.get("source"), Mapping) else {}
    target = data.get("target") if isinstance(data.get("target"), Mapping) else {}
    mapping = data.get("mapping") if isinstance(data.get("mapping"), Mapping) else {}
    keys = target.get("match_keys") or []
    return EditorForm(
        name=str(data.get("name") or ""),
        source_connection=_ref(source.get("connection")),
        source_object=str(source.get("object") or ""),
        source_filter=str(source.get("filter") or ""),
        target_connection=_ref(target.get("connection")),
        target_object=str(target.get("object") or ""),
        mode=str(target.get("mode") or "insert"),
        match_keys=", ".join(str(k) for k in keys) if isinstance(keys, list) else str(keys),
        create=bool(target.get("create", False)),
        mapping=[MappingRow(target=str(k), expression=str(v)) for k, v in mapping.items()],
    )


def _ref(value: Any) -> str:
    return INLINE if isinstance(value, Mapping) else str(value or "")


def apply_form(text: str, form: EditorForm) -> str:
    """The YAML ``text`` with the form's settings written into it (the rest kept)."""
    data = read_yaml(text) if text.strip() else None
    if not isinstance(data, CommentedMap):
        data = CommentedMap()
    name = form.name.strip() or None
    if name is not None and "name" not in data:
        data.insert(0, "name", name)
    _put(data, "name", name)
    source = _section(data, "source")
    target = _section(data, "target")
    if form.source_connection != INLINE:
        source["connection"] = form.source_connection
    source["object"] = form.source_object
    _put(source, "filter", form.source_filter.strip() or None)
    if form.target_connection != INLINE:
        target["connection"] = form.target_connection
    target["object"] = form.target_object
    _put(target, "mode", None if form.mode == "insert" else form.mode)
    keys = [k.strip() for k in form.match_keys.split(",") if k.strip()]
    _put(target, "match_keys", keys or None)
    _put(target, "create", True if form.create else None)
    rows = [(r.target.strip(), r.expression.strip()) for r in form.mapping]
    mapping = CommentedMap((t, e) for t, e in rows if t and e)
    _put(data, "mapping", mapping or None)
    return write_yaml(data)


def _section(data: CommentedMap, name: str) -> CommentedMap:
    found = data.get(name)
    if not isinstance(found, CommentedMap):
        found = CommentedMap()
        data[name] = found
    return found


def _put(data: CommentedMap, key: str, value: Any) -> None:
    if value is None:
        data.pop(key, None)
    else:
        data[key] = value


def build(text: str, catalog: Catalog, base_dir: Path, form: EditorForm | None = None) -> Editor:
    """The editor for the YAML ``text`` (with ``form`` applied first, when given)."""
    problems: list[str] = []
    if form is not None:
        try:
            text = apply_form(text, form)
        except ConfigError as err:
            problems.append(err.message)
    try:
        data = read_yaml(text)
    except ConfigError as err:
        return Editor(form=form or EditorForm(), yaml=text, problems=[err.message])
    shown = form_of(data)
    editor = Editor(form=shown, yaml=text, problems=problems)
    source_schema = _describe(catalog, data, "source", base_dir, editor)
    target_schema = _describe(catalog, data, "target", base_dir, editor)
    editor.source_objects = _objects(catalog, shown.source_connection)
    editor.target_objects = _objects(catalog, shown.target_connection)
    if source_schema is not None:
        editor.source_fields = source_schema.field_names
    shown.mapping = grid(shown, source_schema, target_schema)
    constants = data.get("constants") if isinstance(data, Mapping) else None
    if isinstance(constants, Mapping):
        listed = {row.target for row in shown.mapping}
        shown.mapping += [MappingRow(target=str(k)) for k in constants if k not in listed]
        for row in shown.mapping:
            if row.target in constants and not row.expression:
                row.constant = str(constants[row.target])
    return editor


def source_types(text: str, catalog: Catalog, base_dir: Path) -> dict[str, FieldType] | None:
    """The source fields an expression of the profile in ``text`` may read, with their types
    (``source.types`` applied); None when the source cannot be described."""
    try:
        data = read_yaml(text)
    except ConfigError:
        return None
    schema = _describe(catalog, data, "source", base_dir, None)
    if schema is None:
        return None
    fields = {f.name: f.type for f in schema.fields}
    declared = data["source"].get("types")
    if isinstance(declared, Mapping):
        for name, kind in declared.items():
            if str(kind) in FieldType.__members__.values():
                fields[str(name)] = FieldType(str(kind))
    return fields


def _objects(catalog: Catalog, connection: str) -> list[str]:
    if not connection or connection == INLINE:
        return []
    try:
        return catalog.objects(connection)
    except CrmBridgeError:
        return []


def _describe(
    catalog: Catalog, data: Any, side: str, base_dir: Path, editor: Editor | None
) -> ObjectSchema | None:
    section = data.get(side) if isinstance(data, Mapping) else None
    if not isinstance(section, Mapping) or not section.get("object"):
        return None
    ref = section.get("connection")
    if not ref:
        return None
    inline = dict(ref) if isinstance(ref, Mapping) else None
    name = f"{side}" if inline is not None else str(ref)
    try:
        return catalog.describe(name, str(section["object"]), inline, base_dir)
    except CrmBridgeError as err:
        if side == "target" and section.get("create"):
            return None  # it will be created
        if editor is not None:
            editor.problems.append(f"{side}: {err}")
        return None


def grid(
    form: EditorForm, source: ObjectSchema | None, target: ObjectSchema | None
) -> list[MappingRow]:
    """One row per writable target field (mapped or not), else per source field, then the
    mapped fields neither lists; a new profile's rows start with the same-named field."""
    mapped = {r.target: r.expression for r in form.mapping}
    fresh = not mapped
    by_lower = {n.lower(): n for n in (source.field_names if source else [])}
    rows: list[MappingRow] = []
    if target is not None:
        for f in target.fields:
            if f.read_only:
                continue
            guess = by_lower.get(f.name.lower(), "") if fresh else ""
            rows.append(
                MappingRow(
                    target=f.name,
                    expression=mapped.get(f.name, guess),
                    type=f.describe_type(),
                    required=f.required and not f.key,
                )
            )
    elif source is not None:
        for f in source.fields:
            expression = mapped.get(f.name, f.name if fresh else "")
            rows.append(MappingRow(target=f.name, expression=expression, type=f.describe_type()))
    listed = {r.target for r in rows}
    rows += [MappingRow(target=t, expression=e) for t, e in mapped.items() if t not in listed]
    return rows


class ExpressionCheck(BaseModel):
    ok: bool
    message: str
    columns: list[str] = Field(default_factory=list)


def check_expression(
    text: str, fields: Mapping[str, FieldType] | None, *, what: str = "expression"
) -> ExpressionCheck:
    """Parse ``text`` with the expression language; with ``fields``, check the columns it
    reads and its types too."""
    if not text.strip():
        return ExpressionCheck(ok=True, message="not mapped")
    try:
        tree = expressions.parse(text, what=what)
        if fields is not None:
            expressions.check_columns(tree, fields, what=what)
    except ConfigError as err:
        return ExpressionCheck(ok=False, message=err.message)
    return ExpressionCheck(ok=True, message="ok", columns=sorted(expressions.columns_of(tree)))
