"""API-level writes: sObject Collections (200 records a call) and, above a configurable size,
Bulk API 2.0 ingest jobs; one :class:`RecordResult` per input record, in input order.

A batch's columns are field names, or ``Relationship.ExternalIdField`` (``Account.Ext_Id__c``)
to set a reference through the related record's external id; ``ROW_COLUMN`` is ignored.
``update`` and ``delete`` need an ``Id`` column, ``upsert`` the external id column.

Collections answer per record, in order. Bulk results come in any order, each row with the
original CSV cells; a result is matched to the input record whose cells are the same (records
with identical cells are interchangeable, so which gets which result does not matter). An input
record no result mentions is reported as not processed, never guessed.

A Collections call that fails in a way that leaves open whether it was applied raises
:class:`.failures.OutcomeUnknownError` (nothing is retried then); Bulk jobs always end with a
known result (see :mod:`.bulk`). This module does not decide outcomes such as "unchanged": that
is the caller's (the connector's ``apply``, to come).
"""

from __future__ import annotations

import enum
from collections import defaultdict, deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
from simple_salesforce.api import Salesforce

from crmbridge.connectors.base import ROW_COLUMN
from crmbridge.connectors.salesforce.api import Api
from crmbridge.connectors.salesforce.bulk import Bulk, IngestResults
from crmbridge.connectors.salesforce.values import csv_cell, csv_text, json_value
from crmbridge.core.outcomes import Outcome, WriteResult
from crmbridge.errors import ConfigError

COLLECTION_SIZE = 200
#: a Bulk upload may hold 150 MB; jobs are cut well below that
MAX_JOB_BYTES = 100 * 1024 * 1024


class Operation(enum.StrEnum):
    INSERT = "insert"
    UPDATE = "update"
    UPSERT = "upsert"
    DELETE = "delete"
    HARD_DELETE = "hardDelete"


@dataclass(frozen=True)
class RecordResult:
    success: bool
    id: str | None = None
    #: upsert: the record was created (insert: always; update, delete: never)
    created: bool = False
    #: why it failed: ``STATUS_CODE: message [fields]``
    error: str | None = None
    #: False when Salesforce did not get to the record (a Bulk job that stopped early)
    processed: bool = True


def outcomes(results: Sequence[RecordResult], operation: Operation) -> WriteResult:
    """The engine's view of ``results``: created / updated / deleted / rejected."""
    names: list[str] = []
    for result in results:
        if not result.success:
            names.append(Outcome.REJECTED.value)
        elif operation in (Operation.DELETE, Operation.HARD_DELETE):
            names.append(Outcome.DELETED.value)
        elif result.created:
            names.append(Outcome.CREATED.value)
        else:
            names.append(Outcome.UPDATED.value)
    return WriteResult.build(
        names, [r.id for r in results], [None if r.success else r.error for r in results]
    )


def _error(item: dict[str, Any]) -> str:
    code = item.get("statusCode") or item.get("errorCode") or "ERROR"
    message = " ".join(str(item.get("message", "")).split())
    fields = item.get("fields") or []
    return f"{code}: {message}" + (f" [{', '.join(fields)}]" if fields else "")


