"""Profiles against a stock SuiteCRM sandbox: what the real server does, handled end to end."""

from __future__ import annotations

import csv
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from crmbridge.connections import ConnectionStore
from crmbridge.profiles.loader import load_profile
from crmbridge.runner import RunSummary, run_profile
from crmbridge.sandbox.sugarcrm import SugarSandbox
from crmbridge.state import StateStore


@pytest.fixture(params=["v4_1", "v10"])
def crm(request: pytest.FixtureRequest, store: ConnectionStore) -> Iterator[SugarSandbox]:
    sandbox = SugarSandbox(accounts=2)
    with sandbox.serve() as server:
        settings = {"url": server.url, "username": "admin", "password": "admin"}
        store.add("crm", "sugarcrm", {**settings, "api": request.param})
        yield sandbox
    sandbox.close()


def run(
    tmp_path: Path, store: ConnectionStore, state: StateStore, profile: str
) -> tuple[RunSummary, str]:
    (tmp_path / "p.yaml").write_text(textwrap.dedent(profile), encoding="utf-8")
    summary = run_profile(
        load_profile(tmp_path / "p.yaml"), connections=store, state=state, output_dir=tmp_path / "o"
    )
    errors = tmp_path / "o" / "error.csv"
    return summary, errors.read_text(encoding="utf-8") if errors.exists() else ""


LEADS = """
source: {connection: {type: csv, path: .}, object: leads.csv}
target: {connection: crm, object: Leads, mode: upsert, match_keys: [email1]}
mapping: {last_name: name, email1: email, description: note}
"""


def test_over_long_text_is_rejected_or_cut_by_the_truncation_policy_never_silently(
    tmp_path: Path, crm: SugarSandbox, store: ConnectionStore, state: StateStore
) -> None:
    with (tmp_path / "leads.csv").open("w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["name", "email", "note"])
        writer.writerow(["Long", "long@example.com", "é" * 35_000])  # 70,000 bytes
    summary, errors = run(tmp_path, store, state, LEADS)
    assert summary.counts["rejected"] == 1
    assert "is 70000 bytes (UTF-8), the limit is 65535 bytes" in errors
    summary, _ = run(
        tmp_path, store, state, LEADS + "truncation: {fields: {description: truncate}}\n"
    )
    assert summary.counts["created"] == 1
    stored = crm.execute("SELECT description FROM leads WHERE last_name = 'Long'")
    assert stored[0]["description"] == "é" * 32_767  # 65,534 bytes: no half character


def test_addresses_the_crm_would_drop_are_rejected_with_the_reason(
    tmp_path: Path, crm: SugarSandbox, store: ConnectionStore, state: StateStore
) -> None:
    (tmp_path / "leads.csv").write_text(
        "name,email,note\nJosé,josé@example.com,\nSpaced, spaced@example.com ,\n",
        encoding="utf-8",
    )
    summary, errors = run(tmp_path, store, state, LEADS)
    assert (summary.counts["created"], summary.counts["rejected"]) == (1, 1)
    assert "email1 'josé@example.com' has characters outside ASCII" in errors
    assert crm.execute("SELECT last_name FROM leads WHERE last_name = 'José'") == []
    again, _ = run(tmp_path, store, state, LEADS)
    assert (again.counts["unchanged"], again.counts["rejected"]) == (1, 1)


def test_notes_are_written_without_the_portal_flag_the_metadata_calls_required(
    tmp_path: Path, crm: SugarSandbox, store: ConnectionStore, state: StateStore
) -> None:
    (tmp_path / "notes.csv").write_text("subject\nHello\n", encoding="utf-8")
    summary, errors = run(
        tmp_path,
        store,
        state,
        """
        source: {connection: {type: csv, path: .}, object: notes.csv}
        target: {connection: crm, object: Notes, mode: insert}
        mapping: {name: subject}
        """,
    )
    assert summary.counts["created"] == 1, errors
