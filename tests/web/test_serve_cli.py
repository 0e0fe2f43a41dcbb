"""``crmbridge serve`` refuses what would expose the UI, in one line and exit code 2."""

from __future__ import annotations

from pathlib import Path

import pytest

from crmbridge.cli.app import main


def _run(args: list[str]) -> int:
    with pytest.raises(SystemExit) as info:
        main(args)
    code = info.value.code
    return code if isinstance(code, int) else 0


def test_a_public_host_without_https_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _run(["serve", "--host", "0.0.0.0", "--dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "--cert" in err
    assert "--insecure-public" in err
    assert "Traceback" not in err


def test_a_missing_folder_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _run(["serve", "--dir", str(tmp_path / "nowhere")]) == 2
    assert "no such folder" in capsys.readouterr().err


def test_help_names_the_security_options(capsys: pytest.CaptureFixture[str]) -> None:
    assert _run(["serve", "--help"]) == 0
    out = capsys.readouterr().out
    for option in ("--host", "--cert", "--key", "--insecure-public", "--dir"):
        assert option in out


def test_without_the_web_extra_one_line_says_what_to_install(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "uvicorn", None)  # as if it were not installed
    assert _run(["serve", "--dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "pip install 'crmbridge[web]'" in err
    assert "Traceback" not in err
