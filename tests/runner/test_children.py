"""Lists of records written as child records: an order's lines as rows of a line table that
carry the order's key, with an outcome per child, counted, and repeatable after a crash."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from tests.runner.conftest import write_profile
from tests.runner.test_nested import ORDERS, rows, write_orders

from crmbridge.connections import ConnectionStore
from crmbridge.errors import ProfileError
from crmbridge.runner import run_profile
from crmbridge.runner.children import ChildWriter
from crmbridge.state import StateStore

PROFILE = """
source:
  connection: {{type: jsonl, path: .}}
  object: orders.jsonl
  types:
    customer: {{name: string, email: string}}
    lines: [{{sku: string, quantity: integer, price: decimal}}]
target:
  connection: {{type: sql, url: "{url}"}}
  object: orders
  mode: upsert
  match_keys: [order_no]
  create: true
mapping:
  order_no: order_no
  customer: customer.name
children:
  - field: lines
    object: order_lines
    parent_key: order_no
    match_keys: [line_no]
    create: true
    mapping:
      line_no: crmbridge_position
      sku: sku
      quantity: quantity
      price: cast(price AS DECIMAL(10,2))
"""


def _run(tmp_path: Path, store: ConnectionStore, state: StateStore, url: str, **kw: Any) -> Any:
    loaded = write_profile(tmp_path, PROFILE.format(url=url))
    return run_profile(loaded, connections=store, state=state, output_dir=tmp_path / "o", **kw)


def _lines(url: str) -> list[tuple[object, ...]]:
    engine = sa.create_engine(url)
    with engine.connect() as con:
        found = con.execute(
            sa.text(
                "SELECT order_no, line_no, sku, quantity, price FROM order_lines "
                "ORDER BY order_no, line_no"
            )
        )
        result = [(a, b, c, d, None if e is None else float(e)) for a, b, c, d, e in found]
    engine.dispose()
    return result


EXPECTED = [("W-1", 1, "A1", 2, 2.5), ("W-1", 2, "B2", 1, None)]


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/shop.sqlite"
    found: str = request.getfixturevalue("pg_url")
    return found


def test_an_orders_lines_become_rows_of_a_child_table_with_the_orders_key(
    tmp_path: Path, store: ConnectionStore, state: StateStore, url: str
) -> None:
    write_orders(tmp_path)
    summary = _run(tmp_path, store, state, url)
    assert summary.error is None
    assert summary.counts["created"] == 2  # W-3's line has quantity "three": W-3 rejected
    assert summary.counts["rejected"] == 1
    assert summary.counts["lines.created"] == 2
    assert summary.exit_code == 1
    assert rows(url, "orders", "order_no") == [("W-1", "Ann Lee"), ("W-2", "Bob Ng")]
    assert _lines(url) == EXPECTED
    with (tmp_path / "o" / "children-lines.csv").open(encoding="utf-8") as f:
        found = [(r["crmbridge_row"], r["crmbridge_position"], r["crmbridge_outcome"]) for r in
                 csv.DictReader(f)]  # fmt: skip
    assert found == [("1", "1", "created"), ("1", "2", "created")]


def test_a_second_run_leaves_the_children_unchanged_and_adds_a_new_line(
    tmp_path: Path, store: ConnectionStore, state: StateStore, url: str
) -> None:
    write_orders(tmp_path)
    _run(tmp_path, store, state, url)
    changed = [dict(o) for o in ORDERS]
    changed[0] = {**ORDERS[0], "lines": [*ORDERS[0]["lines"], {"sku": "D4", "quantity": 5}]}
    write_orders(tmp_path, changed)
    summary = _run(tmp_path, store, state, url)
    assert summary.counts["lines.unchanged"] == 2
    assert summary.counts["lines.created"] == 1
    assert _lines(url) == [*EXPECTED, ("W-1", 3, "D4", 5, None)]


def test_a_child_that_does_not_fit_its_table_is_rejected_alone(
    tmp_path: Path, store: ConnectionStore, state: StateStore
) -> None:
    url = f"sqlite:///{tmp_path}/shop.sqlite"
    write_orders(
        tmp_path, [{"order_no": "W-9", "customer": {}, "lines": [{"sku": "A"}, {"sku": None}]}]
    )
    engine = sa.create_engine(url)
    with engine.begin() as con:
        con.execute(sa.text("CREATE TABLE order_lines (order_no TEXT NOT NULL, line_no INTEGER "
                            "NOT NULL, sku TEXT NOT NULL, quantity INTEGER, price NUMERIC(10,2), "
                            "PRIMARY KEY (order_no, line_no))"))  # fmt: skip
    engine.dispose()
    summary = _run(tmp_path, store, state, url)
    assert summary.counts["created"] == 1
    assert summary.counts["lines.created"] == 1
    assert summary.counts["lines.rejected"] == 1
    assert summary.status.value == "finished_with_rejects"
    text = (tmp_path / "o" / "children-lines.csv").read_text(encoding="utf-8")
    assert "required field has no value" in text


def test_a_dry_run_plans_the_children_and_writes_nothing(
    tmp_path: Path, store: ConnectionStore, state: StateStore
) -> None:
    url = f"sqlite:///{tmp_path}/shop.sqlite"
    write_orders(tmp_path)
    summary = _run(tmp_path, store, state, url, dry_run=True)
    assert summary.counts["lines.created"] == 2
    assert not (tmp_path / "shop.sqlite").exists() or not sa.inspect(
        sa.create_engine(url)
    ).has_table("order_lines")


@pytest.mark.parametrize("when", ["before", "after"])
def test_a_run_that_crashed_around_the_children_is_continued_without_losing_or_doubling_one(
    tmp_path: Path,
    store: ConnectionStore,
    state: StateStore,
    monkeypatch: pytest.MonkeyPatch,
    when: str,
) -> None:
    url = f"sqlite:///{tmp_path}/shop.sqlite"
    write_orders(tmp_path)
    original = ChildWriter.write

    def crash(self: ChildWriter, *args: Any) -> Any:
        if when == "after":
            original(self, *args)
        raise RuntimeError("the machine stopped")

    monkeypatch.setattr(ChildWriter, "write", crash)
    first = _run(tmp_path, store, state, url)
    assert first.status.value == "failed"
    assert rows(url, "orders", "order_no") == [("W-1", "Ann Lee"), ("W-2", "Bob Ng")]
    monkeypatch.setattr(ChildWriter, "write", original)
    second = _run(tmp_path, store, state, url)
    assert second.resumed_from == first.run_id
    assert _lines(url) == EXPECTED
    done = "lines.unchanged" if when == "after" else "lines.created"
    assert second.counts[done] == 2


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("s/    lines: .*/    lines: string/", "'lines' is not declared as a list of records"),
        ("s/      sku: sku/      sku: skuu/", "unknown column 'skuu'"),
        ("s/    match_keys: \\[line_no\\]/    match_keys: [line]/", "match keys are not mapped"),
    ],
)
def test_a_wrong_children_section_is_a_profile_error(
    tmp_path: Path, store: ConnectionStore, state: StateStore, change: str, message: str
) -> None:
    import re

    pattern, replacement = change[2:-1].split("/")
    text = re.sub(pattern, replacement, PROFILE.format(url=f"sqlite:///{tmp_path}/x.sqlite"))
    write_orders(tmp_path)
    (tmp_path / "p.yaml").write_text(text, encoding="utf-8")
    from crmbridge.profiles.loader import load_profile

    with pytest.raises(ProfileError, match=message):
        run_profile(load_profile(tmp_path / "p.yaml"), connections=store, state=state)


def test_a_plan_file_is_refused_for_a_profile_with_children(
    tmp_path: Path, store: ConnectionStore, state: StateStore
) -> None:
    from crmbridge.errors import ConfigError

    write_orders(tmp_path)
    with pytest.raises(ConfigError, match="cannot keep the child records"):
        _run(tmp_path, store, state, f"sqlite:///{tmp_path}/s.sqlite", dry_run=True,
             plan_out=tmp_path / "p.parquet")  # fmt: skip


KILLED_RUN = """
import os, signal, sys
from pathlib import Path
from crmbridge.profiles.loader import load_profile
from crmbridge.runner import run_profile
from crmbridge.runner.ledger import RunLedger
from crmbridge.state import StateStore

