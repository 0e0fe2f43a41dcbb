"""The scheduler service with a frozen clock: on time, missed times, busy profiles, real runs."""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path

import pytest

from crmbridge.errors import ProfileError
from crmbridge.profiles.loader import load_profile
from crmbridge.schedules.service import SchedulerService, Target
from crmbridge.state import RunStatus, StateStore, lock_name

T0 = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


class Clock:
    """A frozen clock that a test moves by hand."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


@dataclass
class Done:
    code: int = 0

    def poll(self) -> int | None:
        return self.code

    def wait(self, timeout: float | None = None) -> int:
        return self.code


@dataclass
class Recorder:
    """A launcher that only records what it was asked to start."""

    started: list[str] = field(default_factory=list)

    def __call__(self, target: Target, state_url: str, home: Path) -> Done:
        self.started.append(target.name)
        return Done()


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CRMBRIDGE_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("CRMBRIDGE_STATE_URL", raising=False)
    return tmp_path / "home"


@pytest.fixture
def profile(tmp_path: Path) -> Path:
    """The bundled example (CSV into SQLite), scheduled at minute 0 of every hour, Berlin."""
    folder = tmp_path / "example"
    with resources.as_file(resources.files("crmbridge") / "examples") as path:
        shutil.copytree(path, folder, ignore=shutil.ignore_patterns("__*"))
    file = folder / "contacts-to-sqlite.yaml"
    text = file.read_text()
    file.write_text(text + '\nschedule: {cron: "0 * * * *", timezone: Europe/Berlin}\n')
    return file


def _service(home: Path, clock: Clock, launcher: Recorder | None = None) -> SchedulerService:
    return SchedulerService(home, clock=clock, launcher=launcher)


def _add(service: SchedulerService, path: Path, **settings: str) -> None:
    service.state.schedules.add(
        settings.pop("name", "hourly"),
        path=str(path),
        kind="transfer",
        cron=settings.get("cron"),
        timezone=settings.get("timezone"),
        missed=settings.get("missed"),
        now=service.clock(),
    )


def test_a_profile_runs_at_its_scheduled_time_and_not_before(home: Path, profile: Path) -> None:
    clock, recorder = Clock(T0 + timedelta(minutes=10)), Recorder()
    service = _service(home, clock, recorder)
    _add(service, profile)
    assert service.due() == []
    assert service.tick() == []
    clock.advance(minutes=49, seconds=59)  # 12:59:59
    assert service.tick() == []
    clock.advance(seconds=1)  # 13:00: minute 0 of the hour
    fired = service.tick()
    assert [(f.name, f.outcome) for f in fired] == [("hourly", "started")]
    assert recorder.started == ["hourly"]
    assert service.tick() == []  # that time is dealt with
    clock.advance(minutes=61)
    assert [f.outcome for f in service.tick()] == ["started"]
    service.wait_runs()  # notes how the run ended
    entry = service.state.schedules.get("hourly")
    assert entry.last_fired_at == T0 + timedelta(hours=2)
    assert entry.last_outcome == "last run succeeded"
    service.stop()


def test_the_cron_of_schedule_add_overrides_the_profiles_own(home: Path, profile: Path) -> None:
    clock, recorder = Clock(T0), Recorder()
    service = _service(home, clock, recorder)
    _add(service, profile, cron="30 14 * * *", timezone="UTC")
    clock.advance(hours=1)  # 13:00: the profile's own time, not the schedule's
    assert service.tick() == []
    clock.advance(hours=1, minutes=30)  # 14:30 UTC
    assert [f.outcome for f in service.tick()] == ["started"]
    service.stop()


def test_times_missed_while_down_are_skipped_by_default(
    home: Path, profile: Path, caplog: pytest.LogCaptureFixture
) -> None:
    clock, recorder = Clock(T0), Recorder()
    service = _service(home, clock, recorder)
    _add(service, profile)
    clock.advance(hours=5, minutes=20)  # 13:00 ... 17:00 passed while down
    with caplog.at_level(logging.WARNING, "crmbridge.schedules"):
        fired = service.tick()
    assert [f.outcome for f in fired] == ["missed"]
    assert recorder.started == []
    assert "missed 5 scheduled times while the scheduler was down: skipped" in caplog.text
    clock.advance(minutes=40)  # 18:00 is on time again
    assert [f.outcome for f in service.tick()] == ["started"]
    service.stop()


def test_times_missed_while_down_are_run_once_when_the_policy_says_so(
    home: Path, profile: Path
) -> None:
    clock, recorder = Clock(T0), Recorder()
    service = _service(home, clock, recorder)
    _add(service, profile, missed="run_once")
    clock.advance(hours=5, minutes=20)
    fired = service.tick()
    assert [f.outcome for f in fired] == ["started"]
    assert "missed 5 scheduled times while the scheduler was down: running once now" in (
        fired[0].message
    )
    assert recorder.started == ["hourly"]  # once, not five times
    assert service.tick() == []
    service.stop()


def test_a_time_reached_a_little_late_is_on_time(home: Path, profile: Path) -> None:
    clock, recorder = Clock(T0), Recorder()
    service = _service(home, clock, recorder)
    _add(service, profile)
    clock.advance(hours=1, minutes=4)  # within the grace of five minutes
    assert [f.outcome for f in service.tick()] == ["started"]
    service.stop()


def test_a_busy_profile_is_skipped_and_logged_not_queued(
    home: Path, profile: Path, caplog: pytest.LogCaptureFixture
) -> None:
    clock, recorder = Clock(T0), Recorder()
    service = _service(home, clock, recorder)
    _add(service, profile)
    # a run of the profile by hand holds its lock (this process, alive, fresh heartbeat)
    held = service.state.locks.acquire(lock_name(load_profile(profile).key))
    clock.advance(hours=1)
    with caplog.at_level(logging.WARNING, "crmbridge.schedules"):
        fired = service.tick()
    assert [f.outcome for f in fired] == ["busy"]
    assert "skipped the run at 2026-06-01 13:00 UTC: the profile is running" in caplog.text
    assert recorder.started == []
    service.state.locks.release(held)  # type: ignore[arg-type]
    assert service.tick() == []  # the skipped time is not made up when the lock goes
    clock.advance(hours=1)
    assert [f.outcome for f in service.tick()] == ["started"]
    service.stop()


def test_its_own_run_still_going_makes_the_next_time_busy(home: Path, profile: Path) -> None:
    class Running(Done):
        def poll(self) -> int | None:
            return None

    clock = Clock(T0)
    service = SchedulerService(home, clock=clock, launcher=lambda target, url, home: Running())
    _add(service, profile)
    clock.advance(hours=1)
    assert [f.outcome for f in service.tick()] == ["started"]
    clock.advance(hours=1)
    fired = service.tick()
    assert [f.outcome for f in fired] == ["busy"]
    assert "its previous scheduled run is still running" in fired[0].message
    service.stop()


def test_two_schedulers_on_one_store_run_a_time_once(home: Path, profile: Path) -> None:
    clock, first, second = Clock(T0), Recorder(), Recorder()
    one, two = _service(home, clock, first), _service(home, clock, second)
    _add(one, profile)
    clock.advance(hours=1)
    due = two.due()
    assert len(due) == 1
    one.tick()
    assert [f.outcome for f in two.tick()] == []  # already dealt with
    assert two._fire(due[0], clock()).outcome == "busy"  # a race: the claim fails
    assert first.started == ["hourly"]
    assert second.started == []
    one.stop()
    two.stop()


def test_a_profile_that_no_longer_loads_is_reported_once(
    home: Path, profile: Path, caplog: pytest.LogCaptureFixture
) -> None:
    clock, recorder = Clock(T0), Recorder()
    service = _service(home, clock, recorder)
    _add(service, profile)
    profile.write_text("source: [\n")
    with caplog.at_level(logging.ERROR, "crmbridge.schedules"):
        assert [f.outcome for f in service.tick()] == ["error"]
        clock.advance(minutes=1)
        assert [f.outcome for f in service.tick()] == ["error"]
    assert caplog.text.count("schedule hourly:") == 1
    assert service.state.schedules.get("hourly").last_outcome.startswith("error: ")  # type: ignore[union-attr]
    service.stop()


def test_a_bad_cron_in_a_profile_is_a_profile_error_with_its_line(profile: Path) -> None:
    text = profile.read_text().replace('"0 * * * *"', '"0 25 * * *"')
    profile.write_text(text)
    with pytest.raises(ProfileError) as info:
        load_profile(profile)
    assert "schedule.cron" in str(info.value)
    assert "not a cron expression" in str(info.value)


def test_the_scheduled_run_is_a_real_run_in_the_history(home: Path, profile: Path) -> None:
    clock = Clock(T0)
    service = SchedulerService(home, clock=clock)
    _add(service, profile)
    clock.advance(hours=1)
    assert [f.outcome for f in service.tick()] == ["started"]
    service.wait_runs(timeout=120)
    assert service.state.schedules.get("hourly").last_outcome == "last run succeeded"
    with StateStore(service.state_url) as state:
        (run,) = state.list_runs()
    assert run.status is RunStatus.SUCCEEDED
    assert run.counts["created"] == 134
    log = (home / "logs" / "schedules" / "hourly.log").read_text()
    assert "contacts-to-sqlite: succeeded" in log
    service.stop()


def test_start_runs_the_checks_in_a_background_thread_until_stop(home: Path, profile: Path) -> None:
    clock, recorder = Clock(T0), Recorder()
    service = SchedulerService(home, clock=clock, launcher=recorder, poll_seconds=0.05)
    _add(service, profile)
    clock.advance(hours=1)
    service.start()
    for _ in range(200):
        if recorder.started:
            break
        threading_sleep(0.02)
    service.stop()
    assert recorder.started == ["hourly"]
    assert service._thread is None


def threading_sleep(seconds: float) -> None:
    import threading

    threading.Event().wait(seconds)


def test_a_sync_profile_is_scheduled_under_its_syncs_lock(tmp_path: Path) -> None:
    from crmbridge.profiles.loader import load_sync, profile_kind
    from crmbridge.profiles.model import json_schema
    from crmbridge.profiles.sync_model import json_schema as sync_schema
    from crmbridge.schedules.service import target_of
    from crmbridge.sync.run import sync_key

    path = tmp_path / "suppliers.yaml"
    path.write_text(
        """
a: {connection: warehouse, object: suppliers}
b: {connection: crm, object: Accounts}
link: {a: [vat_id], b: [sic_code]}
fields: [{a: name, b: name}]
schedule: {cron: "*/20 6-18 * * 1-5", timezone: Europe/Paris, missed: run_once}
notify: {email: [ops@example.com]}
"""
    )
    assert profile_kind(path) == "sync"
    target = target_of(path, "sync")
    assert target.lock == lock_name(sync_key(load_sync(path)))
    assert target.name == "suppliers"
    assert (target.schedule.cron, target.schedule.timezone) == ("*/20 6-18 * * 1-5", "Europe/Paris")
    assert target.schedule.missed.value == "run_once"
    for schema in (json_schema(), sync_schema()):
        assert {"schedule", "notify"} <= set(schema["properties"])
