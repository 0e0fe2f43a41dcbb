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
whose ids exist already and the deletes whose records are gone are confirmed instead of sent
again (Sugar would refuse a second ``new_with_id`` of the same id, and v10 answers 404 to
deleting a deleted record). Updates repeat safely as they are.

Two answers are not taken at their word (:meth:`ModuleWriter._settled`,
:meth:`ModuleWriter._stored`):

* an HTTP 5xx to one operation of a ``/bulk`` call leaves open whether it was applied
  (SuiteCRM answers 500 to deleting a Lead that has Notes after deleting it): the record is
  read, and a create found or a delete whose record is gone counts as done;
* SuiteCRM saves a record without an e-mail address it refuses and reports success: after
  each write call the addresses sent are read back, a record without its address is rejected
  (and deleted again when it was just created, so a later run does not create it twice).
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
from crmbridge.connectors.sugarcrm.discovery import EMAIL_FIELDS
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
            todo = self._not_yet_applied(todo)
        for start in range(0, len(todo), self.max_batch_size):
            chunk = todo[start : start + self.max_batch_size]
            sent = [op for _, op in chunk]
            answers = self._stored(sent, self._settled(sent, self.api.save(self.module, sent)))
            for (i, op), saved in zip(chunk, answers, strict=True):
                outcomes[i] = _result(op, saved)
        return WriteResult.build(
            [o.value for o, _, _, _ in outcomes],
            [t for _, t, _, _ in outcomes],
            [r for _, _, r, _ in outcomes],
            [c.value if c else None for _, _, _, c in outcomes],
        )

    def _not_yet_applied(self, todo: list[tuple[int, Op]]) -> list[tuple[int, Op]]:
        """Leave out the creates whose records exist already and the deletes whose records
        are gone (an earlier attempt applied them)."""
        live = self._live([op.id for _, op in todo if op.kind in _DONE_WHEN_LIVE])
        return [(i, op) for i, op in todo if not _applied(op, live)]

    def _live(self, ids: list[str]) -> set[str]:
        """Which of ``ids`` are live records (one look-up)."""
        if not ids:
            return set()
        found = self.finder.find(["id"], [(i,) for i in ids])
        return {str(v) for v in found.column("id").to_pylist()}

    def _settled(self, ops: list[Op], answers: list[Saved]) -> list[Saved]:
        """``answers`` with those that leave the fate of their op open (``Saved.unknown``)
        settled by reading the records."""
        unknown = [n for n, saved in enumerate(answers) if saved.unknown]
        if not unknown:
            return answers
        live = self._live([ops[n].id for n in unknown if ops[n].kind in _DONE_WHEN_LIVE])
        settled = list(answers)
        for n in unknown:
            if _applied(ops[n], live):
                settled[n] = Saved(ops[n].id)
        return settled

    def _stored(self, ops: list[Op], answers: list[Saved]) -> list[Saved]:
        """``answers``, with the records whose e-mail address the CRM did not store rejected
        (and deleted again when this call created them)."""
        sent = {
            op.id: {n: v for n, v in op.values.items() if n in EMAIL_FIELDS and v}
            for op, saved in zip(ops, answers, strict=True)
            if saved.id is not None and op.kind != "delete"
        }
        sent = {record: values for record, values in sent.items() if values}
        if not sent:
            return answers
        names = sorted({n for values in sent.values() for n in values})
        found = self.finder.find(["id"], [(i,) for i in sent], names)
        kept = {str(r["id"]): r for r in found.to_pylist()}
        out, undo = list(answers), []
        for n, op in enumerate(ops):
            for name, value in sent.get(op.id, {}).items():
                stored = kept.get(op.id, {}).get(name)
                if str(stored or "").strip().lower() == str(value).strip().lower():
                    continue
                reason = f"the CRM did not store {name} {value!r} (it keeps {stored!r})"
                if op.kind == "create":
                    undo.append(Op("delete", op.id))
                    reason += "; the record it created without it was deleted again"
                else:
                    reason += "; the record's other fields were updated"
                out[n] = Saved(None, reason)
                break
        if undo:
            self.api.save(self.module, undo)
        return out

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


#: the ops that are applied when their record exists (create) or is gone (delete)
_DONE_WHEN_LIVE = {"create": True, "delete": False}


def _applied(op: Op, live: set[str]) -> bool:
    """Whether ``op`` is seen applied, given which records are ``live``."""
    done = _DONE_WHEN_LIVE.get(op.kind)
    return done is not None and (op.id in live) == done


def _result(op: Op, saved: Saved) -> tuple[Outcome, str | None, str | None, RejectCode | None]:
    if saved.id is None:
        return Outcome.REJECTED, None, saved.error, RejectCode.REFUSED
    return _OUTCOME[op.kind], saved.id, None, None


__all__ = ["VALID_ID", "ModuleWriter"]
