"""Two real SQL tables kept in step by a sync profile, and helpers to edit and compare them.

Side a is a supplier table (integer ids the database makes, a modified time), side b a CRM-
like accounts table (text ids the sync gives, a field holding a's id). By default both are
SQLite files; ``SyncPair.on(url_a, url_b)`` puts them on PostgreSQL or MariaDB.
"""

from __future__ import annotations

import datetime as dt
import textwrap
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from crmbridge.profiles.loader import load_sync
from crmbridge.state import StateStore
from crmbridge.sync import SyncOptions, SyncSummary, run_sync, sync_key

A_TABLE = "suppliers"
B_TABLE = "accounts"
#: side b with a modified field too
B_MODIFIED = {"  object: accounts\n": "  object: accounts\n  modified: date_modified\n"}
#: the synced fields: a's name -> b's name
FIELDS = {"name": "name", "phone": "phone_office", "notes": "description"}

BASE_PROFILE = """\
a:
  connection: {{type: sql, url: "{a_url}"}}
  object: suppliers
  modified: updated_at
b:
  connection: {{type: sql, url: "{b_url}"}}
  object: accounts
link: {{a: [vat], b: [sic_code], store_in: {{b: supplier_id}}}}
fields:
  - {{a: name, b: name}}
  - {{a: phone, b: phone_office}}
  - {{a: notes, b: description}}
"""


