"""The schema of a target object that does not exist yet, inferred from the profile's mapping.

A field mapped straight from a source field keeps that field's type and length; any other
expression gets the type of its result (DuckDB's, over an empty batch). Match keys become the
object's key.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace

import pyarrow as pa
from sqlglot import exp

from crmbridge.core.expressions import BatchTransform
from crmbridge.core.schema import Field, FieldType, ObjectSchema, field_type_of


def infer_target_schema(
    name: str,
    outputs: Mapping[str, exp.Expression],
    transform_schema: pa.Schema,
    source_schema: ObjectSchema,
    match_keys: Sequence[str],
    reference_fields: Sequence[str] = (),
) -> ObjectSchema:
    """Fields from ``outputs`` (typed as described above), then one id field per reference."""
    with BatchTransform(transform_schema, outputs) as transform:
        result = transform.apply(pa.RecordBatch.from_pylist([], schema=transform_schema))
    types = result.batch.schema
    fields = []
    for target, tree in outputs.items():
        key = target in match_keys
        source = tree.name if isinstance(tree, exp.Column) else None
        if source and source_schema.has(source):
            original = source_schema.field(source)
            fields.append(replace(original, name=target, key=key, required=key, read_only=False))
            continue
        dtype = types.field(target).type
        precision = dtype.precision if pa.types.is_decimal(dtype) else None
        scale = dtype.scale if pa.types.is_decimal(dtype) else None
        fields.append(
            Field(
                target,
                field_type_of(dtype),
                precision=precision,
                scale=scale,
                key=key,
                required=key,
            )
        )
    fields += [
        Field(ref, FieldType.ID, key=ref in match_keys, required=ref in match_keys)
        for ref in reference_fields
        if ref not in outputs
    ]
    return ObjectSchema(name, tuple(fields))
