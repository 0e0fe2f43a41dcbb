"""Writes at the level of the API: a list of operations in, one result per operation out.

An operation creates a record, updates one by id, or soft-deletes one by id (the server sets
``xxx_deleted = 1``). Values are keyed by the user's field names; a company's or person's
flattened child fields (``address.city``, ``phone.business``, ``email.business``) are sent as
nested children over SOAP (REST refuses them).

SOAP sends consecutive operations of one kind in calls of at most ``limit`` records (the
server's "Maximum number of records to return"). Such a call is all or nothing: when the
server refuses it naming a record ("Record 2: ..."), that operation is rejected and the call
is sent again without it; when it names none, the operations are sent one by one. REST sends
one request per operation. A call whose outcome cannot be known raises
:class:`~.robust.OutcomeUnknownError` naming the operations concerned, after the results
known so far (``done``, also kept in :attr:`ChangeWriter.done` when a call failed without
being applied: a RetryableError).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from crmbridge.connectors.sagecrm.fields import EntityMeta, short_name
from crmbridge.connectors.sagecrm.rest import RefusedError, RestApi
from crmbridge.connectors.sagecrm.robust import OutcomeUnknownError, record_position
from crmbridge.connectors.sagecrm.soap import FaultError, SoapApi
from crmbridge.connectors.sagecrm.values import to_wire
from crmbridge.errors import ConfigError, ErrorContext


@dataclass(frozen=True)
class Create:
    values: Mapping[str, Any]


@dataclass(frozen=True)
class Update:
    id: int
    values: Mapping[str, Any]


@dataclass(frozen=True)
class Delete:
    id: int


Operation = Create | Update | Delete


@dataclass(frozen=True)
class OpResult:
    """What became of one operation: ``ok`` with the record's id, or the server's reason."""

    ok: bool
    id: int | None = None
    reason: str | None = None


@dataclass
class _Batch:
    kind: type
    items: list[tuple[int, Operation]] = field(default_factory=list)


class _RefusalError(Exception):
    """A whole call was refused; ``position`` (1-based) names the record when known."""

    def __init__(self, reason: str, position: int | None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.position = position


class ChangeWriter:
    """Applies operations to one entity through either API."""

    def __init__(
        self, api: SoapApi | RestApi, meta: EntityMeta, *, limit: int, context: ErrorContext
    ) -> None:
        self.api = api
        self.meta = meta
        self.limit = max(1, limit)
        self.context = context.merge(object=meta.name)
        #: the results of the last ``apply`` so far (None: not sent, or its answer lost)
        self.done: list[OpResult | None] = []

    def apply(self, operations: Sequence[Operation]) -> list[OpResult]:
        """One result per operation, in order."""
        results: list[OpResult | None] = [None] * len(operations)
        self.done = results
        for op in operations:
            self._check(op)
        batches: list[_Batch] = []
        for n, op in enumerate(operations):
            if not batches or batches[-1].kind is not type(op):
                batches.append(_Batch(type(op)))
            batches[-1].items.append((n, op))
        try:
            for batch in batches:
                self._run(batch.items, results)
        except OutcomeUnknownError as err:
            err.done = list(results)
            raise
        return [r if r is not None else OpResult(False, reason="not sent") for r in results]

    def _check(self, op: Operation) -> None:
        if isinstance(op, Delete):
            return
        for name in op.values:
            if not self.meta.schema.has(name):
                self.meta.schema.field(name, context=self.context)  # raises, suggesting names
            if name in self.meta.children and isinstance(self.api, RestApi):
                raise ConfigError(
                    f"field {name!r} (a child record) can be written over SOAP only",
                    context=self.context.merge(field=name),
                )
            if name in self.meta.children and self.meta.children[name].kind == "person":
                raise ConfigError(
                    f"field {name!r} belongs to the company's person: write the person itself",
                    context=self.context.merge(field=name),
                )

    def _run(self, items: list[tuple[int, Operation]], results: list[OpResult | None]) -> None:
        pending = list(items)
        one_by_one = isinstance(self.api, RestApi)
        while pending:
            chunk = pending[:1] if one_by_one else pending[: self.limit]
            try:
                ids = self._send([op for _, op in chunk])
            except _RefusalError as refusal:
                if len(chunk) == 1:
                    results[chunk[0][0]] = OpResult(False, reason=refusal.reason)
                    pending = pending[1:]
                elif refusal.position is not None and 1 <= refusal.position <= len(chunk):
                    index, _ = chunk[refusal.position - 1]
                    results[index] = OpResult(False, reason=refusal.reason)
                    pending = [p for p in pending if p[0] != index]
                else:
                    one_by_one = True
                continue
            except OutcomeUnknownError as err:
                err.unknown = tuple(n for n, _ in chunk)
                raise
            for (index, _), record_id in zip(chunk, ids, strict=True):
                results[index] = OpResult(True, id=record_id)
            pending = pending[len(chunk) :]

    # -- one call ---------------------------------------------------------------------------
    def _send(self, ops: list[Operation]) -> list[int]:
        if isinstance(self.api, SoapApi):
            return self._soap(self.api, ops)
        return self._rest(self.api, ops[0])

    def _soap(self, api: SoapApi, ops: list[Operation]) -> list[int]:
        entity = self.meta.name
        try:
            if isinstance(ops[0], Create):
                return api.add(entity, [self._typed(op) for op in ops])  # type: ignore[arg-type]
            if isinstance(ops[0], Update):
                api.update(entity, [self._typed(op) for op in ops])  # type: ignore[arg-type]
                return [op.id for op in ops]  # type: ignore[union-attr]
            api.delete(entity, [op.id for op in ops])  # type: ignore[union-attr]
            return [op.id for op in ops]  # type: ignore[union-attr]
        except FaultError as fault:
            found = record_position(fault.message)
            if found is None:
                if "not web service enabled" in fault.message.lower():
                    raise api.failed(fault, "write", entity) from None
                raise _RefusalError(fault.message, None) from None
            raise _RefusalError(found[1], found[0]) from None

    def _typed(self, op: Create | Update) -> dict[str, Any]:
        """The op's values by unprefixed name, child fields nested by kind and type."""
        zone = self.api.settings.answer_zone
        values: dict[str, Any] = {}
        nested: dict[tuple[str, str], dict[str, Any]] = {}
        for name, value in op.values.items():
            field = self.meta.schema.field(name)
            child = self.meta.children.get(name)
            wire = to_wire(value, field, zone)
            if child is None:
                values[name] = wire
                continue
            kind_type = child.type or "Business"
            nested.setdefault((child.kind, kind_type), {"type": kind_type})[
                short_name(child.column)
            ] = wire
        for (kind, _), child_values in nested.items():
            values.setdefault(kind, []).append(child_values)
        if isinstance(op, Update):
            values[self.meta.id_field] = op.id
        return values

    def _rest(self, api: RestApi, op: Operation) -> list[int]:
        entity = self.meta.name
        try:
            if isinstance(op, Delete):
                api.delete(entity, op.id)
                return [op.id]
            zone = api.settings.answer_zone
            body = {}
            for name, value in op.values.items():
                column = self.meta.columns[name]
                wire = to_wire(value, self.meta.schema.field(name), zone)
                body[column] = wire.isoformat() if hasattr(wire, "isoformat") else _json(wire)
            if isinstance(op, Create):
                return [api.create(entity, body)]
            api.update(entity, op.id, body)
            return [op.id]
        except RefusedError as refused:
            if "not web service enabled" in refused.message.lower():
                raise api.failed(refused, "write", entity) from None
            raise _RefusalError(refused.message, None) from None


def _json(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    return value
