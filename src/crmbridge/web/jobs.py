"""Runs started from the UI: each in its own thread, with its progress for the page to poll.

A job calls the library exactly as the command line does (``run_profile``, ``run_sync``) with
its own state store; the run itself is recorded in the run history as any other run.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from crmbridge.connections import ConnectionStore
from crmbridge.errors import CrmBridgeError
from crmbridge.profiles.loader import load_profile, load_sync
from crmbridge.runner import run_profile
from crmbridge.runner.engine import Progress
from crmbridge.state import StateStore
from crmbridge.sync import SyncOptions, run_sync


@dataclass
class Job:
    id: int
    kind: str  # "run", "dry run", "sync", "sync dry run"
    profile: str  # the profile's path in the folder
    started: float = field(default_factory=lambda: time.monotonic())
    state: str = "running"  # running, done, failed
    read: int = 0
    done: int = 0
    total: int | None = None
    ended: float | None = None
    run_id: int | None = None
    status: str | None = None
    counts: dict[str, int] = field(default_factory=dict)
    error: str | None = None
    #: what the page shows when the job ended (a sync's link plan, ...)
    result: dict[str, Any] = field(default_factory=dict)

    @property
    def seconds(self) -> float:
        return (self.ended or time.monotonic()) - self.started

    @property
    def rate(self) -> float:
        """Records per second so far."""
        return self.done / self.seconds if self.seconds > 0 else 0.0

    @property
    def eta(self) -> float | None:
        """Seconds left, when the source told how many records it has."""
        if self.state != "running" or self.total is None or self.rate <= 0:
            return None
        return max(self.total - self.done, 0) / self.rate

    def progress(self, progress: Progress) -> None:
        self.read, self.done, self.total = progress.read, progress.done, progress.total


class Jobs:
    """The jobs of one server, newest last."""

    def __init__(self, state_url: str | None) -> None:
        self._state_url = state_url
        self._jobs: dict[int, Job] = {}
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    def get(self, job_id: int) -> Job | None:
        return self._jobs.get(job_id)

    def all(self) -> list[Job]:
        return list(self._jobs.values())

    def start_run(self, path: Path, label: str, *, dry_run: bool) -> Job:
        def work(job: Job, state: StateStore) -> None:
            loaded = load_profile(path, defer_unknown_settings=True)
            summary = run_profile(
                loaded,
                connections=ConnectionStore(),
                state=state,
                dry_run=dry_run,
                on_progress=job.progress,
            )
            job.run_id, job.status, job.error = summary.run_id, summary.status.value, summary.error
            job.counts = {k: v for k, v in summary.counts.items() if v}
            job.done = summary.records

        return self._start("dry run" if dry_run else "run", label, work)

    def start_sync(self, path: Path, label: str, *, dry_run: bool, accept_links: bool) -> Job:
        def work(job: Job, state: StateStore) -> None:
            options = SyncOptions(dry_run=dry_run, accept_links=accept_links)
            summary = run_sync(
                load_sync(path), connections=ConnectionStore(), state=state, options=options
            )
            job.run_id, job.status, job.error = summary.run_id, summary.status.value, summary.error
            job.counts = {k: v for k, v in summary.counts.items() if v}
            report = summary.report
            job.result = {
                "links": report.links[:500],
                "held": report.holds[:500],
                "writes": [vars(line) for line in report.lines[:500]],
                "conflicts": report.conflicts[:500],
            }

        return self._start("sync dry run" if dry_run else "sync", label, work)

    def _start(self, kind: str, label: str, work: Callable[[Job, StateStore], None]) -> Job:
        with self._lock:
            job = Job(next(self._ids), kind, label)
            self._jobs[job.id] = job

        def target() -> None:
            try:
                with StateStore(self._state_url) as state:
                    work(job, state)
                job.state = "failed" if job.error else "done"
            except CrmBridgeError as err:
                job.state, job.error = "failed", str(err)
            except Exception as err:  # shown on the job's page rather than lost in a thread
                job.state, job.error = "failed", f"internal error {type(err).__name__}: {err}"
            finally:
                job.ended = time.monotonic()

        threading.Thread(target=target, name=f"crmbridge-job-{job.id}", daemon=True).start()
        return job
