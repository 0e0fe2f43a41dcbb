"""Seed data, SQLite files, and the command line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from sugar_helpers import V4

from crmbridge.sandbox.sugarcrm import SugarSandbox, seed_counts

TABLES = {
    "Accounts": "accounts",
    "Contacts": "contacts",
    "Leads": "leads",
    "Opportunities": "opportunities",
    "Notes": "notes",
}


@pytest.mark.parametrize("accounts", [7, 40])
def test_seed_counts_are_exact(accounts: int) -> None:
    box = SugarSandbox(accounts=accounts)
    for module, (live, deleted) in seed_counts(accounts).items():
        rows = box.execute(
            f"SELECT SUM(deleted = 0) AS live, SUM(deleted = 1) AS gone FROM {TABLES[module]}"
        )
        assert (rows[0]["live"], rows[0]["gone"] or 0) == (live, deleted), module
    box.close()


def test_seed_is_deterministic() -> None:
    first, second = SugarSandbox(accounts=10), SugarSandbox(accounts=10)
    query = "SELECT id, name, date_modified FROM accounts ORDER BY rowid"
    assert first.execute(query) == second.execute(query)
    first.close()
    second.close()


def test_seed_data_is_linked_and_realistic(sandbox: SugarSandbox) -> None:
    linked = sandbox.execute(
        "SELECT COUNT(DISTINCT contact_id) AS n FROM accounts_contacts WHERE deleted = 0"
    )
    assert linked == [{"n": 80}]
    shared = sandbox.execute(
        "SELECT MAX(n) AS most FROM (SELECT COUNT(*) AS n FROM contacts GROUP BY date_modified)"
    )
    assert shared[0]["most"] >= 7
    names = {r["name"] for r in sandbox.execute("SELECT name FROM accounts")}
    assert {'Acme & Sons "Q"', "O'Brien Brothers Ltd", "Zürich Trading AG"} <= names
    emails = sandbox.execute(
        "SELECT COUNT(*) AS n FROM email_addr_bean_rel WHERE bean_module = 'Contacts'"
    )
    assert emails[0]["n"] > 80  # every fifth contact has a second address
    zones = sandbox.execute("SELECT time_zone FROM users WHERE user_name = 'admin'")
    assert zones == [{"time_zone": "America/New_York"}]


def test_seed_false_leaves_only_users(client: httpx.Client) -> None:
    box = SugarSandbox(seed=False)
    assert box.execute("SELECT COUNT(*) AS n FROM accounts") == [{"n": 0}]
    with httpx.Client(transport=httpx.WSGITransport(app=box.wsgi_app), base_url="http://t") as http:
        V4(http).login()
    box.close()


def test_a_data_file_is_seeded_once_and_keeps_changes(tmp_path: Path) -> None:
    path = tmp_path / "demo.sqlite"
    box = SugarSandbox(path, accounts=5)
    box.execute("UPDATE accounts SET name = 'Changed' WHERE name = 'Acme & Sons \"Q\"'")
    box.close()
    again = SugarSandbox(path, accounts=50, users={"admin": "other"})
    assert again.execute("SELECT COUNT(*) AS n FROM accounts WHERE deleted = 0") == [{"n": 5}]
    assert again.execute("SELECT name FROM accounts WHERE name = 'Changed'") == [
        {"name": "Changed"}
    ]
    with httpx.Client(
        transport=httpx.WSGITransport(app=again.wsgi_app), base_url="http://t"
    ) as http:
        V4(http).login(password="other")
    again.close()


def test_command_line_serves_until_stopped(tmp_path: Path) -> None:
    data = tmp_path / "cli.sqlite"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "crmbridge.sandbox.sugarcrm",
            "--port",
            "0",
            "--data",
            str(data),
            "--accounts",
            "3",
            "--studio-field",
            "Leads.external_id_c",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        assert first.startswith("SugarCRM sandbox at http://127.0.0.1:")
        url = first.split(" at ", 1)[1].strip()
        rest = "".join(process.stdout.readline() for _ in range(5))
        assert "user 'admin', password 'admin'" in rest
        assert "Studio field Leads.external_id_c" in rest
        with httpx.Client(base_url=url) as http:
            v4 = V4(http)
            v4.login()
            assert v4.entry_list("Accounts")["total_count"] == "3"
            fields = v4.call("get_module_fields", [v4.session, "Leads", []])["module_fields"]
            assert "external_id_c" in fields
    finally:
        process.terminate()
        process.wait(timeout=10)
        if process.stdout:
            process.stdout.close()
    assert data.is_file()
