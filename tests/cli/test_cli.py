"""The command line: every command documented, the exit codes, the bundled example."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from crmbridge.cli.app import app, main


def _run(args: list[str]) -> int:
    with pytest.raises(SystemExit) as info:
        main(args)
    code = info.value.code
    return code if isinstance(code, int) else 0


def _commands() -> list[list[str]]:
    import typer.main

    root = typer.main.get_command(app)
    found: list[list[str]] = []

    def walk(command: object, path: list[str]) -> None:
        children = getattr(command, "commands", None)
        if children:
            for name, child in children.items():
                walk(child, [*path, name])
        else:
            found.append(path)

    walk(root, [])
    return found


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CRMBRIDGE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("CRMBRIDGE_PASSPHRASE", "test passphrase")
    monkeypatch.delenv("CRMBRIDGE_STATE_URL", raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path / "home"


def test_every_command_has_help_text(capsys: pytest.CaptureFixture[str]) -> None:
    commands = _commands()
    assert ["run"] in commands
    assert ["connection", "add"] in commands
    assert ["sandbox", "sugarcrm"] in commands
    for path in commands:
        assert _run([*path, "--help"]) == 0, path
        out = capsys.readouterr().out
        assert "Usage:" in out
        assert len(out.split("Usage:", 1)[1].strip().splitlines()) > 2, f"{path}: no help text"


def test_run_without_a_profile_runs_the_bundled_example(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _run(["run", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "contacts-to-sqlite: succeeded" in out
    with sqlite3.connect(tmp_path / "crmbridge-example/example.sqlite") as db:
        (count,) = db.execute("SELECT count(*) FROM contacts").fetchone()
    assert count == 134
    assert _run(["run", "crmbridge-example/contacts-to-sqlite.yaml", "--no-progress"]) == 0
    assert "unchanged 134" in capsys.readouterr().out
    assert _run(["history"]) == 0
    assert "contacts-to-sqlite" in capsys.readouterr().out
    assert _run(["show", "2"]) == 0
    assert "unchanged 134" in capsys.readouterr().out


def test_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "in.csv").write_text("a,b\n1,x\n2,y\n", encoding="utf-8")
    good = "source: {connection: {type: csv, path: .}, object: in.csv, types: {a: integer}}\n"
    (tmp_path / "ok.yaml").write_text(
        good + "target: {connection: {type: jsonl, path: .}, object: out.jsonl}\n"
    )
    assert _run(["run", "ok.yaml", "--no-progress"]) == 0

    (tmp_path / "in.csv").write_text("a,b\n1,x\nz,y\n", encoding="utf-8")
    assert _run(["run", "ok.yaml", "--no-progress"]) == 1  # finished with a rejected record

    (tmp_path / "bad.yaml").write_text(good + "target: {connection: nope, object: x}\n")
    assert _run(["run", "bad.yaml"]) == 2
    assert "unknown connection 'nope'" in capsys.readouterr().err
    assert _run(["run", "--no-such-option"]) == 2

    (tmp_path / "down.yaml").write_text(
        good + 'target: {connection: {type: sql, url: "postgresql+psycopg://x@127.0.0.1:9/x"},'
        " object: t}\n"
    )
    assert _run(["run", "down.yaml"]) == 3
    assert "cannot connect" in capsys.readouterr().err.lower()


def test_connections_are_added_with_secrets_from_the_environment(
    tmp_path: Path, home: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    args = ["connection", "add", "db", "--type", "sql", "--set", f"url=sqlite:///{tmp_path}/x.db"]
    assert _run([*args, "--set", "password=oops"]) == 2
    assert "not taken with --set" in capsys.readouterr().err
    monkeypatch.setenv("CRMBRIDGE_SECRET_PASSWORD", "hunter2-secret")
    assert _run(args) == 0
    assert _run(["connection", "list"]) == 0
    out = capsys.readouterr().out
    assert "db" in out
    assert "secrets stored" in out
    assert "password" in out
    assert "hunter2-secret" not in out
    assert "hunter2-secret" not in (home / "connections.json").read_text()
    assert _run(["connection", "test", "db"]) == 0
    assert "SQLite" in capsys.readouterr().out
    assert _run(["connection", "remove", "db"]) == 0
    assert _run(["connection", "test", "db"]) == 2


def test_profile_schema_and_check(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _run(["profile", "schema"]) == 0
    schema = json.loads(capsys.readouterr().out)
    assert "source" in schema["properties"]
    (tmp_path / "in.csv").write_text("a\n1\n", encoding="utf-8")
    (tmp_path / "p.yaml").write_text(
        "source: {connection: {type: csv, path: .}, object: in.csv, filter: a = '1'}\n"
        "target: {connection: {type: csv, path: .}, object: out.csv}\n"
    )
    assert _run(["profile", "check", "p.yaml"]) == 0
    assert "OK" in capsys.readouterr().out
    assert not (tmp_path / "out.csv").exists()


def test_the_cli_names_the_same_secret_variables_as_the_library() -> None:
    from crmbridge.cli import connection
    from crmbridge.connections import SECRET_ENV_PREFIX

    assert connection.SECRET_ENV_PREFIX == SECRET_ENV_PREFIX


def test_starting_the_cli_imports_nothing_heavy() -> None:
    import subprocess
    import sys

    heavy = "('duckdb', 'pyarrow', 'sqlalchemy', 'sqlglot')"
    code = f"import sys, crmbridge.cli.app; print(sorted(m for m in {heavy} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
