"""API-level writes: sObject Collections (200 records a call) and, above a configurable size,
Bulk API 2.0 ingest jobs; one :class:`RecordResult` per input record, in input order.

A record is a mapping of field names to values, or ``Relationship.ExternalIdField``
(``Account.Ext_Id__c``) to set a reference through the related record's external id (a null
one clears the reference). A field a record does not name is left alone (an empty CSV cell in
Bulk API 2.0); a null sets it to null (``#N/A``). ``update`` and ``delete`` need ``Id``,
``upsert`` the external id field.

Collections answer per record, in order. Bulk results come in any order, each row with the
original CSV cells; a result is matched to the input record whose cells are the same (records
with identical cells are interchangeable, so which gets which result does not matter). An input
record no result mentions is reported as not processed, never guessed.

A Collections call that fails in a way that leaves open whether it was applied raises
:class:`.failures.OutcomeUnknownError` (nothing is retried then); ``on_results`` has been told
the results of the calls before it. Bulk jobs end with a known result (see :mod:`.bulk`), or
an OutcomeUnknownError when a job's end cannot be seen. This module does not decide outcomes
such as "unchanged": that is the connector's ``apply`` (:mod:`.applying`).
"""

from __future__ import annotations

import enum
from collections import defaultdict, deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
from simple_salesforce.api import Salesforce

from crmbridge.connectors.base import ROW_COLUMN
from crmbridge.connectors.salesforce.api import Api
from crmbridge.connectors.salesforce.bulk import Bulk, IngestResults
from crmbridge.connectors.salesforce.values import CSV_UNSET, csv_cell, csv_text, json_value
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
    #: the status code of the (first) error, e.g. ``DUPLICATE_VALUE``
    code: str | None = None
    #: the fields the error names
    fields: tuple[str, ...] = ()


#: ``on_results(offset, results)``: the results of input records ``offset ...``, as each call
#: or job ends
OnResults = Callable[[int, list[RecordResult]], None]


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


def _failure(items: list[dict[str, Any]], record_id: str | None) -> RecordResult:
    first = items[0] if items else {}
    return RecordResult(
        False,
        record_id,
        error="; ".join(_error(e) for e in items) or "ERROR: Salesforce gave no reason",
        code=str(first.get("statusCode") or first.get("errorCode") or "") or None,
        fields=tuple(str(f) for f in first.get("fields") or ()),
    )


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
        """Write the records of ``batch`` (every column set, nulls included) to ``object``."""
        names = [n for n in batch.schema.names if n != ROW_COLUMN]
        rows = batch.select(names).to_pylist()
        return self.apply_rows(
            operation, object, names, rows,
            external_id=external_id, all_or_none=all_or_none, bulk=bulk,
        )  # fmt: skip

    def apply_rows(
        self,
        operation: Operation | str,
        object: str,
        names: Sequence[str],
        rows: list[dict[str, Any]],
        *,
        external_id: str | None = None,
        all_or_none: bool = False,
        bulk: bool | None = None,
        references: Mapping[str, str] | None = None,
        on_results: OnResults | None = None,
    ) -> list[RecordResult]:
        """Write ``rows`` (each naming some of ``names``) to ``object``; ``bulk`` None chooses
        by the threshold (hard delete always goes through Bulk API 2.0: Collections cannot hard
        delete). ``references``: relationship -> reference field (``Account`` ->
        ``AccountId``), to clear a reference whose related external id is null."""
        op = Operation(operation)
        names = list(names)
        self._check(op, object, names, external_id)
        use_bulk = (len(rows) > self.bulk_threshold) if bulk is None else bulk
        if op is Operation.HARD_DELETE or use_bulk:
            if all_or_none:
                raise ConfigError(
                    "all-or-none writes are not possible through Bulk API 2.0",
                    context=self.api.context(object),
                )
            return self.bulk(op, object, names, rows, external_id, on_results=on_results)
        return self.collections(
            op, object, rows, external_id,
            all_or_none=all_or_none, references=references or {}, on_results=on_results,
        )  # fmt: skip

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
        references: Mapping[str, str] | None = None,
        on_results: OnResults | None = None,
    ) -> list[RecordResult]:
        results: list[RecordResult] = []
        for start in range(0, len(rows), COLLECTION_SIZE):
            chunk = rows[start : start + COLLECTION_SIZE]
            answer = self._collection_call(
                op, object, chunk, external_id, all_or_none, references or {}
            )
            done: list[RecordResult] = []
            for row, item in zip(chunk, answer, strict=True):
                if item.get("success"):
                    created = bool(item.get("created", op is Operation.INSERT))
                    done.append(RecordResult(True, item.get("id"), created))
                else:
                    given = row.get("Id") if op is not Operation.INSERT else None
                    done.append(_failure(item.get("errors") or [], item.get("id") or given))
            if on_results is not None:
                on_results(start, done)
            results += done
        return results

    def _collection_call(
        self,
        op: Operation,
        object: str,
        chunk: list[dict[str, Any]],
        external_id: str | None,
        all_or_none: bool,
        references: Mapping[str, str],
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
                "records": [_json_record(object, r, op, references) for r in chunk],
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
        *,
        on_results: OnResults | None = None,
    ) -> list[RecordResult]:
        cells = [[csv_cell(r[n]) if n in r else CSV_UNSET for n in names] for r in rows]
        results: list[RecordResult | None] = [None] * len(rows)
        client = Bulk(self.api)
        for start, end in _job_slices(names, cells):
            part = cells[start:end]
            found = client.ingest(object, op.value, csv_text(names, part), external_id)
            done = _match(found, part)
            for offset, result in enumerate(done):
                results[start + offset] = result
            if on_results is not None:
                on_results(start, done)
        return [r if r is not None else RecordResult(False, error="no result") for r in results]


def _json_record(
    object: str, row: dict[str, Any], op: Operation, references: Mapping[str, str]
) -> dict[str, Any]:
    record: dict[str, Any] = {"attributes": {"type": object}}
    for name, value in row.items():
        if "." in name:
            relationship, _, field = name.partition(".")
            if value is not None and value != "":
                record[relationship] = {field: json_value(value)}
            elif relationship in references and references[relationship] not in row:
                record[references[relationship]] = None  # no related record: clear it
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
        code, shown, fields = _bulk_error(error)
        place(row, RecordResult(False, record_id or None, error=shown, code=code, fields=fields))
    why = f"not processed: Bulk job {found.job_id} ended {found.state}"
    if found.error:
        why += f" ({found.error})"
    for row in found.unprocessed:
        place(row, RecordResult(False, error=why, processed=False))
    missing = f"Salesforce reported no result for this record (Bulk job {found.job_id})"
    return [
        r if r is not None else RecordResult(False, error=missing, processed=False) for r in results
    ]


def _bulk_error(text: str) -> tuple[str, str, tuple[str, ...]]:
    """``CODE:message:fields --`` as (code, ``CODE: message [fields]``, fields)."""
    body = text.strip().removesuffix("--").strip()
    code, _, rest = body.partition(":")
    message, _, fields = rest.rpartition(":")
    if not message:
        message, fields = rest, ""
    shown = f"{code}: {message.strip()}"
    names = tuple(f.strip() for f in fields.split(",") if f.strip())
    return code.strip(), shown + (f" [{fields.strip()}]" if fields.strip() else ""), names
