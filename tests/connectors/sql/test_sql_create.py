"""create_object: creating a missing target table from the fields a profile writes."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from decimal import Decimal

import pytest
from sql_helpers import SOURCE, connector, write

from crmbridge.connectors.base import ReadRequest
from crmbridge.core.identity import KeyRule
from crmbridge.core.outcomes import WriteMode
from crmbridge.core.schema import Field, FieldType
from crmbridge.errors import ConfigError

T = FieldType


def test_create_object_creates_the_table_with_the_keys_as_primary_key(db_url: str) -> None:
    db = connector(db_url)
    assert db.capabilities().create_objects == "on_request"
    schema = db.create_object(SOURCE, ["code"])
    assert "deals" in db.objects()
    assert schema.id_field == "code"
    case_blind = db_url.startswith("mysql")
    assert {f.name for f in schema.fields if f.key_rule is KeyRule.CASEFOLD} == (
        {"code", "notes", "stage", "owner"} if case_blind else set()
    )
    assert tuple(replace(f, key_rule=KeyRule.EXACT) for f in schema.fields) == (
        Field("id", T.INTEGER),
        Field("code", T.STRING, length=12, required=True, key=True),
        Field("amount", T.DECIMAL, precision=12, scale=2),
        Field("rate", T.FLOAT),
        Field("won", T.BOOLEAN),
        Field("day", T.DATE),
        Field("at", T.DATETIME),
        Field("notes", T.TEXT),
        Field("stage", T.STRING, length=4),
        Field("owner", T.STRING, length=255),
    )
    row = {
        "id": 1,
        "code": "D-1",
        "amount": Decimal("1234.50"),
        "rate": 0.25,
        "won": True,
        "day": dt.date(2024, 2, 29),
        "at": dt.datetime(2024, 2, 29, 23, 59, 59, 999999, tzinfo=dt.UTC),
        "notes": "é" * 5000,
        "stage": "won",
        "owner": "a" * 36,
    }
    assert write(db, "deals", [row], WriteMode.UPSERT, ["code"]).outcome.to_pylist() == ["created"]
    assert [r for b in db.read(ReadRequest("deals")) for r in b.to_pylist()] == [row]
    assert db.create_object(SOURCE, ["id"]) == schema, "an existing table is kept"
    db.close()


def test_the_id_field_is_the_key_when_there_are_no_match_keys(sqlite_url: str) -> None:
    db = connector(sqlite_url)
    assert db.create_object(SOURCE, []).id_field == "id"
    db.close()


def test_an_unknown_key_is_an_error(sqlite_url: str) -> None:
    db = connector(sqlite_url)
    with pytest.raises(ConfigError, match=r"unknown field 'cod'; did you mean 'code'\?"):
        db.create_object(SOURCE, ["cod"])
    assert "deals" not in db.objects()
    db.close()
