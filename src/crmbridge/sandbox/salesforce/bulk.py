"""Bulk API 2.0 under ``/services/data/vXX.X/jobs/``: ingest jobs (CSV upload, the job state
machine, successful / failed / unprocessed results) and query jobs (CSV results paged with
``Sforce-Locator``).

A job is worked on when a poll finds it due: after ``UploadComplete`` (ingest) or creation
(query) it answers ``InProgress`` for ``Settings.bulk_polls`` polls, then runs and reports
``JobComplete`` (or ``Failed``). Result rows come in no particular order (they are shuffled,
as parallel processing on a real org returns them), each with its original CSV cells.
"""

from __future__ import annotations

import csv
import io
import random
import secrets
from dataclasses import dataclass, field
from typing import Any

from crmbridge.sandbox.salesforce import soql
from crmbridge.sandbox.salesforce.context import Context, Request, Response
from crmbridge.sandbox.salesforce.errors import ApiError, RecordRefusedError
from crmbridge.sandbox.salesforce.objects import FieldDef, ObjectDef, find_object
from crmbridge.sandbox.salesforce.records import MultipleMatchesError, Records
from crmbridge.sandbox.salesforce.rest import external_field
from crmbridge.sandbox.salesforce.values import to_csv

OPERATIONS = ("insert", "update", "upsert", "delete", "hardDelete")
MAX_UPLOAD = 150 * 1024 * 1024
CSV_TYPE = "text/csv"
TERMINAL = ("JobComplete", "Failed", "Aborted")


@dataclass
class IngestJob:
    id: str
    odef: ObjectDef
    operation: str
    external: FieldDef | None
    line_ending: str
    user_id: str
    created: str
    state: str = "Open"
    data: bytes | None = None
    polls_left: int = 0
    header: list[str] = field(default_factory=list)
    successful: list[list[str]] = field(default_factory=list)
    failed: list[list[str]] = field(default_factory=list)
    unprocessed: list[list[str]] = field(default_factory=list)
    error: str | None = None


@dataclass
class QueryJob:
    id: str
    operation: str
    query: str
    compiled: soql.Compiled
    created: str
    state: str = "UploadComplete"
    polls_left: int = 0
    rows: list[list[str]] = field(default_factory=list)


def _job_id(prefix: str) -> str:
    return prefix + "5g" + secrets.token_hex(5).upper()[:10] + "AAA"


def _body(req: Request) -> dict[str, Any]:
    body = req.json()
    if not isinstance(body, dict):
        raise ApiError(400, "INVALIDJOB", "The job definition must be a JSON object")
    return body


def _check_format(body: dict[str, Any]) -> str:
    if str(body.get("contentType", "CSV")).upper() != "CSV":
        raise ApiError(400, "INVALIDJOB", "contentType must be CSV")
    if str(body.get("columnDelimiter", "COMMA")).upper() != "COMMA":
        raise ApiError(400, "INVALIDJOB", "this sandbox supports columnDelimiter COMMA only")
    ending = str(body.get("lineEnding", "LF")).upper()
    if ending not in ("LF", "CRLF"):
        raise ApiError(400, "INVALIDJOB", f"Invalid lineEnding: {ending}")
    return ending


# -- ingest -----------------------------------------------------------------------------------
def ingest_info(job: IngestJob, version: str) -> dict[str, Any]:
    done = len(job.successful) + len(job.failed)
    return {
        "id": job.id,
        "operation": job.operation,
        "object": job.odef.name,
        "createdById": job.user_id,
        "createdDate": job.created,
        "systemModstamp": job.created,
        "state": job.state,
        "externalIdFieldName": job.external.name if job.external else None,
        "concurrencyMode": "Parallel",
        "contentType": "CSV",
        "apiVersion": float(version),
        "jobType": "V2Ingest",
        "lineEnding": job.line_ending,
        "columnDelimiter": "COMMA",
        "contentUrl": f"services/data/v{version}/jobs/ingest/{job.id}/batches",
        "numberRecordsProcessed": done,
        "numberRecordsFailed": len(job.failed),
        "retries": 0,
        "totalProcessingTime": 0,
        "errorMessage": job.error,
    }


