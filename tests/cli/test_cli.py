"""The command line: every command documented, the exit codes, the bundled example."""

from __future__ import annotations

import json
import re
import socket
import sqlite3
import subprocess
import sys
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
    assert _run(["profile", "schema", "--sync"]) == 0
    sync_schema = json.loads(capsys.readouterr().out)
    assert {"a", "b", "link", "fields", "conflicts"} <= set(sync_schema["properties"])
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


_PYTHON_TYPE = re.compile(r"<(?:[a-z][a-z_ ]*|list\[[a-z]+\])(?: range)?>")


def test_help_texts_name_values_not_python_types(capsys: pytest.CaptureFixture[str]) -> None:
    for path in _commands():
        assert _run([*path, "--help"]) == 0, path
        out = capsys.readouterr().out
        assert not _PYTHON_TYPE.findall(out), f"{path}: {_PYTHON_TYPE.findall(out)}"
        assert "Exit codes: 0 success; 1 finished with rejected records; 2 usage" in " ".join(
            out.split()
        ), path
    assert _run(["--help"]) == 0
    assert "Exit codes:" in capsys.readouterr().out
    assert _run(["connection", "add", "--help"]) == 0
    out = " ".join(capsys.readouterr().out.replace("│", " ").split())
    assert "--set -s NAME=VALUE" in out
    assert "csv: path, delimiter, quote_char" in out
    assert "sql: url*, schema" in out
    assert "secrets, prompted for: password" in out


def test_a_busy_port_for_the_sandbox_is_one_line_and_exit_2(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        command = [sys.executable, "-m", "crmbridge", "sandbox", "sugarcrm", "--port", str(port)]
        done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"error: cannot listen on 127.0.0.1:{port}: Address already in use; another program is "
        "listening there: choose another port with --port (0 picks a free one)"
    ]


