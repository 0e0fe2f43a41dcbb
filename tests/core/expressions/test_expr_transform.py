"""BatchTransform: filters and mappings evaluated over Arrow batches with DuckDB."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pytest

from crmbridge.core.expressions import BatchTransform, ExpressionError, RowError, parse
from crmbridge.core.schema import ROW_COLUMN

TODAY = datetime.now(UTC).date()

PEOPLE = [
    {
        "first_name": "Ann",
        "last_name": " smith ",
        "email": "ann@example.com",
        "phone": None,
        "mobile": "0170",
        "lead_score": 70,
        "amount": "1500.456",
        "date_closed": TODAY - timedelta(days=3),
    },
    {
        "first_name": "bob",
        "last_name": "Jones",
        "email": None,
        "phone": "030",
        "mobile": "0171",
        "lead_score": 50,
        "amount": "20",
        "date_closed": TODAY - timedelta(days=30),
    },
    {
        "first_name": "Álvaro",
        "last_name": None,
        "email": "",
        "phone": None,
        "mobile": None,
        "lead_score": None,
        "amount": None,
        "date_closed": TODAY - timedelta(days=31),
    },
]
SCHEMA = pa.schema(
    [
        ("first_name", pa.string()),
        ("last_name", pa.string()),
        ("email", pa.string()),
        ("phone", pa.string()),
        ("mobile", pa.string()),
        ("lead_score", pa.int64()),
        ("amount", pa.string()),
        ("date_closed", pa.date32()),
        (ROW_COLUMN, pa.int64()),
    ]
)


def batch_of(rows: list[dict[str, Any]], schema: pa.Schema = SCHEMA) -> pa.RecordBatch:
    numbered = [{**row, ROW_COLUMN: i} for i, row in enumerate(rows, 1)]
    return pa.RecordBatch.from_pylist(numbered, schema=schema)


@pytest.fixture
def people() -> pa.RecordBatch:
    return batch_of(PEOPLE)


def transform(
    outputs: Mapping[str, str],
    filter: str | None = None,
    schema: pa.Schema = SCHEMA,
    output_types: Mapping[str, pa.DataType] | None = None,
) -> BatchTransform:
    return BatchTransform(
        schema,
        {name: parse(text, what=f"mapping for {name!r}") for name, text in outputs.items()},
        parse(filter, what="filter") if filter else None,
        output_types,
    )


@pytest.fixture
def run(people: pa.RecordBatch) -> Iterator[Any]:
    opened: list[BatchTransform] = []

    def run(expression: str, filter: str | None = None) -> list[Any]:
        opened.append(transform({"out": expression}, filter))
        return opened[-1].apply(people).batch.column("out").to_pylist()

    yield run
    for t in opened:
        t.close()


def selected(people: pa.RecordBatch, filter: str) -> list[int]:
    with transform({}, filter) as t:
        return t.apply(people).batch.column(ROW_COLUMN).to_pylist()


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("upper(trim(last_name))", ["SMITH", "JONES", None]),
        ("first_name || ' ' || last_name", ["Ann  smith ", "bob Jones", None]),
        ("concat(first_name, ' ', last_name)", ["Ann  smith ", "bob Jones", "Álvaro "]),
        ("coalesce(phone, mobile)", ["0170", "030", None]),
        (
            "CASE WHEN cast(amount AS DECIMAL(12,2)) > 1000 THEN 'big' ELSE 'small' END",
            ["big", "small", "small"],
        ),
        ("cast(amount AS DECIMAL(12,2))", [Decimal("1500.46"), Decimal("20.00"), None]),
        ("try_cast(first_name AS INTEGER)", [None, None, None]),
        ("lower(first_name)", ["ann", "bob", "álvaro"]),
        ("length(first_name)", [3, 3, 6]),
        ("substr(first_name, 2, 2)", ["nn", "ob", "lv"]),
        ("replace(mobile, '0', 'o')", ["o17o", "o171", None]),
        ("nullif(lead_score, 50)", [70, None, None]),
        ("abs(-lead_score)", [70, 50, None]),
        ("round(lead_score / 3, 1)", [23.3, 16.7, None]),
        ("lead_score / 20", [3.5, 2.5, None]),
        ("lead_score // 20", [3, 2, None]),
        ("lead_score % 20", [10, 10, None]),
        ("email = ''", [False, None, True]),
        ("email IS NULL", [False, True, False]),
        ("lead_score IN (50, NULL)", [None, True, None]),
        ("lead_score NOT IN (50, NULL)", [None, False, None]),
        ("'x' || NULL", [None, None, None]),
    ],
)
def test_mappings(run: Any, expression: str, expected: list[Any]) -> None:
    assert run(expression) == expected


@pytest.mark.parametrize(
    ("filter", "rows"),
    [
        ("lead_score >= 50 AND email IS NOT NULL", [1]),
        ("date_closed >= current_date - INTERVAL 30 DAY", [1, 2]),
        ("first_name LIKE 'A%'", [1]),
        ("first_name LIKE '_lvaro'", [3]),  # "_" is one character, not one byte
        ("first_name LIKE '__lvaro'", []),
        ("first_name LIKE '%varo'", [3]),
        ("first_name ILIKE 'B%'", [2]),
        ("first_name ILIKE 'á%'", [3]),
        ("first_name = 'ann'", []),
        ("lower(first_name) = 'ann'", [1]),
        ("first_name < 'a'", [1]),  # code point order: upper case first
        ("first_name > 'z'", [3]),
        ("lead_score = NULL", []),
        ("lead_score <> 50", [1]),
        ("NOT (lead_score > 60)", [2]),
        ("lead_score IS NULL OR lead_score < 60", [2, 3]),
        ("lead_score BETWEEN 50 AND 60", [2]),
        ("lead_score NOT IN (70)", [2]),
        ("email <> ''", [1]),
        ("last_name = ' smith'", []),
        ("date_closed = current_date - 3", [1]),
        ("date_closed < TIMESTAMP '2000-01-01 10:00:00' OR date_closed > '2000-01-01'", [1, 2, 3]),
    ],
)
def test_filters_keep_rows_where_they_are_true(
    people: pa.RecordBatch, filter: str, rows: list[int]
) -> None:
    assert selected(people, filter) == rows


def test_result_has_the_outputs_in_order_then_the_row_column(people: pa.RecordBatch) -> None:
    with transform({"b": "lead_score", "a": "upper(first_name)"}, "lead_score > 60") as t:
        result = t.apply(people)
    assert result.batch.schema.names == ["b", "a", ROW_COLUMN]
    assert result.batch.to_pylist() == [{"b": 70, "a": "ANN", ROW_COLUMN: 1}]
    assert result.errors == []


def test_output_types_cast_and_a_value_that_does_not_convert_is_a_row_error(
    people: pa.RecordBatch,
) -> None:
    types = {"amount": pa.decimal128(12, 2), "name": pa.string()}
    with transform({"amount": "amount", "name": "first_name"}, output_types=types) as t:
        bad = batch_of([*PEOPLE, {**PEOPLE[0], "amount": "12,50"}])
        result = t.apply(bad)
    assert result.batch.schema.field("amount").type == pa.decimal128(12, 2)
    assert result.batch.column("amount").to_pylist() == [
        Decimal("1500.46"),
        Decimal("20.00"),
        None,
    ]
    assert result.errors == [
        RowError(
            4,
            "amount",
            'Could not convert string "12,50" to DECIMAL(12,2) when casting from source '
            "column 'amount'",
        )
    ]


def test_one_bad_row_among_ten_thousand_is_isolated() -> None:
    rows = [{**PEOPLE[1], "amount": f"{i}.25"} for i in range(10_000)]
    rows[7_777]["amount"] = "12.5O"
    with transform({"name": "upper(first_name)", "amount": "cast(amount AS DECIMAL(12,2))"}) as t:
        result = t.apply(batch_of(rows))
    assert result.errors == [
        RowError(
            7_778,
            "amount",
            'Could not convert string "12.5O" to DECIMAL(12,2) when casting from source '
            "column 'amount'",
        )
    ]
    assert result.batch.num_rows == 9_999
    assert 7_778 not in result.batch.column(ROW_COLUMN).to_pylist()
    assert result.batch.column("amount")[7_778].as_py() == Decimal("7779.25")


def test_every_bad_row_is_reported_and_the_result_keeps_its_schema() -> None:
    rows = [{**PEOPLE[1], "amount": f"n/a {i}"} for i in range(20)]
    with transform({"amount": "cast(amount AS DECIMAL(12,2))"}) as t:
        result = t.apply(batch_of(rows))
    assert [e.row for e in result.errors] == list(range(1, 21))
    assert result.errors[5].message.startswith('Could not convert string "n/a 5"')
    assert result.batch.num_rows == 0
    assert result.batch.schema == t.output_schema


def test_a_failing_filter_is_a_row_error_without_a_field() -> None:
    rows = [{**PEOPLE[1], "amount": "7"}, {**PEOPLE[1], "amount": "seven"}]
    with transform({"name": "first_name"}, "cast(amount AS INTEGER) > 5") as t:
        result = t.apply(batch_of(rows))
    assert result.batch.column(ROW_COLUMN).to_pylist() == [1]
    assert result.errors == [
        RowError(
            2,
            None,
            "Could not convert string 'seven' to INT32 when casting from source column 'amount'",
        )
    ]


def test_a_row_the_filter_drops_is_not_an_error() -> None:
    rows = [{**PEOPLE[1], "amount": "7"}, {**PEOPLE[1], "lead_score": 1, "amount": "seven"}]
    with transform({"n": "cast(amount AS INTEGER)"}, "lead_score > 10") as t:
        result = t.apply(batch_of(rows))
    assert result.batch.column("n").to_pylist() == [7]
    assert result.errors == []


def test_division_by_zero_in_integer_division_is_a_row_error() -> None:
    rows = [{**PEOPLE[1], "lead_score": 0}, PEOPLE[1]]
    with transform({"ratio": "100 // lead_score", "share": "100 / lead_score"}) as t:
        result = t.apply(batch_of(rows))
    assert result.batch.column("ratio").to_pylist() == [2]
    assert [(e.row, e.field) for e in result.errors] == [(1, "ratio")]
    assert result.errors[0].message.startswith("Division by zero")


def test_the_clock_is_fixed_when_the_transform_is_built(people: pa.RecordBatch) -> None:
    with transform({"now": "current_timestamp", "today": "current_date"}) as t:
        first = t.apply(people).batch
        second = t.apply(people).batch
    assert first.column("now").to_pylist() == second.column("now").to_pylist()
    now = first.column("now")[0].as_py()
    assert abs(now - datetime.now(UTC)) < timedelta(minutes=5)
    assert first.column("today")[0].as_py() == now.date()


def test_names_that_differ_only_in_case_are_different_columns() -> None:
    schema = pa.schema([("Name", pa.string()), ("name", pa.string()), (ROW_COLUMN, pa.int64())])
    batch = pa.RecordBatch.from_pylist([{"Name": "A", "name": "b", ROW_COLUMN: 1}], schema=schema)
    with transform({"x": '"Name" || name', "y": '"name"'}, schema=schema) as t:
        assert t.apply(batch).batch.to_pylist() == [{"x": "Ab", "y": "b", ROW_COLUMN: 1}]


def test_an_empty_batch_gives_an_empty_result(people: pa.RecordBatch) -> None:
    with transform({"n": "lead_score + 1"}) as t:
        result = t.apply(people.slice(0, 0))
    assert result.batch.num_rows == 0
    assert result.batch.schema == t.output_schema
    assert t.output_schema.field("n").type == pa.int64()


def test_construction_checks_the_expressions() -> None:
    with pytest.raises(ExpressionError, match="unknown column 'emial' in mapping for 'e'"):
        transform({"e": "emial"})
    with pytest.raises(
        ExpressionError, match="a filter must be a condition \\(true or false\\), not string"
    ):
        transform({}, "first_name")
    with pytest.raises(ExpressionError, match="no _crmbridge_row column"):
        transform({}, schema=pa.schema([("a", pa.int64())]))
    with pytest.raises(ExpressionError, match="_crmbridge_row cannot be an output field"):
        transform({ROW_COLUMN: "lead_score"})
    with pytest.raises(ExpressionError, match="cannot convert to the Arrow type"):
        transform({"x": "first_name"}, output_types={"x": pa.map_(pa.string(), pa.string())})


def test_a_batch_of_another_shape_is_refused(people: pa.RecordBatch) -> None:
    with transform({"x": "first_name"}) as t, pytest.raises(ExpressionError, match="differ"):
        t.apply(people.drop_columns(["email"]))


def test_dates_compare_with_datetimes_as_midnight_utc() -> None:
    schema = pa.schema(
        [("d", pa.date32()), ("t", pa.timestamp("us", tz="UTC")), (ROW_COLUMN, pa.int64())]
    )
    rows = [{"d": date(2024, 3, 1), "t": datetime(2024, 3, 1, 0, 30, tzinfo=UTC)}]
    batch = batch_of(rows, schema)
    with transform(
        {
            "a": "d < t",
            "b": "t > '2024-03-01 02:00:00+02'",
            "c": "d = TIMESTAMP '2024-03-01 00:00:00'",
            "h": "year(t) * 100 + month(t)",
        },
        schema=schema,
    ) as tr:
        assert tr.apply(batch).batch.to_pylist() == [
            {"a": True, "b": True, "c": True, "h": 202403, ROW_COLUMN: 1}
        ]


def test_a_closed_transform_refuses_batches(people: pa.RecordBatch) -> None:
    t = transform({"x": "first_name"})
    with t:
        assert t.apply(people).batch.num_rows == 3
    t.close()  # idempotent
    with pytest.raises(ExpressionError, match="closed"):
        t.apply(people)


PATTERNS = pa.schema([("name", pa.string()), ("pattern", pa.string()), (ROW_COLUMN, pa.int64())])


def _patterns(bad_at: int) -> pa.RecordBatch:
    rows = [{"name": f"A{i}", "pattern": "A%"} for i in range(8)]
    rows[bad_at]["pattern"] = "A!"  # a pattern may not end with its escape character
    return batch_of(rows, PATTERNS)


def test_errors_try_cannot_place_are_found_by_halving_the_batch() -> None:
    with transform({"n": "name"}, "name LIKE pattern ESCAPE '!'", schema=PATTERNS) as t:
        result = t.apply(_patterns(bad_at=5))
    assert result.batch.column(ROW_COLUMN).to_pylist() == [1, 2, 3, 4, 5, 7, 8]
    assert result.errors == [RowError(6, None, "Like pattern must not end with escape character!")]


def test_halving_names_the_output_that_fails() -> None:
    outputs = {"n": "name", "m": "name LIKE pattern ESCAPE '!'"}
    with transform(outputs, schema=PATTERNS) as t:
        result = t.apply(_patterns(bad_at=0))
    assert result.batch.num_rows == 7
    assert [(e.row, e.field) for e in result.errors] == [(1, "m")]


def test_outputs_that_are_unchanged_columns_are_taken_without_a_query(
    people: pa.RecordBatch, monkeypatch: pytest.MonkeyPatch
) -> None:
    outputs = {"who": "first_name", "score": "lead_score", "closed": "date_closed"}
    with transform(outputs, "TRUE") as queried:  # a filter: one query per batch
        expected = queried.apply(people)
    queries: list[str] = []
    with transform(outputs) as direct, transform({"who": "upper(first_name)"}) as mapped:
        for t in (direct, mapped):
            real = t._query
            monkeypatch.setattr(
                t, "_query", lambda sql, data, q=real: queries.append(sql) or q(sql, data)
            )
        result = direct.apply(people)
        assert queries == []
        assert mapped.apply(people).batch.column("who").to_pylist()[0] == "ANN"
        assert len(queries) == 1
    assert result.batch.schema == expected.batch.schema
    assert result.batch.to_pylist() == expected.batch.to_pylist()
    assert result.errors == []


def test_a_table_of_several_chunks_is_taken_as_one_batch(people: pa.RecordBatch) -> None:
    table = pa.Table.from_batches([people.slice(0, 1), people.slice(1)])
    with transform({"who": "first_name"}) as t:
        result = t.apply(table)  # type: ignore[arg-type]
    assert result.batch.column("who").to_pylist() == people.column("first_name").to_pylist()
