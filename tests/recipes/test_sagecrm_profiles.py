"""The Sage CRM example profiles of examples/sagecrm, run as a user runs them (saved
connections, ``crmbridge run`` / ``crmbridge sync``) against the Sage CRM sandbox on a real
port: companies into a workbook, opportunities into a reporting table, and the purchasing
database's suppliers (PostgreSQL) kept in step with the CRM's companies."""

from __future__ import annotations

import shutil
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openpyxl
import pytest
import sqlalchemy as sa

from crmbridge.cli.app import main
from crmbridge.connections import ConnectionStore
from crmbridge.profiles.loader import load_profile
from crmbridge.runner import RunSummary, run_profile
from crmbridge.sandbox.sagecrm import RunningServer, SageSandbox
from crmbridge.state import RunStatus, StateStore

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "sagecrm"


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    copy = tmp_path / "sagecrm"
    shutil.copytree(EXAMPLE, copy)
    return copy


@pytest.fixture
def sandbox() -> Iterator[SageSandbox]:
    box = SageSandbox(companies=12, max_records=5, server_zone="Europe/London")
    yield box
    box.close()


@pytest.fixture
def server(sandbox: SageSandbox) -> Iterator[RunningServer]:
    with sandbox.serve() as running:
        yield running


def _connect(store: ConnectionStore, server: RunningServer, api: str) -> None:
    """``api``: soap, rest (with orderBy, 2024 R2 and later) or rest-plain (without)."""
    store.add(
        "sagecrm",
        "sagecrm",
        {
            "url": server.url,
            "username": "admin",
            "password": "admin",
            "api": api.removesuffix("-plain"),
            "server_timezone": "Europe/London",
            "max_records": 5,
            "rest_order_by": api == "rest",
            "retry_backoff": 0.001,
        },
    )


def _run(folder: Path, profile: str, store: ConnectionStore, state: StateStore) -> RunSummary:
    summary = run_profile(load_profile(folder / profile), connections=store, state=state)
    assert summary.status is RunStatus.SUCCEEDED, summary.error
    return summary


@pytest.mark.parametrize("api", ["soap", "rest"])
def test_companies_to_excel(
    api: str,
    folder: Path,
    sandbox: SageSandbox,
    server: RunningServer,
    store: ConnectionStore,
    state: StateStore,
) -> None:
    if api == "rest":  # the children (address, phone, e-mail) are nested in SOAP answers only
        profile = folder / "companies-to-excel.yaml"
        text = profile.read_text(encoding="utf-8")
        for child in ("city", "postcode", "country", "phone", "email"):
            text = "\n".join(
                line for line in text.splitlines() if not line.startswith(f"  {child}:")
            )
        text = text.replace(
            "address.city, address.postcode,\n           address.country, phone.business, "
            "email.business, ",
            "",
        )
        profile.write_text(text + "\n", encoding="utf-8")
    _connect(store, server, api)
    summary = _run(folder, "companies-to-excel.yaml", store, state)
    wanted = sandbox.execute(
        "SELECT comp_companyid, comp_name FROM Company WHERE comp_deleted IS NULL "
        "AND comp_type IN ('Customer', 'Prospect') ORDER BY comp_companyid"
    )
    assert wanted
    assert summary.counts["created"] == len(wanted)
    book = openpyxl.load_workbook(folder / "out" / "companies.xlsx", read_only=True)
    rows = list(book["Companies"].iter_rows(values_only=True))
    book.close()
    header, body = rows[0], rows[1:]
    got = [dict(zip(header, r, strict=True)) for r in body]
    assert [(r["company_id"], r["name"]) for r in got] == [
        (w["comp_companyid"], w["comp_name"]) for w in wanted
    ]
    if api == "soap":
        first = wanted[0]["comp_companyid"]
        city = sandbox.execute(
            "SELECT a.addr_city FROM Address a JOIN Company c "
            "ON c.comp_primaryaddressid = a.addr_addressid WHERE c.comp_companyid = ?",
            (first,),
        )[0]["addr_city"]
        assert got[0]["city"] == city
        assert got[0]["phone"]
        assert "@" in str(got[0]["email"])


