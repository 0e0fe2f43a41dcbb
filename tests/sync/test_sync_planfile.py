"""A sync's plan in a file (``--dry-run --plan-out``) carried out by ``crmbridge apply``:
exactly the plan, records changed since refused, a plan overtaken by a sync refused whole,
a killed apply continued."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tests.sync.conftest import SyncPair, counts
from tests.sync.test_sync_basics import seed

from crmbridge.errors import ConfigError
from crmbridge.profiles.loader import load_sync
from crmbridge.state import RunStatus
from crmbridge.state.syncstate import Link
from crmbridge.sync import SyncOptions, SyncSummary, run_sync
from crmbridge.sync.apply import APPLY_MODE, apply_sync_plan
from crmbridge.sync.planfile import batches, is_sync_plan, read_header


def plan_to(pair: SyncPair, path: Path, *, accept: bool = True) -> SyncSummary:
    options = SyncOptions(dry_run=True, accept_links=accept, plan_out=path)
    summary = run_sync(
        load_sync(pair.profile_path), connections=None, state=pair.state, options=options
    )
    assert summary.error is None, summary.error
    return summary


def apply(pair: SyncPair, path: Path) -> SyncSummary:
    return apply_sync_plan(
        path, connections=None, state=pair.state, output_dir=pair.folder / "applied"
    )


def test_apply_carries_out_exactly_the_plan_of_a_dry_run(pair: SyncPair) -> None:
    seed(pair)
    path = pair.folder / "first.plan.jsonl"
    planned = plan_to(pair, path)
    assert is_sync_plan(path)
    header = read_header(path)
    assert header.first
    assert header.accept_links
    assert header.batches == len(list(batches(path)))
    assert pair.links() == {}  # a dry run writes nothing
    done = apply(pair, path)
    assert done.status is RunStatus.SUCCEEDED
    for name in ("a_to_b.created", "b_to_a.created", "a_to_b.updated"):
        assert done.counts.get(name) == planned.counts.get(name), name
    pair.assert_in_step()
    again = pair.sync()  # the cursors the plan reached were kept: nothing is left to do
    assert again.report.lines == []


def test_a_record_changed_since_the_plan_is_refused_not_overwritten(pair: SyncPair) -> None:
    seed(pair)
    pair.sync()
    pair.edit_a(1, phone="+49 111")
    path = pair.folder / "edit.plan.jsonl"
    plan_to(pair, path)
    pair.edit_b("x1", phone_office="555")
    done = apply(pair, path)
    assert done.status is RunStatus.FINISHED_WITH_REJECTS
    counts(done, a_to_b__rejected=1, stale=1)
    (line,) = [x for x in done.report.lines if x.side == "b"]
    assert "changed since the plan was made" in (line.reason or "")
    assert pair.b_row("x1")["phone_office"] == "555"  # kept, never overwritten
    # the refused record is looked at again by the next sync, as a refused write of a sync
    assert "x1" in pair.state.get_value(pair.key, "retry")["b"]
    later = pair.sync()  # the next sync sees both changes: a conflict, decided by policy
    assert later.counts.get("conflicts") == 1


def test_a_create_whose_record_was_linked_meanwhile_is_refused(pair: SyncPair) -> None:
    seed(pair)
    pair.sync()
    new = pair.add_a(name="Hooli", phone="444", vat="DE4")
    path = pair.folder / "create.plan.jsonl"
    plan_to(pair, path)
    # someone else links it first: the record entered by hand on b with the same key
    pair.add_b("x4", name="Hooli", phone_office="444", sic_code="DE4")
    options = SyncOptions(accept_links=True, output_dir=pair.folder / "o")
    run_sync(load_sync(pair.profile_path), connections=None, state=pair.state, options=options)
    with pytest.raises(ConfigError, match="the sync ran since this plan was made"):
        apply(pair, path)
    assert pair.links()[str(new)] == "x4"
    assert len(pair.rows_b()) == 5  # x1, x2, x9, Initech's, x4: Hooli not created twice


def test_links_made_meanwhile_are_checked_record_by_record(pair: SyncPair) -> None:
    seed(pair)
    pair.sync()
    new = pair.add_a(name="Hooli", phone="444", vat="DE4")
    path = pair.folder / "create.plan.jsonl"
    plan_to(pair, path)
    pair.state.sync.save_links(
        pair.key,
        [Link(str(new), "x1-elsewhere", "{}")],
        run_id=None,
    )
    done = apply(pair, path)
    counts(done, a_to_b__rejected=1, stale=1)
    assert len(pair.rows_b()) == 4  # Hooli not created


def test_a_first_sync_plan_without_accepted_links_is_refused(pair: SyncPair) -> None:
    seed(pair)
    path = pair.folder / "first.plan.jsonl"
    plan_to(pair, path, accept=False)
    with pytest.raises(ConfigError, match="--accept-links"):
        apply(pair, path)
    assert pair.links() == {}


def test_plan_out_needs_a_dry_run(pair: SyncPair) -> None:
    options = SyncOptions(plan_out=pair.folder / "x.jsonl", accept_links=True)
    with pytest.raises(ConfigError, match="--dry-run"):
        run_sync(load_sync(pair.profile_path), connections=None, state=pair.state, options=options)


def test_a_killed_apply_is_continued_by_the_next_apply_of_the_file(pair: SyncPair) -> None:
    seed(pair)
    path = pair.folder / "first.plan.jsonl"
    plan_to(pair, path)
    # the apply was killed after its first batch was planned in the ledger: simulate it
    first = next(batches(path))
    run_id = pair.state.start_run(
        profile="suppliers",
        profile_path=str(pair.profile_path),
        source="a",
        target="b",
        mode=APPLY_MODE,
        dry_run=False,
        profile_key=pair.key,
        read_state={"plan": str(path.resolve())},
    )
    pair.state.ledger.plan(
        run_id,
        1,
        first_row=0,
        last_row=0,
        rows_read=0,
        position={"batch": 1},
        plan=first.dumps(),
    )
    done = apply(pair, path)
    assert done.status is RunStatus.SUCCEEDED
    assert pair.state.get_run(run_id).status is RunStatus.INTERRUPTED
    pair.assert_in_step()
    assert len(pair.rows_b()) == 4
    assert len(pair.rows_a()) == 4


def test_the_cli_writes_and_applies_a_sync_plan(pair: SyncPair, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from crmbridge.cli.app import app

    seed(pair)
    state = f"sqlite:///{pair.folder}/state.sqlite"
    plan = tmp_path / "p.jsonl"
    cli = CliRunner()
    shown = cli.invoke(
        app,
        [
            "sync",
            str(pair.profile_path),
            "--dry-run",
            "--accept-links",
            "--plan-out",
            str(plan),
            "--state-url",
            state,
        ],
    )
    assert shown.exit_code == 0, shown.output
    assert "crmbridge apply" in shown.output
    assert json.loads(plan.read_text().splitlines()[0])["format"] == "crmbridge sync plan 1"
    applied = cli.invoke(app, ["apply", str(plan), "--state-url", state])
    assert applied.exit_code == 0, applied.output
    pair.assert_in_step()
