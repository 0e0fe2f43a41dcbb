"""Bulk API 2.0: query jobs for big extractions and ingest jobs for big writes.

Query: create the job, poll until ``JobComplete``, read the CSV results a page at a time,
following ``Sforce-Locator`` until it says ``null``.

Ingest: create the job, upload the CSV, close it (``UploadComplete``), poll, read the
successful / failed / unprocessed results. Every step can be retried or checked, so a
failure rarely leaves open what was applied: creating a job writes no record; an upload that
fails leaves the job open (it is aborted and the work done again in a new job); a close whose
answer is lost is followed by reading the job's state. Only a closed job whose end cannot be
seen (it outlives ``bulk_timeout``, or its state or results cannot be read) is an
:class:`.failures.OutcomeUnknownError`. Results are CSV rows carrying the
original cells; :mod:`.writes` maps them back to the input records.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from simple_salesforce.api import Salesforce

from crmbridge.connectors.salesforce.api import Api, raw
from crmbridge.connectors.salesforce.failures import OutcomeUnknownError
from crmbridge.connectors.salesforce.values import csv_rows
from crmbridge.errors import RemoteError, RetryableError

CSV = "text/csv"
MAX_POLL_INTERVAL = 30.0
#: attempts at an ingest job whose upload failed
UPLOAD_ATTEMPTS = 3


@dataclass(frozen=True)
class IngestResults:
    """The rows of a finished ingest job: (id, created, original cells) / (id, error, cells)
    / cells."""

    job_id: str
    state: str
    header: list[str]
    successful: list[tuple[str, bool, list[str]]]
    failed: list[tuple[str, str, list[str]]]
    unprocessed: list[list[str]]
    error: str | None


class Bulk:
    """Bulk API 2.0 jobs on one session."""

    def __init__(self, api: Api) -> None:
        self.api = api
        self.settings = api.settings

    # -- common ---------------------------------------------------------------------------
    def _json(self, what: str, method: str, path: str, body: Any = None, **kw: Any) -> Any:
        def send(sf: Salesforce) -> Any:
            kwargs: dict[str, Any] = {} if body is None else {"json": body}
            return sf.restful(path, method=method, **kwargs)

        return self.api.call(what, send, **kw)

    def _wait(self, kind: str, job_id: str, object: str) -> dict[str, Any]:
        """Poll a job until it is finished; its last info."""
        interval = self.settings.bulk_poll_interval
        deadline = time.monotonic() + self.settings.bulk_timeout
        while True:
            info = self._json(f"Bulk {kind} job {job_id}", "GET", f"jobs/{kind}/{job_id}",
                              object=object)  # fmt: skip
            state = info.get("state")
            if state in ("JobComplete", "Failed", "Aborted"):
                return dict(info)
            if time.monotonic() > deadline:
                self._abort(kind, job_id, object)
                raise RetryableError(
                    f"Bulk {kind} job {job_id} did not finish within "
                    f"{self.settings.bulk_timeout:.0f} s (state {state}); it was aborted",
                    context=self.api.context(object),
                )
            self.api.pause(interval)
            interval = min(MAX_POLL_INTERVAL, interval * 1.5)

    def _abort(self, kind: str, job_id: str, object: str) -> None:
        with contextlib.suppress(RemoteError, RetryableError):
            self._json(f"aborting Bulk {kind} job {job_id}", "PATCH", f"jobs/{kind}/{job_id}",
                       {"state": "Aborted"}, object=object)  # fmt: skip

    # -- query ----------------------------------------------------------------------------
    def query(self, soql: str, object: str, *, include_deleted: bool) -> Iterator[bytes]:
        """The CSV pages of a query job's results."""
        body = {
            "operation": "queryAll" if include_deleted else "query",
            "query": soql,
            "contentType": "CSV",
            "columnDelimiter": "COMMA",
            "lineEnding": "LF",
        }
        job = self._json("creating a Bulk query job", "POST", "jobs/query", body, object=object)
        job_id = str(job["id"])
        info = self._wait("query", job_id, object)
        if info["state"] != "JobComplete":
            raise RemoteError(
                f"Bulk query job {job_id} ended {info['state']}: {info.get('errorMessage')}",
                context=self.api.context(object),
            )
        locator = ""
        while True:
            params: dict[str, Any] = {"maxRecords": self.settings.bulk_page_size}
            if locator:
                params["locator"] = locator

            def page(sf: Salesforce, params: dict[str, Any] = params) -> Any:
                return raw(sf, "GET", f"jobs/query/{job_id}/results", accept=CSV, params=params)

            response = self.api.call(f"results of Bulk query job {job_id}", page, object=object)
            yield response.content
            locator = response.headers.get("Sforce-Locator", "null")
            if not locator or locator == "null":
                return

    # -- ingest ---------------------------------------------------------------------------
    def ingest(
        self, object: str, operation: str, data: bytes, external_id: str | None = None
    ) -> IngestResults:
        """Run one ingest job over ``data`` (CSV, LF line endings) and read its results."""
        for attempt in range(1, UPLOAD_ATTEMPTS + 1):
            job_id = self._create(object, operation, external_id)
            try:
                self._upload(job_id, data, object)
            except (OutcomeUnknownError, RetryableError):
                # the job is still open, so nothing was applied: start again with a new one
                self._abort("ingest", job_id, object)
                if attempt == UPLOAD_ATTEMPTS:
                    raise
                continue
            self._close(job_id, object)
            try:
                info = self._wait("ingest", job_id, object)
                return self._results(job_id, info, object)
            except OutcomeUnknownError:
                raise
            except RetryableError as err:  # the job ran, or some of it: we cannot see what
                raise OutcomeUnknownError(
                    f"{err.message}; the records of Bulk job {job_id} may or may not have "
                    "been applied",
                    context=err.context,
                ) from None
        raise AssertionError("unreachable")  # pragma: no cover

    def _create(self, object: str, operation: str, external_id: str | None) -> str:
        body: dict[str, Any] = {
            "object": object,
            "operation": operation,
            "contentType": "CSV",
            "columnDelimiter": "COMMA",
            "lineEnding": "LF",
        }
        if external_id:
            body["externalIdFieldName"] = external_id
        # creating a job writes no record: a lost answer only leaves an empty job behind
        job = self._json(f"creating a Bulk {operation} job", "POST", "jobs/ingest", body,
                         object=object)  # fmt: skip
        return str(job["id"])

    def _upload(self, job_id: str, data: bytes, object: str) -> None:
        def put(sf: Salesforce) -> Any:
            return raw(sf, "PUT", f"jobs/ingest/{job_id}/batches", content_type=CSV, data=data)

        self.api.call(f"uploading to Bulk job {job_id}", put, changes=True, object=object)

    def _close(self, job_id: str, object: str) -> None:
        what = f"closing Bulk job {job_id}"
        try:
            self._json(what, "PATCH", f"jobs/ingest/{job_id}", {"state": "UploadComplete"},
                       changes=True, object=object)  # fmt: skip
        except OutcomeUnknownError:
            info = self._json(f"Bulk ingest job {job_id}", "GET", f"jobs/ingest/{job_id}",
                              object=object)  # fmt: skip
            if info.get("state") == "Open":  # the close did not arrive: send it again
                self._json(what, "PATCH", f"jobs/ingest/{job_id}", {"state": "UploadComplete"},
                           changes=True, object=object)  # fmt: skip

    def _results(self, job_id: str, info: dict[str, Any], object: str) -> IngestResults:
        def text(kind: str) -> tuple[list[str], list[list[str]]]:
            def get(sf: Salesforce) -> Any:
                return raw(sf, "GET", f"jobs/ingest/{job_id}/{kind}", accept=CSV)

            response = self.api.call(f"{kind} of Bulk job {job_id}", get, object=object)
            return csv_rows(response.content.decode("utf-8-sig"))

        ok_header, ok_rows = text("successfulResults")
        _, failed_rows = text("failedResults")
        _, unprocessed = text("unprocessedrecords")
        header = ok_header[2:]
        return IngestResults(
            job_id=job_id,
            state=str(info.get("state")),
            header=header,
            successful=[(r[0], r[1].lower() == "true", r[2:]) for r in ok_rows],
            failed=[(r[0], r[1], r[2:]) for r in failed_rows],
            unprocessed=unprocessed,
            error=info.get("errorMessage"),
        )
