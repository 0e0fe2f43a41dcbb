"""A job's live figures: records per second and the time left."""

from __future__ import annotations

import time

import pytest

from crmbridge.runner.engine import Progress
from crmbridge.web.jobs import Job


def test_rate_and_eta_from_the_progress(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [1000.0]
    monkeypatch.setattr(time, "monotonic", lambda: now[0])
    job = Job(1, "run", "p.yaml")
    now[0] += 2.0
    job.progress(Progress(read=600, done=500, total=2000))
    assert job.rate == 250.0
    assert job.eta == 6.0  # 1500 left at 250/s
    job.progress(Progress(read=600, done=500, total=None))
    assert job.eta is None  # the source did not say how many it has
    job.state, job.ended = "done", now[0]
    now[0] += 60.0
    assert job.seconds == 2.0  # the clock stops when the job ends
    assert job.eta is None


def test_no_rate_before_any_time_passed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(time, "monotonic", lambda: 5.0)
    job = Job(1, "run", "p.yaml")
    job.progress(Progress(done=10, total=20))
    assert job.rate == 0.0
    assert job.eta is None
