"""Carrying out a plan's operations on one sObject (``apply``).

The engine decided every operation (``core/plan.py``); here each kind becomes API-level writes
(:mod:`.writes`): sObject Collections 200 records a call, or one Bulk API 2.0 ingest job when
an operation kind has more than ``bulk_write_threshold`` records.

* A **create** sends its values that are not null (Salesforce fills in its defaults). When the
  match key is one external-id field, it is an **upsert by that field** (Salesforce finds the
  record by the key itself, so a create repeated after a lost answer updates the record it
  made instead of making another); otherwise an insert. With ``operation_key_field`` every
  create is an upsert by that field, holding the operation key.
* An **update** is sent by ``Id`` with only the fields the operation sets
  (``ApplyRequest.unset``); a null clears the field. A PATCH by id never creates a record, so
  ``update`` mode cannot insert silently.
* A **delete** is sent by ``Id``: to the recycle bin, or with ``hard_delete`` for good
  (Bulk API 2.0 ``hardDelete``).
* ``Account.Ext_Id__c`` sets the reference through the related record's external id; a null
  clears the reference.

**Repeated** (``attempt > 1``, after an :class:`.failures.OutcomeUnknownError`, which is the
engine's AmbiguousWriteError, or in a resumed run), the connector remembers what the earlier
attempts of the same operations answered (:class:`Memory`): those results stand and are not
sent again, and operations never sent are sent as the first time. The operations whose answer
was lost (or, in a resumed run, all of them) are confirmed: a create upserted by its key, or
found again by its match keys holding its values, is ``created``; a delete whose record is gone
is ``deleted``; an update is sent again (it sets the same values). A create that nothing can
find again (no match keys and no ``operation_key_field``) is not sent a second time: it is
rejected with a reason saying it may exist.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from crmbridge.connectors.base import ACTION_COLUMN, ID_COLUMN, OP_KEY_COLUMN, ApplyRequest
from crmbridge.connectors.common.answers import Done, Memory, write_result
from crmbridge.connectors.salesforce.discovery import ObjectMeta
from crmbridge.connectors.salesforce.matching import Finder
from crmbridge.connectors.salesforce.values import canonical_id, stored_form
from crmbridge.connectors.salesforce.writes import (
    COLLECTION_SIZE,
    Operation,
    RecordResult,
    Writes,
)
from crmbridge.core import identity
from crmbridge.core.outcomes import Outcome, RejectCode, WriteResult
from crmbridge.core.schema import ROW_COLUMN
from crmbridge.errors import ConfigError, ErrorContext

_INTERNAL = frozenset({ROW_COLUMN, ACTION_COLUMN, ID_COLUMN, OP_KEY_COLUMN})
CONFIRMED = "already created (confirmed)"
#: length of an operation key (a UUID)
OP_KEY_LENGTH = 36

#: Salesforce status code -> why the record was rejected
_CODES = {
    "DUPLICATE_VALUE": RejectCode.DUPLICATE_KEY,
    "DUPLICATE_EXTERNAL_ID": RejectCode.AMBIGUOUS_MATCH,
    "ENTITY_IS_DELETED": RejectCode.NOT_FOUND,
    "NOT_FOUND": RejectCode.NOT_FOUND,
    "REQUIRED_FIELD_MISSING": RejectCode.INVALID_VALUE,
    "STRING_TOO_LONG": RejectCode.INVALID_VALUE,
    "INVALID_EMAIL_ADDRESS": RejectCode.INVALID_VALUE,
    "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST": RejectCode.INVALID_VALUE,
    "INVALID_TYPE_ON_FIELD_IN_RECORD": RejectCode.INVALID_VALUE,
    "NUMBER_OUTSIDE_VALID_RANGE": RejectCode.INVALID_VALUE,
    "MALFORMED_ID": RejectCode.INVALID_VALUE,
    "FIELD_INTEGRITY_EXCEPTION": RejectCode.INVALID_VALUE,
    "INVALID_FIELD": RejectCode.INVALID_VALUE,
    "MISSING_ARGUMENT": RejectCode.MISSING_KEY,
}


@dataclass
class _Op:
    index: int
    action: str
    token: str
    id: str | None
    op_key: str | None
    values: dict[str, Any]
    #: sent before without an answer (or a resumed run): confirm instead of applying twice
    doubt: bool = False


class ObjectWriter:
    """Carries out operations on one sObject (see the module docstring)."""

    def __init__(
        self,
        writes: Writes,
        finder: Finder,
        memory: Memory,
        *,
        hard_delete: bool,
        op_key_field: str | None,
        context: ErrorContext,
    ) -> None:
        self.writes = writes
        self.finder = finder
        self.memory = memory
        self.hard_delete = hard_delete
        self.op_key_field = op_key_field
        self.context = context

    @property
    def meta(self) -> ObjectMeta:
        return self.finder.meta

    @property
    def object(self) -> str:
        return self.meta.name

    def apply(self, request: ApplyRequest) -> WriteResult:
        """One outcome per operation of ``request``, in order."""
        names = [n for n in request.ops.schema.names if n not in _INTERNAL]
        self._check_fields(names)
        ops = self._ops(request, names)
        results: list[Done | None] = [None] * len(ops)
        memory = self.memory
        if request.attempt == 1:
            memory.start(self.object, [op.token for op in ops])
        elif memory.object != self.object:
            memory.start(self.object, [])  # nothing known: every operation is in doubt
        for op in ops:
            results[op.index] = memory.known.get(op.token)
            op.doubt = request.attempt > 1 and op.token not in memory.unsent
        todo = [op for op in ops if results[op.index] is None]
        todo = self._refuse(todo, results)
        todo = self._resolve_created(todo, results)
        steps = {"delete": self._delete, "update": self._update, "create": self._create}
        for action, step in steps.items():
            group = [op for op in todo if op.action == action]
            if group:
                step(group, list(request.keys), results)
        return write_result(results)

    # -- preparing ------------------------------------------------------------------------
    def _check_fields(self, names: Sequence[str]) -> None:
        schema = self.meta.schema
        for name in names:
            found = schema.field(name, context=self.context)
            if name == self.op_key_field:
                raise ConfigError(
                    f"field {name!r} holds crmbridge's operation keys (operation_key_field) "
                    "and cannot be mapped",
                    context=self.context.merge(field=name),
                )
            if found.read_only and name != "Id":
                raise ConfigError(
                    f"field {name!r} is maintained by Salesforce and cannot be written",
                    context=self.context.merge(field=name),
                )
        field_name = self.op_key_field
        if field_name is None:
            return
        info = self.meta.info.get(field_name)
        length = schema.field(field_name).length if schema.has(field_name) else None
        if info is None or not info.external_id or (length or 0) < OP_KEY_LENGTH:
            raise ConfigError(
                f"operation_key_field {field_name!r} must be a text external-id field of "
                f"{self.object} with at least {OP_KEY_LENGTH} characters (create it unique, "
                "case sensitive)",
                context=self.context.merge(field=field_name),
            )

    def _ops(self, request: ApplyRequest, names: list[str]) -> list[_Op]:
        ops = request.ops
        stored = stored_form(ops.select(names), self.meta.schema.select(names).fields)
        records = stored.to_pylist()
        actions = ops.column(ACTION_COLUMN).to_pylist()
        ids = ops.column(ID_COLUMN).to_pylist()
        keys = ops.column(OP_KEY_COLUMN).to_pylist()
        rows = ops.column(ROW_COLUMN).to_pylist() if ROW_COLUMN in ops.schema.names else keys
        unset = {n: m.to_pylist() for n, m in request.unset.items() if n in names}
        out: list[_Op] = []
        for i, record in enumerate(records):
            action = str(actions[i])
            values = {
                name: value
                for name, value in record.items()
                if not (name in unset and unset[name][i])
                and not (action == "create" and value is None)
            }
            record_id = ids[i]
            if record_id is not None:
                record_id = canonical_id(str(record_id)) or str(record_id)
            token = f"{rows[i]}\x1f{keys[i]}\x1f{action}"
            out.append(_Op(i, action, token, record_id, keys[i], values))
        return out

    def _refuse(self, ops: list[_Op], results: list[Done | None]) -> list[_Op]:
        """Leave out (rejected) what Salesforce cannot do whatever it is sent."""
        kept: list[_Op] = []
        for op in ops:
            if op.action == "create" and op.values.get("Id") is not None:
                results[op.index] = Done(
                    Outcome.REJECTED,
                    reason=f"Salesforce makes record ids: no {self.object} record has the Id "
                    f"{op.values['Id']!r}, and none can be created with it",
                    code=RejectCode.NOT_FOUND,
                )
            elif op.action != "create" and op.id is None:
                results[op.index] = Done(
                    Outcome.REJECTED,
                    reason=f"the {self.object} record to {op.action} is not known (its create "
                    "failed)",
                    code=RejectCode.NOT_FOUND,
                )
            else:
                kept.append(op)
        return kept

    def _resolve_created(self, ops: list[_Op], results: list[Done | None]) -> list[_Op]:
        """With ``operation_key_field``: the ids of the records this run created (the plan
        knows them by their operation keys)."""
        field_name = self.op_key_field
        wanted = [
            op for op in ops if op.action != "create" and op.id and canonical_id(op.id) is None
        ]
        if field_name is None or not wanted:
            return ops
        keys = pa.table({field_name: pa.array([op.id for op in wanted], pa.string())})
        found = self.finder.find([field_name], keys, {field_name: identity.KeyRule.EXACT})
        ids = dict(
            zip(
                found.column(field_name).to_pylist(),
                found.column(ID_COLUMN).to_pylist(),
                strict=True,
            )
        )
        for op in wanted:
            op.id = ids.get(op.id)
            if op.id is None:
                results[op.index] = Done(
                    Outcome.REJECTED,
                    reason=f"the {self.object} record created by this run was not found",
                    code=RejectCode.NOT_FOUND,
                )
        return [op for op in ops if results[op.index] is None]

    # -- sending --------------------------------------------------------------------------
    def _send(
        self,
        ops: list[_Op],
        operation: Operation,
        rows: list[dict[str, Any]],
        decide: Callable[[_Op, RecordResult], Done],
        results: list[Done | None],
        external_id: str | None = None,
    ) -> None:
        """Send ``rows`` (one per op) in calls; ``decide(op, RecordResult) -> Done``."""
        names = list(dict.fromkeys(n for r in rows for n in r))
        use_bulk = operation is Operation.HARD_DELETE or len(rows) > self.writes.bulk_threshold
        size = len(rows) if use_bulk else COLLECTION_SIZE
        references = {r.relationship: r.reference for r in self.meta.related.values()}
        for start in range(0, len(rows), size):
            part, part_rows = ops[start : start + size], rows[start : start + size]
            self.memory.unsent -= {op.token for op in part}

            def record(offset: int, found: list[RecordResult], part: list[_Op] = part) -> None:
                for op, result in zip(part[offset : offset + len(found)], found, strict=True):
                    done = decide(op, result)
                    results[op.index] = done
                    self.memory.known[op.token] = done

            self.writes.apply_rows(
                operation, self.object, names, part_rows,
                external_id=external_id, bulk=use_bulk, references=references,
                on_results=record,
            )  # fmt: skip

    def _delete(self, ops: list[_Op], keys: list[str], results: list[Done | None]) -> None:
        def decide(op: _Op, result: RecordResult) -> Done:
            if result.success:
                return Done(Outcome.DELETED, op.id)
            if _code(result) is RejectCode.NOT_FOUND:
                if op.doubt:  # gone: the earlier attempt deleted it
                    return Done(Outcome.DELETED, op.id)
                return _gone(op, result)
            return _rejected(op.id, result)

        operation = Operation.HARD_DELETE if self.hard_delete else Operation.DELETE
        self._send(ops, operation, [{"Id": op.id} for op in ops], decide, results)

    def _update(self, ops: list[_Op], keys: list[str], results: list[Done | None]) -> None:
        def decide(op: _Op, result: RecordResult) -> Done:
            if result.success:
                return Done(Outcome.UPDATED, result.id or op.id)
            if _code(result) is RejectCode.NOT_FOUND:
                return _gone(op, result)
            return _rejected(op.id, result)

        rows = [{**{k: v for k, v in op.values.items() if k != "Id"}, "Id": op.id} for op in ops]
        self._send(ops, Operation.UPDATE, rows, decide, results)

    def _create(self, ops: list[_Op], keys: list[str], results: list[Done | None]) -> None:
        field_name = self.op_key_field
        by = field_name or self._external_key(keys)
        if by is None:
            ops = self._confirm_by_keys(ops, keys, results)
            if not ops:
                return

        def decide(op: _Op, result: RecordResult) -> Done:
            if not result.success:
                return _rejected(None, result)
            if result.created or by is None:
                return Done(Outcome.CREATED, result.id)
            if op.doubt or by == field_name:  # our earlier attempt (or run) made it
                return Done(Outcome.CREATED, result.id, CONFIRMED)
            return Done(
                Outcome.UPDATED,
                result.id,
                f"a {self.object} record with this {by} was created since the plan; "
                "Salesforce's upsert updated it",
            )

        rows = [dict(op.values) for op in ops]
        if field_name is not None:
            for op, row in zip(ops, rows, strict=True):
                row[field_name] = op.op_key
        operation = Operation.INSERT if by is None else Operation.UPSERT
        self._send(ops, operation, rows, decide, results, external_id=by)

    def _external_key(self, keys: Sequence[str]) -> str | None:
        """The match key when it is one external-id field (creates upsert by it)."""
        if len(keys) != 1 or keys[0] == "Id":
            return None
        info = self.meta.info.get(keys[0])
        return keys[0] if info is not None and info.external_id else None

    def _confirm_by_keys(
        self, ops: list[_Op], keys: Sequence[str], results: list[Done | None]
    ) -> list[_Op]:
        """The creates in doubt, found again by their match keys: confirmed when the record
        holds their values, rejected when another record has the keys; the others (and those
        not in doubt) still to be sent."""
        doubtful = [op for op in ops if op.doubt]
        if not doubtful:
            return ops
        if not keys:
            for op in doubtful:
                results[op.index] = Done(
                    Outcome.REJECTED,
                    reason=f"the answer to this create was lost, so the {self.object} record "
                    "may exist; it is not sent again, as nothing could tell it from a new one "
                    "(give the profile match keys, or the connection an operation_key_field)",
                    code=RejectCode.REFUSED,
                )
            return [op for op in ops if not op.doubt]
        schema = self.meta.schema
        rules = {k: schema.field(k).key_rule for k in keys}
        fields = sorted({n for op in doubtful for n in op.values if n not in keys})
        fields = [n for n in fields if n not in self.meta.related]
        wanted = pa.Table.from_pylist(
            [{k: op.values.get(k) for k in keys} for op in doubtful],
            schema=schema.select(list(keys)).arrow_schema(),
        )
        found = self.finder.find(keys, wanted, rules, fields)
        there: dict[str | None, list[int]] = {}
        for i, key in enumerate(identity.encode(found, keys, rules).to_pylist()):
            there.setdefault(key, []).append(i)
        candidates = found.to_pylist()
        for op, key in zip(doubtful, identity.encode(wanted, keys, rules).to_pylist(), strict=True):
            same = [candidates[i] for i in there.get(key, []) if key is not None]
            holding = [
                c for c in same if all(c.get(n) == op.values[n] for n in fields if n in op.values)
            ]
            if holding:
                results[op.index] = Done(Outcome.CREATED, holding[0][ID_COLUMN], CONFIRMED)
            elif same:
                results[op.index] = Done(
                    Outcome.REJECTED,
                    same[0][ID_COLUMN],
                    f"a {self.object} record with the same {', '.join(keys)} exists (created "
                    "since the plan)",
                    RejectCode.DUPLICATE_KEY,
                )
        return [op for op in ops if results[op.index] is None]


def _code(result: RecordResult) -> RejectCode:
    code = result.code or ""
    if code == "INVALID_CROSS_REFERENCE_KEY":  # the record's own id, or a reference's
        return RejectCode.REFERENCE if result.fields else RejectCode.NOT_FOUND
    if code == "INVALID_FIELD" and "Foreign key external ID" in (result.error or ""):
        return RejectCode.REFERENCE
    return _CODES.get(code, RejectCode.REFUSED)


def _rejected(record_id: str | None, result: RecordResult) -> Done:
    return Done(Outcome.REJECTED, record_id, result.error, _code(result))


def _gone(op: _Op, result: RecordResult) -> Done:
    return Done(
        Outcome.REJECTED,
        op.id,
        f"the record is gone (deleted since the plan): {result.error}",
        RejectCode.NOT_FOUND,
    )


__all__ = ["CONFIRMED", "Done", "Memory", "ObjectWriter"]
