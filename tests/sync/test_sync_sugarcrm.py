"""A supplier table (SQLite, or PostgreSQL) kept in step with SugarCRM Accounts of the sandbox
on a real port, both ways: the first sync links and creates, updates go both ways, a conflict
held is resolved with ``crmbridge conflicts resolve``, soft deletes are propagated, and a sync
after one that wrote writes nothing although SugarCRM moved ``date_modified`` on those writes.
"""

from __future__ import annotations

import datetime as dt
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from tests.runner.conftest import home, state, store

from crmbridge.cli.app import main
from crmbridge.connections import ConnectionStore
from crmbridge.profiles.loader import load_sync
from crmbridge.sandbox.sugarcrm import SugarSandbox
from crmbridge.state import StateStore
from crmbridge.sync import SyncOptions, SyncSummary, run_sync, sync_key

__all__ = ["home", "state", "store"]

PROFILE = """\
a:
  connection: {{type: sql, url: "{url}"}}
  object: suppliers
  modified: updated_at
  deleted_flag: is_deleted
b:
  connection: crm
  object: Accounts
  modified: date_modified
  filter: "account_type = 'Reseller'"
  defaults: {{account_type: Reseller}}
link: {{a: [vat], b: [sic_code], store_in: {{a: crm_id}}}}
fields:
  - {{a: name, b: name}}
  - {{a: phone, b: phone_office}}
conflicts: {{policy: manual}}
deletes: {{a_to_b: soft, b_to_a: soft}}
"""


@pytest.fixture(params=["v4_1", "v10"])
def crm(request: pytest.FixtureRequest, store: ConnectionStore) -> Iterator[SugarSandbox]:
    sandbox = SugarSandbox(seed=False)
    with sandbox.serve() as server:
        settings = {"url": server.url, "username": "admin", "password": "admin"}
        store.add("crm", "sugarcrm", {**settings, "api": request.param})
        yield sandbox
    sandbox.close()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def suppliers_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/suppliers.sqlite"
    return str(request.getfixturevalue("pg_url"))


class Suppliers:
    def __init__(self, url: str) -> None:
        self.engine = sa.create_engine(url)
        meta = sa.MetaData()
        self.table = sa.Table(
            "suppliers",
            meta,
            sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
            sa.Column("name", sa.String(100)),
            sa.Column("phone", sa.String(40)),
            sa.Column("vat", sa.String(20)),
            sa.Column("crm_id", sa.String(36)),
            sa.Column("is_deleted", sa.Boolean),
            sa.Column("updated_at", sa.DateTime(timezone=True)),
        )
        meta.drop_all(self.engine)
        meta.create_all(self.engine)
        self.clock = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)

    def add(self, **values: Any) -> None:
        self.clock += dt.timedelta(minutes=1)
        with self.engine.begin() as conn:
            conn.execute(self.table.insert().values(updated_at=self.clock, **values))

    def edit(self, vat: str, **values: Any) -> None:
        self.clock += dt.timedelta(minutes=1)
        with self.engine.begin() as conn:
            conn.execute(
                self.table.update()
                .where(self.table.c.vat == vat)
                .values(updated_at=self.clock, **values)
            )

    def by_vat(self) -> dict[str, dict[str, Any]]:
        with self.engine.begin() as conn:
            rows = conn.execute(sa.select(self.table)).mappings().all()
        return {r["vat"]: dict(r) for r in rows}


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


def _accounts(crm: SugarSandbox) -> dict[str, dict[str, Any]]:
    rows = crm.execute(
        "SELECT id, name, phone_office, sic_code, account_type, deleted, date_modified "
        "FROM accounts"
    )
    return {r["sic_code"]: r for r in rows}


def _edit_account(crm: SugarSandbox, vat: str, **values: Any) -> None:
    """A change made in the CRM (by a person): it moves date_modified."""
    sets = ", ".join(f"{k} = ?" for k in values)
    crm.execute(
        f"UPDATE accounts SET {sets}, date_modified = ? WHERE sic_code = ?",
        [*values.values(), _now(), vat],
    )


def _writes(summary: SyncSummary) -> dict[str, int]:
    return {k: n for k, n in summary.counts.items() if k.startswith(("a_to_b", "b_to_a")) and n}


def _cli(args: list[str]) -> int:
    with pytest.raises(SystemExit) as info:
        main(args)
    code = info.value.code
    return code if isinstance(code, int) else 0