def create_ingest(ctx: Context, req: Request) -> Response:
    body = _body(req)
    odef = find_object(str(body.get("object", "")))
    if odef is None:
        raise ApiError(
            400, "INVALIDJOB", f"Entity '{body.get('object')}' is not supported by the Bulk API"
        )
    operation = str(body.get("operation", ""))
    if operation not in OPERATIONS:
        raise ApiError(400, "INVALIDJOB", f"Invalid operation: {operation}")
    external = None
    if operation == "upsert":
        name = body.get("externalIdFieldName")
        if not name:
            raise ApiError(400, "INVALIDJOB", "External ID was blank for upsert")
        external = external_field(odef, str(name))
    ending = _check_format(body)
    job = IngestJob(
        _job_id("750"), odef, operation, external, ending, req.user_id,
        ctx.store.now().replace("Z", "+0000"),
    )  # fmt: skip
    with ctx.lock:
        ctx.jobs[job.id] = job
    return Response(200, ingest_info(job, req.version))


def _ingest(ctx: Context, job_id: str) -> IngestJob:
    with ctx.lock:
        job = ctx.jobs.get(job_id)
    if not isinstance(job, IngestJob):
        raise ApiError(404, "NOT_FOUND", f"Job not found: {job_id}")
    return job


def upload(ctx: Context, req: Request, job_id: str) -> Response:
    job = _ingest(ctx, job_id)
    if not req.headers.get("content-type", "").startswith(CSV_TYPE):
        raise ApiError(400, "INVALIDJOB", "Content-Type must be text/csv")
    with ctx.lock:
        if job.state != "Open":
            raise ApiError(409, "INVALIDJOBSTATE", f"Job {job.id} is not Open: {job.state}")
        if job.data is not None:
            raise ApiError(
                400,
                "INVALIDJOBSTATE",
                f"Found multiple contents for job: <{job.id}>, please 'Close' / 'Abort' / "
                "'Delete' the current Job then create a new Job and make sure you only do "
                "'PUT' once on a given Job.",
            )
        if len(req.body) > MAX_UPLOAD:
            raise ApiError(400, "INVALIDJOB", "The upload is larger than 150 MB")
        job.data = req.body
    return Response(201, None)


def change_ingest(ctx: Context, req: Request, job_id: str) -> Response:
    job = _ingest(ctx, job_id)
    state = _body(req).get("state")
    with ctx.lock:
        if state == "UploadComplete":
            if job.state != "Open":
                raise ApiError(409, "INVALIDJOBSTATE", f"Job {job.id} is not Open: {job.state}")
            if job.data is None:
                job.state, job.error = "Failed", "InvalidBatch : No content was uploaded"
            else:
                job.state, job.polls_left = "UploadComplete", ctx.settings.bulk_polls
        elif state == "Aborted":
            if job.state in TERMINAL:
                raise ApiError(409, "INVALIDJOBSTATE", f"Job {job.id} is {job.state}")
            job.state = "Aborted"
            if job.data is not None:
                job.header, rows = _parse(job)
                job.unprocessed = rows
        else:
            raise ApiError(400, "INVALIDJOBSTATE", f"Invalid state: {state}")
    return Response(200, ingest_info(job, req.version))


def ingest_job(ctx: Context, req: Request, job_id: str) -> Response:
    job = _ingest(ctx, job_id)
    with ctx.lock:
        if job.state in ("UploadComplete", "InProgress"):
            if job.polls_left > 0:
                job.polls_left -= 1
                job.state = "InProgress"
            else:
                _process(ctx, job)
    return Response(200, ingest_info(job, req.version))


def list_ingest(ctx: Context, req: Request) -> Response:
    with ctx.lock:
        jobs = [ingest_info(j, req.version) for j in ctx.jobs.values() if isinstance(j, IngestJob)]
    return Response(200, {"done": True, "records": jobs, "nextRecordsUrl": None})


def delete_job(ctx: Context, req: Request, job_id: str) -> Response:
    with ctx.lock:
        job = ctx.jobs.get(job_id)
        if job is None:
            raise ApiError(404, "NOT_FOUND", f"Job not found: {job_id}")
        if job.state not in TERMINAL:
            raise ApiError(400, "INVALIDJOBSTATE", f"Job {job_id} is {job.state}: abort it first")
        del ctx.jobs[job_id]
    return Response(204)


def _parse(job: IngestJob) -> tuple[list[str], list[list[str]]]:
    text = (job.data or b"").decode("utf-8-sig", errors="replace")
    rows = list(csv.reader(io.StringIO(text, newline="")))
    rows = [r for r in rows if r]
    return (rows[0] if rows else []), rows[1:]


def _line_ending_ok(job: IngestJob) -> bool:
    data = job.data or b""
    if job.line_ending == "LF":
        return b"\r\n" not in data
    return data.count(b"\n") == data.count(b"\r\n")


