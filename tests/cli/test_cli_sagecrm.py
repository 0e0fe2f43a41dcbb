"""The command line against the Sage CRM sandbox: `connection test`, `describe`."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from crmbridge.cli.app import main
from crmbridge.sandbox.sagecrm import RunningServer, SageSandbox


def _run(args: list[str]) -> int:
    with pytest.raises(SystemExit) as info:
        main(args)
    code = info.value.code
    return code if isinstance(code, int) else 0


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CRMBRIDGE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("CRMBRIDGE_PASSPHRASE", "test passphrase")
    monkeypatch.setenv("CRMBRIDGE_SECRET_PASSWORD", "admin")
    monkeypatch.delenv("CRMBRIDGE_STATE_URL", raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path / "home"


@pytest.fixture
def server() -> Iterator[RunningServer]:
    box = SageSandbox(companies=3)
    with box.serve() as running:
        yield running
    box.close()


def _add(server: RunningServer, name: str, api: str) -> None:
    args = ["connection", "add", name, "--type", "sagecrm", "--set", f"url={server.url}"]
    assert _run([*args, "--set", "username=admin", "--set", f"api={api}"]) == 0


def test_connection_test_shows_the_version_string_the_api_and_the_user(
    server: RunningServer, capsys: pytest.CaptureFixture[str]
) -> None:
    _add(server, "crm", "soap")
    capsys.readouterr()
    assert _run(["connection", "test", "crm"]) == 0
    out = capsys.readouterr().out
    assert "crm: connected to Sage CRM 2024 R2" in out
    assert "version string: Sage CRM 2024 R2" in out
    assert "api: soap" in out
    assert "user: admin" in out


def test_connection_test_over_rest_says_the_version_is_not_reported(
    server: RunningServer, capsys: pytest.CaptureFixture[str]
) -> None:
    _add(server, "crm", "rest")
    capsys.readouterr()
    assert _run(["connection", "test", "crm"]) == 0
    out = capsys.readouterr().out
    assert "crm: connected to Sage CRM" in out
    assert "api: rest" in out
    assert "user: admin" in out
    assert "version string: not reported" in out


def test_a_wrong_password_is_one_line_and_exit_2_or_3(
    server: RunningServer, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CRMBRIDGE_SECRET_PASSWORD", "wrong")
    _add(server, "crm", "soap")
    capsys.readouterr()
    code = _run(["connection", "test", "crm"])
    err = capsys.readouterr().err
    assert code in (2, 3)
    assert "refused the logon" in err
    assert "Traceback" not in err


def test_describe_shows_the_fields_users_see(
    server: RunningServer, capsys: pytest.CaptureFixture[str]
) -> None:
    _add(server, "crm", "soap")
    capsys.readouterr()
    assert _run(["describe", "crm", "company"]) == 0
    out = capsys.readouterr().out
    assert "supplierid" in out
    assert "address.city" in out


PROFILE = """\
source: {connection: {type: csv, path: .}, object: companies.csv}
target: {connection: crm, object: company, mode: upsert, match_keys: [supplierid]}
mapping: {supplierid: code, name: name, website: web}
"""


@pytest.mark.parametrize("api", ["soap", "rest"])
def test_preview_dry_run_and_run_write_to_sage_crm(
    server: RunningServer, api: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _add(server, "crm", api)
    (tmp_path / "companies.csv").write_text(
        "code,name,web\nK-1,Kappa Ltd,www.kappa.example\nK-2,Lambda Ltd,\n", encoding="utf-8"
    )
    (tmp_path / "p.yaml").write_text(PROFILE, encoding="utf-8")
    capsys.readouterr()
    assert _run(["preview", "p.yaml"]) == 0
    out = capsys.readouterr().out
    assert "Kappa Ltd" in out
    assert "create" in out
    assert _run(["run", "p.yaml", "--dry-run"]) == 0
    assert "created 2" in capsys.readouterr().out
    assert _run(["run", "p.yaml"]) == 0
    assert "created 2" in capsys.readouterr().out
    assert _run(["run", "p.yaml"]) == 0
    assert "unchanged 2" in capsys.readouterr().out
