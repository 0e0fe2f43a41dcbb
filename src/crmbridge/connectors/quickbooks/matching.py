"""Finding the records that hold key values (``match``): ``IN`` queries, never one per key.

* One key is asked for: the first match key QuickBooks queries can filter on, with ``IN``
  (200 values a query); other keys of a composite key are compared by the engine. The
  language has no OR, so this is how a superset is found in few calls.
* **Candidates are a superset.** QuickBooks compares text case-insensitively; for a key whose
  rule is not ``exact`` the value is asked for trimmed as well. The engine compares under the
  rules (:mod:`crmbridge.core.identity`).
* Live records only: customers and items that are active (an inactive one is QuickBooks's
  "deleted"), transactions not deleted. Id: ``Id``; version: ``SyncToken``. ``Line`` comes in
  its canonical form (:func:`.lines.canonical`), as :meth:`stored_form` gives the proposed one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from crmbridge.connectors.base import ID_COLUMN, VERSION_COLUMN
from crmbridge.connectors.quickbooks.catalog import EntityDef, Spec
from crmbridge.connectors.quickbooks.lines import canonical
from crmbridge.connectors.quickbooks.query import Cond
from crmbridge.connectors.quickbooks.reader import Reader, ReadPlan
from crmbridge.connectors.quickbooks.transport import Transport
from crmbridge.core.identity import KeyRule
from crmbridge.core.schema import FieldType
from crmbridge.errors import ConfigError, ErrorContext

#: key values in one query
VALUES_PER_QUERY = 200


class Finder:
    """Looks up records of one entity by key fields."""

    def __init__(
        self, transport: Transport, entity: EntityDef, *, page_size: int, context: ErrorContext
    ) -> None:
        self.transport = transport
        self.entity = entity
        self.page_size = page_size
        self.context = context

    def asked_key(self, keys: Sequence[str]) -> Spec:
        """The key the queries filter on; a ConfigError when QuickBooks can filter on none."""
        for key in keys:
            self.entity.schema.field(key, context=self.context)  # unknown: a ConfigError
        for key in keys:
            spec = self.entity.spec(key)
            if spec is not None and spec.query and spec.type is not FieldType.DATETIME:
                return spec
        queryable = ", ".join(
            s.name for s in self.entity.specs if s.query and s.type is not FieldType.DATETIME
        )
        raise ConfigError(
            f"cannot match {self.entity.name} records on {', '.join(keys)}: QuickBooks "
            f"queries cannot filter on it (match keys can be: {queryable})",
            context=self.context.merge(field=keys[0] if keys else None),
        )

    def find(
        self,
        keys: Sequence[str],
        values: pa.RecordBatch | pa.Table,
        rules: Mapping[str, KeyRule],
        fields: Sequence[str] = (),
    ) -> pa.Table:
        """Candidates for the rows of ``values``: ``keys``, ``fields``, ID_COLUMN and
        VERSION_COLUMN, each record once."""
        spec = self.asked_key(keys)
        rule = rules.get(spec.name, KeyRule.EXACT)
        wanted = _literals(values.column(spec.name).to_pylist(), spec, rule)
        names = list(dict.fromkeys([*keys, *fields, "Id", "SyncToken"]))
        fetch = [s for n in names if (s := self.entity.spec(n)) is not None]
        batches: list[pa.RecordBatch] = []
        for start in range(0, len(wanted), VALUES_PER_QUERY):
            part = tuple(wanted[start : start + VALUES_PER_QUERY])
            conds = [Cond(spec.query or spec.name, "in", part)]
            if self.entity.is_list:
                conds.append(Cond("Active", "=", (True,)))
            plan = ReadPlan(self.entity, names, fetch, conds, None, False, None)
            reader = Reader(self.transport, plan, page_size=self.page_size, context=self.context)
            batches += [b for b in reader.batches(self.page_size) if b.num_rows]
        schema = pa.schema([pa.field(s.name, s.field().arrow_type) for s in fetch])
        found = pa.Table.from_batches(batches, schema=schema).combine_chunks()
        if found.num_rows:  # a record found by two values (case variants) once
            first = pc.index_in(pc.unique(found.column("Id")), value_set=found.column("Id"))
            found = found.take(first)
        out = found.select(list(dict.fromkeys([*keys, *fields])))
        if "Line" in out.column_names:
            lines = pa.array([canonical(v) for v in out.column("Line").to_pylist()], pa.string())
            out = out.set_column(out.column_names.index("Line"), "Line", lines)
        out = out.append_column(ID_COLUMN, found.column("Id"))
        return out.append_column(VERSION_COLUMN, found.column("SyncToken"))


def stored_form(batch: pa.RecordBatch) -> pa.RecordBatch:
    """``batch`` as ``match`` shows stored records: ``Line`` (JSON text) in its canonical
    form. Lines given as a list of structs keep their type (the engine's)."""
    if "Line" not in batch.schema.names:
        return batch
    at = batch.schema.get_field_index("Line")
    if not pa.types.is_string(batch.schema.field(at).type):
        return batch
    lines = pa.array([canonical(v) for v in batch.column(at).to_pylist()], pa.string())
    return batch.set_column(at, "Line", lines)


def _literals(values: list[Any], spec: Spec, rule: KeyRule) -> list[Any]:
    """The values to ask for (distinct, no nulls): trimmed too when the rule is not exact;
    an Id that is no number matches nothing."""
    out: list[Any] = []
    for value in values:
        if value is None:
            continue
        if spec.name == "Id" and not str(value).strip().isdigit():
            continue
        forms = [value]
        if isinstance(value, str) and rule is not KeyRule.EXACT:
            forms.append(value.strip())
        out += [f for f in forms if f != ""]
    return list(dict.fromkeys(out))


__all__ = ["VALUES_PER_QUERY", "Finder", "stored_form"]