@pytest.mark.parametrize("api", ["soap", "rest", "rest-plain"])
def test_opportunities_to_sql_for_reporting(
    api: str,
    folder: Path,
    sandbox: SageSandbox,
    server: RunningServer,
    store: ConnectionStore,
    state: StateStore,
) -> None:
    _connect(store, server, api)
    store.add("reporting", "sql", {"url": f"sqlite:///{folder / 'reporting.sqlite'}"})
    total = sandbox.execute("SELECT COUNT(*) AS n FROM Opportunity WHERE oppo_deleted IS NULL")
    first = _run(folder, "opportunities-to-sql.yaml", store, state)
    assert first.counts["created"] == total[0]["n"]

    def report() -> dict[int, dict[str, Any]]:
        with sqlite3.connect(folder / "reporting.sqlite") as db:
            db.row_factory = sqlite3.Row
            rows = [dict(r) for r in db.execute("SELECT * FROM sage_opportunities")]
        db.close()
        return {int(r["opportunity_id"]): r for r in rows}

    stored = report()
    assert len(stored) == total[0]["n"]
    one = sandbox.execute("SELECT * FROM Opportunity WHERE oppo_opportunityid = 1")[0]
    assert stored[1]["description"] == one["oppo_description"]
    if one["oppo_forecast"] is not None and one["oppo_certainty"] is not None:
        expected = one["oppo_forecast"] * one["oppo_certainty"] / 100
        assert float(stored[1]["weighted"]) == pytest.approx(expected)
    again = _run(folder, "opportunities-to-sql.yaml", store, state)
    assert again.counts["created"] == again.counts["updated"] == 0  # nothing changed since
    sandbox.execute(
        "UPDATE Opportunity SET oppo_stage = 'Closed', oppo_updateddate = '2030-01-01 00:00:00' "
        "WHERE oppo_opportunityid = 1"
    )
    third = _run(folder, "opportunities-to-sql.yaml", store, state)
    assert third.counts["updated"] == 1
    assert report()[1]["stage"] == "Closed"


def _cli(args: list[str]) -> int:
    with pytest.raises(SystemExit) as info:
        main(args)
    code = info.value.code
    return code if isinstance(code, int) else 0


