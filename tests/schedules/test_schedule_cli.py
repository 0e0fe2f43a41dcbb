"""``crmbridge schedule add|list|remove``: what they store and what they refuse."""

from __future__ import annotations

import json
import shutil
from importlib import resources
from pathlib import Path

import pytest

from crmbridge.cli.app import main


def _run(args: list[str]) -> int:
    with pytest.raises(SystemExit) as info:
        main(args)
    code = info.value.code
    return code if isinstance(code, int) else 0


@pytest.fixture
def profile(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CRMBRIDGE_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("CRMBRIDGE_STATE_URL", raising=False)
    folder = tmp_path / "example"
    with resources.as_file(resources.files("crmbridge") / "examples") as path:
        shutil.copytree(path, folder, ignore=shutil.ignore_patterns("__*"))
    return folder / "contacts-to-sqlite.yaml"


def test_add_list_and_remove_a_schedule(profile: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["schedule", "add", str(profile), "--cron", "0 2 * * *"]
    assert _run([*args, "--timezone", "Europe/Berlin", "--missed", "run_once"]) == 0
    out = capsys.readouterr().out
    assert "schedule contacts-to-sqlite:" in out
    assert "'0 2 * * *' (Europe/Berlin, missed: run_once)" in out
    assert _run(["schedule", "list", "--json"]) == 0
    (entry,) = json.loads(capsys.readouterr().out)
    assert entry["name"] == "contacts-to-sqlite"
    assert entry["cron"] == "0 2 * * *"
    assert entry["timezone"] == "Europe/Berlin"
    assert entry["missed"] == "run_once"
    assert entry["next"].endswith(("T00:00:00+00:00", "T01:00:00+00:00"))  # 02:00 in Berlin
    assert _run(["schedule", "list"]) == 0
    assert "contacts-to-sqlite" in capsys.readouterr().out
    assert _run(["schedule", "remove", "contacts-to-sqlite"]) == 0
    assert _run(["schedule", "list"]) == 0
    assert "No schedules" in capsys.readouterr().out


def test_the_profiles_own_schedule_is_used_when_add_gives_none(
    profile: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    profile.write_text(profile.read_text() + '\nschedule: {cron: "15 6 * * 1-5"}\n')
    assert _run(["schedule", "add", str(profile), "--name", "weekdays"]) == 0
    assert "schedule weekdays:" in capsys.readouterr().out
    assert _run(["schedule", "list", "--json"]) == 0
    (entry,) = json.loads(capsys.readouterr().out)
    assert (entry["cron"], entry["timezone"], entry["missed"]) == ("15 6 * * 1-5", "UTC", "skip")


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ([], "has no schedule: (give one with --cron)"),
        (["--cron", "every night"], "not a cron expression: 'every night'"),
        (["--cron", "0 2 * * *", "--timezone", "Mars/Olympus"], "unknown time zone"),
        (["--cron", "0 2 * * *", "--missed", "twice"], "--missed takes skip or run_once"),
    ],
)
def test_a_wrong_schedule_is_one_line_and_exit_2(
    profile: Path, capsys: pytest.CaptureFixture[str], extra: list[str], message: str
) -> None:
    assert _run(["schedule", "add", str(profile), *extra]) == 2
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err


def test_removing_an_unknown_schedule_names_the_known_ones(
    profile: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _run(["schedule", "add", str(profile), "--cron", "0 2 * * *"]) == 0
    assert _run(["schedule", "remove", "nightly"]) == 2
    assert "no schedule named 'nightly' (schedules: contacts-to-sqlite)" in capsys.readouterr().err


def test_schedule_run_checks_until_sigterm_and_stops_cleanly(profile: Path) -> None:
    import os
    import signal
    import subprocess
    import sys

    args = [sys.executable, "-m", "crmbridge", "schedule", "run", "--poll", "1"]
    process = subprocess.Popen(
        args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=dict(os.environ)
    )
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        assert "scheduler: 0 schedule(s) in sqlite:///" in first
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0
    assert "scheduler stopped" in out
    assert "scheduler started: 0 schedules" in err