def die(*args, **kwargs):  # the files have the batch; its confirmation never comes
    os.kill(os.getpid(), signal.SIGKILL)

RunLedger.confirm = die
with StateStore(sys.argv[2]) as state:
    run_profile(load_profile(Path(sys.argv[1])), connections=None, state=state,
                output_dir=Path(sys.argv[3]))
"""


def test_a_killed_runs_children_file_is_cut_back_to_its_last_confirmed_batch(
    tmp_path: Path, home: Path, store: ConnectionStore, state: StateStore
) -> None:
    import os
    import subprocess
    import sys

    url = f"sqlite:///{tmp_path}/shop.sqlite"
    write_orders(tmp_path)
    loaded = write_profile(tmp_path, PROFILE.format(url=url))
    env = {**os.environ, "CRMBRIDGE_HOME": str(home)}
    killed = subprocess.run(
        [
            sys.executable,
            "-c",
            KILLED_RUN,
            str(loaded.path),
            f"sqlite:///{home}/state.sqlite",
            str(tmp_path / "k"),
        ],
        env=env,
        cwd=Path(__file__).resolve().parents[2],
        check=False,
    )
    assert killed.returncode == -9
    children = tmp_path / "k" / "children-lines.csv"
    assert "created" in children.read_text(encoding="utf-8")  # written, never confirmed
    summary = run_profile(loaded, connections=store, state=state, output_dir=tmp_path / "o")
    assert summary.resumed_from is not None
    assert children.read_text(encoding="utf-8") == ""  # cut back with the run's other files
    assert summary.counts["lines.unchanged"] == 2
    assert _lines(url) == EXPECTED
