"""Carrying out a plan's operations on one entity (``apply``), through :mod:`.operations`.

The engine decided every operation (``core/plan.py``); here each becomes a batch item:

* a **create** sends its values that are not null (QuickBooks fills in its defaults);
* an **update** is sparse: only the fields the operation sets (``ApplyRequest.unset``), on
  the record's current SyncToken (a stale one is read again and the change re-applied);
* a **delete** deletes a transaction and makes a customer or item inactive (``Active:
  false``): QuickBooks never deletes list entities.

Deletes, updates and creates go in separate batch calls, each with its own ``requestid``.

**Repeated** (``attempt > 1``). When the engine repeats a call whose answer was lost, the
connector remembers the requestids of the first attempt (:class:`RequestIds`, by what each
batch call sends): the same calls go out with the same requestids, and QuickBooks answers
what it answered the first time without applying anything again. A later run, even with
the same values, gets new requestids, so what QuickBooks refused once (a duplicate name
since renamed, an inactive item made active again) is tried afresh.

In a resumed run (the process that sent the calls is gone, so are its requestids), what is
found done is confirmed instead: a create whose record the match keys find holding its
values is ``created`` ("already created (confirmed)"), the other creates are sent; a create
without match keys is not sent again (nothing could tell its record from a new one: it is
rejected saying it may exist); a delete whose record is gone (610) is ``deleted``; an update
is sent again (it sets the same values).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from crmbridge.connectors.base import ACTION_COLUMN, ID_COLUMN, OP_KEY_COLUMN, ApplyRequest
from crmbridge.connectors.common.answers import Done, write_result
from crmbridge.connectors.quickbooks.catalog import EntityDef
from crmbridge.connectors.quickbooks.lines import LineError, to_lines
from crmbridge.connectors.quickbooks.matching import Finder, stored_form
from crmbridge.connectors.quickbooks.operations import (
    Operation,
    OperationResult,
    Operations,
    call_key,
)
from crmbridge.core import identity
from crmbridge.core.outcomes import Outcome, RejectCode, WriteResult
from crmbridge.core.schema import ROW_COLUMN
from crmbridge.errors import ConfigError, ErrorContext

_INTERNAL = frozenset({ROW_COLUMN, ACTION_COLUMN, ID_COLUMN, OP_KEY_COLUMN})
CONFIRMED = "already created (confirmed)"

#: QuickBooks error code -> why the record was rejected
_CODES = {
    "6240": RejectCode.DUPLICATE_KEY,
    "6210": RejectCode.DUPLICATE_KEY,
    "610": RejectCode.NOT_FOUND,
    "2500": RejectCode.REFERENCE,
    "5010": RejectCode.STALE,
    "2010": RejectCode.INVALID_VALUE,
    "2020": RejectCode.INVALID_VALUE,
    "2050": RejectCode.INVALID_VALUE,
    "2170": RejectCode.INVALID_VALUE,
    "6070": RejectCode.INVALID_VALUE,
}


@dataclass
class RequestIds:
    """The requestids of the calls of the latest request (one per connection: the engine
    repeats a request before it sends the next), by what each call sends."""

    where: str = ""
    ids: dict[str, str] = field(default_factory=dict)

    def start(self, where: str, attempt: int) -> bool:
        """Begin an apply; whether this connection made the earlier attempts (so knows the
        requestids of every call they sent), not a run that has stopped."""
        if attempt == 1:
            self.where, self.ids = where, {}
            return False
        if where != self.where:
            self.where, self.ids = "", {}
            return False
        return True

    def __call__(self, items: Sequence[Mapping[str, Any]], keys: Sequence[str | None]) -> str:
        key = call_key(self.where, items, keys)
        return self.ids.setdefault(key, uuid.uuid4().hex)


@dataclass
class _Op:
    index: int
    action: str
    id: str | None
    key: str | None
    values: dict[str, Any]


class ObjectWriter:
    """Carries out operations on one entity (see the module docstring)."""

    def __init__(
        self,
        operations: Operations,
        finder: Finder,
        entity: EntityDef,
        context: ErrorContext,
        request_ids: RequestIds,
    ) -> None:
        self.operations = operations
        self.request_ids = request_ids
        operations.new_request_id = request_ids
        self.finder = finder
        self.entity = entity
        self.context = context

    def apply(self, request: ApplyRequest) -> WriteResult:
        names = [n for n in request.ops.schema.names if n not in _INTERNAL]
        self._check_fields(names)
        ops = self._ops(request, names)
        results: list[Done | None] = [None] * len(ops)
        todo = self._refuse(ops, results)
        doubt = request.attempt > 1
        where = f"{self.operations.transport.settings.realm_id}/{self.entity.name}"
        known = self.request_ids.start(where, request.attempt)
        creates = [op for op in todo if op.action == "create"]
        if doubt and not known and creates:  # a resumed run: confirm what is done
            creates = self._confirm_by_keys(creates, list(request.keys), results)
        self._send([op for op in todo if op.action == "delete"], results, doubt)
        self._send([op for op in todo if op.action == "update"], results, doubt)
        self._send(creates, results, doubt)
        return write_result(results)

    # -- preparing ------------------------------------------------------------------------
    def _check_fields(self, names: Sequence[str]) -> None:
        schema = self.entity.schema
        for name in names:
            found = schema.field(name, context=self.context)
            if found.read_only and name != "Id":
                raise ConfigError(
                    f"field {name!r} is kept by QuickBooks and cannot be written",
                    context=self.context.merge(field=name),
                )

    def _ops(self, request: ApplyRequest, names: list[str]) -> list[_Op]:
        ops = request.ops
        records = ops.select(names).to_pylist()
        actions = ops.column(ACTION_COLUMN).to_pylist()
        ids = ops.column(ID_COLUMN).to_pylist()
        keys = ops.column(OP_KEY_COLUMN).to_pylist()
        unset = {n: m.to_pylist() for n, m in request.unset.items() if n in names}
        out = []
        for i, record in enumerate(records):
            action = str(actions[i])
            values = {
                name: value
                for name, value in record.items()
                if not (name in unset and unset[name][i])
                and not (action == "create" and value is None)
                and not (action != "create" and name == "Id")
            }
            out.append(_Op(i, action, ids[i], keys[i], values))
        return out

    def _refuse(self, ops: list[_Op], results: list[Done | None]) -> list[_Op]:
        """Leave out (rejected) what QuickBooks cannot do whatever it is sent."""
        kept = []
        name = self.entity.name
        for op in ops:
            problem = None
            if op.action == "create" and op.values.get("Id") is not None:
                problem = Done(
                    Outcome.REJECTED,
                    reason=f"QuickBooks makes the ids: no {name} has the Id "
                    f"{op.values['Id']!r}, and none can be created with it",
                    code=RejectCode.NOT_FOUND,
                )
            elif op.action != "create" and op.id is None:
                problem = Done(
                    Outcome.REJECTED,
                    reason=f"the {name} to {op.action} is not known (its create failed)",
                    code=RejectCode.NOT_FOUND,
                )
            elif "Line" in op.values and op.values["Line"] is not None:
                try:
                    to_lines(op.values["Line"])
                except LineError as err:
                    problem = Done(Outcome.REJECTED, op.id, str(err), RejectCode.INVALID_VALUE)
            if problem is None:
                op.values.pop("Id", None)
                kept.append(op)
            else:
                results[op.index] = problem
        return kept

    # -- sending --------------------------------------------------------------------------
    def _send(self, ops: list[_Op], results: list[Done | None], doubt: bool) -> None:
        if not ops:
            return
        sent = [
            Operation("create", op.values, key=op.key)
            if op.action == "create"
            else Operation("update", op.values, op.id, key=op.key)
            if op.action == "update"
            else Operation("delete", id=op.id, key=op.key)
            for op in ops
        ]
        for op, result in zip(ops, self.operations.apply(sent), strict=True):
            results[op.index] = self._decide(op, result, doubt)

    def _decide(self, op: _Op, result: OperationResult, doubt: bool) -> Done:
        outcome = {"create": Outcome.CREATED, "update": Outcome.UPDATED}.get(
            op.action, Outcome.DELETED
        )
        if result.ok:
            return Done(outcome, result.id or op.id)
        code = _CODES.get(result.code or "", RejectCode.REFUSED)
        if code is RejectCode.NOT_FOUND and op.action == "delete" and doubt:
            return Done(Outcome.DELETED, op.id)  # gone: the earlier attempt deleted it
        if code is RejectCode.NOT_FOUND and op.action != "create":
            reason = f"the {self.entity.name} is gone (deleted or made inactive since the plan)"
            return Done(Outcome.REJECTED, op.id, f"{reason}: {result.reason}", code)
        if result.code == "610" and op.action == "create":
            code = RejectCode.REFERENCE  # an inactive customer or item referred to
        return Done(Outcome.REJECTED, op.id, result.reason, code)

    def _confirm_by_keys(
        self, ops: list[_Op], keys: list[str], results: list[Done | None]
    ) -> list[_Op]:
        """The creates whose records are found by their match keys holding their values:
        confirmed (or rejected when another record holds the keys); the others to send.
        Without match keys none can be told from a new record: rejected, not sent again."""
        if not keys:
            for op in ops:
                results[op.index] = Done(
                    Outcome.REJECTED,
                    reason=f"this create was sent by a run that stopped before its answer, so "
                    f"the {self.entity.name} may exist; it is not sent again, as nothing could "
                    "tell it from a new one (give the profile match keys)",
                    code=RejectCode.REFUSED,
                )
            return []
        schema = self.entity.schema
        rules = {k: schema.field(k).key_rule for k in keys}
        proposed = pa.Table.from_pylist(
            [op.values for op in ops],
            schema=schema.select(
                list(dict.fromkeys(n for op in ops for n in op.values))
            ).arrow_schema(),
        )
        if any(k not in proposed.column_names for k in keys):
            return ops
        shown = stored_form(proposed.combine_chunks().to_batches()[0]).to_pylist()
        fields = [n for n in proposed.column_names if n not in keys]
        found = self.finder.find(keys, proposed, rules, fields)
        there: dict[str | None, list[dict[str, Any]]] = {}
        candidates = found.to_pylist()
        identities = identity.encode(found, keys, rules).to_pylist()
        for row, key in zip(candidates, identities, strict=True):
            there.setdefault(key, []).append(row)
        left = []
        wanted = identity.encode(proposed, keys, rules).to_pylist()
        for op, key, values in zip(ops, wanted, shown, strict=True):
            same = there.get(key, []) if key is not None else []
            holding = [
                c for c in same if all(c.get(n) == values[n] for n in fields if n in op.values)
            ]
            if holding:
                results[op.index] = Done(Outcome.CREATED, holding[0][ID_COLUMN], CONFIRMED)
            elif same:
                results[op.index] = Done(
                    Outcome.REJECTED,
                    same[0][ID_COLUMN],
                    f"a {self.entity.name} with the same {', '.join(keys)} exists (created "
                    "since the plan)",
                    RejectCode.DUPLICATE_KEY,
                )
            else:
                left.append(op)
        return left


__all__ = ["CONFIRMED", "Done", "ObjectWriter", "RequestIds"]