def _process(ctx: Context, job: IngestJob) -> None:
    """Run the job's records (once), filling its results."""
    job.header, rows = _parse(job)
    if not _line_ending_ok(job):
        job.state = "Failed"
        job.error = (
            "ClientInputError : LineEnding is invalid on user data. Current LineEnding "
            f"setting is {job.line_ending}"
        )
        job.unprocessed = rows
        return
    problem = _header_problem(job)
    if problem:
        job.state, job.error, job.unprocessed = "Failed", problem, rows
        return
    writer = Records(ctx.store, job.user_id)
    stop = ctx.settings.bulk_stop_after
    for n, cells in enumerate(rows):
        if stop is not None and n >= stop:
            job.unprocessed = rows[n:]
            job.state = "Failed"
            job.error = f"InternalServerError : processing stopped after {n} records"
            break
        _process_row(ctx, job, writer, cells)
    else:
        job.state = "JobComplete"
    shuffle = random.Random(job.id)
    shuffle.shuffle(job.successful)
    shuffle.shuffle(job.failed)


def _header_problem(job: IngestJob) -> str | None:
    odef = job.odef
    names = [h.strip() for h in job.header]
    if not names:
        return "InvalidBatch : The header is empty"
    lower = [n.lower() for n in names]
    if job.operation in ("delete", "hardDelete"):
        if lower != ["id"]:
            return "InvalidBatch : Only the Id field may be given for a delete"
        return None
    for name in names:
        if "." in name:
            rel, _, ext_name = name.partition(".")
            ref = odef.relationship(rel)
            target = find_object(ref.reference_to[0]) if ref else None
            ext = target.field(ext_name) if target else None
            if ext is None or not (ext.external_id or ext.name == "Id"):
                return f"InvalidBatch : Field name not found : {name}"
        elif odef.field(name) is None:
            return f"InvalidBatch : Field name not found : {name}"
    if job.operation == "update" and "id" not in lower:
        return "InvalidBatch : Field name not found : Id"
    if job.external is not None and job.external.name.lower() not in lower:
        return f"InvalidBatch : Field name not found : {job.external.name}"
    if len(set(lower)) != len(lower):
        return "InvalidBatch : Duplicate field name in the header"
    return None


def _process_row(ctx: Context, job: IngestJob, writer: Records, cells: list[str]) -> None:
    if len(cells) != len(job.header):
        failure = RecordRefusedError(
            "INVALID_FIELD", "the number of fields does not match the header"
        )
        job.failed.append(["", failure.bulk_text(), *cells])
        return
    body = dict(zip([h.strip() for h in job.header], cells, strict=True))
    record_id = ""
    try:
        with ctx.store.transaction():
            if job.operation == "insert":
                record_id, created = writer.create(job.odef, body, csv=True), True
            elif job.operation == "update":
                given = next(v for k, v in body.items() if k.lower() == "id")
                rest = {k: v for k, v in body.items() if k.lower() != "id"}
                record_id, created = writer.update(job.odef, given, rest, csv=True), False
            elif job.operation == "upsert":
                assert job.external is not None
                key = next(v for k, v in body.items() if k.lower() == job.external.name.lower())
                saved = writer.upsert(job.odef, job.external, key, body, csv=True)
                record_id, created = saved.id, saved.created
            else:
                given = next(iter(body.values()))
                record_id = writer.delete(job.odef, given, hard=job.operation == "hardDelete")
                created = False
    except RecordRefusedError as failure:
        job.failed.append([record_id, failure.bulk_text(), *cells])
        return
    except MultipleMatchesError as many:
        job.failed.append(["", many.failure().bulk_text(), *cells])
        return
    except ApiError as error:
        refused = RecordRefusedError(error.code, error.message, error.fields)
        job.failed.append(["", refused.bulk_text(), *cells])
        return
    job.successful.append([record_id, "true" if created else "false", *cells])