@pytest.mark.parametrize(
    "mistake",
    [
        "sandbox data file in a missing folder",
        "output folder is a file",
        "crmbridge home is a file",
        "sandbox port out of range",
        "not a database URL",
    ],
)
def test_user_mistakes_are_one_line_and_exit_2(
    mistake: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    (tmp_path / "in.csv").write_text("a\n1\n", encoding="utf-8")
    (tmp_path / "p.yaml").write_text(
        "source: {connection: {type: csv, path: .}, object: in.csv}\n"
        "target: {connection: {type: jsonl, path: .}, object: out.jsonl}\n"
    )
    (tmp_path / "a-file").write_text("x")
    args = {
        "sandbox data file in a missing folder": [
            "sandbox",
            "sugarcrm",
            "--port",
            "0",
            "--data",
            str(tmp_path / "no" / "x.sqlite"),
        ],
        "output folder is a file": ["run", "p.yaml", "--no-progress", "-o", "a-file"],
        "crmbridge home is a file": ["history"],
        "sandbox port out of range": ["sandbox", "sugarcrm", "--port", "99999"],
        "not a database URL": ["connection", "add", "db", "--type", "sql", "--set", "url=db"],
    }[mistake]
    if mistake == "crmbridge home is a file":
        monkeypatch.setenv("CRMBRIDGE_HOME", str(tmp_path / "a-file"))
    assert _run(args) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    if mistake == "sandbox port out of range":  # the command line's own usage message
        assert "less than or equal to 65535" in " ".join(err.replace("│", " ").split())
        return
    assert err.startswith("error: ")
    assert len(err.strip().splitlines()) <= 2, err


def test_show_and_connection_list_print_everything_in_full_when_piped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    deep = tmp_path / ("a-folder-with-a-long-name-" * 4) / "data"
    deep.mkdir(parents=True)
    (deep / "in.csv").write_text("a\n1\n", encoding="utf-8")
    assert _run(["connection", "add", "files", "--type", "csv", "--set", f"path={deep}"]) == 0
    capsys.readouterr()
    assert _run(["connection", "list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines == ["name\ttype\tsettings\tsecrets stored", f"files\tcsv\tpath={deep}\t"]
    assert _run(["connection", "list", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert listed == [
        {"name": "files", "type": "csv", "settings": {"path": str(deep)}, "secrets": []}
    ]

    (tmp_path / "p.yaml").write_text(
        f"source: {{connection: files, object: in.csv}}\n"
        f"target: {{connection: {{type: jsonl, path: '{deep}'}}, object: out.jsonl}}\n"
    )
    assert _run(["run", "p.yaml", "--no-progress", "-o", str(deep / "runs")]) == 0
    capsys.readouterr()
    assert _run(["show", "1"]) == 0
    out = capsys.readouterr().out
    assert f"success file: {deep}/runs/" in out
    assert "…" not in out
    assert _run(["show", "1", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["id"] == 1
    assert shown["status"] == "succeeded"
    assert shown["success_file"].startswith(str(deep))
    assert _run(["history", "--json"]) == 0
    assert [r["id"] for r in json.loads(capsys.readouterr().out)] == [1]


def test_saved_relative_paths_mean_the_same_files_for_every_command(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    work = tmp_path / "work"
    (work / "data").mkdir(parents=True)
    (work / "data" / "in.csv").write_text("a\n1\n", encoding="utf-8")
    monkeypatch.chdir(work)
    assert _run(["connection", "add", "files", "--type", "csv", "--set", "path=data"]) == 0
    add = ["connection", "add", "db", "--type", "sql", "--set", "url=sqlite:///out/db.sqlite"]
    assert _run(add) == 0
    out = capsys.readouterr().out
    assert f"Saved connection 'files' (csv): path={work / 'data'}" in out  # shown as saved
    assert f"url=sqlite:///{work / 'out' / 'db.sqlite'}" in out

    elsewhere = tmp_path / "profiles"
    elsewhere.mkdir()
    (elsewhere / "data").mkdir()  # a folder of the same name beside the profile: not used
    (elsewhere / "p.yaml").write_text(
        "source: {connection: files, object: in.csv, types: {a: integer}}\n"
        "target: {connection: {type: jsonl, path: out}, object: out.jsonl}\n"
    )
    monkeypatch.chdir(tmp_path)
    assert _run(["connection", "test", "files"]) == 0
    assert f"path: {work / 'data'}" in capsys.readouterr().out
    assert _run(["objects", "files"]) == 0
    assert capsys.readouterr().out.split() == ["in.csv"]
    assert _run(["run", "profiles/p.yaml", "--no-progress"]) == 0
    # the inline target's folder did not exist: it is relative to the profile, and created
    assert (elsewhere / "out" / "out.jsonl").read_text() == '{"a":1}\n'


def test_a_missing_source_folder_is_a_configuration_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "p.yaml").write_text(
        "source: {connection: {type: csv, path: nowhere}, object: in.csv}\n"
        "target: {connection: {type: csv, path: out}, object: out.csv}\n"
    )
    assert _run(["run", "p.yaml", "--no-progress"]) == 2
    assert f"folder '{tmp_path / 'nowhere'}' does not exist" in capsys.readouterr().err
    assert _run(["connection", "add", "gone", "--type", "csv", "--set", "path=gone"]) == 0
    assert _run(["connection", "test", "gone"]) == 2
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("kind", ["csv", "xlsx"])
def test_a_file_target_folder_is_created(
    kind: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "in.csv").write_text("a\n1\n", encoding="utf-8")
    (tmp_path / "p.yaml").write_text(
        "source: {connection: {type: csv, path: .}, object: in.csv}\n"
        f"target: {{connection: {{type: {kind}, path: new/folder}}, object: out.{kind}}}\n"
    )
    assert _run(["profile", "check", "p.yaml"]) == 0
    assert not (tmp_path / "new").exists()
    assert _run(["run", "p.yaml", "--no-progress"]) == 0
    assert (tmp_path / "new" / "folder" / f"out.{kind}").is_file()


def test_check_preview_and_dry_run_leave_no_sqlite_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "in.csv").write_text("email\na@x.com\n", encoding="utf-8")
    (tmp_path / "p.yaml").write_text(
        "source: {connection: {type: csv, path: .}, object: in.csv}\n"
        'target: {connection: {type: sql, url: "sqlite:///db/new.sqlite"}, object: contacts,\n'
        "         mode: upsert, match_keys: [email], create: true}\n"
    )
    assert _run(["profile", "check", "p.yaml"]) == 0
    assert _run(["preview", "p.yaml"]) == 0
    assert _run(["run", "p.yaml", "--dry-run", "--no-progress"]) == 0
    assert not (tmp_path / "db").exists()
    assert _run(["run", "p.yaml", "--no-progress"]) == 0
    assert "created 1" in capsys.readouterr().out
    assert (tmp_path / "db" / "new.sqlite").is_file()


def test_profile_check_reports_setting_names_and_fields_at_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "in.csv").write_text("email,score\na@x.com,1\n", encoding="utf-8")
    (tmp_path / "p.yaml").write_text(
        "source: {connection: {type: csv, path: .}, object: in.csv, filtr: score > 1}\n"
        "target: {connection: {type: jsonl, path: .}, object: out.jsonl}\n"
        "mapping: {email: emial}\n"
    )
    assert _run(["profile", "check", "p.yaml"]) == 2
    err = capsys.readouterr().err
    assert "source.filtr: unknown setting; did you mean 'filter'?" in err
    assert "mapping.email: unknown column 'emial'" in err
