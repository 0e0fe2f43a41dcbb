"""Records that point at other records: references, links, and records already sent.

* **references** fill a target field with the id of a record looked up in the target system
  (a Note's ``parent_id`` from the Lead with that e-mail; an Opportunity's ``account_id``
  from the Account with that name, created when missing);
* **links** relate each written record to records found in the target system, and are verified;
* **deduplicate** leaves out records whose key an earlier run already wrote.

Each needs expressions over source fields; they are evaluated with the mapping, in the same
DuckDB query, as extra columns named ``__crmbridge_*``. Every look-up is one call per batch
(per reference or link), never one per record.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc

from crmbridge.connectors.base import Connector, WriteRequest
from crmbridge.core.coerce import Coercer, Rejection
from crmbridge.core.keys import key_strings
from crmbridge.core.outcomes import Outcome, WriteMode
from crmbridge.core.schema import ROW_COLUMN, Field, ObjectSchema
from crmbridge.errors import ErrorContext
from crmbridge.profiles.model import Link, Missing, Profile, Reference
from crmbridge.runner.outputs import OUTCOME, REASON, TARGET_ID
from crmbridge.state import StateStore

PREFIX = "__crmbridge_"
DEDUPE = f"{PREFIX}dedupe"


def ref_column(target_field: str, match_field: str) -> str:
    return f"{PREFIX}ref_{target_field}__{match_field}"


def ref_value_column(target_field: str, name: str) -> str:
    return f"{PREFIX}refval_{target_field}__{name}"


def link_column(index: int, match_field: str) -> str:
    return f"{PREFIX}link{index}__{match_field}"


def extra_texts(profile: Profile) -> dict[str, tuple[tuple[str | int, ...], str]]:
    """Every extra expression: column name -> (location in the profile, expression text)."""
    out: dict[str, tuple[tuple[str | int, ...], str]] = {}
    for target, ref in profile.references.items():
        for name, text in ref.match.items():
            out[ref_column(target, name)] = (("references", target, "match", name), text)
        for name, text in ref.values.items():
            out[ref_value_column(target, name)] = (("references", target, "values", name), text)
    for i, link in enumerate(profile.links):
        for name, text in link.match.items():
            out[link_column(i, name)] = (("links", i, "match", name), text)
    if profile.deduplicate:
        out[DEDUPE] = (("deduplicate", "key"), profile.deduplicate.key)
    return out


@dataclass
class Resolved:
    batch: pa.RecordBatch  # the records that go on, with reference fields filled in
    rejected: list[Rejection] = field(default_factory=list)
    skipped: int = 0


class Relations:
    """References, links and deduplication for one run."""

    def __init__(
        self,
        profile: Profile,
        profile_name: str,
        target: Connector,
        schemas: Mapping[str, ObjectSchema],
        *,
        state: StateStore | None,
        run_id: int | None,
        dry_run: bool,
    ) -> None:
        self.profile = profile
        self.scope = f"profile:{profile_name}"
        self.target = target
        self.schemas = schemas  # describe() of every referenced or linked object
        self.state = state
        self.run_id = run_id
        self.dry_run = dry_run
        self.context = ErrorContext(profile=profile_name)

    @property
    def active(self) -> bool:
        p = self.profile
        return bool(p.references or p.links or p.deduplicate)

    # -- deduplicate ---------------------------------------------------------------------
    def drop_sent(self, batch: pa.RecordBatch) -> tuple[pa.RecordBatch, int]:
        """Leave out records an earlier run already wrote (by the deduplicate key)."""
        if self.profile.deduplicate is None or self.state is None or batch.num_rows == 0:
            return batch, 0
        keys = pc.cast(batch.column(DEDUPE), pa.string())
        sent = self.state.sent(self.scope, [k for k in keys.to_pylist() if k is not None])
        if not sent:
            return batch, 0
        keep = pc.invert(pc.fill_null(pc.is_in(keys, pa.array(sorted(sent))), False))
        kept = batch.filter(keep)
        return kept, batch.num_rows - kept.num_rows

    def mark_sent(self, batch: pa.RecordBatch, outcomes: pa.Table) -> None:
        if self.profile.deduplicate is None or self.state is None or self.dry_run:
            return
        done = outcomes.filter(pc.not_equal(outcomes.column(OUTCOME), Outcome.REJECTED.value))
        rows = batch.filter(pc.is_in(batch.column(ROW_COLUMN), done.column(ROW_COLUMN)))
        keys = [k for k in pc.cast(rows.column(DEDUPE), pa.string()).to_pylist() if k]
        self.state.mark_sent(self.scope, keys, run_id=self.run_id)

    # -- references ----------------------------------------------------------------------
    def resolve(self, batch: pa.RecordBatch) -> Resolved:
        """Fill every reference field; reject, skip or create where nothing matches."""
        result = Resolved(batch)
        for target_field, ref in self.profile.references.items():
            if result.batch.num_rows == 0:
                break
            ids, missing = self._find(ref, result.batch, target_field)
            if missing.any and ref.missing is Missing.CREATE and not self.dry_run:
                ids, failures = self._create(ref, result.batch, target_field, ids, missing.mask)
                result.rejected += failures
                missing = _Missing.of(ids, missing.mask)
            result.batch = _set_column(result.batch, target_field, ids)
            if not missing.any or ref.missing is Missing.CREATE:
                continue
            if ref.missing is Missing.SKIP:
                result.skipped += missing.count
            else:
                result.rejected += self._not_found(ref, result.batch, target_field, missing.mask)
            result.batch = result.batch.filter(pc.invert(missing.mask))
        return result

    def _find(
        self, ref: Reference, batch: pa.RecordBatch, target_field: str
    ) -> tuple[pa.Array, _Missing]:
        schema = self.schemas[ref.object]
        names = list(ref.match)
        keys = _typed_keys(batch, {ref_column(target_field, n): schema.field(n) for n in names})
        keys = keys.rename_columns(names)
        ids = self._lookup_ids(ref.object, schema, names, keys)
        # a record with nothing to match on (an empty company) simply has no reference
        has_key = pc.is_valid(key_strings(keys, names))
        return ids, _Missing.of(ids, has_key)

    def _lookup_ids(
        self, object: str, schema: ObjectSchema, names: list[str], keys: pa.RecordBatch
    ) -> pa.Array:
        """For each row of ``keys``: the id of the record of ``object`` matching it, or null."""
        wanted = key_strings(keys, names, fold=True)
        present = pc.is_valid(wanted)
        distinct = pa.Table.from_batches([keys.filter(present)]).group_by(names).aggregate([])
        if distinct.num_rows == 0:
            return pa.nulls(keys.num_rows, pa.string())
        id_field = schema.id_field or names[0]
        found = self.target.lookup(object, names, distinct.to_batches()[0], [])
        if found.num_rows == 0:
            return pa.nulls(keys.num_rows, pa.string())
        position = pc.index_in(wanted, value_set=key_strings(found, names, fold=True))
        return pc.cast(found.column(id_field), pa.string()).take(position)

    def _create(
        self,
        ref: Reference,
        batch: pa.RecordBatch,
        target_field: str,
        ids: pa.Array,
        missing: pa.Array,
    ) -> tuple[pa.Array, list[Rejection]]:
        """Create the missing referenced records (one per distinct key) and fill their ids."""
        schema = self.schemas[ref.object]
        names = list(ref.match)
        columns = {ref_column(target_field, n): schema.field(n) for n in names}
        columns |= {ref_value_column(target_field, n): schema.field(n) for n in ref.values}
        rows = batch.filter(missing)
        typed = _typed_keys(rows, columns).rename_columns([*names, *ref.values])
        first = _first_per_key(typed, names)
        new = typed.take(first).append_column(ROW_COLUMN, rows.column(ROW_COLUMN).take(first))
        request = WriteRequest(ref.object, new, WriteMode.INSERT, names, context=self.context)
        written = self.target.write(request)
        created_keys = key_strings(new, names, fold=True)
        made = pc.equal(written.outcome, Outcome.CREATED.value)
        lookup = pc.index_in(key_strings(typed, names, fold=True), value_set=created_keys)
        new_ids = pc.if_else(pc.take(made, lookup), written.target_id.take(lookup), None)
        failures = [
            Rejection(
                new.column(ROW_COLUMN)[i].as_py(),
                target_field,
                f"could not create the {ref.object} record: {written.reason[i].as_py()}",
            )
            for i in pc.indices_nonzero(pc.invert(made)).to_pylist()
        ]
        merged = _scatter(ids, missing, new_ids)
        return merged, failures

    def _not_found(
        self, ref: Reference, batch: pa.RecordBatch, target_field: str, missing: pa.Array
    ) -> list[Rejection]:
        rows = batch.filter(missing)
        out = []
        for i in range(rows.num_rows):
            key = ", ".join(
                f"{n}={rows.column(ref_column(target_field, n))[i].as_py()!r}" for n in ref.match
            )
            out.append(
                Rejection(
                    rows.column(ROW_COLUMN)[i].as_py(),
                    target_field,
                    f"no {ref.object} record matches {key}",
                )
            )
        return out

    # -- links ---------------------------------------------------------------------------
    def link(self, batch: pa.RecordBatch, outcomes: pa.Table) -> pa.Table:
        """Make every link for the written records; a failed link rejects its record."""
        if not self.profile.links or self.dry_run or outcomes.num_rows == 0:
            return outcomes
        ok = pc.and_(
            pc.not_equal(outcomes.column(OUTCOME), Outcome.REJECTED.value),
            pc.not_equal(outcomes.column(OUTCOME), Outcome.DELETED.value),
        )
        written = outcomes.filter(pc.and_(ok, pc.is_valid(outcomes.column(TARGET_ID))))
        rows = batch.filter(pc.is_in(batch.column(ROW_COLUMN), written.column(ROW_COLUMN)))
        record_ids = dict(
            zip(
                written.column(ROW_COLUMN).to_pylist(),
                written.column(TARGET_ID).to_pylist(),
                strict=True,
            )
        )
        problems: dict[int, str] = {}
        for i, link in enumerate(self.profile.links):
            for row, message in self._link(i, link, rows, record_ids).items():
                problems.setdefault(row, message)
        return _reject_rows(outcomes, problems)

    def _link(
        self, index: int, link: Link, rows: pa.RecordBatch, record_ids: Mapping[int, str]
    ) -> dict[int, str]:
        schema = self.schemas[link.object]
        names = list(link.match)
        keys = _typed_keys(rows, {link_column(index, n): schema.field(n) for n in names})
        related = self._lookup_ids(link.object, schema, names, keys.rename_columns(names))
        problems: dict[int, str] = {}
        for row, related_id in zip(
            rows.column(ROW_COLUMN).to_pylist(), related.to_pylist(), strict=True
        ):
            record_id = record_ids[row]
            if related_id is None:
                if link.missing is Missing.REJECT:
                    problems[row] = (
                        f"written (id {record_id}), but no {link.object} record was found "
                        f"to link through {link.link!r}"
                    )
                continue
            made = self.target.link(self.profile.target.object, record_id, link.link, [related_id])
            if not made.get(related_id):
                problems[row] = (
                    f"written (id {record_id}), but the link {link.link!r} to {link.object} "
                    f"{related_id} was not made (checked by reading it back)"
                )
        return problems


@dataclass
class _Missing:
    mask: pa.Array
    count: int

    @property
    def any(self) -> bool:
        return self.count > 0

    @classmethod
    def of(cls, ids: pa.Array, wanted: pa.Array) -> _Missing:
        """Rows that ``wanted`` a record and got no id."""
        mask = pc.and_(pc.is_null(ids), wanted)
        return cls(mask, pc.sum(pc.cast(mask, pa.int64())).as_py() or 0)


def _typed_keys(batch: pa.RecordBatch, columns: Mapping[str, Field]) -> pa.RecordBatch:
    """The given columns of ``batch`` cast to their fields' types (values that do not convert
    become null, and so match nothing)."""
    types = {name: f.arrow_type for name, f in columns.items()}
    picked = batch.select([*columns, ROW_COLUMN])
    with Coercer(types) as coercer:
        converted, _ = coercer.apply(picked)
    if converted.num_rows != picked.num_rows:  # drop nothing: keep row positions aligned
        index = pc.index_in(picked.column(ROW_COLUMN), value_set=converted.column(ROW_COLUMN))
        converted = converted.take(index)
    return converted.select(list(columns))


def _first_per_key(batch: pa.RecordBatch, names: Sequence[str]) -> pa.Array:
    keys = key_strings(batch, names, fold=True)
    unique = pc.unique(keys)
    return pc.index_in(unique, value_set=keys)


def _scatter(ids: pa.Array, mask: pa.Array, values: pa.Array) -> pa.Array:
    """``ids`` with the positions where ``mask`` is true replaced, in order, by ``values``."""
    return pc.replace_with_mask(ids.cast(pa.string()), mask, values.cast(pa.string()))


def _set_column(batch: pa.RecordBatch, name: str, values: pa.Array) -> pa.RecordBatch:
    if name in batch.schema.names:
        i = batch.schema.get_field_index(name)
        return batch.set_column(i, pa.field(name, pa.string()), values)
    return batch.append_column(pa.field(name, pa.string()), values)


def _reject_rows(outcomes: pa.Table, problems: Mapping[int, str]) -> pa.Table:
    """``outcomes`` with the records of ``problems`` (row -> reason) rejected."""
    if not problems:
        return outcomes
    position = pc.index_in(outcomes.column(ROW_COLUMN), value_set=pa.array(list(problems)))
    hit = pc.is_valid(position)
    messages = pa.array(list(problems.values()), pa.string()).take(position)
    outcome = pc.if_else(hit, Outcome.REJECTED.value, outcomes.column(OUTCOME))
    reason = pc.if_else(hit, messages, outcomes.column(REASON))
    outcomes = outcomes.set_column(outcomes.column_names.index(OUTCOME), OUTCOME, outcome)
    return outcomes.set_column(outcomes.column_names.index(REASON), REASON, reason)


__all__ = ["DEDUPE", "PREFIX", "Relations", "Resolved", "extra_texts"]
