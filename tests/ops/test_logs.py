"""Structured logs: --log-format json writes one JSON object per line, with the extras."""

from __future__ import annotations

import io
import json
import logging
import shutil
from collections.abc import Iterator
from importlib import resources
from pathlib import Path

import pytest

from crmbridge.cli.app import main
from crmbridge.ops.logs import LOG_FORMAT_ENV, configure_logging, reset_logging


@pytest.fixture(autouse=True)
def clean(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("CRMBRIDGE_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("CRMBRIDGE_STATE_URL", raising=False)
    monkeypatch.delenv(LOG_FORMAT_ENV, raising=False)
    monkeypatch.chdir(tmp_path)
    yield
    reset_logging()


def _run(args: list[str]) -> int:
    with pytest.raises(SystemExit) as info:
        main(args)
    code = info.value.code
    return code if isinstance(code, int) else 0


def test_a_json_record_has_time_level_logger_message_and_extras() -> None:
    out = io.StringIO()
    assert configure_logging("json", stream=out) == "json"
    logging.getLogger("crmbridge.schedules").warning(
        "schedule %s: busy", "nightly", extra={"schedule": "nightly", "run_id": 4}
    )
    (line,) = out.getvalue().splitlines()
    record = json.loads(line)
    assert record["level"] == "warning"
    assert record["logger"] == "crmbridge.schedules"
    assert record["message"] == "schedule nightly: busy"
    assert (record["schedule"], record["run_id"]) == ("nightly", 4)
    assert record["time"].endswith("+00:00")


def test_the_format_comes_from_the_environment_or_the_settings_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = io.StringIO()
    (tmp_path / "home").mkdir()
    (tmp_path / "home" / "settings.yaml").write_text("log_format: json\n")
    assert configure_logging(stream=out) == "json"
    monkeypatch.setenv(LOG_FORMAT_ENV, "text")
    assert configure_logging(stream=out) == "text"
    logging.getLogger("crmbridge.x").info("hello")
    assert out.getvalue().rstrip().endswith("INFO crmbridge.x: hello")


def test_a_run_with_log_format_json_logs_how_it_ended(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "example"
    with resources.as_file(resources.files("crmbridge") / "examples") as path:
        shutil.copytree(path, folder, ignore=shutil.ignore_patterns("__*"))
    profile = folder / "contacts-to-sqlite.yaml"
    assert _run(["--log-format", "json", "run", str(profile), "--no-progress"]) == 0
    lines = [json.loads(x) for x in capsys.readouterr().err.splitlines() if x.startswith("{")]
    (ended,) = [x for x in lines if x.get("event") == "run_ended"]
    assert ended["logger"] == "crmbridge.run"
    assert ended["status"] == "succeeded"
    assert ended["profile"] == "contacts-to-sqlite"
    assert ended["counts"]["created"] == 134
    assert isinstance(ended["run_id"], int)


def test_an_unknown_log_format_is_one_line_and_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert _run(["--log-format", "xml", "history"]) == 2
    err = capsys.readouterr().err
    assert "the log format is text or json, not 'xml'" in err
    assert "Traceback" not in err
