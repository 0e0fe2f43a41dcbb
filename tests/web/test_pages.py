"""Every route of the UI and its JSON twin, through FastAPI's TestClient."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from tests.sync.conftest import SyncPair
from tests.web.conftest import EXAMPLE, PEOPLE_PROFILE, SYNC, csrf_of

#: each page (an HTML GET) and its JSON twin
TWINS = {
    "/": "/api/overview",
    "/connections": "/api/connections",
    "/connections/{name}/objects": "/api/connections/{name}/objects",
    "/connections/{name}/describe": "/api/connections/{name}/describe",
    "/profiles": "/api/profiles",
    "/profiles/show": "/api/profiles/detail",
    "/profiles/edit": "/api/profiles/editor",
    "/profiles/preview": "/api/profiles/preview",
    "/runs": "/api/runs",
    "/runs/{run_id}": "/api/runs/{run_id}",
    "/jobs/{job_id}": "/api/jobs/{job_id}",
    "/syncs": "/api/syncs",
    "/syncs/show": "/api/syncs/detail",
    "/conflicts": "/api/conflicts",
    "/schedules": "/api/schedules",
}
#: HTML routes that are parts of pages (htmx) or the login, not pages
FRAGMENTS = {"/connections/fields", "/login"}


def wait(api: TestClient, job: dict[str, Any]) -> dict[str, Any]:
    for _ in range(200):
        job = api.get(f"/api/jobs/{job['id']}").json()
        if job["state"] != "running":
            return job
        time.sleep(0.05)
    raise AssertionError(f"job {job['id']} did not end")


def test_every_page_has_a_json_twin_in_the_openapi_document(api: TestClient) -> None:
    from crmbridge.web import connections, profiles, runs, schedules, syncs

    modules = (connections, profiles, runs, syncs, schedules)
    routes = [r for m in modules for r in m.router.routes]
    pages = {
        r.path
        for r in routes
        if isinstance(r, APIRoute) and "GET" in r.methods and not r.path.startswith("/api/")
    }
    assert pages - FRAGMENTS - {"/health"} == set(TWINS)
    documented = api.get("/openapi.json").json()["paths"]
    for twin in TWINS.values():
        assert "get" in documented[twin], twin
    assert not any(not p.startswith(("/api/", "/health")) for p in documented)


def test_overview(client: TestClient, api: TestClient) -> None:
    assert "Overview" in client.get("/").text
    overview = api.get("/api/overview").json()
    assert overview["profiles"] == 1
    assert overview["connections"] == 0


# -- connections --------------------------------------------------------------------------
def test_add_a_connection_from_the_form_and_test_it(client: TestClient, folder: Path) -> None:
    page = client.get("/connections?type=sql")
    assert 'name="setting.url"' in page.text
    fields = client.get("/connections/fields?type=sugarcrm").text
    assert 'name="setting.password" type="password"' in fields
    added = client.post(
        "/connections",
        data={
            "name": "files",
            "type": "csv",
            "setting.path": str(folder),
            "csrf_token": csrf_of(page.text),
        },
    )
    assert "Saved connection files" in added.text
    token = csrf_of(added.text)
    answer = client.post("/connections/files/test", headers={"X-CSRF-Token": token})
    assert "files: connected to" in answer.text
    gone = client.post("/connections/files/remove", data={"csrf_token": token})
    assert "No connection yet" in gone.text


def test_connection_api(api: TestClient, folder: Path, sugar: str) -> None:
    types = api.get("/api/connections").json()["types"]
    assert {"csv", "sql", "sugarcrm"} <= set(types)
    settings = api.get("/api/connection-types/sugarcrm").json()
    assert {"name": "password", "secret": True}.items() <= next(
        s for s in settings if s["name"] == "password"
    ).items()
    assert api.get("/api/connection-types/nope").status_code == 400
    saved = api.post(
        "/api/connections",
        json={
            "name": "crm",
            "type": "sugarcrm",
            "settings": {"url": sugar, "username": "admin", "password": "admin"},
        },
    )
    assert saved.json()["settings"]["username"] == "admin"
    answer = api.post("/api/connections/crm/test").json()
    assert answer["ok"]
    assert answer["system"] == "SuiteCRM"
    # replacing it without the password keeps the stored one
    api.post(
        "/api/connections",
        json={
            "name": "crm",
            "type": "sugarcrm",
            "settings": {"url": sugar, "username": "admin"},
            "replace": True,
        },
    )
    assert api.post("/api/connections/crm/test").json()["ok"]
    assert (
        api.post(
            "/api/connections", json={"name": "crm", "type": "csv", "settings": {"path": "."}}
        ).status_code
        == 400
    )
    assert api.delete("/api/connections/crm").json()["connections"] == []
    assert api.post("/api/connections/crm/test").status_code == 400


def test_objects_and_describe(client: TestClient, api: TestClient, people: Path) -> None:
    assert api.get("/api/connections/files/objects").json()["objects"] == ["people.csv"]
    assert "people.csv" in client.get("/connections/files/objects").text
    found = api.get("/api/connections/crm/describe", params={"object": "people"}).json()
    fields = {f["name"]: f for f in found["fields"]}
    assert fields["name"]["type"] == "string(20)"
    assert fields["email"]["required"]
    assert fields["id"]["key"]
    assert "upsert" in found["write_modes"]
    page = client.get("/connections/crm/describe?object=people").text
    assert "string(60)" in page
    missing = api.get("/api/connections/crm/describe", params={"object": "nope"})
    assert missing.status_code == 400
    assert "nope" in missing.json()["detail"]
    assert api.get("/api/connections/nope/objects").status_code == 400


# -- profiles -----------------------------------------------------------------------------
def test_profiles_list_and_show(client: TestClient, api: TestClient, people: Path) -> None:
    listed = api.get("/api/profiles").json()
    assert {"name": EXAMPLE, "kind": "profile"} in listed
    assert {"name": "people.yaml", "kind": "profile"} in listed
    assert "people.yaml" in client.get("/profiles").text
    shown = client.get("/profiles/show?name=people.yaml")
    assert "Run now" in shown.text
    detail = api.get("/api/profiles/detail", params={"name": "people.yaml"}).json()
    assert detail["problems"] == []
    assert "upper(city)" in detail["yaml"]
    assert api.get("/api/profiles/detail", params={"name": "../etc/passwd.yaml"}).status_code == 400
    assert api.get("/api/profiles/detail", params={"name": "missing.yaml"}).status_code == 404
    assert api.post("/api/runs", json={"profile": "a\u0000.yaml"}).status_code == 400


def test_the_grid_lists_the_target_fields_fed_by_describe(api: TestClient, people: Path) -> None:
    editor = api.get("/api/profiles/editor", params={"name": "people.yaml"}).json()
    rows = {r["target"]: r for r in editor["form"]["mapping"]}
    assert list(rows) == ["id", "name", "email", "city"]
    assert rows["id"]["expression"] == ""
    assert not rows["id"]["required"]
    assert rows["city"]["expression"] == "upper(city)"
    assert rows["email"]["required"] is True
    assert editor["source_fields"] == ["name", "email", "city"]
    assert "people.csv" in editor["source_objects"]
    assert "people" in editor["target_objects"]


def test_a_new_profile_is_guessed_by_field_name(api: TestClient, people: Path) -> None:
    form = {
        "name": "fresh",
        "source_connection": "files",
        "source_object": "people.csv",
        "target_connection": "crm",
        "target_object": "people",
    }
    editor = api.post("/api/profiles/editor", json={"yaml": "", "form": form}).json()
    assert {r["target"]: r["expression"] for r in editor["form"]["mapping"]} == {
        "id": "",
        "name": "name",
        "email": "email",
        "city": "city",
    }
    assert "connection: files" in editor["yaml"]


def test_form_and_yaml_stay_in_step(client: TestClient, people: Path) -> None:
    page = client.get("/profiles/edit?name=people.yaml")
    token = csrf_of(page.text)
    form = {
        "csrf_token": token,
        "changed": "form",
        "name_of_file": "people.yaml",
        "yaml": (people.parent / "people.yaml").read_text(),
        "profile_name": "people",
        "source_connection": "files",
        "source_object": "people.csv",
        "source_filter": "email IS NOT NULL",
        "target_connection": "crm",
        "target_object": "people",
        "mode": "upsert",
        "match_keys": "email",
        "map_target": ["name", "email", "city"],
        "map_expr": ["name", "lower(email)", ""],
    }
    drawn = client.post("/profiles/editor", data=form).text
    assert "filter: email IS NOT NULL" in drawn
    assert "mode: upsert" in drawn
    assert "email: lower(email)" in drawn
    assert "city: upper(city)" not in drawn  # emptied in the grid: no longer mapped
    # and back: the YAML edited, the form follows
    yaml = (
        "name: people\nsource: {connection: files, object: people.csv}\n"
        "target: {connection: crm, object: people, mode: update, match_keys: [name]}\n"
        "mapping: {city: lower(city)}\n"
    )
    back = client.post(
        "/profiles/editor", data={"csrf_token": token, "changed": "yaml", "yaml": yaml}
    ).text
    assert "<option selected>update</option>" in back
    assert 'value="lower(city)"' in back
    bad = client.post(
        "/profiles/editor", data={"csrf_token": token, "changed": "yaml", "yaml": "a: [b"}
    ).text
    assert "not valid" in bad


def test_comments_and_other_settings_survive_the_form(api: TestClient, folder: Path) -> None:
    text = (folder / EXAMPLE).read_text()
    editor = api.get("/api/profiles/editor", params={"name": EXAMPLE}).json()
    form = editor["form"]
    form["source_filter"] = "lead_score >= 50"
    edited = api.post(
        "/api/profiles/editor", json={"yaml": text, "form": form, "base": EXAMPLE}
    ).json()
    assert "# the folder of" in edited["yaml"]  # a comment of the bundled example
    assert "types: {lead_score: integer, created: date}" in edited["yaml"]
    assert "filter: lead_score >= 50" in edited["yaml"]
    assert edited["form"]["source_connection"] == "@inline"
    imported_by = next(r for r in edited["form"]["mapping"] if r["target"] == "imported_by")
    assert imported_by["constant"] == "crmbridge example"  # set by constants:, not mapped


def test_a_field_added_below_the_grid_is_mapped(client: TestClient, people: Path) -> None:
    token = csrf_of(client.get("/profiles/edit?name=people.yaml").text)
    form = {
        "csrf_token": token,
        "changed": "form",
        "yaml": (people.parent / "people.yaml").read_text(),
        "source_connection": "files",
        "source_object": "people.csv",
        "target_connection": "crm",
        "target_object": "people",
        "map_target": ["name"],
        "map_expr": ["name"],
        "new_target": "nickname",
        "new_expr": "lower(name)",
    }
    drawn = client.post("/profiles/editor", data=form).text
    assert "nickname: lower(name)" in drawn
    assert 'value="nickname"' in drawn  # now a row of the grid


def test_save_a_profile(client: TestClient, api: TestClient, people: Path, folder: Path) -> None:
    token = csrf_of(client.get("/profiles/edit").text)
    yaml = (folder / "people.yaml").read_text().replace("name: people", "name: copy of people")
    saved = client.post("/profiles/save", data={"csrf_token": token, "yaml": yaml})
    assert saved.url.path == "/profiles/show"
    assert (folder / "copy-of-people.yaml").read_text() == yaml
    put = api.put("/api/profiles", json={"name": "sub/p.yaml", "yaml": yaml})
    assert put.status_code == 200
    assert (folder / "sub" / "p.yaml").exists()
    assert api.put("/api/profiles", json={"name": "x.yaml", "yaml": "a: 1"}).status_code == 400
    assert api.put("/api/profiles", json={"name": "../x.yaml", "yaml": yaml}).status_code == 400


def test_expressions_are_checked_as_typed(
    client: TestClient, api: TestClient, people: Path
) -> None:
    assert api.post("/api/expressions/check", json={"expression": "upper(name)"}).json()["ok"]
    bad = api.post("/api/expressions/check", json={"expression": "upper(name"}).json()
    assert not bad["ok"]
    assert "syntax" in bad["message"]
    unknown = api.post(
        "/api/expressions/check", json={"expression": "upper(nmae)", "fields": {"name": "string"}}
    ).json()
    assert "did you mean 'name'" in unknown["message"]
    token = csrf_of(client.get("/profiles/edit?name=people.yaml").text)
    yaml = (people.parent / "people.yaml").read_text()
    answer = client.post(
        "/profiles/check",
        data={
            "check": "map_expr.1",
            "map_expr": ["name", "lower(emial)"],
            "yaml": yaml,
            "name_of_file": "people.yaml",
        },
        headers={"X-CSRF-Token": token},
    ).text
    assert "unknown column" in answer
    assert "email" in answer
    ok = client.post(
        "/profiles/check",
        data={"check": "source_filter", "source_filter": "city = 'London'", "yaml": yaml},
        headers={"X-CSRF-Token": token},
    ).text
    assert "✓" in ok
    odd = client.post(
        "/profiles/check", data={"check": "map_expr.x"}, headers={"X-CSRF-Token": token}
    )
    assert odd.status_code == 200
    assert "not mapped" in odd.text


def test_htmx_shows_error_answers_too(client: TestClient) -> None:
    page = client.get("/").text
    assert '"target": "#flash"' in page  # 4xx and 5xx fragments are shown, not dropped
    assert '<div id="flash"' in page
    token = csrf_of(page)
    answer = client.post(
        "/connections/nope/test", headers={"X-CSRF-Token": token, "HX-Request": "true"}
    )
    assert answer.status_code == 400
    assert answer.text.startswith('<p class="error" role="alert">')


def test_preview_shows_the_planned_outcome_of_each_record(
    client: TestClient, api: TestClient, people: Path
) -> None:
    preview = api.get("/api/profiles/preview", params={"name": "people.yaml"}).json()
    assert preview["columns"][:2] == ["record", "action"]
    actions = {r["name"]: r["action"] for r in preview["rows"] if r["name"]}
    assert actions["Ada Lovelace"] == "create"
    assert [r["action"] for r in preview["rows"]].count("reject") == 2
    page = client.get("/profiles/preview?name=people.yaml&limit=2").text
    assert "Ada Lovelace" in page
    assert "Bartholomew" not in page


# -- runs ---------------------------------------------------------------------------------
def test_dry_run_then_run_then_the_rejected_records(
    client: TestClient, api: TestClient, people: Path
) -> None:
    dry = wait(api, api.post("/api/runs", json={"profile": "people.yaml", "dry_run": True}).json())
    assert dry["status"] == "dry_run"
    assert dry["counts"] == {"created": 2, "rejected": 2}
    token = csrf_of(client.get("/profiles/show?name=people.yaml").text)
    started = client.post(
        "/runs", data={"csrf_token": token, "profile": "people.yaml"}, follow_redirects=False
    )
    job_url = started.headers["location"]
    job = wait(api, {"id": int(job_url.rsplit("/", 1)[1])})
    assert job["status"] == "finished_with_rejects"
    assert job["records_per_second"] > 0
    page = client.get(job_url).text
    assert f"Open run {job['run_id']}" in page
    assert 'hx-trigger="every 500ms"' not in page  # it ended: no more polling
    assert "records/s" in page
    assert client.get(job_url, headers={"HX-Request": "true"}).text.lstrip().startswith("<div")
    assert [j["id"] for j in api.get("/api/jobs").json()] == [job["id"], dry["id"]]

    runs = api.get("/api/runs").json()
    assert [r["status"] for r in runs] == ["finished_with_rejects", "dry_run"]
    assert "finished with rejects" in client.get("/runs").text
    run = api.get(f"/api/runs/{job['run_id']}").json()
    assert run["run"]["counts"] == {"created": 2, "rejected": 2}
    reasons = {r["values"]["name"]: r["reason"] for r in run["rejects"]["shown"]}
    assert set(reasons) == {"Nobody Without Mail", "Bartholomew Maximilian Longname"}
    assert run["rejects"]["codes"] == ["invalid_value"]
    longname = api.get(f"/api/runs/{job['run_id']}", params={"q": "bartholomew"}).json()
    assert longname["rejects"]["total"] == 1
    for code, total in (("invalid_value", 2), ("missing_required", 0)):
        found = api.get(f"/api/runs/{job['run_id']}", params={"code": code}).json()
        assert found["rejects"]["total"] == total
    page = client.get(f"/runs/{job['run_id']}").text
    assert "Nobody Without Mail" in page
    assert "error file" in page
    part = client.get(f"/runs/{job['run_id']}?q=nobody", headers={"HX-Request": "true"}).text
    assert "Nobody Without Mail" in part
    assert "Bartholomew" not in part
    assert "<html" not in part
    error_file = api.get(f"/api/runs/{job['run_id']}/files/error")
    assert error_file.status_code == 200
    assert "Nobody Without Mail" in error_file.text
    success = api.get(f"/api/runs/{job['run_id']}/files/success")
    assert "Ada Lovelace" in success.text
    assert api.get(f"/api/runs/{job['run_id']}/files/other").status_code == 404
    assert api.get("/api/runs/999").status_code == 404
    assert api.get("/api/jobs/999").status_code == 404


def test_a_failed_profile_shows_on_the_job(api: TestClient, folder: Path) -> None:
    (folder / "broken.yaml").write_text(
        "source: {connection: nope, object: x}\ntarget: {connection: nope, object: y}\n"
    )
    job = wait(api, api.post("/api/runs", json={"profile": "broken.yaml"}).json())
    assert job["state"] == "failed"
    assert "nope" in job["error"]
    shown = api.get("/api/profiles/preview", params={"name": "broken.yaml"})
    assert shown.status_code == 400
    assert "nope" in shown.json()["detail"]


# -- syncs and conflicts ------------------------------------------------------------------
def test_syncs_and_their_links(client: TestClient, api: TestClient, conflict: SyncPair) -> None:
    (item,) = api.get("/api/syncs").json()
    assert item["name"] == SYNC
    assert item["links"] == 2
    assert item["open_conflicts"] == 2
    assert SYNC in client.get("/syncs").text
    detail = api.get("/api/syncs/detail", params={"name": SYNC}).json()
    assert {link["a_id"] for link in detail["links"]} == {"1", "2"}
    assert "Sync now" in client.get(f"/syncs/show?name={SYNC}").text
    assert api.get("/api/syncs/detail", params={"name": "people.yaml"}).status_code == 404


def test_a_first_sync_shows_its_link_plan_to_accept(
    client: TestClient, api: TestClient, folder: Path
) -> None:
    pair = SyncPair(folder, f"sqlite:///{folder}/a.sqlite", f"sqlite:///{folder}/b.sqlite")
    try:
        pair.add_a(name="Acme", phone="1", vat="DE9")
        pair.add_b("x9", name="Acme", phone_office="1", sic_code="DE9")
        plan = wait(api, api.post("/api/syncs/run", json={"profile": SYNC, "dry_run": True}).json())
        assert plan["result"]["links"][0]["a_id"] == "1"
        page = client.get(f"/jobs/{plan['id']}").text
        assert "Accept these links and sync" in page
        token = csrf_of(page)
        done = client.post(
            "/syncs/run", data={"csrf_token": token, "profile": SYNC, "accept_links": "true"}
        )
        job = wait(api, {"id": int(done.url.path.rsplit("/", 1)[1])})
        assert job["state"] == "done", job
        assert pair.links() == {"1": "x9"}
    finally:
        pair.close()


def test_the_conflict_inbox_shows_base_a_and_b(
    client: TestClient, api: TestClient, conflict: SyncPair
) -> None:
    found = api.get("/api/conflicts").json()
    assert [(c["field"], c["base_a"], c["a_value"], c["b_value"]) for c in found] == [
        ("phone", "111", "222", "333")
    ] * 2
    page = client.get("/conflicts").text
    assert "Take a" in page
    assert "222" in page
    assert "333" in page
    assert "Apply to all like this" in page
    assert api.get("/api/conflicts", params={"status": "all"}).json() == found


def test_take_b_for_all_like_this(client: TestClient, api: TestClient, conflict: SyncPair) -> None:
    first = api.get("/api/conflicts").json()[0]["id"]
    token = csrf_of(client.get("/conflicts").text)
    done = client.post(
        f"/conflicts/{first}/resolve",
        data={"csrf_token": token, "take": "b", "all_like_this": "true"},
    )
    assert "2 resolved" in done.text
    assert api.get("/api/conflicts").json() == []
    conflict.sync()
    assert conflict.a_row(1)["phone"] == conflict.a_row(2)["phone"] == "333"


def test_take_a_one_by_one_and_edit(api: TestClient, conflict: SyncPair) -> None:
    one, two = (c["id"] for c in api.get("/api/conflicts").json())
    assert api.post(f"/api/conflicts/{one}/resolve", json={"take": "a"}).json() == {
        "resolved": [one]
    }
    edited = api.post(f"/api/conflicts/{two}/resolve", json={"take": "value", "value": "444"})
    assert edited.json() == {"resolved": [two]}
    assert api.post(f"/api/conflicts/{two}/resolve", json={"take": "a"}).status_code == 400
    assert api.post("/api/conflicts/999/resolve", json={"take": "a"}).status_code == 404
    assert api.post(f"/api/conflicts/{two}/resolve", json={"take": "value"}).status_code == 400
    conflict.sync()
    assert conflict.b_row("x1")["phone_office"] == "222"
    assert conflict.a_row(2)["phone"] == conflict.b_row("x2")["phone_office"] == "444"
    assert len(api.get("/api/conflicts", params={"status": "closed"}).json()) == 2


def test_schedules_as_written_in_the_profiles(
    client: TestClient, api: TestClient, folder: Path, people: Path
) -> None:
    assert api.get("/api/schedules").json() == []
    assert "No profile here names a schedule" in client.get("/schedules").text
    path = folder / "people.yaml"
    path.write_text(path.read_text() + "schedule: {cron: '0 2 * * *', timezone: Europe/Berlin}\n")
    (folder / "other.yaml").write_text(PEOPLE_PROFILE + "schedule: '*/5 * * * *'\n")
    assert api.get("/api/schedules").json() == [
        {"name": "other.yaml", "kind": "profile", "schedule": {"cron": "*/5 * * * *"}},
        {
            "name": "people.yaml",
            "kind": "profile",
            "schedule": {"cron": "0 2 * * *", "timezone": "Europe/Berlin"},
        },
    ]
    assert "Europe/Berlin" in client.get("/schedules").text


def test_a_missing_page_says_so(client: TestClient) -> None:
    page = client.get("/profiles/show?name=missing.yaml")
    assert page.status_code == 404
    assert "Something needs fixing" in page.text


@pytest.mark.parametrize("url", ["/static/htmx.min.js", "/static/app.css"])
def test_static_files(anonymous: TestClient, url: str) -> None:
    assert anonymous.get(url).status_code == 200
