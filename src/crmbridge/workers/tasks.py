"""What a worker does with a task: run a profile, a sync or one partition, exactly once.

A task can arrive twice: redelivered after its worker was killed mid-way, or after it ended
but before the broker got the acknowledgement. Neither writes anything twice:

* the task's outcome is kept in the state store under its job (``jobs`` scope, key
  ``<job>/<part>``) when the run ends; a task whose outcome is there already is not run again;
* otherwise the run is a normal run of the profile (or of the partition, a profile of its
  own): it takes the profile's lock (the killed worker's lock is taken over: its process is
  gone, or its heartbeat stops), marks the killed run ``interrupted`` and continues where it
  stood, carrying out the batch in flight again (the target confirms what was applied). So
  nothing is lost and nothing is written twice.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from crmbridge.connections import ConnectionStore
from crmbridge.errors import CrmBridgeError
from crmbridge.ops.notify import RunEvent, run_ended
from crmbridge.profiles.loader import load_profile, load_sync
from crmbridge.profiles.ops_model import Notify
from crmbridge.runner import run_profile
from crmbridge.state import StateStore
from crmbridge.sync import SyncOptions, run_sync
from crmbridge.workers.partitions import Partition, partition_profile

log = logging.getLogger("crmbridge.workers")

#: the key/value scope of jobs and their tasks' outcomes
JOBS = "jobs"


@dataclass(frozen=True)
class Spec:
    """One task: which profile file, with which parameters, which part of it, for which job."""

    job: str
    #: 1-based; 1 of 1 for a run that is not partitioned
    part: int
    path: str
    kind: str
    state_url: str
    params: dict[str, str] = field(default_factory=dict)
    partition: Partition | None = None

    @property
    def key(self) -> str:
        return f"{self.job}/{self.part}"

    def as_json(self) -> dict[str, Any]:
        return {
            "job": self.job,
            "part": self.part,
            "path": self.path,
            "kind": self.kind,
            "state_url": self.state_url,
            "params": self.params,
            "partition": self.partition.as_json() if self.partition else None,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Spec:
        part = data.get("partition")
        return cls(
            job=str(data["job"]),
            part=int(data["part"]),
            path=str(data["path"]),
            kind=str(data["kind"]),
            state_url=str(data["state_url"]),
            params={str(k): str(v) for k, v in (data.get("params") or {}).items()},
            partition=Partition.from_json(part) if part else None,
        )


def execute(spec: Spec) -> dict[str, Any]:
    """Run ``spec`` unless its job has its outcome already; the outcome (also kept in the
    state store): run id, status, counts, error. Logs it and sends the notifications."""
    with StateStore(spec.state_url) as state:
        done = state.get_value(JOBS, spec.key)
        if done is not None:
            log.info("task %s ran already (run %s): not run again", spec.key, done.get("run_id"))
            return dict(done)
        own: Notify | None = None
        try:
            outcome, own = _run(spec, state)
        except CrmBridgeError as err:  # the profile or a connection is wrong: no retry helps
            outcome = {"run_id": None, "status": "failed", "counts": {}, "error": str(err)}
        outcome["ended_at"] = datetime.now(UTC).isoformat()
        state.set_value(JOBS, spec.key, outcome)
    event = RunEvent(
        profile=str(outcome.get("name") or Path(spec.path).stem),
        kind=spec.kind,
        run_id=outcome["run_id"],
        status=outcome["status"],
        counts=outcome["counts"],
        error=outcome["error"],
        error_file=outcome.get("error_file"),
    )
    run_ended(event, own)
    return outcome


def _run(spec: Spec, state: StateStore) -> tuple[dict[str, Any], Notify | None]:
    path = Path(spec.path)
    connections = ConnectionStore()
    if spec.kind == "sync":
        loaded_sync = load_sync(path, spec.params)
        synced = run_sync(
            loaded_sync,
            connections=connections,
            state=state,
            options=SyncOptions(wait=True),
        )
        outcome = {
            "run_id": synced.run_id,
            "name": synced.name,
            "status": synced.status.value,
            "counts": dict(synced.counts),
            "error": synced.error,
        }
        return outcome, loaded_sync.profile.notify
    loaded = load_profile(path, spec.params)
    if spec.partition is not None:
        loaded = partition_profile(loaded, spec.partition)
    summary = run_profile(loaded, connections=connections, state=state, wait=True)
    outcome = {
        "run_id": summary.run_id,
        "name": summary.profile,
        "status": summary.status.value,
        "counts": dict(summary.counts),
        "error": summary.error,
        "error_file": str(summary.error_file) if summary.error_file else None,
    }
    return outcome, loaded.profile.notify


__all__ = ["JOBS", "Spec", "execute"]
