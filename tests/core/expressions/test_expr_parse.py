"""Parsing and checking expressions: what is refused when a profile loads, and the messages."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from sqlglot import exp

from crmbridge.core import expressions
from crmbridge.core.expressions import (
    FUNCTIONS,
    ExpressionError,
    check_columns,
    columns_of,
    conjoin,
    conjuncts,
    evaluate_constant,
    parse,
)
from crmbridge.core.schema import FieldType
from crmbridge.errors import ConfigError

DOCS = Path(__file__).resolve().parents[3] / "docs" / "expressions.md"

COLUMNS = {
    "email": FieldType.STRING,
    "first_name": FieldType.STRING,
    "lead_score": FieldType.INTEGER,
    "score_text": FieldType.TEXT,
    "amount": FieldType.DECIMAL,
    "date_closed": FieldType.DATE,
    "first name": FieldType.STRING,
}


def check(text: str, what: str = "filter") -> exp.Expression:
    tree = parse(text, what=what)
    check_columns(tree, COLUMNS, what=what)
    return tree


def error_of(text: str, what: str = "filter") -> str:
    with pytest.raises(ExpressionError) as caught:
        check(text, what)
    return str(caught.value)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "emial IS NULL",
            "unknown column 'emial' in filter \"emial IS NULL\"; did you mean 'email'?",
        ),
        ("zzz = 1", "unknown column 'zzz' in filter \"zzz = 1\""),
        ("lead_score >= = 5", "syntax error near '=' (column 15) in filter \"lead_score >= = 5\""),
        ("email = 'abc", 'syntax error (a quote is not closed?) in filter "email = \'abc"'),
        ("   ", 'empty expression in filter "   "'),
        (
            "1=1; DROP TABLE x",
            "only one expression is allowed, not several statements separated by ';' "
            'in filter "1=1; DROP TABLE x"',
        ),
        (
            "DROP TABLE x",
            'statements are not allowed, only one expression in filter "DROP TABLE x"',
        ),
        (
            "email IN (SELECT email FROM other)",
            'subqueries and SELECT are not allowed in filter "email IN (SELECT email FROM other)"',
        ),
        (
            "(SELECT 1) = 1",
            'subqueries and SELECT are not allowed in filter "(SELECT 1) = 1"',
        ),
        (
            "strlen(email) > 3",
            "unsupported function 'strlen' in filter \"strlen(email) > 3\"",
        ),
        (
            "uper(email) = 'X'",
            "unsupported function 'uper' in filter \"uper(email) = 'X'\"; did you mean 'upper'?",
        ),
        (
            "md5(email) = 'x'",
            "unsupported function 'md5' in filter \"md5(email) = 'x'\"",
        ),
        ("email = ?", 'parameters (?, $1) are not allowed in filter "email = ?"'),
        (
            "t.email IS NULL",
            "unknown column 't' in filter \"t.email IS NULL\"",
        ),
        (
            "cast(email AS JSON) IS NULL",
            'cast to JSON is not supported in filter "cast(email AS JSON) IS NULL"; use one of '
            "BIGINT, BOOLEAN, DATE, DECIMAL(p, s), DOUBLE, INTEGER, REAL, SMALLINT, TIMESTAMP, "
            "TIMESTAMPTZ, VARCHAR",
        ),
        ("lead_score = 1 x", "syntax error near 'x' in filter \"lead_score = 1 x\""),
        (
            "email IS lead_score",
            'IS must be followed by NULL, TRUE or FALSE in filter "email IS lead_score"',
        ),
    ],
)
def test_invalid_expressions_are_refused_with_a_message_naming_them(
    text: str, message: str
) -> None:
    assert error_of(text) == message


def test_the_label_names_the_mapping() -> None:
    assert error_of("upper(emial)", "mapping for 'last_name'") == (
        "unknown column 'emial' in mapping for 'last_name' \"upper(emial)\"; did you mean 'email'?"
    )


def test_expression_error_is_a_config_error() -> None:
    with pytest.raises(ConfigError):
        parse("a = = b", what="filter")


def test_text_compared_with_a_number_must_be_cast() -> None:
    assert error_of("score_text >= 50") == (
        'cannot compare text score_text with 50 (a number) in filter "score_text >= 50"; '
        "convert the text first, e.g. cast(score_text AS BIGINT)"
    )
    assert error_of("score_text IN (1, 2)").startswith("cannot compare text score_text with 1")
    assert error_of("date_closed = first_name").startswith(
        "cannot compare text first_name with date_closed (a date)"
    )
    check("cast(score_text AS INTEGER) >= 50")


def test_a_string_literal_takes_the_type_of_the_other_side() -> None:
    check("lead_score = '50'")
    check("date_closed >= '2024-01-01'")


def test_a_literal_that_does_not_convert_is_refused_before_reading() -> None:
    assert error_of("lead_score = 'many'") == (
        "'many' is not a whole number in filter \"lead_score = 'many'\""
    )
    assert error_of("date_closed = '2024-13-01'").startswith("'2024-13-01' is not a date")


def test_type_errors_are_reported_by_duckdb() -> None:
    message = error_of("upper(lead_score)", "mapping for 'x'")
    assert message.startswith(
        "No function matches the given name and argument types 'upper(BIGINT)'"
    )
    assert message.endswith(" in mapping for 'x' \"upper(lead_score)\"")


@pytest.mark.parametrize(
    "text",
    [
        "lead_score >= 50 AND email IS NOT NULL",
        "upper(trim(first_name))",
        "first_name || ' ' || email",
        "coalesce(email, first_name)",
        "CASE WHEN amount > 1000 THEN 'big' ELSE 'small' END",
        "date_closed >= current_date - INTERVAL 30 DAY",
        "first_name LIKE 'A%'",
        "email NOT ILIKE '%@example.com'",
        "cast(amount AS DECIMAL(12,2))",
        "try_cast(score_text AS INTEGER)",
        "lead_score IN (1, 2, 3) OR lead_score BETWEEN 10 AND 20",
        "NOT (lead_score > 1) OR lead_score IS NULL",
        "-lead_score * 2 + 1 - lead_score / 3 + lead_score // 2 + lead_score % 2",
        "lower(email) || ltrim(first_name) || rtrim(first_name) || length(email)",
        "substr(email, 1, 3) || replace(email, '@', ' at ') || concat(email, NULL)",
        "nullif(abs(round(amount, 1)), 0)",
        "year(date_closed) + month(date_closed) + day(date_closed)",
        "now() > current_timestamp",
        "\"first name\" = 'Ann'",
        "first_name LIKE '50!%' ESCAPE '!'",
        "CASE lead_score WHEN 1 THEN 'one' END",
        "lead_score = TRUE OR email IS NOT TRUE",
    ],
)
def test_the_documented_syntax_is_accepted(text: str) -> None:
    check(text)


def test_columns_of_names_each_column_once() -> None:
    tree = parse('"first name" = email OR email IS NULL', what="filter")
    assert columns_of(tree) == {"first name", "email"}


def test_conjuncts_splits_top_level_and_only() -> None:
    tree = parse("a = 1 AND (b = 2 AND (c = 3 OR d = 4))", what="filter")
    parts = [p.sql(dialect="duckdb") for p in conjuncts(tree)]
    assert parts == ["a = 1", "b = 2", "c = 3 OR d = 4"]
    assert [p.sql() for p in conjuncts(parse("a OR b", what="f"))] == ["a OR b"]


def test_conjoin_is_the_inverse_of_conjuncts() -> None:
    parts = conjuncts(parse("a = 1 AND (c = 3 OR d = 4)", what="filter"))
    joined = conjoin(parts)
    assert joined is not None
    assert joined.sql(dialect="duckdb") == "a = 1 AND (c = 3 OR d = 4)"
    assert conjoin([]) is None
    assert conjoin(parts[:1]) == parts[0]


def test_evaluate_constant_uses_the_utc_clock() -> None:
    today = datetime.now(UTC).date()
    value = evaluate_constant(parse("current_date - INTERVAL 30 DAY", what="filter"))
    assert value.date() in (today - timedelta(days=30), today - timedelta(days=29))
    assert evaluate_constant(parse("DATE '2024-03-01' + 1", what="x")) == date(2024, 3, 2)
    instant = evaluate_constant(parse("TIMESTAMPTZ '2024-03-01 10:00:00+02'", what="x"))
    assert instant == datetime(2024, 3, 1, 8, tzinfo=UTC)
    with pytest.raises(ExpressionError, match="a constant cannot read columns"):
        evaluate_constant(parse("email", what="x"))


def test_every_public_name_is_exported() -> None:
    assert sorted(expressions.__all__) == sorted(
        name for name in dir(expressions) if not name.startswith("_") and name != "annotations"
    )


def test_the_docs_list_exactly_the_supported_functions() -> None:
    text = DOCS.read_text(encoding="utf-8")
    table = text.split("## Functions", 1)[1].split("\n## ", 1)[0]
    documented = set(re.findall(r"^\| `([a-z_]+)", table, flags=re.MULTILINE))
    assert documented == {f.name for f in FUNCTIONS}
    for function in FUNCTIONS:
        check(_example_call(function.name), "mapping for 'x'")


def _example_call(name: str) -> str:
    calls = {
        "substr": "substr(email, 1, 2)",
        "replace": "replace(email, 'a', 'b')",
        "concat": "concat(email, 'x')",
        "coalesce": "coalesce(email, 'x')",
        "nullif": "nullif(email, 'x')",
        "round": "round(amount, 1)",
        "abs": "abs(amount)",
        "year": "year(date_closed)",
        "month": "month(date_closed)",
        "day": "day(date_closed)",
        "current_date": "current_date",
        "current_timestamp": "current_timestamp",
        "now": "now()",
        "cast": "cast(lead_score AS VARCHAR)",
        "try_cast": "try_cast(email AS INTEGER)",
        "json_extract_string": "json_extract_string(email, '$.name')",
    }
    return calls.get(name, f"{name}(email)")