def test_suppliers_and_companies_in_step_both_ways(
    folder: Path,
    sandbox: SageSandbox,
    server: RunningServer,
    store: ConnectionStore,
    pg_url: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    engine = sa.create_engine(pg_url)
    try:
        _sync_suppliers(folder, sandbox, server, store, engine, capsys, monkeypatch)
    finally:
        engine.dispose()


def _sync_suppliers(
    folder: Path,
    sandbox: SageSandbox,
    server: RunningServer,
    store: ConnectionStore,
    engine: sa.Engine,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    crm_suppliers = _supplier_companies(sandbox)  # the seed's, with their codes
    assert len(crm_suppliers) == 3
    shared = crm_suppliers[0]  # known to both: the same code, another website
    with engine.begin() as conn:
        conn.exec_driver_sql((folder / "suppliers.sql").read_text(encoding="utf-8"))
        conn.execute(
            sa.text("INSERT INTO suppliers (code, name, website) VALUES (:code, :name, :web)"),
            {
                "code": shared["comp_supplierid"],
                "name": shared["comp_name"],
                "web": "www.new.example",
            },
        )
    _connect(store, server, "soap")
    store.add("purchasing", "sql", {"url": engine.url.render_as_string(hide_password=False)})
    monkeypatch.chdir(folder)

    def suppliers() -> dict[str, dict[str, Any]]:
        with engine.connect() as conn:
            rows = conn.execute(sa.text("SELECT * FROM suppliers")).mappings().all()
        return {str(r["code"]): dict(r) for r in rows}

    # the first sync shows the links it would make and writes nothing
    assert _cli(["sync", "suppliers.sync.yaml"]) == 2
    assert "run `crmbridge sync suppliers.sync.yaml --accept-links`" in capsys.readouterr().err
    assert len(_supplier_companies(sandbox)) == 3
    sandbox.faults.lose_answer_next(1, call="soap:add")  # the creates applied, answer lost
    assert _cli(["sync", "suppliers.sync.yaml", "--accept-links"]) == 0
    out = capsys.readouterr().out
    assert sandbox.faults.call_counts()["soap:add"] == 1  # found again by code, not re-sent
    companies = {c["comp_supplierid"]: c for c in _supplier_companies(sandbox)}
    purchasing = suppliers()
    assert set(companies) == set(purchasing), out  # one supplier each, on both sides
    assert len(companies) == 6
    northwind = companies["SUP-10001"]
    assert (northwind["comp_name"], northwind["comp_type"]) == ("Northwind Components", "Supplier")
    assert northwind["comp_website"] == "www.northwind.example"
    phone = sandbox.execute(
        "SELECT p.phon_number FROM PhoneLink l JOIN Phone p ON p.phon_phoneid = l.plink_phoneid "
        "WHERE l.plink_entityid = 5 AND l.plink_recordid = ? AND l.plink_type = 'Business'",
        (northwind["comp_companyid"],),
    )
    assert phone[0]["phon_number"] == "091 555 0101"
    # the pair known to both: the newer value (the purchasing database's) won
    assert companies[shared["comp_supplierid"]]["comp_website"] == "www.new.example"
    # a CRM supplier the purchasing database lacked is there now
    other = crm_suppliers[1]
    assert purchasing[other["comp_supplierid"]]["name"] == other["comp_name"]

    # a change on each side goes to the other
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "UPDATE suppliers SET website = 'www.northwind.example/new', "
                "updated_at = now() WHERE code = 'SUP-10001'"
            )
        )
    contoso = companies["SUP-10002"]
    sandbox.execute(
        "UPDATE Company SET comp_website = 'www.contoso.example/crm', "
        "comp_updateddate = '2030-01-01 00:00:00' WHERE comp_companyid = ?",
        (contoso["comp_companyid"],),
    )
    assert _cli(["sync", "suppliers.sync.yaml"]) == 0
    capsys.readouterr()
    again = {c["comp_supplierid"]: c for c in _supplier_companies(sandbox)}
    assert again["SUP-10001"]["comp_website"] == "www.northwind.example/new"
    assert suppliers()["SUP-10002"]["website"] == "www.contoso.example/crm"
    assert len(again) == 6  # nothing created twice


def _supplier_companies(sandbox: SageSandbox) -> list[dict[str, Any]]:
    return sandbox.execute(
        "SELECT * FROM Company WHERE comp_type = 'Supplier' AND comp_deleted IS NULL "
        "ORDER BY comp_companyid"
    )


@pytest.mark.parametrize("api", ["soap", "rest"])
def test_a_profile_upserts_companies_with_its_own_territory(
    api: str,
    tmp_path: Path,
    sandbox: SageSandbox,
    server: RunningServer,
    store: ConnectionStore,
    state: StateStore,
) -> None:
    _connect(store, server, api)
    (tmp_path / "companies.csv").write_text(
        "code,name,type\nX-1,Alpha Ltd,Customer\nX-2,Beta Ltd,Bogus\nX-3,Gamma Ltd,Prospect\n",
        encoding="utf-8",
    )
    (tmp_path / "p.yaml").write_text(
        "source: {connection: {type: csv, path: .}, object: companies.csv}\n"
        "target: {connection: sagecrm, object: company, mode: upsert, match_keys: [supplierid]}\n"
        "mapping: {supplierid: code, name: name, type: type}\n"
        "constants: {secterr: -1845493753}\n",
        encoding="utf-8",
    )
    first = run_profile(load_profile(tmp_path / "p.yaml"), connections=store, state=state)
    assert (first.counts["created"], first.counts["rejected"]) == (2, 1)  # Bogus: not listed
    made = sandbox.execute(
        "SELECT comp_supplierid, comp_secterr FROM Company WHERE comp_supplierid LIKE 'X-%' "
        "ORDER BY 1"
    )
    assert made == [
        {"comp_supplierid": "X-1", "comp_secterr": -1845493753},
        {"comp_supplierid": "X-3", "comp_secterr": -1845493753},
    ]
    again = run_profile(load_profile(tmp_path / "p.yaml"), connections=store, state=state)
    assert again.counts["unchanged"] == 2


