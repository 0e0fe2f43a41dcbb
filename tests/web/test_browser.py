"""The novice path in a real browser (Debian's chromium through Playwright) against
``crmbridge serve`` running as its own process: log in, add connections (a CSV folder, an
SQLite database and the SugarCRM sandbox), build a profile from the mapping grid, preview,
dry run, run, open the rejected records, resolve a sync conflict. Every page is screenshot
(test-artifacts/web/) and checked for layout breakage."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.web.conftest import make_conflict, make_people
from tests.web.layout import ARTIFACTS, check_page
from tests.web.serving import CHROMIUM, Served, require_chromium, serve

pytestmark = [pytest.mark.browser, pytest.mark.slow]
#: milliseconds an expectation waits (the machine is shared and slow at times)
WAIT = 20_000


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    require_chromium()
    root = tmp_path_factory.mktemp("browser")
    folder = root / "work"
    folder.mkdir()
    with serve(folder, root / "home") as running:
        yield running


@pytest.fixture(scope="module")
def browser(served: Served) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=str(CHROMIUM))
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def sugar_url() -> Iterator[str]:
    from crmbridge.sandbox.sugarcrm import SugarSandbox

    box = SugarSandbox(accounts=1)
    with box.serve() as running:
        yield running.url
    box.close()


def test_novice_path_end_to_end(served: Served, browser: Any, sugar_url: str) -> None:
    from playwright.sync_api import expect

    expect.set_options(timeout=WAIT)
    data = make_people(served.folder)
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(WAIT)
    errors: list[str] = []
    page.on("pageerror", lambda err: errors.append(str(err)))
    try:
        _log_in(page, served)
        _add_connections(page, served, data, sugar_url)
        _build_profile(page, served)
        _preview_dry_run_and_run(page, served)
        _resolve_a_conflict(page, served)
        _see_schedules(page, served)
    except BaseException:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "failed.png"), full_page=True)
        (ARTIFACTS / "failed.html").write_text(page.content(), encoding="utf-8")
        raise
    finally:
        context.close()
    assert errors == [], errors


def _log_in(page: Any, served: Served) -> None:
    from playwright.sync_api import expect

    page.goto(f"{served.url}/connections")
    expect(page).to_have_url(f"{served.url}/login?next=/connections")
    check_page(page, "01-login")
    page.fill("#secret", "not the token")
    page.click("button[type=submit]")
    expect(page.locator("p.error")).to_contain_text("not the token")
    page.fill("#secret", served.token)
    page.click("button[type=submit]")
    expect(page.locator("h1")).to_have_text("Connections")


def _add_connection(page: Any, name: str, type_name: str, settings: dict[str, str]) -> None:
    from playwright.sync_api import expect

    page.fill("#conn-name", name)
    page.select_option("#conn-type", type_name)
    page.wait_for_function("!document.querySelector('.htmx-request')")
    for key in settings:  # the type's settings are drawn in (htmx)
        expect(page.locator(f"#setting-{key}")).to_be_visible()
    for key, value in settings.items():
        page.fill(f"#setting-{key}", value)
    page.click("#add-connection button[type=submit]")
    expect(page.locator("p.ok")).to_have_text(f"Saved connection {name}.")


def _add_connections(page: Any, served: Served, data: Path, sugar_url: str) -> None:
    from playwright.sync_api import expect

    _add_connection(page, "files", "csv", {"path": str(data)})
    _add_connection(page, "crm", "sql", {"url": f"sqlite:///{data}/crm.sqlite"})
    page.select_option("#conn-type", "sugarcrm")
    expect(page.locator("#setting-password")).to_have_attribute("type", "password")
    _add_connection(
        page, "sugar", "sugarcrm", {"url": sugar_url, "username": "admin", "password": "admin"}
    )
    row = page.locator("#connection-sugar")
    expect(row).to_contain_text("••••••")
    row.get_by_role("button", name="Test").click()
    expect(row.locator(".answer")).to_contain_text("connected to SuiteCRM 7.14.6")
    page.locator("#connection-files").get_by_role("button", name="Test").click()
    expect(page.locator("#connection-files .answer")).to_contain_text("connected to")
    assert 'value="admin"' not in page.content()  # the password is never rendered back
    check_page(page, "02-connections")
    page.locator("#connection-sugar").get_by_role("link", name="Objects").click()
    page.fill("#object-filter", "lea")
    expect(page.locator("#objects li:visible")).to_have_count(1)
    page.click("#objects >> text=Leads")
    expect(page.locator("#fields")).to_contain_text("last_name")
    check_page(page, "02-describe-sugar-leads")
    page.click("nav >> text=Connections")


def _build_profile(page: Any, served: Served) -> None:
    from playwright.sync_api import expect

    page.click("nav >> text=Profiles")
    check_page(page, "03-profiles")
    page.click("text=New profile")
    page.fill("#profile_name", "people")
    _changed(page, "#profile_name")
    page.select_option("#source_connection", "files")
    expect(page.locator("#source-objects option[value='people.csv']")).to_have_count(1)
    page.fill("#source_object", "people.csv")
    _changed(page, "#source_object")
    page.select_option("#target_connection", "crm")
    expect(page.locator("#target-objects option[value='people']")).to_have_count(1)
    page.fill("#target_object", "people")
    _changed(page, "#target_object")
    grid = page.locator("#mapping-grid")
    expect(grid).to_contain_text("email")
    expect(page.locator("[aria-label='expression for email']")).to_have_value("email")
    city = page.locator("[aria-label='expression for city']")
    city.fill("")
    city.press_sequentially("upper(cty")  # a mistake, checked as it is typed
    answer = grid.locator("tr", has=city).locator(".check-answer")
    expect(answer).to_contain_text("syntax error")
    city.fill("")
    city.press_sequentially("upper(cty)")
    expect(answer).to_contain_text("unknown column 'cty'")
    city.fill("")
    city.press_sequentially("upper(city)")
    expect(answer).to_contain_text("✓ ok")
    _changed(page, "[aria-label='expression for city']")
    yaml = page.locator("#yaml")
    expect(yaml).to_have_value(_contains("city: upper(city)"))
    check_page(page, "04-editor")
    # the YAML edited by hand: the form follows
    text = yaml.input_value().replace("city: upper(city)", "city: lower(city)")
    yaml.fill(text)
    _changed(page, "#yaml")
    expect(page.locator("[aria-label='expression for city']")).to_have_value("lower(city)")
    page.click("#save-profile")
    expect(page.locator("h1")).to_have_text("people.yaml")
    assert "city: lower(city)" in (served.folder / "people.yaml").read_text()
    check_page(page, "05-profile")


def _preview_dry_run_and_run(page: Any, served: Served) -> None:
    from playwright.sync_api import expect

    page.click("text=Preview")
    table = page.locator("#preview-table")
    expect(table).to_contain_text("Ada Lovelace")
    expect(table.locator("td.action.reject")).to_have_count(2)
    check_page(page, "06-preview")
    page.click("button:has-text('Dry run')")
    state = page.locator("#job-state")
    expect(state).to_have_attribute("data-state", "done")
    expect(state).to_contain_text("created 2")
    expect(state).to_contain_text("records/s")
    check_page(page, "07-dry-run")
    page.go_back()
    page.go_back()
    page.click("button:has-text('Run now')")
    expect(page.locator("#job-state")).to_have_attribute("data-state", "done")
    expect(page.locator("#job-state")).to_contain_text("rejected 2")
    check_page(page, "08-run")
    page.click("#open-run")
    expect(page.locator("#rejects-table tbody tr")).to_have_count(2)
    check_page(page, "09-run-history")
    page.fill("#reject-filter", "bartholomew")
    expect(page.locator("#rejects-table tbody tr")).to_have_count(1)
    expect(page.locator("#rejects-table")).to_contain_text("Bartholomew")
    check_page(page, "10-rejected-records")
    href = page.locator("#error-file").get_attribute("href")
    answer = page.request.get(served.url + href)
    assert answer.ok
    assert "Nobody Without Mail" in answer.text()
    page.click("nav >> text=Run history")
    expect(page.locator("main table")).to_contain_text("finished with rejects")
    check_page(page, "11-runs")


def _resolve_a_conflict(page: Any, served: Served) -> None:
    from playwright.sync_api import expect

    pair = make_conflict(served.folder)
    try:
        page.click("nav >> text=Syncs")
        expect(page.locator("main table")).to_contain_text("suppliers.sync.yaml")
        check_page(page, "12-syncs")
        page.click("text=suppliers.sync.yaml")
        expect(page.locator("h1")).to_contain_text("suppliers.sync.yaml")
        check_page(page, "13-sync")
        page.click("nav >> text=Conflicts")
        cards = page.locator("article.conflict")
        expect(cards).to_have_count(2)
        first = cards.first
        expect(first.locator(".side.a")).to_contain_text("222")
        expect(first.locator(".side.b")).to_contain_text("333")
        expect(first.locator(".side").first).to_contain_text("111")
        check_page(page, "14-conflicts")
        first.locator("input[name=all_like_this]").check()
        first.get_by_role("button", name="Take a").click()
        expect(page.locator("p.ok")).to_contain_text("2 resolved")
        expect(page.locator("article.conflict")).to_have_count(0)
        check_page(page, "15-conflicts-resolved")
        pair.sync()
        assert pair.b_row("x1")["phone_office"] == pair.b_row("x2")["phone_office"] == "222"
    finally:
        pair.close()


def _see_schedules(page: Any, served: Served) -> None:
    from playwright.sync_api import expect

    path = served.folder / "people.yaml"
    path.write_text(path.read_text() + "schedule: {cron: '0 2 * * *', timezone: UTC}\n")
    page.click("nav >> text=Schedules")
    expect(page.locator("#schedules")).to_contain_text("0 2 * * *")
    check_page(page, "16-schedules")


def _changed(page: Any, selector: str) -> None:
    """Fire ``change`` on the field (as leaving it does) and wait for the page to redraw."""
    page.locator(selector).dispatch_event("change")
    page.wait_for_function("!document.querySelector('.htmx-request')")


def _contains(text: str) -> Any:
    import re

    return re.compile(".*" + re.escape(text) + ".*", re.DOTALL)
