"""A password never shows: not in logs, messages, run records, output files or what we print."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from tests.runner.conftest import write_csv, write_profile

from crmbridge.cli.app import main
from crmbridge.connections import ConnectionStore
from crmbridge.runner import run_profile
from crmbridge.state import RunStatus, StateStore

SECRET = "S3cret-" + uuid.uuid4().hex[:10]


@pytest.fixture
def mysql_user(mysql_url: str) -> Iterator[tuple[str, str]]:
    """A MariaDB user with a password, allowed on the test database; dropped afterwards."""
    url = sa.make_url(mysql_url)
    user = f"crmb_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(mysql_url)
    with admin.begin() as conn:
        conn.execute(sa.text(f"CREATE USER '{user}'@'%' IDENTIFIED BY '{SECRET}'"))
        conn.execute(sa.text(f"GRANT ALL ON `{url.database}`.* TO '{user}'@'%'"))
        conn.execute(sa.text("CREATE TABLE leads (email VARCHAR(100) PRIMARY KEY, name TEXT)"))
    try:
        yield user, url.set(username=user).render_as_string(hide_password=False)
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f"DROP USER '{user}'@'%'"))
        admin.dispose()


def _everything_written(home: Path, tmp_path: Path) -> str:
    text = []
    for path in [*home.rglob("*"), *tmp_path.rglob("*")]:
        if path.is_file():
            text.append(path.read_bytes().decode("utf-8", "replace"))
    return "\n".join(text)


def test_a_run_with_a_stored_password_leaks_it_nowhere(
    tmp_path: Path,
    home: Path,
    store: ConnectionStore,
    state: StateStore,
    mysql_user: tuple[str, str],
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    caplog.set_level(logging.DEBUG)
    _, url = mysql_user
    store.add("crm_db", "sql", {"url": url, "password": SECRET})
    write_csv(tmp_path / "in.csv", "email,name\na@x.com,Ann\nb@x.com,\n")
    loaded = write_profile(
        tmp_path,
        """
        source: {connection: {type: csv, path: .}, object: in.csv}
        target: {connection: crm_db, object: leads, mode: upsert, match_keys: [email]}
        mapping: {email: email, name: name || '!'}
        """,
    )
    summary = run_profile(loaded, connections=store, state=state, output_dir=tmp_path / "run")
    assert summary.counts["created"] == 2
    monkeypatch.setenv("CRMBRIDGE_SECRET_PASSWORD", SECRET)
    with pytest.raises(SystemExit):
        main(["history"])
    with pytest.raises(SystemExit):
        main(["connection", "list"])
    with pytest.raises(SystemExit):
        main(["show", str(summary.run_id)])
    printed = capsys.readouterr()
    assert "crm_db" in printed.out
    for place in (
        printed.out,
        printed.err,
        caplog.text,
        repr(summary),
        repr(store.get("crm_db")),
        _everything_written(home, tmp_path),
    ):
        assert SECRET not in place


def test_a_wrong_password_is_a_clear_failure_without_any_secret(
    tmp_path: Path,
    store: ConnectionStore,
    state: StateStore,
    mysql_user: tuple[str, str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    user, url = mysql_user
    wrong = SECRET + "-wrong"
    store.add("crm_db", "sql", {"url": url, "password": wrong})
    write_csv(tmp_path / "in.csv", "email,name\na@x.com,Ann\n")
    loaded = write_profile(
        tmp_path,
        """
        source: {connection: {type: csv, path: .}, object: in.csv}
        target: {connection: crm_db, object: leads}
        """,
    )
    summary = run_profile(loaded, connections=store, state=state)
    assert summary.status is RunStatus.FAILED
    assert summary.exit_code == 3
    message = summary.error or ""
    assert "crm_db" in message
    assert user in message
    assert wrong not in message
    assert SECRET not in message
    assert wrong not in caplog.text
    # the failed attempt is in the history, with its reason (and no secret)
    [run] = state.list_runs()
    assert run.status is RunStatus.FAILED
    assert run.error == message


@pytest.mark.mariadb
def test_a_password_written_in_the_url_is_stored_encrypted_and_never_shown(
    tmp_path: Path,
    home: Path,
    mysql_user: tuple[str, str],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from urllib.parse import quote

    _, url = mysql_user
    monkeypatch.setenv("CRMBRIDGE_HOME", str(home))
    with_password = sa.make_url(url).set(password=SECRET).render_as_string(hide_password=False)
    assert quote(SECRET, safe="") in with_password or SECRET in with_password

    def cli(*args: str) -> int:
        with pytest.raises(SystemExit) as info:
            main(list(args))
        return int(info.value.code or 0)

    assert cli("connection", "add", "db", "--type", "sql", "--set", f"url={with_password}") == 0
    assert cli("connection", "list") == 0
    assert cli("connection", "list", "--json") == 0
    assert cli("connection", "test", "db") == 0  # the moved password still logs in
    out = capsys.readouterr()
    assert "stored encrypted as 'password'" in out.out
    assert "connected to MariaDB" in out.out
    assert SECRET not in out.out + out.err
    assert SECRET not in (home / "connections.json").read_text()
    stored = ConnectionStore(home).get("db")
    assert stored.settings.url == url  # type: ignore[attr-defined]
    assert stored.secret_values() == [SECRET]

    twice = {"url": with_password, "password": SECRET}
    assert cli("connection", "add", "db2", "--type", "sql", "--set", f"url={with_password}") == 0
    with pytest.raises(Exception, match="'password' is set too") as info:
        ConnectionStore(home).add("db3", "sql", twice)
    assert SECRET not in str(info.value)


def test_a_secret_left_at_its_default_is_not_said_to_be_inside_another_setting(
    home: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # SugarCRM's client_secret defaults to "": nothing was written in another setting
    monkeypatch.setenv("CRMBRIDGE_HOME", str(home))
    monkeypatch.setenv("CRMBRIDGE_SECRET_PASSWORD", SECRET)
    args = ["connection", "add", "crm", "--type", "sugarcrm", "--set", "url=http://127.0.0.1:1"]
    with pytest.raises(SystemExit) as info:
        main([*args, "--set", "username=admin"])
    assert info.value.code in (0, None)
    out = capsys.readouterr().out
    assert "Saved connection 'crm'" in out
    assert "written in another setting" not in out


def test_a_password_in_an_inline_url_is_refused(tmp_path: Path) -> None:
    from crmbridge.connections import inline_connection
    from crmbridge.errors import ConfigError

    url = f"postgresql+psycopg://me:{SECRET}@127.0.0.1/db"
    with pytest.raises(ConfigError, match="secrets do not belong in profiles") as info:
        inline_connection("p.source", "sql", {"url": url})
    assert SECRET not in str(info.value)