class SyncPair:
    """Both tables, the profile and the state store of one test."""

    def __init__(self, folder: Path, a_url: str, b_url: str) -> None:
        self.folder = folder
        self.a_url, self.b_url = a_url, b_url
        self.a = sa.create_engine(a_url)
        self.b = sa.create_engine(b_url)
        self.state = StateStore(f"sqlite:///{folder}/state.sqlite")
        self.profile_path = folder / "suppliers.sync.yaml"
        self.clock = dt.datetime(2026, 1, 1, 9, 0, tzinfo=dt.UTC)
        meta_a, meta_b = sa.MetaData(), sa.MetaData()
        self.a_table = sa.Table(
            A_TABLE,
            meta_a,
            sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
            sa.Column("name", sa.String(100)),
            sa.Column("phone", sa.String(40)),
            sa.Column("notes", sa.Text),
            sa.Column("vat", sa.String(20)),
            sa.Column("region", sa.String(20)),
            sa.Column("is_deleted", sa.Boolean),
            sa.Column("next_call", sa.DateTime),
            sa.Column("updated_at", sa.DateTime(timezone=True)),
            sqlite_autoincrement=True,  # ids are never reused (SQLite reuses them otherwise)
        )
        self.b_table = sa.Table(
            B_TABLE,
            meta_b,
            sa.Column("id", sa.String(36), primary_key=True),
            sa.Column("name", sa.String(100)),
            sa.Column("phone_office", sa.String(40)),
            sa.Column("description", sa.Text),
            sa.Column("sic_code", sa.String(20)),
            sa.Column("supplier_id", sa.String(36)),
            sa.Column("account_type", sa.String(20)),
            sa.Column("date_modified", sa.DateTime(timezone=True)),
            sa.Column("call_at", sa.DateTime(timezone=True)),
        )
        meta_a.drop_all(self.a)
        meta_b.drop_all(self.b)
        meta_a.create_all(self.a)
        meta_b.create_all(self.b)
        self.write_profile()

    def close(self) -> None:
        self.state.close()
        self.a.dispose()
        self.b.dispose()

    # -- the profile ----------------------------------------------------------------------
    def write_profile(self, extra: str = "", replace: Mapping[str, str] | None = None) -> Path:
        """The base profile, with ``extra`` settings added and ``replace`` d parts."""
        text = BASE_PROFILE.format(a_url=self.a_url, b_url=self.b_url)
        for old, new in (replace or {}).items():
            assert old in text, old
            text = text.replace(old, new)
        self.profile_path.write_text(text + textwrap.dedent(extra), encoding="utf-8")
        return self.profile_path

    def sync(
        self, *, dry_run: bool = False, accept: bool = True, full: bool = False
    ) -> SyncSummary:
        loaded = load_sync(self.profile_path)
        options = SyncOptions(
            dry_run=dry_run, accept_links=accept, full=full, output_dir=self.folder / "out"
        )
        summary = run_sync(loaded, connections=None, state=self.state, options=options)
        assert summary.error is None, summary.error
        return summary

    @property
    def key(self) -> str:
        return sync_key(load_sync(self.profile_path))

    # -- records --------------------------------------------------------------------------
    def tick(self) -> dt.datetime:
        self.clock += dt.timedelta(minutes=10)
        return self.clock

    def add_a(self, **values: Any) -> int:
        values.setdefault("updated_at", self.tick())
        with self.a.begin() as conn:
            result = conn.execute(self.a_table.insert().values(**values))
            return int(result.inserted_primary_key[0])

    def add_b(self, record_id: str, **values: Any) -> str:
        values.setdefault("date_modified", self.tick())
        with self.b.begin() as conn:
            conn.execute(self.b_table.insert().values(id=record_id, **values))
        return record_id

    def edit_a(self, record_id: int, **values: Any) -> None:
        values.setdefault("updated_at", self.tick())
        with self.a.begin() as conn:
            conn.execute(
                self.a_table.update().where(self.a_table.c.id == record_id).values(**values)
            )

    def edit_b(self, record_id: str, **values: Any) -> None:
        values.setdefault("date_modified", self.tick())
        with self.b.begin() as conn:
            conn.execute(
                self.b_table.update().where(self.b_table.c.id == record_id).values(**values)
            )

    def delete_a(self, record_id: int) -> None:
        with self.a.begin() as conn:
            conn.execute(self.a_table.delete().where(self.a_table.c.id == record_id))

    def delete_b(self, record_id: str) -> None:
        with self.b.begin() as conn:
            conn.execute(self.b_table.delete().where(self.b_table.c.id == record_id))

    def rows_a(self) -> dict[int, dict[str, Any]]:
        with self.a.begin() as conn:
            rows = conn.execute(sa.select(self.a_table)).mappings().all()
        return {r["id"]: dict(r) for r in rows}

    def rows_b(self) -> dict[str, dict[str, Any]]:
        with self.b.begin() as conn:
            rows = conn.execute(sa.select(self.b_table)).mappings().all()
        return {r["id"]: dict(r) for r in rows}

    def a_row(self, record_id: int) -> dict[str, Any]:
        return self.rows_a()[record_id]

    def b_row(self, record_id: str) -> dict[str, Any]:
        return self.rows_b()[record_id]

    def b_of(self, a_id: int) -> dict[str, Any]:
        """The b record linked to a's record ``a_id``."""
        (link,) = self.state.sync.links(self.key, a_ids=[str(a_id)])
        return self.b_row(link.b_id)

    def links(self) -> dict[str, str]:
        found: dict[str, str] = {}
        for batch in self.state.sync.all_links(self.key):
            found.update({k.a_id: k.b_id for k in batch})
        return found

    def assert_in_step(self) -> None:
        """Every record linked, 1:1, and equal on the synced fields."""
        a_rows, b_rows = self.rows_a(), self.rows_b()
        links = self.links()
        assert sorted(links) == sorted(str(i) for i in a_rows)
        assert sorted(links.values()) == sorted(b_rows)
        for a_id, b_id in links.items():
            a, b = a_rows[int(a_id)], b_rows[b_id]
            for a_name, b_name in FIELDS.items():
                assert _same(a[a_name], b[b_name]), (a_id, b_id, a_name, a[a_name], b[b_name])
            assert b["supplier_id"] == a_id


def _same(x: Any, y: Any) -> bool:
    return (x or None) == (y or None)


def counts(summary: SyncSummary, **expected: int) -> None:
    """Check the summary's counts (names with ``__`` for ``.``: a_to_b__created)."""
    got = {k.replace(".", "__"): v for k, v in summary.counts.items() if v}
    for name, n in expected.items():
        assert got.get(name, 0) == n, (name, got)


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[SyncPair]:
    made = SyncPair(tmp_path, f"sqlite:///{tmp_path}/a.sqlite", f"sqlite:///{tmp_path}/b.sqlite")
    try:
        yield made
    finally:
        made.close()
