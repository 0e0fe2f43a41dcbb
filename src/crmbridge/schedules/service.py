"""The scheduler: runs the scheduled profiles at their times, one run per profile at a time.

    service = SchedulerService()          # the crmbridge home's state store
    service.start()                       # checks every 30 s in a background thread
    ...
    service.stop()

Each check (:meth:`SchedulerService.tick`) looks, per schedule, at the scheduled times since
the last check (``handled_until`` in the state store):

* the latest of them, if it is not older than ``grace``, is *on time*: the profile runs;
* older ones were *missed* (the scheduler was down): ``missed: skip`` logs them and does not
  make them up; ``missed: run_once`` runs the profile once now, however many they were.

A profile already running (its lock in the state store is held: by a scheduled run, a
``crmbridge run`` by hand, a worker) is skipped and logged, never queued twice. The times are
claimed in the state store before the run starts, so two schedulers sharing a store never
both run the same time. A run is a ``crmbridge run`` (or ``sync``) subprocess: it records
itself in the run history, and a scheduler stopping does not stop it. With ``queue=True`` it
is submitted to the Celery workers instead (docs/workers.md).
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Protocol

from crmbridge.errors import ConfigError, CrmBridgeError
from crmbridge.profiles.loader import load_profile, load_sync
from crmbridge.profiles.ops_model import Missed, Schedule
from crmbridge.schedules.cron import fires_between, next_fire
from crmbridge.state import HOME_ENV, STATE_URL_ENV, ScheduleRecord, StateStore, lock_name
from crmbridge.sync.run import sync_key

log = logging.getLogger("crmbridge.schedules")

#: seconds between two checks
POLL_SECONDS = 30.0
#: a scheduled time older than this when the scheduler gets to it was missed
GRACE = timedelta(minutes=5)

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Target:
    """What a schedule runs, read from its profile file now."""

    name: str
    path: Path
    kind: str
    schedule: Schedule
    #: the name of the lock its runs hold
    lock: str


def resolve(entry: ScheduleRecord) -> Target:
    """Load the schedule's profile and work out its effective schedule (see :func:`target_of`)."""
    return target_of(
        Path(entry.path),
        entry.kind,
        name=entry.name,
        cron=entry.cron,
        timezone=entry.timezone,
        missed=entry.missed,
    )


def target_of(
    path: Path,
    kind: str,
    *,
    name: str | None = None,
    cron: str | None = None,
    timezone: str | None = None,
    missed: str | None = None,
) -> Target:
    """What a schedule of ``path`` runs: ``cron`` / ``timezone`` / ``missed`` when given, else
    the file's ``schedule:``; ``name`` defaults to the profile's. ProfileError / ConfigError
    when the file cannot be loaded or has no schedule."""
    if kind == "sync":
        loaded_sync = load_sync(path)
        own, lock = loaded_sync.profile.schedule, lock_name(sync_key(loaded_sync))
        default_name = loaded_sync.name
    else:
        loaded = load_profile(path)
        own, lock = loaded.profile.schedule, lock_name(loaded.key)
        default_name = loaded.name
    if cron is None and own is None:
        raise ConfigError(f"{path} has no schedule: (give one with --cron)")
    schedule = Schedule(
        cron=cron or (own.cron if own else ""),
        timezone=timezone or (own.timezone if own else "UTC"),
        missed=Missed(missed) if missed else (own.missed if own else Missed.SKIP),
    )
    return Target(name or default_name, path, kind, schedule, lock)


@dataclass(frozen=True)
class Due:
    """A schedule with scheduled times to deal with now."""

    name: str
    #: the latest scheduled time passed
    fire_at: datetime
    #: scheduled times passed longer ago than the grace (the scheduler was down)
    missed: int
    #: run the profile now (False: only missed times, and the policy is skip)
    run: bool
    target: Target | None
    #: why it cannot run (its profile cannot be loaded, has no schedule)
    problem: str | None = None


@dataclass(frozen=True)
class Fired:
    """What a check did about one due schedule."""

    name: str
    #: started, busy, missed, error
    outcome: str
    message: str


class Started(Protocol):
    def poll(self) -> int | None: ...

    def wait(self, timeout: float | None = None) -> int: ...


class Launcher(Protocol):
    def __call__(self, target: Target, state_url: str, home: Path) -> Started: ...


