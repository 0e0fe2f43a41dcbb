"""Carrying out a plan's operations on one module: one write call per chunk of operations.

The engine decided every operation (``core/plan.py``); here each becomes an :class:`Op` sent
through the API's batched save (v4_1 ``set_entries`` / v10 ``/bulk``):

* a **create** carries the id the plan chose (the operation key, sent with ``new_with_id``):
  the answer can be matched to the records sent, Sugar's own duplicate check on Contacts does
  not silently swap in another record, and a repeated create is recognised;
* an **update** sends only the fields the plan changes, to the id the match found (v4_1
  answers success for an id that does not exist and creates nothing, so an id is only ever one
  the CRM gave us);
* a **delete** is Sugar's soft delete.

Repeated (``attempt > 1``, after an answer was lost or a run was interrupted), the creates
whose ids exist already are confirmed instead of sent again (Sugar would refuse a second
``new_with_id`` of the same id). Updates and deletes repeat safely as they are.
"""

from __future__ import annotations

import re

from crmbridge.connectors.base import (
    ACTION_COLUMN,
    ID_COLUMN,
    OP_KEY_COLUMN,
    ROW_COLUMN,
    ApplyRequest,
)
from crmbridge.connectors.sugarcrm.api import Api, Op, Saved
from crmbridge.connectors.sugarcrm.lookup import Finder
from crmbridge.connectors.sugarcrm.values import encode
from crmbridge.core.outcomes import Outcome, RejectCode, WriteResult
from crmbridge.core.schema import Field, ObjectSchema
from crmbridge.errors import ConfigError, ErrorContext

#: what Sugar accepts as a record id (char(36))
VALID_ID = re.compile(r"[A-Za-z0-9_.\-]{1,36}")
_INTERNAL = frozenset({ROW_COLUMN, ACTION_COLUMN, ID_COLUMN, OP_KEY_COLUMN})
_OUTCOME = {"create": Outcome.CREATED, "update": Outcome.UPDATED, "delete": Outcome.DELETED}


class ModuleWriter:
    """Carries out operations on one module."""

    def __init__(
        self, api: Api, finder: Finder, *, max_batch_size: int, context: ErrorContext
    ) -> None:
        self.api = api
        self.finder = finder
        self.max_batch_size = max_batch_size
        self.context = context

    @property
    def schema(self) -> ObjectSchema:
        return self.finder.schema

    @property
    def module(self) -> str:
        return self.schema.name

    def apply(self, request: ApplyRequest) -> WriteResult:
        """One outcome per operation of ``request``, in order."""
        ops = request.ops
        names = [n for n in ops.schema.names if n not in _INTERNAL]
        fields = {n: self._writable(n) for n in names}
        actions = ops.column(ACTION_COLUMN).to_pylist()
        ids = ops.column(ID_COLUMN).to_pylist()
        keys = ops.column(OP_KEY_COLUMN).to_pylist()
        records = ops.select(names).to_pylist()
        unset = {n: mask.to_pylist() for n, mask in request.unset.items() if n in fields}
        outcomes: list[tuple[Outcome, str | None, str | None, RejectCode | None]] = []
        todo: list[tuple[int, Op]] = []
        for i, (action, record) in enumerate(zip(actions, records, strict=True)):
            target = keys[i] if action == "create" else ids[i]
            if target is None or not VALID_ID.fullmatch(str(target)):
                outcomes.append(
                    (
                        Outcome.REJECTED,
                        None,
                        f"id {target!r} is not a valid SugarCRM id (up to 36 letters, digits, "
                        "'-', '_' or '.')",
                        RejectCode.INVALID_VALUE,
                    )
                )
                continue
            values = {
                name: encode(value, fields[name], api=self.api.kind)
                for name, value in record.items()
                if name != "id"
                and not (name in unset and unset[name][i])
                and not (action == "create" and value is None)
            }
            outcomes.append((_OUTCOME[action], str(target), None, None))
            todo.append((i, Op(action, str(target), values if action != "delete" else {})))
        if request.attempt > 1:
            todo = self._not_yet_created(todo)
        for start in range(0, len(todo), self.max_batch_size):
            chunk = todo[start : start + self.max_batch_size]
            answers = self.api.save(self.module, [op for _, op in chunk])
            for (i, op), saved in zip(chunk, answers, strict=True):
                outcomes[i] = _result(op, saved)
        return WriteResult.build(
            [o.value for o, _, _, _ in outcomes],
            [t for _, t, _, _ in outcomes],
            [r for _, _, r, _ in outcomes],
            [c.value if c else None for _, _, _, c in outcomes],
        )

    def _not_yet_created(self, todo: list[tuple[int, Op]]) -> list[tuple[int, Op]]:
        """Leave out the creates whose records exist already (an earlier attempt made them)."""
        wanted = [op.id for _, op in todo if op.kind == "create"]
        if not wanted:
            return todo
        found = self.finder.find(["id"], [(i,) for i in wanted])
        existing = {str(v) for v in found.column("id").to_pylist()}
        return [(i, op) for i, op in todo if not (op.kind == "create" and op.id in existing)]

    def _writable(self, name: str) -> Field:
        field = self.schema.field(name, context=self.context)
        related = self.finder.filters.meta.related.get(name)
        if related is not None:
            raise ConfigError(
                f"field {name!r} is a field of the related {related.module} record (link "
                f"{related.link!r}): it can be read, never written",
                context=self.context.merge(field=name),
            )
        if field.read_only and name != "id":
            raise ConfigError(
                f"field {name!r} is maintained by the CRM and cannot be written",
                context=self.context.merge(field=name),
            )
        return field


def _result(op: Op, saved: Saved) -> tuple[Outcome, str | None, str | None, RejectCode | None]:
    if saved.id is None:
        return Outcome.REJECTED, None, saved.error, RejectCode.REFUSED
    return _OUTCOME[op.kind], saved.id, None, None


__all__ = ["VALID_ID", "ModuleWriter"]