def _csv(header: list[str], rows: list[list[str]]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, quoting=csv.QUOTE_ALL, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue().encode("utf-8")


def ingest_results(ctx: Context, req: Request, job_id: str, kind: str) -> Response:
    job = _ingest(ctx, job_id)
    with ctx.lock:
        if job.state not in TERMINAL:
            raise ApiError(400, "INVALIDJOBSTATE", f"Job {job.id} is not finished: {job.state}")
        if kind == "successfulResults":
            body = _csv(["sf__Id", "sf__Created", *job.header], job.successful)
        elif kind == "failedResults":
            body = _csv(["sf__Id", "sf__Error", *job.header], job.failed)
        else:
            body = _csv(job.header, job.unprocessed) if job.header else b""
    return Response(200, body, CSV_TYPE + ";charset=UTF-8")


# -- query ------------------------------------------------------------------------------------
def query_info(job: QueryJob, version: str) -> dict[str, Any]:
    return {
        "id": job.id,
        "operation": job.operation,
        "object": job.compiled.odef.name,
        "createdDate": job.created,
        "systemModstamp": job.created,
        "state": job.state,
        "concurrencyMode": "Parallel",
        "contentType": "CSV",
        "apiVersion": float(version),
        "jobType": "V2Query",
        "lineEnding": "LF",
        "columnDelimiter": "COMMA",
        "numberRecordsProcessed": len(job.rows) if job.state == "JobComplete" else 0,
        "retries": 0,
        "totalProcessingTime": 0,
    }


def create_query(ctx: Context, req: Request) -> Response:
    body = _body(req)
    operation = str(body.get("operation", ""))
    if operation not in ("query", "queryAll"):
        raise ApiError(400, "INVALIDJOB", f"Invalid operation: {operation}")
    if str(body.get("lineEnding", "LF")).upper() != "LF":
        raise ApiError(400, "INVALIDJOB", "this sandbox answers query jobs with LF only")
    _check_format(body)
    text = str(body.get("query") or "")
    compiled = soql.compile_query(text, include_deleted=operation == "queryAll")
    if compiled.count_only:
        raise ApiError(400, "INVALIDJOB", "COUNT() is not supported by Bulk API 2.0 query jobs")
    job = QueryJob(
        _job_id("750"), operation, text, compiled, ctx.store.now().replace("Z", "+0000"),
        polls_left=ctx.settings.bulk_polls,
    )  # fmt: skip
    with ctx.lock:
        ctx.jobs[job.id] = job
    return Response(200, query_info(job, req.version))


def _query_job(ctx: Context, job_id: str) -> QueryJob:
    with ctx.lock:
        job = ctx.jobs.get(job_id)
    if not isinstance(job, QueryJob):
        raise ApiError(404, "NOT_FOUND", f"Job not found: {job_id}")
    return job


def query_job(ctx: Context, req: Request, job_id: str) -> Response:
    job = _query_job(ctx, job_id)
    with ctx.lock:
        if job.state in ("UploadComplete", "InProgress"):
            if job.polls_left > 0:
                job.polls_left -= 1
                job.state = "InProgress"
            else:
                rows = soql.run(ctx.store, job.compiled)
                job.rows = [
                    [to_csv(c.fdef, row[c.path]) for c in job.compiled.columns] for row in rows
                ]
                job.state = "JobComplete"
    return Response(200, query_info(job, req.version))


def abort_query(ctx: Context, req: Request, job_id: str) -> Response:
    job = _query_job(ctx, job_id)
    if _body(req).get("state") != "Aborted":
        raise ApiError(400, "INVALIDJOBSTATE", "A query job can only be aborted")
    with ctx.lock:
        if job.state in TERMINAL:
            raise ApiError(409, "INVALIDJOBSTATE", f"Job {job.id} is {job.state}")
        job.state = "Aborted"
    return Response(200, query_info(job, req.version))


def query_results(ctx: Context, req: Request, job_id: str) -> Response:
    job = _query_job(ctx, job_id)
    if job.state != "JobComplete":
        raise ApiError(400, "INVALIDJOBSTATE", f"Job {job.id} is not complete: {job.state}")
    locator = req.args.get("locator", "")
    start = 0
    if locator and locator != "null":
        try:
            start = int(locator, 36)
        except ValueError:
            raise ApiError(400, "INVALIDLOCATOR", f"Invalid locator: {locator}") from None
        if start > len(job.rows):
            raise ApiError(400, "INVALIDLOCATOR", f"Invalid locator: {locator}")
    size_text = req.args.get("maxRecords", "")
    size = int(size_text) if size_text.isdigit() and int(size_text) > 0 else len(job.rows)
    end = min(len(job.rows), start + size)
    header = [c.path for c in job.compiled.columns]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(job.rows[start:end])
    next_locator = _base36(end) if end < len(job.rows) else "null"
    headers = [("Sforce-Locator", next_locator), ("Sforce-NumberOfRecords", str(end - start))]
    return Response(200, out.getvalue().encode("utf-8"), CSV_TYPE + ";charset=UTF-8", headers)


def _base36(number: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while True:
        number, rest = divmod(number, 36)
        out = digits[rest] + out
        if not number:
            return out
