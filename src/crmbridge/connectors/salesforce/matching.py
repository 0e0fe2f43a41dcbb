"""Finding the records that hold key values (``match``): SOQL queries, never one per key.

* **Queries**: ``WHERE key IN (...)`` (a composite key: an OR of ANDs), cut so that no
  condition is longer than :data:`MAX_CONDITION` characters (SOQL's limit on a WHERE clause is
  4,000), every literal formatted by :mod:`.soql`. Live records only (``query``, not
  ``queryAll``). The id of a candidate is its ``Id``, its version its ``SystemModstamp``.
* **Candidates are a superset.** The engine compares keys under their rules
  (:mod:`crmbridge.core.identity`); the query must only miss nothing. SOQL compares text
  case-insensitively, so one literal finds every case variant; for a key whose rule is not
  ``exact`` the value is asked for as given and trimmed too (and, for text beyond ASCII, in
  lower, upper and folded case), since SOQL does not ignore surrounding white space. A text
  stored *with* surrounding white space (possible only through other tools) is therefore not
  found by a trimmed value. A ``phone`` key (digits only) cannot be asked for: every record
  with a value is a candidate.
* **Ids** are compared in their 18-character form (:func:`.values.canonical_id`); a value that
  is no id matches nothing and is not sent (Salesforce would refuse the whole query).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from crmbridge.connectors.base import ID_COLUMN, VERSION_COLUMN
from crmbridge.connectors.salesforce.api import Api
from crmbridge.connectors.salesforce.discovery import ObjectMeta
from crmbridge.connectors.salesforce.reader import Reader, ReadPlan
from crmbridge.connectors.salesforce.soql import datetime_condition, literal, where
from crmbridge.connectors.salesforce.values import canonical_id
from crmbridge.core.identity import KeyRule
from crmbridge.core.schema import FieldType
from crmbridge.errors import ConfigError, ErrorContext

#: longest condition of one query, in characters
MAX_CONDITION = 3800
VERSION_FIELD = "SystemModstamp"
#: records per answer page of a match query
PAGE = 2000


class Finder:
    """Looks up records of one sObject by key fields."""

    def __init__(self, api: Api, meta: ObjectMeta, *, context: ErrorContext) -> None:
        self.api = api
        self.meta = meta
        self.context = context

    def find(
        self,
        keys: Sequence[str],
        values: pa.RecordBatch | pa.Table,
        rules: Mapping[str, KeyRule],
        fields: Sequence[str] = (),
    ) -> pa.Table:
        """Candidate records for the rows of ``values`` (columns ``keys``): ``keys``,
        ``fields``, ID_COLUMN and VERSION_COLUMN, each record once."""
        schema = self.meta.schema
        for key in keys:
            self._check_key(key)
        names = [*keys, *fields, "Id"]
        if schema.has(VERSION_FIELD):
            names.append(VERSION_FIELD)
        fetch = schema.select(list(dict.fromkeys(names)))
        tables = [
            pa.Table.from_batches(list(self._query(fetch.field_names, condition)))
            for condition in conditions(self.meta, keys, values, rules)
        ]
        found = (
            pa.concat_tables(tables).combine_chunks()
            if tables
            else fetch.arrow_schema().empty_table()
        )
        if found.num_rows:  # a record can be found by several conditions: once is enough
            first = pc.index_in(pc.unique(found.column("Id")), value_set=found.column("Id"))
            found = found.take(first)
        version = (
            pc.cast(found.column(VERSION_FIELD), pa.string())
            if schema.has(VERSION_FIELD)
            else pa.nulls(found.num_rows, pa.string())
        )
        keep = list(dict.fromkeys([*keys, *fields]))
        out = found.select(keep)
        out = out.append_column(ID_COLUMN, pc.cast(found.column("Id"), pa.string()))
        return out.append_column(VERSION_COLUMN, version)

    def _check_key(self, key: str) -> None:
        schema = self.meta.schema
        schema.field(key, context=self.context)  # an unknown field is a ConfigError
        if not self.meta.filterable(key):
            raise ConfigError(
                f"cannot match records on {key!r}: Salesforce cannot filter on it "
                "(long text areas and the fields of related records cannot be match keys)",
                context=self.context.merge(field=key),
            )

    def _query(self, names: list[str], condition: str) -> Iterator[pa.RecordBatch]:
        fetch = self.meta.schema.select(names)
        plan = ReadPlan(
            meta=self.meta,
            fields=names,
            fetch=fetch,
            condition=condition,
            order=["Id"],
            recheck=None,
            deleted=False,
        )
        yield from Reader(self.api, plan).batches(PAGE)


def conditions(
    meta: ObjectMeta,
    keys: Sequence[str],
    values: pa.RecordBatch | pa.Table,
    rules: Mapping[str, KeyRule],
) -> list[str]:
    """The WHERE conditions (each at most MAX_CONDITION characters) that find every record
    holding one of the key value rows of ``values``."""
    if any(rules.get(k) is KeyRule.PHONE for k in keys):
        return [" AND ".join(f"{k} != null" for k in keys)]
    columns = [values.column(k).to_pylist() for k in keys]
    kinds = [meta.schema.field(k).type for k in keys]
    if len(keys) == 1 and kinds[0] is not FieldType.DATETIME:
        found = [_literals(v, kinds[0], rules.get(keys[0], KeyRule.EXACT)) for v in columns[0]]
        items = list(dict.fromkeys(lit for lits in found for lit in lits))
        prefix = f"{keys[0]} IN ("
        return [prefix + ", ".join(part) + ")" for part in _cut(items, ", ", len(prefix) + 1)]
    rows: list[str] = []
    for row in zip(*columns, strict=True):
        parts = [
            _part(k, v, kind, rules.get(k, KeyRule.EXACT))
            for k, v, kind in zip(keys, row, kinds, strict=True)
        ]
        if all(p is not None for p in parts):
            rows.append(" AND ".join(f"{p}" for p in parts if p is not None))
    rows = list(dict.fromkeys(f"({r})" if len(keys) > 1 else r for r in rows))
    return [" OR ".join(part) for part in _cut(rows, " OR ", 0)]


def _part(key: str, value: Any, kind: FieldType, rule: KeyRule) -> str | None:
    """The condition on one key for one value (None: the value can match nothing)."""
    if kind is FieldType.DATETIME:
        if not isinstance(value, dt.datetime):
            return None
        node = datetime_condition(key, "=", value)
        return where(node) if node is not None else None
    found = _literals(value, kind, rule)
    if not found:
        return None
    if len(found) == 1:
        return f"{key} = {found[0]}"
    return f"{key} IN ({', '.join(found)})"


def _literals(value: Any, kind: FieldType, rule: KeyRule) -> list[str]:
    """The SOQL literals that find every record holding ``value`` under ``rule``."""
    if value is None:
        return []
    if kind is FieldType.ID:
        full = canonical_id(str(value))
        return [literal(full)] if full is not None else []
    if not kind.is_text or rule is KeyRule.EXACT or not isinstance(value, str):
        return [literal(value)]
    trimmed = value.strip()
    forms = [value, trimmed]
    if not trimmed.isascii():
        forms += [trimmed.lower(), trimmed.upper(), trimmed.casefold()]
    return [literal(f) for f in dict.fromkeys(forms) if f]


def _cut(items: list[str], glue: str, overhead: int) -> list[list[str]]:
    """``items`` in runs whose joined length (plus ``overhead``) stays within MAX_CONDITION."""
    runs: list[list[str]] = []
    run: list[str] = []
    size = overhead
    for item in items:
        if run and size + len(glue) + len(item) > MAX_CONDITION:
            runs.append(run)
            run, size = [], overhead
        size += len(item) + (len(glue) if run else 0)
        run.append(item)
    if run:
        runs.append(run)
    return runs


__all__ = ["MAX_CONDITION", "Finder", "conditions"]
