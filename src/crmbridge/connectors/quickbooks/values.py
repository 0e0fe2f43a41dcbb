"""QuickBooks JSON objects <-> Arrow columns, by the catalog's field paths.

Reading: ``CustomerRef_value`` is ``obj["CustomerRef"]["value"]``; amounts become decimals,
``MetaData`` datetimes UTC instants, ``Line`` its JSON text (:mod:`.lines`), and a deleted
transaction (``{"Id", "status": "Deleted"}``) a row with ``Deleted`` true and nothing else
but its id and time. Writing: :func:`to_object` builds the nested JSON of the fields given.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Mapping, Sequence
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

import pyarrow as pa

from crmbridge.connectors.quickbooks.catalog import DELETED, Spec
from crmbridge.connectors.quickbooks.lines import to_lines
from crmbridge.core.schema import FieldType


def _walk(obj: Mapping[str, Any], path: Sequence[str]) -> Any:
    value: Any = obj
    for part in path:
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value


def _decode(spec: Spec, raw: Any) -> Any:
    if raw is None:
        return None
    kind = spec.type
    if kind is FieldType.DECIMAL:
        quantum = Decimal(1).scaleb(-(spec.scale or 0))
        return Decimal(str(raw)).quantize(quantum, rounding=ROUND_HALF_EVEN)
    if kind is FieldType.BOOLEAN:
        return bool(raw)
    if kind is FieldType.DATE:
        return dt.date.fromisoformat(str(raw)[:10])
    if kind is FieldType.DATETIME:
        moment = dt.datetime.fromisoformat(str(raw).replace("Z", "+00:00"))
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=dt.UTC)
        return moment.astimezone(dt.UTC)
    if isinstance(raw, list | dict):
        return json.dumps(raw, ensure_ascii=False, separators=(",", ":"))
    return str(raw) if not isinstance(raw, str) else raw


def is_deleted(obj: Mapping[str, Any]) -> bool:
    return str(obj.get("status", "")).lower() == "deleted"


def to_batch(objects: Iterable[Mapping[str, Any]], specs: Sequence[Spec]) -> pa.RecordBatch:
    """One row per object with the ``specs`` columns, typed per the catalog."""
    rows = list(objects)
    columns: list[pa.Array] = []
    for spec in specs:
        if spec.name == DELETED:
            values: list[Any] = [is_deleted(o) for o in rows]
        else:
            values = [_decode(spec, _walk(o, spec.path)) for o in rows]
        columns.append(pa.array(values, spec.field().arrow_type))
    schema = pa.schema([pa.field(s.name, s.field().arrow_type) for s in specs])
    return pa.RecordBatch.from_arrays(columns, schema=schema)


def _encode(spec: Spec, value: Any) -> Any:
    if value is None:
        return None
    if spec.type is FieldType.DECIMAL:
        return float(value)
    if spec.type is FieldType.DATE:
        return value.isoformat()
    if spec.type is FieldType.DATETIME:
        return value.astimezone(dt.UTC).isoformat()
    if spec.name == "Line":
        return to_lines(value)
    return value


def to_object(values: Mapping[str, Any], specs: Mapping[str, Spec]) -> dict[str, Any]:
    """The nested JSON object of ``values`` (field name -> Python value; None clears)."""
    out: dict[str, Any] = {}
    for name, value in values.items():
        spec = specs[name]
        node = out
        *parents, last = spec.path
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = _encode(spec, value)
    return out
