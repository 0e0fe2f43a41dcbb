"""Records that point at other records: references, links, and records already sent.

* **references** fill a target field with the id of a record looked up in the target system
  (a Note's ``parent_id`` from the Lead with that e-mail; an Opportunity's ``account_id``
  from the Account with that name, created when missing);
* **links** relate each written record to records found in the target system, and are verified;
* **deduplicate** leaves out records whose key an earlier run already wrote.

Each needs expressions over source fields; they are evaluated with the mapping, in the same
DuckDB query, as extra columns named ``__crmbridge_*``. Every look-up is one ``match`` call
per batch (per reference or link), never one per record, and compares keys as
:mod:`crmbridge.core.identity` says, like every other step: several matching records are
``ambiguous`` (rejected) unless the profile says to take the first.

A missing referenced record that the profile creates (``missing: create``) is created in the
write phase, after the records that need it passed every check, through the same plan and
apply as the main records (so with the same retries and idempotent ids).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.compute as pc

from crmbridge.connectors.base import MatchRequest
from crmbridge.core import identity
from crmbridge.core.coerce import Coercer, Rejection
from crmbridge.core.identity import KeyRule
from crmbridge.core.outcomes import Outcome, RejectCode, WriteMode
from crmbridge.core.plan import ID_COLUMN, OP_KEY_COLUMN, SOURCE_KEY_COLUMN, OnMultiple, PlanSpec
from crmbridge.core.schema import ROW_COLUMN, Field, ObjectSchema
from crmbridge.errors import ErrorContext
from crmbridge.profiles.model import Link, Missing, Profile, Reference
from crmbridge.runner.outputs import OUTCOME, REASON, TARGET_ID
from crmbridge.state import Sent, StateStore

if TYPE_CHECKING:
    from crmbridge.runner.prepare import Prepared

PREFIX = "__crmbridge_"
DEDUPE = f"{PREFIX}dedupe"


def ref_column(target_field: str, match_field: str) -> str:
    return f"{PREFIX}ref_{target_field}__{match_field}"


def ref_value_column(target_field: str, name: str) -> str:
    return f"{PREFIX}refval_{target_field}__{name}"


def pending_column(target_field: str) -> str:
    """True where the referenced record is to be created in the write phase."""
    return f"{PREFIX}create_{target_field}"


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
    #: reference field -> rows whose referenced record is created in the write phase
    pending: dict[str, pa.Array] = field(default_factory=dict)


class Relations:
    """References, links and deduplication for one run."""

    def __init__(
        self,
        prepared: Prepared,
        *,
        state: StateStore | None,
        run_id: int | None,
        dry_run: bool,
    ) -> None:
        self.prepared = prepared
        self.profile = prepared.profile
        self.target = prepared.target
        self.schemas = prepared.related  # describe() of every referenced or linked object
        self.state = state
        self.run_id = run_id
        self.dry_run = dry_run
        self.context = ErrorContext(profile=prepared.loaded.name)
        self.scope = f"dedupe:{prepared.profile_key}"

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

    def sent(self, batch: pa.RecordBatch, outcomes: pa.Table) -> list[Sent]:
        """The deduplicate keys of the records written (for the ledger to remember)."""
        if self.profile.deduplicate is None:
            return []
        done = outcomes.filter(pc.not_equal(outcomes.column(OUTCOME), Outcome.REJECTED.value))
        rows = batch.filter(pc.is_in(batch.column(ROW_COLUMN), done.column(ROW_COLUMN)))
        keys = [k for k in pc.cast(rows.column(DEDUPE), pa.string()).to_pylist() if k]
        return [Sent(self.scope, keys)]

    # -- references ----------------------------------------------------------------------
    def resolve(self, batch: pa.RecordBatch) -> Resolved:
        """Fill every reference field with the id of the record found; reject or skip where
        none (or several) is found; mark those to create (``missing: create``)."""
        result = Resolved(batch)
        for target_field, ref in self.profile.references.items():
            if result.batch.num_rows == 0:
                break
            keys = self._ref_keys(ref, result.batch, target_field)
            names = list(ref.match)
            found = self._find(
                ref.object,
                names,
                keys,
                _rules(ref, self.schemas[ref.object]),
                ref.on_multiple_matches,
            )
            result.batch = _set_column(result.batch, target_field, found.ids)
            has_key = pc.is_valid(identity.encode(keys, names))
            missing = pc.and_(pc.and_(pc.is_null(found.ids), has_key), pc.invert(found.ambiguous))
            if pc.any(found.ambiguous).as_py():
                result.rejected += self._refused(
                    ref, result.batch, target_field, found.ambiguous, "several"
                )
            drop = found.ambiguous
            if pc.any(missing).as_py():
                if ref.missing is Missing.CREATE:
                    result.pending[target_field] = missing
                elif ref.missing is Missing.SKIP:
                    result.skipped += pc.sum(pc.cast(missing, pa.int64())).as_py() or 0
                    drop = pc.or_(drop, missing)
                else:
                    result.rejected += self._refused(ref, result.batch, target_field, missing, "no")
                    drop = pc.or_(drop, missing)
            if pc.any(drop).as_py():
                keep = pc.invert(drop)
                result.batch = result.batch.filter(keep)
                result.pending = {k: v.filter(keep) for k, v in result.pending.items()}
        if result.pending:
            for target_field, mask in result.pending.items():
                result.batch = result.batch.append_column(pending_column(target_field), mask)
        return result

    def create_missing(self, batch: pa.RecordBatch) -> tuple[pa.RecordBatch, list[Rejection]]:
        """Create the referenced records marked by :meth:`resolve` (one per distinct key, in
        the write phase) and fill their ids; a dry run plans them (ids known only where the
        target takes chosen ids)."""
        rejected: list[Rejection] = []
        for target_field, ref in self.profile.references.items():
            marker = pending_column(target_field)
            if ref.missing is not Missing.CREATE or marker not in batch.schema.names:
                continue
            mask = pc.fill_null(batch.column(marker), False)
            if batch.num_rows == 0 or not pc.any(mask).as_py():
                continue
            ids, failed = self._create(ref, batch.filter(mask), target_field)
            filled = _scatter(batch.column(target_field), mask, ids)
            batch = _set_column(batch, target_field, filled)
            rejected += failed
            if failed:
                bad = pa.array([r.row for r in failed], pa.int64())
                batch = batch.filter(pc.invert(pc.is_in(batch.column(ROW_COLUMN), bad)))
        return batch, rejected

    def _ref_keys(self, ref: Reference, batch: pa.RecordBatch, target_field: str) -> pa.RecordBatch:
        schema = self.schemas[ref.object]
        columns = {ref_column(target_field, n): schema.field(n) for n in ref.match}
        return _typed_keys(batch, columns).rename_columns(list(ref.match))

    def _find(
        self,
        object: str,
        names: list[str],
        keys: pa.RecordBatch,
        rules: Mapping[str, KeyRule],
        on_multiple: OnMultiple,
    ) -> _Found:
        """For each row of ``keys``: the id of the one record of ``object`` matching it."""
        n = keys.num_rows
        wanted = identity.encode(keys, names, rules)
        none = _Found(pa.nulls(n, pa.string()), pa.repeat(False, n))
        present = keys.filter(pc.is_valid(wanted))
        if present.num_rows == 0:
            return none
        distinct = pa.Table.from_batches([present]).group_by(names, use_threads=False).aggregate([])
        request = MatchRequest(
            object,
            names,
            distinct.combine_chunks().to_batches()[0],
            rules=dict(rules),
            context=self.context,
        )
        found = self.target.match(request)
        if found.num_rows == 0:
            return none
        there = identity.encode(found, names, rules)
        count = identity.match_counts(wanted, there)
        ids = pc.cast(found.column(ID_COLUMN), pa.string()).take(identity.positions(wanted, there))
        ambiguous = pc.greater(count, 1)
        if on_multiple is OnMultiple.FIRST:
            ambiguous = pa.repeat(False, n)
        ids = pc.if_else(ambiguous, pa.scalar(None, pa.string()), ids)
        return _Found(ids, ambiguous)

    def _create(
        self, ref: Reference, rows: pa.RecordBatch, target_field: str
    ) -> tuple[pa.Array, list[Rejection]]:
        """Plan and carry out the creation of one record per distinct key of ``rows``; the id
        each row gets (null in a dry run without chosen ids) and the rows that failed."""
        from crmbridge.runner.writing import TargetWriter

        schema = self.schemas[ref.object]
        names = list(ref.match)
        columns = {ref_column(target_field, n): schema.field(n) for n in names}
        columns |= {ref_value_column(target_field, n): schema.field(n) for n in ref.values}
        typed = _typed_keys(rows, columns).rename_columns([*names, *ref.values])
        rules = _rules(ref, schema)
        wanted = identity.encode(typed, names, rules)
        first = pc.index_in(pc.unique(wanted), value_set=wanted)
        new = typed.take(first)
        new = new.append_column(ROW_COLUMN, rows.column(ROW_COLUMN).take(first))
        new = new.append_column(
            SOURCE_KEY_COLUMN,
            pc.binary_join_element_wise(f"{ref.object}\x1f", wanted.take(first), ""),
        )
        spec = PlanSpec(
            object=ref.object,
            mode=WriteMode.INSERT,
            fields=(*names, *ref.values),
            keys=tuple(names),
            rules=rules,
            client_ids=self.prepared.plan_spec.client_ids,
            namespace=self.prepared.plan_spec.namespace,
        )
        writer = TargetWriter(
            self.target,
            spec,
            self.context.merge(object=ref.object),
            max_batch_size=self.prepared.target_caps.max_batch_size,
        )
        plan = writer.plan(new)
        if self.dry_run:
            ids = (
                plan.ops.column(ID_COLUMN)
                if not spec.client_ids
                else plan.ops.column(OP_KEY_COLUMN)
            )
            made = pa.repeat(True, new.num_rows)
            reasons = pa.nulls(new.num_rows, pa.string())
        else:
            outcomes = writer.apply(plan)
            ids = outcomes.column(TARGET_ID)
            made = pc.equal(outcomes.column(OUTCOME), Outcome.CREATED.value)
            reasons = outcomes.column(REASON)
        created = pc.if_else(made, ids, pa.scalar(None, pa.string()))
        index = pc.index_in(wanted, value_set=wanted.take(first))
        failures = [
            Rejection(
                row,
                target_field,
                f"could not create the {ref.object} record: {reason}",
                RejectCode.REFERENCE,
            )
            for row, ok, reason in zip(
                rows.column(ROW_COLUMN).to_pylist(),
                pc.take(made, index).to_pylist(),
                pc.take(reasons, index).to_pylist(),
                strict=True,
            )
            if not ok
        ]
        return _flat(pc.take(created, index)), failures

    def _refused(
        self, ref: Reference, batch: pa.RecordBatch, target_field: str, mask: pa.Array, how: str
    ) -> list[Rejection]:
        rows = batch.filter(mask)
        out = []
        for i in range(rows.num_rows):
            key = ", ".join(
                f"{n}={rows.column(ref_column(target_field, n))[i].as_py()!r}" for n in ref.match
            )
            what = (
                f"no {ref.object} record matches"
                if how == "no"
                else (f"several {ref.object} records match")
            )
            out.append(
                Rejection(
                    rows.column(ROW_COLUMN)[i].as_py(),
                    target_field,
                    f"{what} {key}",
                    RejectCode.AMBIGUOUS_MATCH if how == "several" else RejectCode.REFERENCE,
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
        rules = {n: schema.field(n).key_rule for n in names}
        found = self._find(link.object, names, keys.rename_columns(names), rules, OnMultiple.FIRST)
        problems: dict[int, str] = {}
        for row, related_id in zip(
            rows.column(ROW_COLUMN).to_pylist(), found.ids.to_pylist(), strict=True
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
class _Found:
    ids: pa.Array  # the one matching record's id per row, or null
    ambiguous: pa.Array  # several records match (and the policy rejects)


def _rules(ref: Reference, schema: ObjectSchema) -> dict[str, KeyRule]:
    return {n: ref.key_rules.get(n, schema.field(n).key_rule) for n in ref.match}


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


def _flat(values: pa.Array | pa.ChunkedArray) -> pa.Array:
    return values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values


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
    code = pc.if_else(hit, RejectCode.REFERENCE.value, outcomes.column("crmbridge_code"))
    outcomes = outcomes.set_column(outcomes.column_names.index(OUTCOME), OUTCOME, outcome)
    outcomes = outcomes.set_column(outcomes.column_names.index(REASON), REASON, reason)
    return outcomes.set_column(
        outcomes.column_names.index("crmbridge_code"), "crmbridge_code", code
    )


__all__ = [
    "DEDUPE",
    "PREFIX",
    "Relations",
    "Resolved",
    "extra_texts",
    "pending_column",
    "ref_column",
]