class Writes:
    """Writes to one org."""

    def __init__(self, api: Api, *, bulk_threshold: int) -> None:
        self.api = api
        self.bulk_threshold = bulk_threshold

    def apply(
        self,
        operation: Operation | str,
        object: str,
        batch: pa.RecordBatch,
        *,
        external_id: str | None = None,
        all_or_none: bool = False,
        bulk: bool | None = None,
    ) -> list[RecordResult]:
        """Write ``batch`` to ``object``; ``bulk`` None chooses by the threshold (hard delete
        always goes through Bulk API 2.0: Collections cannot hard delete)."""
        op = Operation(operation)
        names = [n for n in batch.schema.names if n != ROW_COLUMN]
        self._check(op, object, names, external_id)
        rows = batch.select(names).to_pylist()
        use_bulk = (len(rows) > self.bulk_threshold) if bulk is None else bulk
        if op is Operation.HARD_DELETE or use_bulk:
            if all_or_none:
                raise ConfigError(
                    "all-or-none writes are not possible through Bulk API 2.0",
                    context=self.api.context(object),
                )
            return self.bulk(op, object, names, rows, external_id)
        return self.collections(op, object, rows, external_id, all_or_none=all_or_none)

    def _check(self, op: Operation, object: str, names: list[str], external_id: str | None) -> None:
        context = self.api.context(object)
        if op in (Operation.UPDATE, Operation.DELETE, Operation.HARD_DELETE) and "Id" not in names:
            raise ConfigError(f"{op.value} needs an Id column", context=context)
        if op in (Operation.DELETE, Operation.HARD_DELETE) and names != ["Id"]:
            raise ConfigError(f"{op.value} takes only the Id column", context=context)
        if op is Operation.UPSERT and (not external_id or external_id not in names):
            raise ConfigError(
                "upsert needs the external id field as a column",
                context=context.merge(field=external_id),
            )

    # -- sObject Collections ----------------------------------------------------------------
    def collections(
        self,
        op: Operation,
        object: str,
        rows: list[dict[str, Any]],
        external_id: str | None,
        *,
        all_or_none: bool = False,
    ) -> list[RecordResult]:
        results: list[RecordResult] = []
        for start in range(0, len(rows), COLLECTION_SIZE):
            chunk = rows[start : start + COLLECTION_SIZE]
            answer = self._collection_call(op, object, chunk, external_id, all_or_none)
            for row, item in zip(chunk, answer, strict=True):
                if item.get("success"):
                    created = bool(item.get("created", op is Operation.INSERT))
                    results.append(RecordResult(True, item.get("id"), created))
                else:
                    errors = "; ".join(_error(e) for e in item.get("errors") or [])
                    given = row.get("Id") if op is not Operation.INSERT else None
                    results.append(RecordResult(False, item.get("id") or given, error=errors))
        return results

    def _collection_call(
        self,
        op: Operation,
        object: str,
        chunk: list[dict[str, Any]],
        external_id: str | None,
        all_or_none: bool,
    ) -> list[dict[str, Any]]:
        what = f"Collections {op.value} of {len(chunk)} {object} records"
        if op is Operation.DELETE:
            params = {
                "ids": ",".join(str(r["Id"]) for r in chunk),
                "allOrNone": "true" if all_or_none else "false",
            }

            def delete(sf: Salesforce) -> Any:
                return sf.restful("composite/sobjects", params=params, method="DELETE")

            answer = self.api.call(what, delete, changes=True, object=object)
        else:
            body = {
                "allOrNone": all_or_none,
                "records": [_json_record(object, r, op) for r in chunk],
            }
            path = "composite/sobjects"
            method = "POST" if op is Operation.INSERT else "PATCH"
            if op is Operation.UPSERT:
                path += f"/{object}/{external_id}"

            def send(sf: Salesforce) -> Any:
                return sf.restful(path, method=method, json=body)

            answer = self.api.call(what, send, changes=True, object=object)
        if not isinstance(answer, list) or len(answer) != len(chunk):
            raise ConfigError(
                f"{what}: Salesforce answered {len(answer) if isinstance(answer, list) else 0} "
                f"results for {len(chunk)} records",
                context=self.api.context(object),
            )
        return [a if isinstance(a, dict) else {} for a in answer]

    # -- Bulk API 2.0 -----------------------------------------------------------------------
    def bulk(
        self,
        op: Operation,
        object: str,
        names: list[str],
        rows: list[dict[str, Any]],
        external_id: str | None,
    ) -> list[RecordResult]:
        cells = [[csv_cell(r[n]) for n in names] for r in rows]
        results: list[RecordResult | None] = [None] * len(rows)
        client = Bulk(self.api)
        for start, end in _job_slices(names, cells):
            part = cells[start:end]
            found = client.ingest(object, op.value, csv_text(names, part), external_id)
            for offset, result in enumerate(_match(found, part)):
                results[start + offset] = result
        return [r if r is not None else RecordResult(False, error="no result") for r in results]


def _json_record(object: str, row: dict[str, Any], op: Operation) -> dict[str, Any]:
    record: dict[str, Any] = {"attributes": {"type": object}}
    for name, value in row.items():
        if "." in name:
            relationship, _, field = name.partition(".")
            if value is not None and value != "":
                record[relationship] = {field: json_value(value)}
            continue
        if name == "Id" and op is Operation.UPDATE:
            record["id"] = value
            continue
        record[name] = json_value(value)
    return record


def _job_slices(names: list[str], cells: list[list[str]]) -> list[tuple[int, int]]:
    """(start, end) of the rows of each job, each upload below MAX_JOB_BYTES."""
    slices: list[tuple[int, int]] = []
    start, size = 0, len(",".join(names)) + 1
    for i, row in enumerate(cells):
        row_size = sum(len(c.encode("utf-8")) + 3 for c in row) + 1
        if size + row_size > MAX_JOB_BYTES and i > start:
            slices.append((start, i))
            start, size = i, len(",".join(names)) + 1
        size += row_size
    if start < len(cells) or not slices:
        slices.append((start, len(cells)))
    return [s for s in slices if s[1] > s[0]]


def _match(found: IngestResults, cells: list[list[str]]) -> list[RecordResult]:
    """The result of each input row, found by its cells."""
    waiting: dict[tuple[str, ...], deque[int]] = defaultdict(deque)
    for index, row in enumerate(cells):
        waiting[tuple(row)].append(index)
    results: list[RecordResult | None] = [None] * len(cells)

    def place(row: list[str], result: RecordResult) -> None:
        queue = waiting.get(tuple(row))
        if queue:
            results[queue.popleft()] = result

    for record_id, created, row in found.successful:
        place(row, RecordResult(True, record_id or None, created))
    for record_id, error, row in found.failed:
        place(row, RecordResult(False, record_id or None, error=_bulk_error(error)))
    why = f"not processed: Bulk job {found.job_id} ended {found.state}"
    if found.error:
        why += f" ({found.error})"
    for row in found.unprocessed:
        place(row, RecordResult(False, error=why, processed=False))
    missing = f"Salesforce reported no result for this record (Bulk job {found.job_id})"
    return [
        r if r is not None else RecordResult(False, error=missing, processed=False) for r in results
    ]


def _bulk_error(text: str) -> str:
    """``CODE:message:fields --`` as ``CODE: message [fields]``."""
    body = text.strip().removesuffix("--").strip()
    code, _, rest = body.partition(":")
    message, _, fields = rest.rpartition(":")
    if not message:
        message, fields = rest, ""
    shown = f"{code}: {message.strip()}"
    return shown + (f" [{fields.strip()}]" if fields.strip() else "")
