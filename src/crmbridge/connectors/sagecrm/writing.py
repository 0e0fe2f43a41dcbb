"""Carrying out a plan's operations on one entity (``Connector.apply``).

The engine decided every operation (``core/plan.py``); here each becomes an API-level
:class:`~.changes.Create`, :class:`~.changes.Update` or :class:`~.changes.Delete` sent by
:class:`~.changes.ChangeWriter` (SOAP: calls of at most "Maximum number of records to return"
records; REST: one request per record), and each answer one outcome:

* a **create** sends its values that are not null, plus the connection's defaults for what the
  profile leaves unset: the security territory (``secterr``, ``territory``) and the owner
  (``primaryuserid`` / ``assigneduserid``, ``owner``); the server gives the id;
* an **update** sends only the fields the operation sets, to the id the match found (a null
  clears the field);
* a **delete** is the server's soft delete (``xxx_deleted = 1``).

A record the server refuses (a drop-down value it does not list, a missing right of the user,
a record gone) is rejected with the server's reason, never raised.

Sage CRM gives ids itself, so a created record is recognised again by its **match keys**
(``CreateIdentity.KEY``). When a call's answer is lost (:class:`~.robust.OutcomeUnknownError`,
the engine's AmbiguousWriteError) the engine sends the same operations again with
``attempt > 1``. The connector remembers what the earlier attempt answered (:class:`Memory`):
those results stand, operations never sent are sent as the first time, and the operations
whose answer was lost (in a resumed run: all of them) are confirmed: a create whose keys now
find a record is that record (its values are written to it, once: an update), a delete whose
record is gone is deleted, an update is sent again (it sets the same values). A create that
nothing can find again (no match keys) is not sent a second time: it is rejected with a reason
saying it may exist.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from crmbridge.connectors.base import ACTION_COLUMN, ID_COLUMN, OP_KEY_COLUMN, ApplyRequest
from crmbridge.connectors.common.answers import Done, Memory, write_result
from crmbridge.connectors.sagecrm.changes import ChangeWriter, Create, Delete, Operation, Update
from crmbridge.connectors.sagecrm.fields import EntityMeta
from crmbridge.connectors.sagecrm.robust import OutcomeUnknownError
from crmbridge.core import identity
from crmbridge.core.outcomes import Outcome, RejectCode, WriteResult
from crmbridge.core.schema import ROW_COLUMN
from crmbridge.errors import ConfigError, ErrorContext, RetryableError

_INTERNAL = frozenset({ROW_COLUMN, ACTION_COLUMN, ID_COLUMN, OP_KEY_COLUMN})
CONFIRMED = "already created (confirmed: found by its match keys after the answer was lost)"
#: the fields that name a record's owner, by preference
OWNER_FIELDS = ("primaryuserid", "assigneduserid")
TERRITORY_FIELD = "secterr"
#: words of the server's reasons -> the reject code
_CODES = (
    ("does not exist", RejectCode.NOT_FOUND),
    ("invalid", RejectCode.INVALID_VALUE),
    ("required", RejectCode.INVALID_VALUE),
    ("truncated", RejectCode.INVALID_VALUE),
    ("not in its selection list", RejectCode.INVALID_VALUE),
)

#: (keys, rows of key values, fields) -> the live records with those keys (field name ->
#: value, the id under the entity's id field)
Find = Callable[[Sequence[str], Sequence[tuple[Any, ...]]], list[dict[str, Any]]]
#: ids -> those of live records
Live = Callable[[Sequence[int]], set[int]]


@dataclass
class _Op:
    index: int
    action: str
    token: str
    id: int | None
    values: dict[str, Any]
    #: sent before without an answer, or a resumed run: confirm instead of applying twice
    doubt: bool = False
    #: a create in doubt found by its keys: sent as an update of that record
    confirmed: bool = False
    #: the id field's value a create carries (the CRM gives ids: it cannot be honoured)
    given_id: Any = None


class EntityWriter:
    """Carries out operations on one entity (see the module docstring)."""

    def __init__(
        self,
        changes: ChangeWriter,
        *,
        find: Find,
        live: Live,
        memory: Memory,
        territory: int | None,
        owner: int | None,
        context: ErrorContext,
    ) -> None:
        self.changes = changes
        self.find = find
        self.live = live
        self.memory = memory
        self.territory = territory
        self.owner = owner
        self.context = context

    @property
    def meta(self) -> EntityMeta:
        return self.changes.meta

    def apply(self, request: ApplyRequest) -> WriteResult:
        """One outcome per operation of ``request``, in order."""
        names = [n for n in request.ops.schema.names if n not in _INTERNAL]
        self._check_fields(names)
        ops = self._ops(request, names)
        results: list[Done | None] = [None] * len(ops)
        memory = self.memory
        if request.attempt == 1:
            memory.start(self.meta.name, [op.token for op in ops])
        elif memory.object != self.meta.name:
            memory.start(self.meta.name, [])  # nothing known: every operation is in doubt
        for op in ops:
            results[op.index] = memory.known.get(op.token)
            op.doubt = request.attempt > 1 and op.token not in memory.unsent
        todo = [op for op in ops if results[op.index] is None]
        todo = self._refuse(todo, results)
        todo = self._confirm(todo, list(request.keys), results)
        order = {"create": 0, "update": 1, "delete": 2}
        todo.sort(key=lambda op: (order[op.action], op.index))
        self._send(todo, results)
        return write_result(results)

    # -- preparing ------------------------------------------------------------------------
    def _check_fields(self, names: Sequence[str]) -> None:
        schema = self.meta.schema
        for name in names:
            found = schema.field(name, context=self.context)
            if found.read_only and name != self.meta.id_field:
                raise ConfigError(
                    f"field {name!r} is set by the CRM and cannot be written",
                    context=self.context.merge(field=name),
                )

    def _ops(self, request: ApplyRequest, names: list[str]) -> list[_Op]:
        ops = request.ops
        records = ops.select(names).to_pylist()
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
                if name != self.meta.id_field
                and not (name in unset and unset[name][i])
                and not (action == "create" and value is None)
            }
            if action == "create":
                values = self._defaults(values)
            token = f"{rows[i]}\x1f{keys[i]}\x1f{action}"
            op = _Op(i, action, token, _record_id(ids[i]), values)
            op.given_id = record.get(self.meta.id_field)
            out.append(op)
        return out

    def _defaults(self, values: dict[str, Any]) -> dict[str, Any]:
        """A create's values with the connection's territory and owner where unset."""
        schema = self.meta.schema
        out = dict(values)
        if self.territory is not None and schema.has(TERRITORY_FIELD):
            out.setdefault(TERRITORY_FIELD, self.territory)
        owner = next((n for n in OWNER_FIELDS if schema.has(n)), None)
        if self.owner is not None and owner is not None:
            out.setdefault(owner, self.owner)
        return out

    def _refuse(self, ops: list[_Op], results: list[Done | None]) -> list[_Op]:
        kept = []
        for op in ops:
            if op.action == "create" and op.given_id is not None:
                results[op.index] = Done(
                    Outcome.REJECTED,
                    reason=f"Sage CRM gives record ids: no {self.meta.name} record has the "
                    f"{self.meta.id_field} {op.given_id!r}, and none can be created with it",
                    code=RejectCode.NOT_FOUND,
                )
            elif op.action != "create" and op.id is None:
                results[op.index] = Done(
                    Outcome.REJECTED,
                    reason=f"the {self.meta.name} record to {op.action} is not known (its "
                    "create failed, or its id is not a Sage CRM id)",
                    code=RejectCode.NOT_FOUND,
                )
            else:
                kept.append(op)
        return kept

    def _confirm(self, ops: list[_Op], keys: list[str], results: list[Done | None]) -> list[_Op]:
        """The operations in doubt settled as far as reading can: creates found by their
        keys become updates of what was found, deletes of records gone are done."""
        deletes = [op for op in ops if op.doubt and op.action == "delete"]
        if deletes:
            alive = self.live([op.id for op in deletes if op.id is not None])
            for op in deletes:
                if op.id not in alive:
                    results[op.index] = Done(Outcome.DELETED, str(op.id))
        creates = [op for op in ops if op.doubt and op.action == "create"]
        if creates and not keys:
            for op in creates:
                results[op.index] = Done(
                    Outcome.REJECTED,
                    reason=f"the answer to this create was lost, so the {self.meta.name} "
                    "record may exist; it is not sent again, as nothing could tell it from a "
                    "new one (give the profile match keys)",
                    code=RejectCode.REFUSED,
                )
        elif creates:
            rows = [tuple(op.values.get(k) for k in keys) for op in creates]
            found = self.find(keys, [r for r in rows if all(v is not None for v in r)])
            # key equality as everywhere: core/identity under the fields' key rules
            schema = self.meta.schema
            rules = {k: schema.field(k).key_rule for k in keys}
            arrow = schema.select(list(keys)).arrow_schema()
            wanted = pa.Table.from_pylist([dict(zip(keys, r, strict=True)) for r in rows], arrow)
            there = pa.Table.from_pylist([{k: r.get(k) for k in keys} for r in found], arrow)
            at = identity.positions(
                identity.encode(wanted, keys, rules), identity.encode(there, keys, rules)
            ).to_pylist()
            for op, index in zip(creates, at, strict=True):
                if index is not None:
                    op.id = int(found[index][self.meta.id_field])
                    op.confirmed = True
        return [op for op in ops if results[op.index] is None]

    # -- sending --------------------------------------------------------------------------
    def _send(self, ops: list[_Op], results: list[Done | None]) -> None:
        operations: list[Operation] = []
        for op in ops:
            if op.action == "create" and not op.confirmed:
                operations.append(Create(op.values))
            elif op.action in ("create", "update"):
                assert op.id is not None
                operations.append(Update(op.id, op.values))
            else:
                assert op.id is not None
                operations.append(Delete(op.id))
        self.memory.unsent -= {op.token for op in ops}
        try:
            answers = self.changes.apply(operations)
        except (OutcomeUnknownError, RetryableError) as err:
            # what was answered stands; what a RetryableError stopped was never applied
            lost = set(err.unknown) if isinstance(err, OutcomeUnknownError) else set()
            answered = self.changes.done
            for n, op in enumerate(ops):
                answer = answered[n] if n < len(answered) else None
                if answer is not None:
                    self.memory.known[op.token] = _done(op, answer.ok, answer.id, answer.reason)
                elif n not in lost:
                    self.memory.unsent.add(op.token)
            raise
        for op, answer in zip(ops, answers, strict=True):
            done = _done(op, answer.ok, answer.id, answer.reason)
            results[op.index] = done
            self.memory.known[op.token] = done


def _done(op: _Op, ok: bool, record_id: int | None, reason: str | None) -> Done:
    if not ok:
        return Done(Outcome.REJECTED, None, reason, _code(reason or ""))
    shown = str(record_id if record_id is not None else op.id)
    if op.action == "create":
        return Done(Outcome.CREATED, shown, CONFIRMED if op.confirmed else None)
    return Done(Outcome.UPDATED if op.action == "update" else Outcome.DELETED, shown)


def _code(reason: str) -> RejectCode:
    text = reason.lower()
    return next((code for word, code in _CODES if word in text), RejectCode.REFUSED)


def _record_id(value: Any) -> int | None:
    try:
        return int(str(value)) if value is not None else None
    except ValueError:
        return None


def key_rows(batch: pa.RecordBatch, names: Sequence[str]) -> list[tuple[Any, ...]]:
    """The rows of ``names`` in ``batch`` that have every key value."""
    columns = [batch.column(n).to_pylist() for n in names]
    return [r for r in zip(*columns, strict=True) if all(v is not None for v in r)]


__all__ = ["CONFIRMED", "Done", "EntityWriter", "Memory", "key_rows"]
