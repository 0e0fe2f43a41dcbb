"""A crmbridge home, a folder of profiles (the bundled example, a sync with an open
conflict) and the web app over them, logged in."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from importlib import resources
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from tests.sync.conftest import SyncPair

from crmbridge.web import WebConfig, create_app

TOKEN = "test-token-123"
EXAMPLE = "crmbridge-example/contacts-to-sqlite.yaml"
SYNC = "suppliers.sync.yaml"


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CRMBRIDGE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("CRMBRIDGE_PASSPHRASE", "test passphrase")
    monkeypatch.delenv("CRMBRIDGE_STATE_URL", raising=False)
    monkeypatch.delenv("CRMBRIDGE_WEB_PASSWORD", raising=False)
    work = tmp_path / "work"
    work.mkdir()
    with resources.as_file(resources.files("crmbridge") / "examples") as path:
        shutil.copytree(path, work / "crmbridge-example", ignore=shutil.ignore_patterns("__*"))
    return work


def state_url(folder: Path) -> str:
    return f"sqlite:///{folder}/state.sqlite"


def make_conflict(folder: Path) -> SyncPair:
    """A sync of two SQLite tables whose record 1 both sides changed (phone): one open
    conflict, and a second like it (record 2) for "apply to all like this"."""
    pair = SyncPair(folder, f"sqlite:///{folder}/a.sqlite", f"sqlite:///{folder}/b.sqlite")
    for n in (1, 2):
        pair.add_a(name=f"Acme {n}", phone="111", vat=f"DE{n}")
        pair.add_b(f"x{n}", name=f"Acme {n}", phone_office="111", sic_code=f"DE{n}")
    pair.sync()
    for n in (1, 2):
        pair.edit_a(n, phone="222")
        pair.edit_b(f"x{n}", phone_office="333")
    pair.sync()
    return pair


@pytest.fixture
def conflict(folder: Path) -> Iterator[SyncPair]:
    pair = make_conflict(folder)
    yield pair
    pair.close()


def app_for(folder: Path, password: str | None = None) -> FastAPI:
    config = WebConfig(folder=folder, token=TOKEN, password=password, state_url=state_url(folder))
    return create_app(config)


@pytest.fixture
def app(folder: Path) -> FastAPI:
    return app_for(folder)


@pytest.fixture
def anonymous(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as client:
        yield client


@pytest.fixture
def client(anonymous: TestClient) -> TestClient:
    """Logged in through the login form, as a person is."""
    page = anonymous.get("/login")
    response = anonymous.post(
        "/login", data={"secret": TOKEN, "next": "/", "csrf_token": csrf_of(page.text)}
    )
    assert response.status_code == 200, response.text
    return anonymous


@pytest.fixture
def api(app: FastAPI) -> Iterator[TestClient]:
    """A script: the bearer token, no cookie (the same server as ``client``)."""
    with TestClient(app) as client:
        client.headers["Authorization"] = f"Bearer {TOKEN}"
        yield client


def csrf_of(html: str) -> str:
    marker = 'name="csrf_token" value="'
    start = html.index(marker) + len(marker)
    return html[start : html.index('"', start)]


@pytest.fixture
def sugar() -> Iterator[str]:
    """The SugarCRM sandbox, served on a free port; its URL (user admin, password admin)."""
    from crmbridge.sandbox.sugarcrm import SugarSandbox

    box = SugarSandbox(accounts=1)
    with box.serve() as running:
        yield running.url
    box.close()


PEOPLE_CSV = """\
name,email,city
Ada Lovelace,ada@example.com,London
Grace Hopper,grace@example.com,Arlington
Nobody Without Mail,,Nowhere
Bartholomew Maximilian Longname,bart@example.com,Springfield
"""


def make_people(folder: Path) -> Path:
    """A CSV of people beside an SQLite database whose table ``people`` refuses names over 20
    characters and records without an e-mail: two of the four records are rejected."""
    import sqlalchemy as sa

    data = folder / "data"
    data.mkdir(exist_ok=True)
    (data / "people.csv").write_text(PEOPLE_CSV, encoding="utf-8")
    engine = sa.create_engine(f"sqlite:///{data}/crm.sqlite")
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "CREATE TABLE people (id INTEGER PRIMARY KEY, name VARCHAR(20), "
            "email VARCHAR(60) NOT NULL, city VARCHAR(40))"
        )
    engine.dispose()
    return data


PEOPLE_PROFILE = """\
name: people
source:
  connection: files
  object: people.csv
target:
  connection: crm
  object: people
mapping:
  name: name
  email: email
  city: upper(city)
"""


@pytest.fixture
def people(folder: Path, api: TestClient) -> Path:
    """Connections ``files`` (the CSV folder) and ``crm`` (the SQLite file), and the profile
    ``people.yaml`` between them."""
    data = make_people(folder)
    for name, type_name, settings in (
        ("files", "csv", {"path": str(data)}),
        ("crm", "sql", {"url": f"sqlite:///{data}/crm.sqlite"}),
    ):
        saved = api.post(
            "/api/connections", json={"name": name, "type": type_name, "settings": settings}
        )
        assert saved.status_code == 200, saved.text
    (folder / "people.yaml").write_text(PEOPLE_PROFILE, encoding="utf-8")
    return data