@pytest.mark.slow
def test_suppliers_kept_in_step_with_sugarcrm_accounts(
    tmp_path: Path,
    crm: SugarSandbox,
    store: ConnectionStore,
    state: StateStore,
    suppliers_url: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    a = Suppliers(suppliers_url)
    profile = tmp_path / "suppliers.sync.yaml"
    profile.write_text(textwrap.dedent(PROFILE.format(url=suppliers_url)), encoding="utf-8")
    key = sync_key(load_sync(profile))

    def sync(**options: Any) -> SyncSummary:
        summary = run_sync(
            load_sync(profile),
            connections=store,
            state=state,
            options=SyncOptions(accept_links=True, output_dir=tmp_path / "out", **options),
        )
        assert summary.error is None, summary.error
        return summary

    def quiet(written: str | None = None) -> None:
        """The next sync writes nothing; ``written``: an account the last sync wrote, whose
        date_modified SugarCRM moved, so the next sync reads it back."""
        if written is not None:
            seen = dt.datetime.fromisoformat(state.get_value(key, "cursor:b")["$datetime"])
            moved = dt.datetime.fromisoformat(_accounts(crm)[written]["date_modified"] + "+00:00")
            assert moved >= seen
        again = sync()
        assert _writes(again) == {}, "our own writes read back as changes"
        assert again.reads["b"].startswith("changes since")

    a.add(name="Acme", phone="111", vat="DE1")
    a.add(name="Globex", phone="222", vat="DE2")
    for vat, name, phone in (("DE1", "Acme", "111"), ("DE9", "Umbrella", "999")):
        crm.execute(
            "INSERT INTO accounts (id, name, phone_office, sic_code, account_type, deleted, "
            "date_entered, date_modified) VALUES (?, ?, ?, ?, 'Reseller', 0, ?, ?)",
            [f"acc-{vat}", name, phone, vat, _now(), _now()],
        )

    # the first sync: Acme linked, Globex created in the CRM, Umbrella in the table
    first = sync()
    assert _writes(first) == {"a_to_b.created": 1, "b_to_a.created": 1, "b_to_a.updated": 2}
    accounts, suppliers = _accounts(crm), a.by_vat()
    assert (accounts["DE2"]["name"], accounts["DE2"]["account_type"]) == ("Globex", "Reseller")
    assert suppliers["DE9"]["name"] == "Umbrella"
    assert {v: s["crm_id"] for v, s in suppliers.items()} == {
        v: r["id"] for v, r in accounts.items()
    }
    quiet()

    # updates both ways
    a.edit("DE2", phone="+49 222")
    _edit_account(crm, "DE9", name="Umbrella Corp")
    sync()
    assert _accounts(crm)["DE2"]["phone_office"] == "+49 222"
    assert a.by_vat()["DE9"]["name"] == "Umbrella Corp"
    quiet(written="DE2")

    # a conflict, held and resolved by hand: b's value wins
    a.edit("DE1", phone="100")
    _edit_account(crm, "DE1", phone_office="200")
    sync()
    (conflict,) = state.sync.conflicts(key, status="open")
    assert (conflict.field, conflict.a_value, conflict.b_value) == ("phone", "100", "200")
    capsys.readouterr()
    assert _cli(["conflicts", "list"]) == 0
    assert "phone" in capsys.readouterr().out
    assert _cli(["conflicts", "resolve", str(conflict.id), "--take", "b"]) == 0
    sync()
    assert a.by_vat()["DE1"]["phone"] == "200"
    assert _accounts(crm)["DE1"]["phone_office"] == "200"
    assert state.sync.conflict(conflict.id).status == "closed"
    quiet()

    # soft deletes both ways: SugarCRM's deleted = 1, the table's is_deleted
    a.edit("DE2", is_deleted=True)
    _edit_account(crm, "DE9", deleted=1)
    sync()
    accounts, suppliers = _accounts(crm), a.by_vat()
    assert accounts["DE2"]["deleted"] == 1  # kept, marked deleted
    assert suppliers["DE9"]["is_deleted"] is True
    assert sorted(link.a_id for batch in state.sync.all_links(key) for link in batch) == [
        str(suppliers["DE1"]["id"])
    ]
    quiet()
    a.engine.dispose()
