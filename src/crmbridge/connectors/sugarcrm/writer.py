"""Writing a batch: insert, update, upsert or delete, with one outcome per record.

For a batch the writer makes one lookup call per page of keys (to find the records the match
keys point at, with their current values) and one write call (v4_1 ``set_entries`` / v10
``/bulk``) for the records that need it:

* a record whose values equal what the CRM holds is ``unchanged`` and not sent;
* an update is only ever sent with the id of a record found by the lookup (v4_1 answers
  success for an id that does not exist and creates nothing);
* a new record gets its id from us (``new_with_id``): the answer can be matched to the records
  sent, Sugar's own duplicate check on Contacts does not silently swap in another record, and
  after a call that failed half-way we can see which records exist before sending again.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from crmbridge.connectors.base import ROW_COLUMN, WriteRequest
from crmbridge.connectors.sugarcrm.api import Api, Op, Saved
from crmbridge.connectors.sugarcrm.lookup import Finder, Found
from crmbridge.connectors.sugarcrm.transport import AmbiguousWriteError
from crmbridge.connectors.sugarcrm.values import comparable, encode
from crmbridge.core.outcomes import Outcome, WriteMode, WriteResult
from crmbridge.core.schema import Field, ObjectSchema
from crmbridge.errors import ConfigError, ErrorContext, RetryableError

#: what Sugar accepts as a record id (char(36))
VALID_ID = re.compile(r"[A-Za-z0-9_.\-]{1,36}")


@dataclass
class _Decision:
    outcome: Outcome
    id: str | None = None
    reason: str | None = None


class ModuleWriter:
    """Writes batches to one module."""

    def __init__(
        self,
        api: Api,
        finder: Finder,
        *,
        max_batch_size: int,
        allow_unknown_enum_values: bool,
        retries: int,
        context: ErrorContext,
    ) -> None:
        self.api = api
        self.finder = finder
        self.max_batch_size = max_batch_size
        self.allow_unknown_enum_values = allow_unknown_enum_values
        self.retries = retries
        self.context = context

    @property
    def schema(self) -> ObjectSchema:
        return self.finder.schema

    @property
    def module(self) -> str:
        return self.schema.name

    def write(self, request: WriteRequest) -> WriteResult:
        """One outcome per record of ``request.batch``, in order."""
        batch = request.batch
        names = [n for n in batch.schema.names if n != ROW_COLUMN]
        fields = {n: self._writable(n, request.mode) for n in names}
        keys = self._keys(request, names)
        records = batch.select(names).to_pylist()
        positions = (
            batch.column(ROW_COLUMN).to_pylist()
            if ROW_COLUMN in batch.schema.names
            else list(range(1, batch.num_rows + 1))
        )
        decisions: list[_Decision | None] = [self._check(r, fields) for r in records]
        found = self._lookup(keys, records, decisions, names)
        ops: list[tuple[int, Op]] = []
        claimed: dict[str, int] = {}  # record id -> index of the batch record updating it
        for i, record in enumerate(records):
            if decisions[i] is not None:
                continue
            decision, op = self._decide(
                request.mode, keys, record, found, fields, request.update_fields
            )
            if op is not None and op.kind != "create" and claimed.setdefault(op.id, i) != i:
                earlier = positions[claimed[op.id]]
                reason = f"matches the same {self.module} record (id {op.id}) as record {earlier}"
                decision, op = self._reject(reason), None
            decisions[i] = decision
            if op is not None:
                ops.append((i, op))
        for start in range(0, len(ops), self.max_batch_size):
            chunk = ops[start : start + self.max_batch_size]
            for (i, op), saved in zip(chunk, self._send([op for _, op in chunk]), strict=True):
                decisions[i] = _result(op, saved)
        final = [d for d in decisions if d is not None]
        return WriteResult.build(
            [d.outcome.value for d in final], [d.id for d in final], [d.reason for d in final]
        )

    # -- checks ---------------------------------------------------------------------------
    def _writable(self, name: str, mode: WriteMode) -> Field:
        field = self.schema.field(name, context=self.context)
        related = self.finder.filters.meta.related.get(name)
        if related is not None:
            raise ConfigError(
                f"field {name!r} is a field of the related {related.module} record (link "
                f"{related.link!r}): it can be read, never written",
                context=self.context.merge(field=name),
            )
        if field.read_only and mode is not WriteMode.DELETE:
            raise ConfigError(
                f"field {name!r} is maintained by the CRM and cannot be written",
                context=self.context.merge(field=name),
            )
        return field

    def _keys(self, request: WriteRequest, names: Sequence[str]) -> list[str]:
        keys = list(request.match_keys)
        if not keys and "id" in names and request.mode is not WriteMode.INSERT:
            keys = ["id"]
        if not keys and request.mode is not WriteMode.INSERT:
            raise ConfigError(
                f"{request.mode.value} needs match keys (or an id column) to find the records",
                context=self.context,
            )
        if not keys and "id" in names:
            keys = ["id"]  # an insert with chosen ids must not overwrite existing records
        for key in keys:
            if key not in names:
                raise ConfigError(
                    f"match key {key!r} is not a column of the batch",
                    context=self.context.merge(field=key),
                )
        return keys

    def _check(self, record: dict[str, Any], fields: dict[str, Field]) -> _Decision | None:
        """A rejection when a value cannot be written as it is."""
        for name, value in record.items():
            field = fields[name]
            if value is None:
                continue
            if field.length and isinstance(value, str) and len(value) > field.length:
                return self._reject(
                    f"{name} is {len(value)} characters long; its limit is {field.length}"
                )
            if (
                field.allowed_values
                and not self.allow_unknown_enum_values
                and value not in field.allowed_values
            ):
                options = ", ".join(v for v in field.allowed_values if v)
                return self._reject(f"value {value!r} is not one of {name}'s options: {options}")
        record_id = record.get("id")
        if record_id is not None and not VALID_ID.fullmatch(str(record_id)):
            return self._reject(
                f"id {record_id!r} is not a valid SugarCRM id (up to 36 letters, digits, '-', "
                "'_' or '.')"
            )
        return None

    def _lookup(
        self,
        keys: Sequence[str],
        records: Sequence[dict[str, Any]],
        decisions: Sequence[_Decision | None],
        names: Sequence[str],
    ) -> Found | None:
        if not keys:
            return None
        wanted = [
            tuple(r[k] for k in keys)
            for r, d in zip(records, decisions, strict=True)
            if d is None and all(r[k] is not None for k in keys)
        ]
        return self.finder.find(keys, wanted, names)

    # -- deciding -------------------------------------------------------------------------
    def _decide(
        self,
        mode: WriteMode,
        keys: Sequence[str],
        record: dict[str, Any],
        found: Found | None,
        fields: dict[str, Field],
        update_fields: Sequence[str] | None = None,
    ) -> tuple[_Decision, Op | None]:
        values = [record[k] for k in keys]
        matches: list[dict[str, Any]] = []
        if found is not None and all(v is not None for v in values):
            matches = found.records(self.finder.key_of(keys, values))
        described = _describe(keys, values)
        if len(matches) > 1:
            ids = ", ".join(str(m["id"]) for m in matches)
            return self._reject(f"{len(matches)} {self.module} match {described}: ids {ids}"), None
        match = matches[0] if matches else None
        if mode is WriteMode.INSERT:
            if match is not None:
                return self._reject(
                    f"a {self.module} record with {described} already exists (id {match['id']})"
                ), None
            return self._create(record, fields)
        if keys and any(v is None for v in values) and mode is not WriteMode.UPSERT:
            missing = next(k for k, v in zip(keys, values, strict=True) if v is None)
            return self._reject(f"match key {missing!r} has no value"), None
        if match is None:
            if mode is WriteMode.UPSERT:
                return self._create(record, fields)
            action = " to delete" if mode is WriteMode.DELETE else ""
            return self._reject(f"no {self.module} record with {described}{action}"), None
        target = str(match["id"])
        if mode is WriteMode.DELETE:
            return _Decision(Outcome.DELETED, target), Op("delete", target)
        changed = {
            name: encode(value, fields[name], api=self.api.kind)
            for name, value in record.items()
            if name != "id"
            and (update_fields is None or name in update_fields)  # only these on existing
            and comparable(value, fields[name]) != comparable(match.get(name), fields[name])
        }
        if not changed:
            return _Decision(Outcome.UNCHANGED, target), None
        return _Decision(Outcome.UPDATED, target), Op("update", target, changed)

    def _create(
        self, record: dict[str, Any], fields: dict[str, Field]
    ) -> tuple[_Decision, Op | None]:
        new_id = str(record.get("id") or uuid.uuid4())
        values = {
            name: encode(value, fields[name], api=self.api.kind)
            for name, value in record.items()
            if value is not None and name != "id"
        }
        return _Decision(Outcome.CREATED, new_id), Op("create", new_id, values)

    def _reject(self, reason: str) -> _Decision:
        return _Decision(Outcome.REJECTED, None, reason)

    # -- sending --------------------------------------------------------------------------
    def _send(self, ops: Sequence[Op]) -> list[Saved]:
        """``api.save`` that recovers from calls failing half-way: records created by the
        failed call are found by their ids and not sent again."""
        saved: dict[int, Saved] = {}
        todo = list(range(len(ops)))
        for attempt in range(1, self.retries + 2):
            try:
                answers = self.api.save(self.module, [ops[i] for i in todo])
            except AmbiguousWriteError as err:
                if attempt > self.retries:
                    raise RetryableError(
                        f"{err.message}; gave up after {attempt} attempts", context=err.context
                    ) from err
                self.api.transport.pause(attempt)
                created = self._existing([ops[i].id for i in todo if ops[i].kind == "create"])
                for i in todo:
                    if ops[i].kind == "create" and ops[i].id in created:
                        saved[i] = Saved(ops[i].id)
                todo = [i for i in todo if i not in saved]
                if not todo:
                    break
                continue
            saved.update(zip(todo, answers, strict=True))
            break
        return [saved[i] for i in range(len(ops))]

    def _existing(self, ids: Sequence[str]) -> set[str]:
        if not ids:
            return set()
        found = self.finder.find(["id"], [(i,) for i in ids])
        return {str(v) for v in found.batch.column("id").to_pylist()}


def _result(op: Op, saved: Saved) -> _Decision:
    if saved.id is None:
        return _Decision(Outcome.REJECTED, None, saved.error)
    outcome = {"create": Outcome.CREATED, "update": Outcome.UPDATED, "delete": Outcome.DELETED}
    return _Decision(outcome[op.kind], saved.id)


def _describe(keys: Sequence[str], values: Sequence[Any]) -> str:
    """``email1 'a@b.c'`` or ``first_name 'A' and last_name 'B'``."""
    return " and ".join(
        f"{k} {v!r}" if isinstance(v, str) else f"{k} {v}"
        for k, v in zip(keys, values, strict=True)
    )
