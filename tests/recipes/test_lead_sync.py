"""The lead-sync recipe end to end: the example profiles of examples/lead-sync, run as a user
runs them (saved connection, ``run_profile``), against a SugarCRM sandbox on a real port and
the recipe's SQLite marketing database."""

from __future__ import annotations

import csv
import shutil
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from crmbridge.connections import ConnectionStore
from crmbridge.errors import ProfileError
from crmbridge.profiles.loader import load_profile
from crmbridge.runner import RunSummary, run_profile
from crmbridge.sandbox.sugarcrm import SugarSandbox
from crmbridge.state import RunStatus, StateStore

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "lead-sync"
LOAD, PUSH, EVENTS, OPPORTUNITIES, STATUS = (
    "0-load-marketing-db.yaml",
    "1-leads-to-crm.yaml",
    "2-events-to-notes.yaml",
    "3-opportunities-from-crm.yaml",
    "4-status-from-crm.yaml",
)
#: the sample leads the CRM (the sandbox's seed) has already, with another case and spacing
SUSAN, WILLIAM = "susan.jones1003@example.net", "william.rodriguez1000@example.net"
#: new to the CRM: scores 95, 50 (the threshold) and 77 (a seeded Contact with two Opportunities)
ADA, GRACE, MICHAEL = (
    "ada@analytical.example",
    "grace.hopper@navy.example",
    "michael.svensson6@example.net",
)
#: below the threshold (49 and 12)
ALAN, EDSGER = "alan.turing@bletchley.example", "edsger@eindhoven.example"
WRITE_CALLS = ("v4_1:set_entries", "v10:POST /bulk")