def subprocess_launcher(target: Target, state_url: str, home: Path) -> Started:
    """Start ``crmbridge run FILE`` (or ``sync FILE``) in a process of its own; its output
    goes to ``<home>/logs/schedules/<name>.log``."""
    folder = home / "logs" / "schedules"
    folder.mkdir(parents=True, exist_ok=True)
    out: IO[bytes] = (folder / f"{_slug(target.name)}.log").open("ab")
    command = "sync" if target.kind == "sync" else "run"
    args = [sys.executable, "-m", "crmbridge", command, str(target.path)]
    if command == "run":
        args.append("--no-progress")
    # the store's URL in the environment, not on the command line: it may hold a password
    env = {**os.environ, HOME_ENV: str(home), STATE_URL_ENV: state_url}
    try:
        return subprocess.Popen(
            args, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env
        )
    finally:
        out.close()


def queue_launcher(target: Target, state_url: str, home: Path) -> Started:
    """Submit the run to the Celery workers (docs/workers.md) instead of running it here."""
    from crmbridge.workers.submit import QueuedJob, submit_run

    return QueuedJob(submit_run(target.path, state_url=state_url), state_url)


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() or c in "._-" else "-" for c in name) or "schedule"


class SchedulerService:
    """Runs the schedules of a state store (see the module's text).

    ``home``: the crmbridge home (default ``$CRMBRIDGE_HOME`` or the platform's folder);
    ``state_url``: the state store (default ``$CRMBRIDGE_STATE_URL``, else the home's SQLite
    file); ``clock``: what "now" is (tests pass a frozen one); ``launcher``: how a run starts
    (default :func:`subprocess_launcher`; ``queue``: :func:`queue_launcher`)."""

    def __init__(
        self,
        home: Path | None = None,
        *,
        state_url: str | None = None,
        clock: Clock = utc_now,
        poll_seconds: float = POLL_SECONDS,
        grace: timedelta = GRACE,
        launcher: Launcher | None = None,
        queue: bool = False,
    ) -> None:
        from crmbridge.state import home_dir

        self.home = Path(home) if home is not None else home_dir()
        if state_url is None:
            configured = os.environ.get(STATE_URL_ENV, "").strip()
            state_url = configured or f"sqlite:///{self.home / 'state.sqlite'}"
        self.state_url = state_url
        self.clock = clock
        self.poll_seconds = poll_seconds
        self.grace = grace
        if launcher is None:
            launcher = queue_launcher if queue else subprocess_launcher
        self.launcher = launcher
        self._state: StateStore | None = None
        self._running: dict[str, Started] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    @property
    def state(self) -> StateStore:
        if self._state is None:
            self.home.mkdir(parents=True, exist_ok=True, mode=0o700)
            self._state = StateStore(self.state_url)
        return self._state

    # -- one check ---------------------------------------------------------------------
    def due(self, now: datetime | None = None) -> list[Due]:
        """The schedules with scheduled times up to ``now`` not dealt with yet."""
        now = now or self.clock()
        found = []
        for entry in self.state.schedules.list():
            try:
                target = resolve(entry)
            except CrmBridgeError as err:
                found.append(Due(entry.name, now, 0, False, None, problem=str(err)))
                continue
            s = target.schedule
            fires = fires_between(s.cron, s.timezone, entry.handled_until, now)
            if not fires:
                continue
            late = [f for f in fires if now - f > self.grace]
            on_time = now - fires[-1] <= self.grace
            run = on_time or s.missed is Missed.RUN_ONCE
            found.append(Due(entry.name, fires[-1], len(late), run, target))
        return found

    def tick(self, now: datetime | None = None) -> list[Fired]:
        """Deal with what is due at ``now``: start runs, skip busy profiles, log missed times."""
        with self._lock:
            now = now or self.clock()
            self._reap()
            return [self._fire(due, now) for due in self.due(now)]

    def _fire(self, due: Due, now: datetime) -> Fired:
        schedules = self.state.schedules
        if due.target is None:
            previous = schedules.get(due.name).last_outcome
            outcome = f"error: {due.problem}"
            schedules.handled(due.name, now, fired_at=None, outcome=outcome)
            schedules.note(due.name, outcome)
            if previous != outcome:
                log.error("schedule %s: %s", due.name, due.problem)
            return Fired(due.name, "error", outcome)
        missed = ""
        if due.missed:
            times = "time" if due.missed == 1 else "times"
            policy = "running once now" if due.run else "skipped"
            missed = f"missed {due.missed} scheduled {times} while the scheduler was down: {policy}"
        if not due.run:
            if schedules.handled(due.name, now, fired_at=due.fire_at, outcome=missed):
                log.warning("schedule %s: %s", due.name, missed)
            return Fired(due.name, "missed", missed)
        busy = self._busy(due.target)
        if busy is not None:
            text = f"skipped the run at {_at(due.fire_at)}: {busy}"
            if schedules.handled(due.name, now, fired_at=due.fire_at, outcome=text):
                log.warning("schedule %s: %s", due.name, text)
            return Fired(due.name, "busy", text)
        if not schedules.handled(due.name, now, fired_at=due.fire_at, outcome="starting"):
            return Fired(due.name, "busy", "another scheduler has just dealt with it")
        try:
            started = self.launcher(due.target, self.state_url, self.home)
        except (OSError, CrmBridgeError) as err:
            schedules.note(due.name, f"error: cannot start the run: {err}")
            log.error("schedule %s: cannot start the run: %s", due.name, err)
            return Fired(due.name, "error", str(err))
        self._running[due.name] = started
        text = f"started the run at {_at(due.fire_at)}" + (f" ({missed})" if missed else "")
        schedules.note(due.name, text)
        log.info(
            "schedule %s: %s of %s",
            due.name,
            text,
            due.target.path,
            extra={"schedule": due.name, "profile_path": str(due.target.path)},
        )
        return Fired(due.name, "started", text)

    def _busy(self, target: Target) -> str | None:
        """Why ``target`` cannot start now (None: it can)."""
        mine = self._running.get(target.name)
        if mine is not None and mine.poll() is None:
            return "its previous scheduled run is still running"
        holder = self.state.locks.holder(target.lock)
        if holder is not None and holder.alive(utc_now()):
            run = f"run {holder.run_id}, " if holder.run_id is not None else ""
            return f"the profile is running ({run}pid {holder.pid} on {holder.host})"
        return None

    def _reap(self) -> None:
        """Note how the runs started earlier ended."""
        for name, started in list(self._running.items()):
            code = started.poll()
            if code is None:
                continue
            del self._running[name]
            ended = _ENDED.get(code, f"ended with exit code {code}")
            try:
                self.state.schedules.note(name, f"last run {ended}")
            except CrmBridgeError:
                continue  # the schedule was removed meanwhile
            level = logging.INFO if code == 0 else logging.WARNING
            log.log(level, "schedule %s: the run %s", name, ended, extra={"schedule": name})

    def wait_runs(self, timeout: float | None = None) -> None:
        """Wait for the runs this service started to end (tests; a clean shutdown)."""
        for started in list(self._running.values()):
            started.wait(timeout)
        with self._lock:
            self._reap()

    # -- the loop ----------------------------------------------------------------------
    def serve_forever(self) -> None:
        """Check now and every ``poll_seconds`` until :meth:`stop` (or Ctrl-C)."""
        log.info("scheduler started: %d schedules in %s", len(self.schedules()), self.state_url)
        while True:
            try:
                self.tick()
            except CrmBridgeError as err:  # the state store is away: try again later
                log.error("scheduler: %s", err)
            if self._stop.wait(self.poll_seconds):
                return

    def start(self) -> None:
        """Run :meth:`serve_forever` in a background thread."""
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._thread = threading.Thread(
            target=self.serve_forever, name="crmbridge-scheduler", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop checking (runs already started go on to their end) and close the store."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        with self._lock:
            if self._state is not None:
                self._state.close()
                self._state = None

    def schedules(self) -> list[ScheduleRecord]:
        return self.state.schedules.list()

    def next_times(self, entry: ScheduleRecord) -> datetime | None:
        """When ``entry`` runs next (None: its profile cannot be loaded)."""
        try:
            s = resolve(entry).schedule
        except CrmBridgeError:
            return None
        return next_fire(s.cron, s.timezone, max(entry.handled_until, self.clock()))


_ENDED = {
    0: "succeeded",
    1: "finished with rejected records",
    2: "stopped: a problem with the profile or a connection",
    3: "failed",
    130: "was interrupted",
}


def _at(when: datetime) -> str:
    return when.strftime("%Y-%m-%d %H:%M UTC")


__all__ = [
    "GRACE",
    "POLL_SECONDS",
    "Due",
    "Fired",
    "Launcher",
    "SchedulerService",
    "Target",
    "queue_launcher",
    "resolve",
    "subprocess_launcher",
    "target_of",
    "utc_now",
]
