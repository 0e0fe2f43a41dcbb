"""Wire values <-> typed Arrow columns, without a server."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pyarrow as pa
import pytest

from crmbridge.connectors.sugarcrm.discovery import key_rule
from crmbridge.connectors.sugarcrm.values import (
    decode_column,
    decode_records,
    encode,
    stored_form,
)
from crmbridge.core.identity import KeyRule
from crmbridge.core.schema import Field, FieldType, ObjectSchema

UTC = dt.UTC
TEXT = Field("name", FieldType.STRING, length=150)


def test_v4_1_text_decodes_only_the_entities_the_server_produces() -> None:
    raw = ["Acme & Sons &quot;Q&quot;", "&lt;b&gt; &#039;x&#039;", "AT&amp;T", "", "Zürich"]
    assert decode_column(raw, TEXT, html=True).to_pylist() == [
        'Acme & Sons "Q"',
        "<b> 'x'",
        "AT&amp;T",  # the user's own text: & is never encoded by the server
        None,
        "Zürich",
    ]


def test_v10_text_is_taken_as_is() -> None:
    assert decode_column(["a &quot;b&quot;", ""], TEXT, html=False).to_pylist() == [
        "a &quot;b&quot;",
        None,
    ]


def test_booleans_numbers_and_nulls() -> None:
    flag = Field("do_not_call", FieldType.BOOLEAN)
    # "" is a NULL boolean of v4_1: false, as v10 answers it; None is "no value at all" (a
    # related record that is not there)
    assert decode_column(["1", "0", "", None, True, False], flag, html=True).to_pylist() == [
        True,
        False,
        False,
        None,
        True,
        False,
    ]
    count = Field("lead_score_c", FieldType.INTEGER)
    assert decode_column(["12", "", " 7 ", 3, None], count, html=True).to_pylist() == [
        12,
        None,
        7,
        3,
        None,
    ]
    amount = Field("amount", FieldType.DECIMAL, precision=26, scale=6)
    assert decode_column(["75000", "1234.5", "0.1234567", ""], amount, html=True).to_pylist() == [
        Decimal("75000"),
        Decimal("1234.5"),
        Decimal("0.123457"),
        None,
    ]
    ratio = Field("ratio", FieldType.FLOAT)
    assert decode_column(["1.5", "1e3", ""], ratio, html=True).to_pylist() == [1.5, 1000.0, None]


def test_dates_and_utc_datetimes() -> None:
    day = Field("birthdate", FieldType.DATE)
    assert decode_column(["2024-02-29", "", "0000-00-00"], day, html=True).to_pylist() == [
        dt.date(2024, 2, 29),
        None,
        None,
    ]
    stamp = Field("date_modified", FieldType.DATETIME)
    v4 = decode_column(["2024-05-02 14:23:28", ""], stamp, html=True)
    assert v4.type == pa.timestamp("us", tz="UTC")
    assert v4.to_pylist() == [dt.datetime(2024, 5, 2, 14, 23, 28, tzinfo=UTC), None]
    v10 = decode_column(
        ["2024-05-02T10:23:28-04:00", "2024-12-31T23:00:00+01:00"], stamp, html=False
    )
    assert v10.to_pylist() == [
        dt.datetime(2024, 5, 2, 14, 23, 28, tzinfo=UTC),
        dt.datetime(2024, 12, 31, 22, 0, tzinfo=UTC),
    ]


def test_a_value_that_does_not_parse_is_null_not_a_crash() -> None:
    count = Field("n", FieldType.INTEGER)
    assert decode_column(["12", "twelve"], count, html=True).to_pylist() == [12, None]
    stamp = Field("d", FieldType.DATETIME)
    assert decode_column(["2024-05-02 14:23:28", "soon"], stamp, html=True).to_pylist() == [
        dt.datetime(2024, 5, 2, 14, 23, 28, tzinfo=UTC),
        None,
    ]


def test_records_become_a_typed_batch_missing_keys_are_null() -> None:
    fields = [Field("id", FieldType.ID), Field("deleted", FieldType.BOOLEAN)]
    batch = decode_records([{"id": "a", "deleted": "1"}, {"id": "b"}], fields, html=True)
    assert batch.schema.types == [pa.string(), pa.bool_()]
    assert batch.to_pylist() == [{"id": "a", "deleted": True}, {"id": "b", "deleted": None}]


@pytest.mark.parametrize(
    ("value", "v4_1", "v10"),
    [
        (None, "", None),
        (True, "1", True),
        (Decimal("12.50"), "12.50", "12.50"),
        (dt.date(2024, 1, 31), "2024-01-31", "2024-01-31"),
        (
            dt.datetime(2024, 1, 31, 23, 30, 15, 123, tzinfo=dt.timezone(dt.timedelta(hours=2))),
            "2024-01-31 21:30:15",
            "2024-01-31T21:30:15+00:00",
        ),
        ("AT&T <b>", "AT&T <b>", "AT&T <b>"),
    ],
)
def test_encoding_for_each_api(value: object, v4_1: object, v10: object) -> None:
    field = Field("x", FieldType.STRING)
    assert encode(value, field, api="v4_1") == v4_1
    assert encode(value, field, api="v10") == v10


def test_the_stored_form_is_what_sugar_keeps_after_a_save() -> None:
    schema = ObjectSchema(
        "Accounts",
        (
            Field("name", FieldType.STRING),
            Field("d", FieldType.DATETIME),
            Field("n", FieldType.INTEGER),
        ),
    )
    stamp = dt.datetime(2024, 1, 1, 10, 0, 0, 500, tzinfo=UTC)
    batch = pa.RecordBatch.from_pydict(
        {
            "name": ["AT&amp;T", "<Test>Acme</Test> <b>bold</b>", "x<script>bad()</script>", ""],
            "d": pa.array([stamp, None, None, None], pa.timestamp("us", "UTC")),
            "n": [1, 2, 3, 4],
        }
    )
    stored = stored_form(batch, schema)
    assert stored.column("name").to_pylist() == ["AT&T", "Acme <b>bold</b>", "x", None]
    assert stored.column("d")[0].as_py() == stamp.replace(microsecond=0)
    assert stored.column("n").to_pylist() == [1, 2, 3, 4]


def test_key_rules_are_what_sugar_compares() -> None:
    assert key_rule("email1", FieldType.STRING) is KeyRule.EMAIL
    assert key_rule("name", FieldType.STRING) is KeyRule.CASEFOLD
    assert key_rule("id", FieldType.ID) is KeyRule.EXACT