class Recipe:
    """The copied example folder, its marketing database, the CRM, and a way to run steps."""

    def __init__(
        self, folder: Path, sandbox: SugarSandbox, store: ConnectionStore, state: StateStore
    ) -> None:
        self.folder = folder
        self.sandbox = sandbox
        self.store = store
        self.state = state

    def run(self, profile: str, **params: str) -> RunSummary:
        """Run a step as ``crmbridge run [--param NAME=VALUE]`` does; it must succeed (no
        rejected record)."""
        loaded = load_profile(self.folder / profile, params)
        summary = run_profile(loaded, connections=self.store, state=self.state)
        assert summary.status is RunStatus.SUCCEEDED, summary.error
        return summary

    def edit(self, profile: str, old: str, new: str) -> None:
        """Change a setting the way a user edits the file."""
        path = self.folder / profile
        text = path.read_text(encoding="utf-8")
        assert old in text, f"{old!r} not in {profile}"
        path.write_text(text.replace(old, new), encoding="utf-8")

    def marketing(self, sql: str, params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
        with sqlite3.connect(self.folder / "marketing.sqlite") as db:
            db.row_factory = sqlite3.Row
            rows = [dict(r) for r in db.execute(sql, params).fetchall()]
        db.close()
        return rows

    def crm(self, table: str) -> dict[str, dict[str, Any]]:
        """Live records of a CRM table (Leads, Contacts) with their custom fields (if any),
        by lower-case primary e-mail address."""
        rows = self.sandbox.execute(
            f"SELECT t.*, c.*, ea.email_address FROM {table} t "
            f"LEFT JOIN {table}_cstm c ON c.id_c = t.id "
            "JOIN email_addr_bean_rel r ON r.bean_id = t.id AND r.deleted = 0 "
            "AND r.primary_address = 1 JOIN email_addresses ea ON ea.id = r.email_address_id "
            "WHERE t.deleted = 0"
        )
        return {row["email_address"].lower(): row for row in rows}

    def notes(self) -> list[dict[str, Any]]:
        return self.sandbox.execute(
            "SELECT name, description, parent_type, parent_id FROM notes "
            "WHERE deleted = 0 AND description LIKE 'Event %' ORDER BY description"
        )

    def writes(self) -> int:
        counts = self.sandbox.faults.call_counts()
        return sum(counts.get(name, 0) for name in WRITE_CALLS)


@pytest.fixture
def studio_fields() -> tuple[str, ...]:
    """The custom fields the CRM's administrator added: none, a stock SuiteCRM."""
    return ()


@pytest.fixture
def sandbox(studio_fields: tuple[str, ...]) -> Iterator[SugarSandbox]:
    # the default seed: the one the recipe's sample data refers to
    box = SugarSandbox(studio_fields=studio_fields)
    yield box
    box.close()


@pytest.fixture(params=["v4_1", "v10"])
def api(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def recipe(
    tmp_path: Path, sandbox: SugarSandbox, store: ConnectionStore, state: StateStore, api: str
) -> Iterator[Recipe]:
    folder = tmp_path / "lead-sync"
    shutil.copytree(EXAMPLE, folder, ignore=shutil.ignore_patterns("*.sqlite"))
    with sqlite3.connect(folder / "marketing.sqlite") as db:
        db.executescript((folder / "marketing.sql").read_text(encoding="utf-8"))
    db.close()
    with sandbox.serve() as server:
        settings = {"url": server.url, "username": "admin", "password": "admin", "api": api}
        store.add("crm", "sugarcrm", settings)
        ready = Recipe(folder, sandbox, store, state)
        ready.run(LOAD)
        yield ready


def test_push_creates_qualified_leads_and_leaves_existing_records_alone(
    recipe: Recipe,
) -> None:
    before = recipe.crm("leads")
    summary = recipe.run(PUSH)

    assert (summary.counts["created"], summary.counts["unchanged"]) == (3, 2)
    assert summary.pushed_filter == ["lead_score >= 50", "NOT email IS NULL"]
    after = recipe.crm("leads")
    assert set(after) - set(before) == {ADA, GRACE, MICHAEL}, "the threshold is 50, inclusive"
    for email in (ADA, GRACE, MICHAEL):
        assert after[email]["lead_source"] == "Web Site"
    assert "external_id_c" not in after[GRACE], "a stock SuiteCRM has no such field"
    assert (after[ADA]["first_name"], after[ADA]["account_name"]) == (
        "Ada",
        "Analytical Engines Ltd",
    )
    for email in (SUSAN, WILLIAM):  # matched ignoring case and spaces: nothing written
        assert after[email] == before[email]
    assert after[SUSAN]["lead_source"] == "Public Relations"

    recipe.sandbox.faults.reset()
    again = recipe.run(PUSH)
    assert (again.counts["created"], again.counts["unchanged"]) == (0, 5)
    assert recipe.writes() == 0, "a second run sends nothing"


@pytest.mark.parametrize("studio_fields", [("Leads.external_id_c",)])
def test_the_external_id_option_with_the_studio_field(recipe: Recipe) -> None:
    recipe.edit(PUSH, "# external_id_c: lead_id", "external_id_c: lead_id")
    assert recipe.run(PUSH).counts["created"] == 3
    assert recipe.crm("leads")[GRACE]["external_id_c"] == "L-1004"


def test_the_external_id_option_without_the_studio_field_says_so(recipe: Recipe) -> None:
    recipe.edit(PUSH, "# external_id_c: lead_id", "external_id_c: lead_id")
    with pytest.raises(ProfileError) as info:
        recipe.run(PUSH)
    message = str(info.value)
    assert "1-leads-to-crm.yaml:28: mapping.external_id_c: unknown field 'external_id_c'" in message
    assert "an administrator adds them with Studio (Admin > Studio > Leads > Fields" in message
    assert recipe.writes() == 0


def test_update_fields_let_listed_fields_change_on_existing_records(
    recipe: Recipe,
) -> None:
    before = recipe.crm("leads")
    recipe.edit(PUSH, "update_fields: []", "update_fields: [title]")
    summary = recipe.run(PUSH)

    assert (summary.counts["created"], summary.counts["updated"]) == (3, 2)
    after = recipe.crm("leads")
    assert (after[SUSAN]["title"], after[WILLIAM]["title"]) == ("Owner", "Head of Purchasing")
    for email in (SUSAN, WILLIAM):
        unchanged = {
            k: v
            for k, v in before[email].items()
            if k not in ("title", "date_modified", "modified_user_id")
        }
        assert {k: after[email][k] for k in unchanged} == unchanged
    assert recipe.run(PUSH).counts["unchanged"] == 5


def test_events_become_notes_on_their_lead_and_are_sent_once(recipe: Recipe) -> None:
    recipe.run(PUSH)
    first = recipe.run(EVENTS)

    assert (first.counts["created"], first.counts["filtered"]) == (4, 1)
    leads = recipe.crm("leads")
    notes = recipe.notes()
    assert [(n["name"], n["parent_type"], n["parent_id"]) for n in notes] == [
        ("E-mail opened: Newsletter May", "Leads", leads[ADA]["id"]),
        ("Link clicked: https://example.com/pricing", "Leads", leads[ADA]["id"]),
        ("Form submitted: Contact us: demo request", "Leads", leads[SUSAN]["id"]),
        ("Webinar attended: Data quality in practice", "Leads", leads[GRACE]["id"]),
    ]
    assert notes[0]["description"] == "Event E-001 (email_open) at 2024-05-02 09:15:00 UTC"

    second = recipe.run(EVENTS)
    assert (second.counts["created"], second.counts["filtered"]) == (0, 5)
    assert len(recipe.notes()) == 4, "no event is sent twice"

    with (recipe.folder / "events.csv").open("a", encoding="utf-8", newline="") as f:
        csv.writer(f).writerow(["E-006", GRACE, "email_click", "2024-05-07 08:00:00", "Demo video"])
    recipe.run(PUSH, threshold="40")  # now Alan qualifies too
    third = recipe.run(EVENTS)
    assert (third.counts["created"], third.counts["filtered"]) == (2, 4)
    names = {n["name"]: n["parent_id"] for n in recipe.notes()}
    assert names["Link clicked: Demo video"] == leads[GRACE]["id"]
    alan = recipe.crm("leads")[ALAN]["id"]
    assert sum(1 for n in recipe.notes() if n["parent_id"] == alan) == 1, "skipped, then sent"


def test_opportunities_of_contacts_that_are_our_leads_come_back(recipe: Recipe) -> None:
    summary = recipe.run(OPPORTUNITIES)

    contact = recipe.crm("contacts")[MICHAEL]["id"]
    deals = recipe.sandbox.execute(
        "SELECT o.id, o.name, o.sales_stage FROM opportunities o JOIN opportunities_contacts oc "
        "ON oc.opportunity_id = o.id AND oc.deleted = 0 WHERE oc.contact_id = ? ORDER BY o.name",
        (contact,),
    )
    assert len(deals) == 2
    assert summary.counts["created"] == 2
    assert summary.counts["filtered"] == summary.records - 2
    rows = recipe.marketing(
        "SELECT opportunity_id, lead_id, name, sales_stage, contact_email FROM crm_opportunities "
        "ORDER BY name"
    )
    assert rows == [
        {
            "opportunity_id": d["id"],
            "lead_id": "L-1006",
            "name": d["name"],
            "sales_stage": d["sales_stage"],
            "contact_email": MICHAEL,
        }
        for d in deals
    ]
    recipe.sandbox.execute(
        "UPDATE opportunities SET sales_stage = 'Closed Won' WHERE id = ?", (deals[0]["id"],)
    )
    again = recipe.run(OPPORTUNITIES)
    assert (again.counts["updated"], again.counts["unchanged"]) == (1, 1)
    stage = recipe.marketing(
        "SELECT sales_stage FROM crm_opportunities WHERE opportunity_id = ?", (deals[0]["id"],)
    )
    assert stage == [{"sales_stage": "Closed Won"}]


def test_statuses_come_back_through_the_value_map(recipe: Recipe) -> None:
    recipe.run(PUSH)
    first = recipe.run(STATUS)

    def statuses() -> dict[str, str]:
        rows = recipe.marketing("SELECT email_key, status FROM leads")
        return {r["email_key"]: r["status"] for r in rows}

    assert (first.counts["updated"], first.counts["unchanged"]) == (1, 1)
    assert statuses()[SUSAN] == "customer", "Converted in the CRM"
    assert statuses()[WILLIAM] == "new", "New in the CRM"

    leads = recipe.crm("leads")
    for email, crm_status in ((WILLIAM, "Dead"), (ADA, "In Process"), (GRACE, "Someday")):
        recipe.sandbox.execute(
            "UPDATE leads SET status = ? WHERE id = ?", (crm_status, leads[email]["id"])
        )
    second = recipe.run(STATUS)
    assert second.counts["updated"] == 2
    assert statuses() == {
        SUSAN: "customer",
        WILLIAM: "disqualified",
        ADA: "contacted",
        GRACE: "new",  # 'Someday' is not in the map: left alone
        ALAN: "new",
        MICHAEL: "contacted",
        EDSGER: "new",
    }


def test_leads_can_go_to_contacts_instead(recipe: Recipe) -> None:
    before = recipe.crm("contacts")
    summary = recipe.run(PUSH, module="Contacts")

    assert (summary.counts["created"], summary.counts["unchanged"]) == (4, 1)
    after = recipe.crm("contacts")
    assert set(after) - set(before) == {SUSAN, WILLIAM, ADA, GRACE}
    assert after[MICHAEL] == before[MICHAEL]
    assert after[ADA]["lead_source"] == "Web Site"
    events = recipe.run(EVENTS, module="Contacts")
    assert events.counts["created"] == 4
    assert {n["parent_type"] for n in recipe.notes()} == {"Contacts"}
    assert recipe.notes()[0]["parent_id"] == after[ADA]["id"]
