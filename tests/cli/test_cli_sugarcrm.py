"""The command line against the SugarCRM sandbox: `connection test`, `describe --refresh`."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from crmbridge.cli.app import main
from crmbridge.sandbox.sugarcrm import RunningServer, SugarSandbox

#: the Leads field itself, not the related Contacts' (contacts.lawful_basis)
OWN_LAWFUL_BASIS = re.compile(r"(?<![.\w])lawful_basis\b")


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
    box = SugarSandbox(accounts=1)
    with box.serve() as running:
        yield running
    box.close()


def _add(server: RunningServer, name: str, api: str) -> None:
    args = ["connection", "add", name, "--type", "sugarcrm", "--set", f"url={server.url}"]
    assert _run([*args, "--set", "username=admin", "--set", f"api={api}"]) == 0


@pytest.mark.parametrize("api", ["v4_1", "v10", "auto"])
def test_connection_test_shows_suitecrm_and_its_version(
    server: RunningServer, api: str, capsys: pytest.CaptureFixture[str]
) -> None:
    _add(server, "crm", api)
    capsys.readouterr()
    assert _run(["connection", "test", "crm"]) == 0
    out = capsys.readouterr().out
    assert "crm: connected to SuiteCRM 7.14.6" in out
    assert "sugar-compatible: CE 6.5.25" in out
    assert f"api: {'v10' if api == 'auto' else api}" in out


def test_describe_remembers_and_refresh_forgets(
    server: RunningServer, home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _add(server, "crm", "v4_1")
    cache = home / "cache" / "crm"
    assert _run(["describe", "crm", "Leads"]) == 0
    out = capsys.readouterr().out
    assert OWN_LAWFUL_BASIS.search(out)
    assert "text(65535 bytes)" in out
    remembered = cache / "sugarcrm-discovery.json"
    saved = json.loads(remembered.read_text(encoding="utf-8"))
    leads = saved["described"]["Leads"]
    leads["fields"] = [f for f in leads["fields"] if f["name"] != "lawful_basis"]
    remembered.write_text(json.dumps(saved), encoding="utf-8")  # as if it were older
    assert _run(["describe", "crm", "Leads"]) == 0
    assert not OWN_LAWFUL_BASIS.search(capsys.readouterr().out), "remembered, not asked"
    assert _run(["describe", "crm", "Leads", "--refresh"]) == 0
    assert OWN_LAWFUL_BASIS.search(capsys.readouterr().out)
    assert _run(["connection", "remove", "crm"]) == 0
    assert not cache.exists()
