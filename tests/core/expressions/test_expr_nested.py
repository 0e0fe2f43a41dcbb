"""Records, lists and JSON text in expressions: ``customer.name``, ``json_extract_string`` and
``->>`` (each refused as a profile error before), evaluated over Arrow batches, and the JSON
text of a declared type parsed by core/nested.py."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pytest

from crmbridge.core.coerce import Coercer
from crmbridge.core.expressions import (
    BatchTransform,
    ExpressionError,
    check_columns,
    columns_of,
    has_paths,
    parse,
)
from crmbridge.core.nested import spec_arrow_type
from crmbridge.core.schema import ROW_COLUMN, FieldType
from crmbridge.errors import ConfigError

CUSTOMER = spec_arrow_type({"name": FieldType.STRING, "address": {"city": FieldType.STRING}})
LINES = spec_arrow_type([{"sku": FieldType.STRING, "quantity": FieldType.INTEGER}])
SCHEMA = pa.schema(
    [("customer", CUSTOMER), ("lines", LINES), ("raw", pa.string()), (ROW_COLUMN, pa.int64())]
)


def batch() -> pa.RecordBatch:
    rows = [
        {
            "customer": {"name": "Ann", "address": {"city": "Bonn"}},
            "lines": [{"sku": "A", "quantity": 2}, {"sku": "B", "quantity": 1}],
            "raw": '{"email": "ann@x.com", "tags": ["vip"]}',
        },
        {"customer": None, "lines": [], "raw": None},
    ]
    return pa.RecordBatch.from_pylist(
        [{**r, ROW_COLUMN: i} for i, r in enumerate(rows, 1)], schema=SCHEMA
    )


def evaluate(expression: str, filter: str | None = None) -> list[Any]:
    outputs = {"v": parse(expression, what="mapping for 'v'")}
    tree = parse(filter, what="filter") if filter else None
    with BatchTransform(SCHEMA, outputs, tree) as transform:
        return transform.apply(batch()).batch.column("v").to_pylist()


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("customer.name", ["Ann", None]),
        ("upper(customer.address.city)", ["BONN", None]),
        ("length(lines)", [2, 0]),
        ("json_extract_string(raw, '$.email')", ["ann@x.com", None]),
        ("raw ->> 'email'", ["ann@x.com", None]),
        ("raw ->> '$.tags[0]'", ["vip", None]),
        ("raw -> 'tags' ->> '$[0]'", ["vip", None]),
    ],
)
def test_record_fields_and_json_text_are_read_in_mappings(
    expression: str, expected: list[Any]
) -> None:
    assert evaluate(expression) == expected


def test_a_record_field_filters() -> None:
    assert evaluate("customer.name", "customer.address.city = 'Bonn'") == ["Ann"]


def test_the_root_is_the_column_read_and_such_parts_are_never_pushed_down() -> None:
    tree = parse("customer.address.city = 'x' AND raw ->> 'a' = 'b'", what="filter")
    assert columns_of(tree) == {"customer", "raw"}
    assert has_paths(tree)
    assert not has_paths(parse("name = 'x'", what="filter"))


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("customer.nme", "'customer' has no field 'nme' in filter \"customer.nme\"; did you "
         "mean 'name'?"),
        ("raw.email", "'raw' is not a record in filter \"raw.email\"; declare its fields in "
         "source.types, e.g. raw: {email: string}"),
        ("customr.name", "unknown column 'customr'"),
        ("lines.sku", "'lines' is a list, not a record in filter \"lines.sku\"; count its "
         "items with length(), or write them as child records (children: in the profile)"),
    ],
)  # fmt: skip
def test_a_wrong_path_is_refused_when_the_profile_loads(expression: str, message: str) -> None:
    types = {f.name: f.type for f in SCHEMA}
    with pytest.raises(ExpressionError, match=re.escape(message)):
        check_columns(parse(expression, what="filter"), types, what="filter")


def test_a_dotted_field_name_is_hinted_to_be_quoted() -> None:
    with pytest.raises(ExpressionError, match=re.escape('written with quotes: "contacts.email1"')):
        check_columns(
            parse("contacts.email1", what="filter"),
            {"contacts.email1": FieldType.STRING},
            what="filter",
        )


def test_json_text_converts_into_a_declared_list_by_the_cast_rules() -> None:
    text = pa.RecordBatch.from_pylist(
        [
            {"lines": '[{"sku": "A", "quantity": 2}, {"sku": "B"}]', ROW_COLUMN: 1},
            {"lines": '[{"sku": "C", "quantity": "0x1A"}]', ROW_COLUMN: 2},
            {"lines": '{"sku": "D"}', ROW_COLUMN: 3},
            {"lines": "[]", ROW_COLUMN: 4},
        ]
    )
    with Coercer({"lines": LINES}) as coercer:
        converted, rejected = coercer.apply(text)
    assert converted.column("lines").to_pylist() == [
        [{"sku": "A", "quantity": 2}, {"sku": "B", "quantity": None}],
        [],
    ]
    assert [r.row for r in rejected] == [2, 3]
    assert "is not a JSON array of JSON object {sku: text, quantity: integer}" in rejected[0].reason


def test_decimals_in_json_keep_their_value() -> None:
    dtype = spec_arrow_type({"price": "decimal"})
    text = pa.RecordBatch.from_pylist([{"c": '{"price": 19.95}', ROW_COLUMN: 1}])
    with Coercer({"c": dtype}) as coercer:
        converted, _ = coercer.apply(text)
    assert converted.column("c")[0].as_py()["price"] == Decimal("19.95")


def test_a_malformed_declaration_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="exactly one item type"):
        spec_arrow_type([FieldType.STRING, FieldType.INTEGER])
