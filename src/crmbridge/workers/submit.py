"""Submitting runs to the Celery workers: a *job* of one task, or one task per partition.

    job = submit_run(Path("leads.yaml"), partitions=4, by="id", state_url=POSTGRES_URL)
    ...
    job_outcomes(state, job.id)   # the outcome of each task, None while it has not ended

The state store must be one every worker reaches (PostgreSQL); the profile file and the
connections it names must be readable by every worker (the same path, the same crmbridge
home or a copy of it). Before the tasks are sent, the target is created when the profile
says ``create: true`` (so the partitions do not race to create it) and, for partitions, the
partition field's values are read once to cut ranges of about the same size.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa

from crmbridge.connections import ConnectionStore
from crmbridge.errors import ConfigError, ConnectionFailedError
from crmbridge.profiles.loader import LoadedProfile, load_profile, profile_kind
from crmbridge.runner.prepare import prepare
from crmbridge.state import StateStore
from crmbridge.workers.app import default_queue, use_broker
from crmbridge.workers.partitions import Partition, key_ranges
from crmbridge.workers.tasks import JOBS, Spec

#: rows per read of the partition field's values
_KEY_BATCH = 100_000


@dataclass(frozen=True)
class Job:
    id: str
    name: str
    tasks: list[Spec]


def submit_run(
    path: Path,
    *,
    state_url: str,
    params: dict[str, str] | None = None,
    partitions: int = 1,
    by: str | None = None,
    broker: str | None = None,
    queue: str | None = None,
) -> Job:
    """Send the run of the profile (or sync) at ``path`` to the workers, cut in up to
    ``partitions`` key ranges of field ``by`` (default: the profile's ``source.key``), on
    ``queue`` (default: :func:`~crmbridge.workers.app.default_queue`)."""
    if not state_url.startswith("postgresql"):
        raise ConfigError(
            "runs on workers need a state store every worker reaches: set "
            "CRMBRIDGE_STATE_URL (or --state-url) to a PostgreSQL URL"
        )
    path = path.resolve()
    kind = profile_kind(path)
    params = dict(params or {})
    job = uuid.uuid4().hex[:12]
    if kind == "sync":
        if partitions > 1:
            raise ConfigError("a sync runs as one task: --partitions is for transfer profiles")
        name = path.stem
        specs = [Spec(job, 1, str(path), kind, state_url, params)]
    else:
        loaded = load_profile(path, params)
        name = loaded.name
        ranges = _ranges(loaded, partitions, by)
        specs = [
            Spec(
                job,
                index,
                str(path),
                kind,
                state_url,
                params,
                Partition(index, len(ranges), _field(loaded, by), low, high)
                if len(ranges) > 1
                else None,
            )
            for index, (low, high) in enumerate(ranges, start=1)
        ]
    with StateStore(state_url) as state:
        state.set_value(
            JOBS,
            job,
            {"name": name, "path": str(path), "tasks": len(specs), "at": _now()},
        )
    send(specs, broker=broker, queue=queue or default_queue())
    return Job(job, name, specs)


def send(specs: list[Spec], *, broker: str | None, queue: str) -> None:
    """Publish one task per spec; a broker that cannot be reached is one clear error."""
    from kombu.exceptions import OperationalError

    app = use_broker(broker)
    url = app.conf.broker_url
    try:  # a connection of its own: the app's pool may still talk to another broker
        with app.connection_for_write(url) as conn:
            conn.ensure_connection(max_retries=1)
            for spec in specs:
                app.send_task(
                    "crmbridge.run",
                    args=[spec.as_json()],
                    queue=queue,
                    connection=conn,
                    retry=False,
                )
    except (OperationalError, OSError) as err:
        where = url.split("@")[-1]
        raise ConnectionFailedError(f"cannot reach the broker at {where}: {err}") from None


def job_outcomes(state: StateStore, job: str) -> list[dict[str, Any] | None]:
    """The outcome of each task of ``job`` (None: not ended yet)."""
    info = state.get_value(JOBS, job)
    if info is None:
        raise ConfigError(f"no job {job!r} in the state store {state.url}")
    return [state.get_value(JOBS, f"{job}/{part}") for part in range(1, int(info["tasks"]) + 1)]


class QueuedJob:
    """A submitted job seen as a process: ``poll()`` is None until every task has ended, then
    the exit code ``crmbridge run`` would have given (the scheduler's queue mode)."""

    def __init__(self, job: Job, state_url: str) -> None:
        self.job = job
        self.state_url = state_url

    def poll(self) -> int | None:
        with StateStore(self.state_url) as state:
            outcomes = job_outcomes(state, self.job.id)
        if any(o is None for o in outcomes):
            return None
        statuses = {str(o["status"]) for o in outcomes if o is not None}
        if statuses & {"failed", "interrupted"}:
            return 3
        return 1 if "finished_with_rejects" in statuses else 0

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while (code := self.poll()) is None:
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"job {self.job.id} has not ended after {timeout} s")
            time.sleep(1.0)
        return code


def _field(loaded: LoadedProfile, by: str | None) -> str:
    if by:
        return by
    key = loaded.profile.source.key
    if key and len(key) == 1:
        return key[0]
    raise ConfigError(
        "--partitions needs the field to cut the records by: give --partition-by FIELD "
        "(a field that identifies a record, e.g. id)"
    )


def _ranges(loaded: LoadedProfile, partitions: int, by: str | None) -> list[tuple[Any, Any]]:
    """The key ranges of the partitions; a single unbounded one without partitions. Creates a
    missing target the profile asks for, either way."""
    prepared = prepare(loaded, ConnectionStore(), create=True)
    try:
        if partitions <= 1:
            return [(None, None)]
        field = _field(loaded, by)
        if field not in prepared.source_schema.field_names:
            known = ", ".join(prepared.source_schema.field_names)
            raise ConfigError(f"--partition-by {field}: the source has no such field ({known})")
        request = replace(prepared.read, fields=[field], batch_size=_KEY_BATCH)
        chunks = [batch.column(0) for batch in prepared.source.read(request)]
        values = pa.chunked_array(chunks) if chunks else pa.chunked_array([], pa.null())
        wanted = prepared.source_types.get(field)
        if wanted is not None:
            try:
                values = values.cast(wanted)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as err:
                raise ConfigError(f"--partition-by {field}: {err}") from None
        return key_ranges(values, partitions)
    finally:
        prepared.close()


def _now() -> str:
    return datetime.now(UTC).isoformat()


__all__ = ["Job", "QueuedJob", "job_outcomes", "send", "submit_run"]
