"""Nested values end to end: records addressed as ``customer.name``, JSON text read through
``source.types`` or JSON functions, each defect named in the issue as a test."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sqlalchemy as sa
from tests.runner.conftest import write_profile

from crmbridge.connections import ConnectionStore
from crmbridge.errors import ProfileError
from crmbridge.runner import run_profile
from crmbridge.state import StateStore

ORDERS = [
    {
        "order_no": "W-1",
        "customer": {"name": "Ann Lee", "email": "ann@x.com", "address": {"city": "Bonn"}},
        "lines": [{"sku": "A1", "quantity": 2, "price": 2.50}, {"sku": "B2", "quantity": 1}],
    },
    {
        "order_no": "W-2",
        "customer": {"name": "Bob Ng", "email": None, "address": {"city": "Köln"}},
        "lines": [],
    },
    {
        "order_no": "W-3",
        "customer": {"name": "Cy Oz", "email": "cy@x.com", "address": {"city": "Ulm"}},
        "lines": [{"sku": "C3", "quantity": "three"}],
    },
]


def write_orders(folder: Path, orders: list[dict[str, object]] = ORDERS) -> None:
    lines = [json.dumps(order) for order in orders]
    (folder / "orders.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")


def rows(url: str, table: str, order: str) -> list[tuple[object, ...]]:
    engine = sa.create_engine(url)
    with engine.connect() as con:
        found = [tuple(r) for r in con.execute(sa.text(f"SELECT * FROM {table} ORDER BY {order}"))]
    engine.dispose()
    return found


PROFILE = """
source:
  connection: {{type: jsonl, path: .}}
  object: orders.jsonl
  types:
    customer: {{name: string, email: string, address: {{city: string}}}}
  filter: {filter}
target:
  connection: {{type: sql, url: "sqlite:///{db}"}}
  object: orders
  mode: upsert
  match_keys: [order_no]
  create: true
mapping:
  order_no: order_no
  {mapping}
"""


def test_a_record_field_is_addressed_with_a_dot_in_filters_and_mappings(
    tmp_path: Path, store: ConnectionStore, state: StateStore
) -> None:
    write_orders(tmp_path)
    db = tmp_path / "t.sqlite"
    text = PROFILE.format(
        filter="customer.email IS NOT NULL",
        mapping="name: customer.name\n  city: upper(customer.address.city)",
        db=db,
    )
    summary = run_profile(write_profile(tmp_path, text), connections=store, state=state)
    assert summary.counts["created"] == 2
    assert summary.counts["filtered"] == 1
    assert rows(f"sqlite:///{db}", "orders", "order_no") == [
        ("W-1", "Ann Lee", "BONN"),
        ("W-3", "Cy Oz", "ULM"),
    ]


def test_json_text_is_read_with_json_extract_string_and_the_arrow_operator(
    tmp_path: Path, store: ConnectionStore, state: StateStore
) -> None:
    write_orders(tmp_path)
    db = tmp_path / "t.sqlite"
    text = f"""
    source:
      connection: {{type: jsonl, path: .}}
      object: orders.jsonl
      filter: customer ->> 'email' IS NOT NULL
    target:
      connection: {{type: sql, url: "sqlite:///{db}"}}
      object: orders
      create: true
    mapping:
      order_no: order_no
      name: json_extract_string(customer, '$.name')
      city: customer ->> '$.address.city'
      first_sku: lines ->> '$[0].sku'
    """
    summary = run_profile(write_profile(tmp_path, text), connections=store, state=state)
    assert summary.counts["created"] == 2
    assert rows(f"sqlite:///{db}", "orders", "order_no") == [
        ("W-1", "Ann Lee", "Bonn", "A1"),
        ("W-3", "Cy Oz", "Ulm", "C3"),
    ]


def test_json_text_that_does_not_fit_the_declared_record_rejects_its_record(
    tmp_path: Path, store: ConnectionStore, state: StateStore
) -> None:
    write_orders(
        tmp_path,
        [
            {"order_no": "W-1", "customer": {"name": "Ann", "email": "a@x"}},
            {"order_no": "W-2", "customer": ["not", "a", "record"]},
            {"order_no": "W-3", "customer": "{broken"},
        ],
    )
    db = tmp_path / "t.sqlite"
    text = PROFILE.format(filter="order_no IS NOT NULL", mapping="name: customer.name", db=db)
    summary = run_profile(
        write_profile(tmp_path, text), connections=store, state=state, output_dir=tmp_path / "o"
    )
    assert summary.counts["created"] == 1
    assert summary.counts["rejected"] == 2
    errors = (tmp_path / "o" / "error.csv").read_text(encoding="utf-8")
    assert "field 'customer': " in errors
    assert "is not a JSON object {name: text, email: text, address: JSON object" in errors


def test_a_declared_list_of_records_converts_each_leaf_by_the_cast_rules(
    tmp_path: Path, store: ConnectionStore, state: StateStore
) -> None:
    write_orders(tmp_path)
    db = tmp_path / "t.sqlite"
    text = f"""
    source:
      connection: {{type: jsonl, path: .}}
      object: orders.jsonl
      types:
        lines: [{{sku: string, quantity: integer, price: decimal}}]
    target:
      connection: {{type: sql, url: "sqlite:///{db}"}}
      object: orders
      create: true
    mapping:
      order_no: order_no
      line_count: length(lines)
    """
    summary = run_profile(
        write_profile(tmp_path, text), connections=store, state=state, output_dir=tmp_path / "o"
    )
    assert summary.counts["created"] == 2
    assert summary.counts["rejected"] == 1
    assert rows(f"sqlite:///{db}", "orders", "order_no") == [("W-1", 2), ("W-2", 0)]
    assert "JSON array of JSON object {sku: text, quantity: integer" in (
        tmp_path / "o" / "error.csv"
    ).read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("types", "expression", "message"),
    [
        ("{}", "customer.name", "'customer' is not a record"),
        ("{customer: {name: string}}", "customer.nme", "'customer' has no field 'nme'"),
        ("{customer: {name: strin}}", "customer.name", "unknown type 'strin'"),
    ],
)
def test_a_wrong_path_or_declaration_is_a_profile_error(
    tmp_path: Path,
    store: ConnectionStore,
    state: StateStore,
    types: str,
    expression: str,
    message: str,
) -> None:
    write_orders(tmp_path)
    text = f"""
    source:
      connection: {{type: jsonl, path: .}}
      object: orders.jsonl
      types: {types}
    target:
      connection: {{type: sql, url: "sqlite:///{tmp_path}/t.sqlite"}}
      object: orders
      create: true
    mapping:
      name: {expression}
    """
    with pytest.raises(ProfileError, match=message):
        run_profile(write_profile(tmp_path, text), connections=store, state=state)
