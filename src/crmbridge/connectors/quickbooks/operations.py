"""API-level writes: create, sparse update, delete (transactions) and deactivate (list
entities) through the batch endpoint, with one outcome per operation.

This is the layer a write contract sits on; it knows nothing of Arrow batches or write modes.

* Operations go out ``batch_size`` (30) at a time, each batch call with its own
  ``requestid``: the transport retries a call whose answer was lost (timeout, dropped
  connection, 5xx, 429) with the *same* requestid, so QuickBooks does not apply it twice.
  ``new_request_id`` chooses it (the write contract keeps it across repeats of a call:
  :mod:`.applying`).
* An update is sparse (``"sparse": true``: only the fields given change) and carries the
  current SyncToken; a delete or deactivation too. When none is given, the current object is
  read first (one query for the whole batch). QuickBooks replaces a nested object
  (``BillAddr``) of a sparse update whole, so its parts not given are sent as they were read.
* A stale SyncToken (5010) means the object changed since it was read: it is read again,
  the same change applied on the fresh SyncToken and sent again (a new requestid: it is a
  new request), ``stale_retries`` times at most.
* Every other fault of an item is that operation's error (6240 duplicate name, 610 not found
  or inactive, 2020/2050/2170/2500 validation, 6000 business rule ...); the batch goes on.
* List entities (Customer, Item) cannot be deleted: ``delete`` makes them inactive
  (``Active: false``), which is what QuickBooks offers instead. So an update of an inactive
  one is refused (610) unless it makes it active again (``Active: true``).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from crmbridge.connectors.quickbooks.catalog import EntityDef
from crmbridge.connectors.quickbooks.query import Cond, select
from crmbridge.connectors.quickbooks.transport import FaultError, Transport, parse_fault
from crmbridge.connectors.quickbooks.values import to_object
from crmbridge.errors import ErrorContext

Kind = Literal["create", "update", "delete", "deactivate"]
STALE = "5010"
_REASONS = {
    "6240": "duplicate name: another customer, vendor or employee already uses it",
    "610": "not found, deleted or inactive",
    "5010": "the object kept changing while it was written (stale SyncToken)",
}


@dataclass(frozen=True)
class Operation:
    kind: Kind
    #: field name (catalog names, e.g. ``BillAddr_City``) -> value; for create and update
    values: Mapping[str, Any] = field(default_factory=dict)
    #: the object's Id (update, delete, deactivate)
    id: str | None = None
    #: the SyncToken the change is based on; None: the current one is read first
    sync_token: str | None = None
    #: a stable key of the operation (the plan's operation key): part of the requestid
    key: str | None = None


@dataclass(frozen=True)
class OperationResult:
    ok: bool
    id: str | None = None
    sync_token: str | None = None
    #: the object as QuickBooks answered it (a delete: ``{"Id", "status": "Deleted"}``)
    object: Mapping[str, Any] | None = None
    #: why it failed (for a rejected record), with the QuickBooks code
    reason: str | None = None
    code: str | None = None
    #: batch calls it took (1, or more after stale SyncTokens)
    attempts: int = 1


#: namespace of the content keys of batch calls (uuid5)
CALL_NAMESPACE = uuid.UUID("0f6f2c4e-6a57-4d1e-8f0c-3b1b2f6f5d21")


def call_key(where: str, items: Sequence[Mapping[str, Any]], keys: Sequence[str | None]) -> str:
    """What a batch call sends, as one key: the same items (objects, SyncTokens) with the
    same operation keys give the same one."""
    text = json.dumps([where, list(items), list(keys)], sort_keys=True, default=str)
    return str(uuid.uuid5(CALL_NAMESPACE, text))


class Operations:
    """Applies operations to one entity. ``new_request_id(items, keys)`` gives the
    requestid of a batch call from its items and operation keys (default: a new one per
    call, kept across the transport's retries of it)."""

    def __init__(
        self,
        transport: Transport,
        entity: EntityDef,
        *,
        batch_size: int,
        stale_retries: int,
        context: ErrorContext,
        new_request_id: Callable[[Sequence[Mapping[str, Any]], Sequence[str | None]], str]
        | None = None,
    ) -> None:
        self.transport = transport
        self.entity = entity
        self.batch_size = batch_size
        self.stale_retries = stale_retries
        self.context = context
        self.new_request_id = new_request_id or (lambda items, keys: uuid.uuid4().hex)
        self._specs = {s.name: s for s in entity.specs}
        #: the objects as last read for their SyncTokens (Id -> object)
        self._current: dict[str, Mapping[str, Any]] = {}

    def apply(self, operations: Sequence[Operation]) -> list[OperationResult]:
        """One result per operation, in order."""
        results: list[OperationResult | None] = [None] * len(operations)
        todo: dict[int, Operation] = {}
        for n, op in enumerate(operations):
            problem = self._problem(op)
            if problem:
                results[n] = OperationResult(False, op.id, reason=problem)
            else:
                todo[n] = self._normalise(op)
        attempt = 0
        while todo:
            attempt += 1
            self._fill_sync_tokens(todo, results)
            answers = self._send({n: op for n, op in todo.items() if results[n] is None})
            again: dict[int, Operation] = {}
            for n, answer in answers.items():
                op = todo[n]
                if isinstance(answer, list):  # the item's fault
                    codes = {e.code for e in answer}
                    if STALE in codes and attempt <= self.stale_retries:
                        again[n] = replace(op, sync_token=None)
                        continue
                    results[n] = _failure(op, answer, attempt)
                else:
                    results[n] = OperationResult(
                        True,
                        str(answer.get("Id")),
                        answer.get("SyncToken"),
                        answer,
                        attempts=attempt,
                    )
            todo = again
        return [r if r is not None else OperationResult(False, reason="not sent") for r in results]

    # -- parts ------------------------------------------------------------------------
    def _problem(self, op: Operation) -> str | None:
        if op.kind == "deactivate" and not self.entity.is_list:
            return f"a {self.entity.name} is deleted, not made inactive"
        if op.kind != "create" and not op.id:
            return f"{op.kind} needs the Id of the {self.entity.name}"
        for name in op.values:
            spec = self._specs.get(name)
            if spec is None:
                return f"{self.entity.name} has no field {name!r}"
            if spec.read_only:
                return f"{name!r} is read-only"
        return None

    def _normalise(self, op: Operation) -> Operation:
        if op.kind == "delete" and self.entity.is_list:
            return replace(op, kind="deactivate")
        return op

    def _fill_sync_tokens(
        self, todo: dict[int, Operation], results: list[OperationResult | None]
    ) -> None:
        """Read the current SyncToken of the operations that have none."""
        wanted = sorted(
            {op.id for op in todo.values() if op.kind != "create" and not op.sync_token and op.id}
        )
        if not wanted:
            return
        current: dict[str, str] = {}
        inactive: set[str] = set()
        self._current.clear()
        name = self.entity.name
        for start in range(0, len(wanted), 1000):
            ids = tuple(wanted[start : start + 1000])
            conds = [Cond("Id", "in" if len(ids) > 1 else "=", ids)]
            if self.entity.is_list:
                conds.append(Cond("Active", "in", (True, False)))
            answer = self.transport.call(
                "GET",
                "query",
                what=f"read {name} SyncTokens",
                object=name,
                params={"query": select(name, conds, max_results=1000)},
            )
            for obj in answer.get("QueryResponse", {}).get(name) or []:
                current[str(obj["Id"])] = str(obj["SyncToken"])
                self._current[str(obj["Id"])] = obj
                if obj.get("Active") is False:
                    inactive.add(str(obj["Id"]))
        for n, op in list(todo.items()):
            if op.kind == "create" or op.sync_token is not None:
                continue
            token = current.get(str(op.id))
            asleep = str(op.id) in inactive and op.values.get("Active") is not True
            if token is not None and op.kind == "update" and asleep:  # "deleted" in QuickBooks
                results[n] = OperationResult(
                    False, op.id, reason=f"the {name} {op.id} is inactive (610)", code="610"
                )
                del todo[n]
            elif token is None:
                results[n] = OperationResult(
                    False, op.id, reason=f"no {name} with Id {op.id} (610 not found)", code="610"
                )
                del todo[n]
            else:
                todo[n] = replace(op, sync_token=token)

    def _body(self, op: Operation) -> dict[str, Any]:
        if op.kind == "create":
            return to_object(op.values, self._specs)
        body: dict[str, Any] = {"Id": op.id, "SyncToken": op.sync_token}
        if op.kind == "update":
            given = to_object(op.values, self._specs)
            body.update(_merged(given, self._current.get(str(op.id), {})), sparse=True)
        elif op.kind == "deactivate":
            body.update(Active=False, sparse=True)
        return body

    def _send(self, ops: Mapping[int, Operation]) -> dict[int, dict[str, Any] | list[FaultError]]:
        """Each operation's answer: the object, or its fault entries."""
        out: dict[int, dict[str, Any] | list[FaultError]] = {}
        order = list(ops)
        name = self.entity.name
        for start in range(0, len(order), self.batch_size):
            chunk = order[start : start + self.batch_size]
            items = []
            for n in chunk:
                op = ops[n]
                verb = "update" if op.kind == "deactivate" else op.kind
                items.append({"bId": str(n), "operation": verb, name: self._body(op)})
            answer = self.transport.call(
                "POST",
                "batch",
                what=f"batch of {len(items)} {name} operations",
                object=name,
                params={"requestid": self.new_request_id(items, [ops[n].key for n in chunk])},
                json={"BatchItemRequest": items},
            )
            by_bid = {str(i.get("bId")): i for i in answer.get("BatchItemResponse") or []}
            for n in chunk:
                item = by_bid.get(str(n))
                if item is None:
                    out[n] = [FaultError("", "no answer", "QuickBooks did not answer this item")]
                elif "Fault" in item:
                    out[n] = parse_fault(item) or [FaultError("", "fault", str(item["Fault"]))]
                else:
                    out[n] = dict(item.get(name) or {})
        return out


def _merged(given: Mapping[str, Any], current: Mapping[str, Any]) -> dict[str, Any]:
    """``given`` with each nested object (``BillAddr``) completed from ``current``: a sparse
    update replaces a nested object whole, so the parts not given must be sent as they are.
    References (``CustomerRef``) are sent as given."""
    out = dict(given)
    for key, value in given.items():
        now = current.get(key)
        if isinstance(value, dict) and isinstance(now, Mapping) and not key.endswith("Ref"):
            out[key] = {**now, **_merged(value, now)}
    return out


def _failure(op: Operation, errors: list[FaultError], attempts: int) -> OperationResult:
    first = errors[0]
    known = _REASONS.get(first.code)
    detail = "; ".join(e.describe() for e in errors)
    reason = f"{known} ({detail})" if known else detail
    return OperationResult(False, op.id, reason=reason, code=first.code, attempts=attempts)