@pytest.mark.parametrize(("api", "call"), [("soap", "soap:add"), ("rest", "rest:POST company")])
def test_a_run_whose_write_answer_is_lost_creates_each_company_once(
    api: str,
    call: str,
    tmp_path: Path,
    sandbox: SageSandbox,
    server: RunningServer,
    store: ConnectionStore,
    state: StateStore,
) -> None:
    _connect(store, server, api)
    (tmp_path / "companies.csv").write_text(
        "code,name\n" + "".join(f"L-{n},Lost {n}\n" for n in range(7)), encoding="utf-8"
    )
    (tmp_path / "p.yaml").write_text(
        "source: {connection: {type: csv, path: .}, object: companies.csv}\n"
        "target: {connection: sagecrm, object: company, mode: upsert, match_keys: [supplierid]}\n"
        "mapping: {supplierid: code, name: name}\n",
        encoding="utf-8",
    )
    sandbox.faults.lose_answer_next(1, call=call)  # applied, then the answer is lost
    summary = run_profile(load_profile(tmp_path / "p.yaml"), connections=store, state=state)
    assert summary.status is RunStatus.SUCCEEDED, summary.error
    assert summary.counts["created"] == 7
    made = sandbox.execute("SELECT comp_supplierid FROM Company WHERE comp_supplierid LIKE 'L-%'")
    assert sorted(r["comp_supplierid"] for r in made) == [f"L-{n}" for n in range(7)]


def test_the_supplier_sync_over_rest_without_the_child_fields(
    folder: Path,
    sandbox: SageSandbox,
    server: RunningServer,
    store: ConnectionStore,
    pg_url: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """REST cannot write a company's nested records nor report deletes: without those lines
    the example syncs over REST too."""
    profile = folder / "suppliers.sync.yaml"
    text = profile.read_text(encoding="utf-8")
    for line in ("  - {a: phone, b: phone.business}\n", "  - {a: city, b: address.city}\n"):
        text = text.replace(line, "")
    profile.write_text(text.replace("  deleted_flag: deleted\n", ""), encoding="utf-8")
    engine = sa.create_engine(pg_url)
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql((folder / "suppliers.sql").read_text(encoding="utf-8"))
        _connect(store, server, "rest")
        store.add("purchasing", "sql", {"url": engine.url.render_as_string(hide_password=False)})
        monkeypatch.chdir(folder)
        assert _cli(["sync", "suppliers.sync.yaml", "--accept-links"]) == 0
        companies = {c["comp_supplierid"]: c for c in _supplier_companies(sandbox)}
        assert len(companies) == 6
        sandbox.execute(
            "UPDATE Company SET comp_name = 'Contoso Metals plc', "
            "comp_updateddate = '2030-01-01 00:00:00' WHERE comp_supplierid = 'SUP-10002'"
        )
        assert _cli(["sync", "suppliers.sync.yaml"]) == 0
        capsys.readouterr()
        with engine.connect() as conn:
            name = conn.execute(
                sa.text("SELECT name FROM suppliers WHERE code = 'SUP-10002'")
            ).scalar_one()
        assert name == "Contoso Metals plc"
        assert len(_supplier_companies(sandbox)) == 6
    finally:
        engine.dispose()
