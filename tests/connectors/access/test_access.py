"""Microsoft Access through mdbtools: tables, types, dates, .accdb, and no writing."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from access_helpers import access, as_accdb, require

from crmbridge.connectors.access import AccessConnector, AccessSettings
from crmbridge.connectors.access.mdbtools import parse_schema, primary_key
from crmbridge.connectors.base import BadRecord, ReadRequest
from crmbridge.core.outcomes import WriteMode
from crmbridge.core.schema import Field, FieldType
from crmbridge.errors import (
    ConfigError,
    ConnectionFailedError,
    RecordError,
    UnsupportedOperationError,
)
from crmbridge.testing.writes import write_records

UTC = dt.UTC


def read(conn: AccessConnector, table: str, **kw: Any) -> list[dict[str, Any]]:
    return [r for b in conn.read(ReadRequest(table, **kw)) for r in b.to_pylist()]


@pytest.fixture
def nwind() -> Any:
    with access(require("nwind.mdb")) as conn:
        yield conn


@pytest.fixture
def dates() -> Any:
    with access(require("DateTestDatabase.mdb")) as conn:
        yield conn


def test_tables_of_an_access_97_file(nwind: AccessConnector) -> None:
    assert nwind.objects() == [
        "Order Details",
        "Orders",
        "Products",
        "Shippers",
        "Categories",
        "Customers",
        "Employees",
        "Suppliers",
        "Umsätze",
    ]
    info = nwind.check()
    assert (info.system, info.version, info.details["tables"]) == ("Microsoft Access", "JET3", "9")


def test_types_come_from_the_table_design(nwind: AccessConnector) -> None:
    products = nwind.describe("Products")
    assert products.id_field == "ProductID"
    got = {f.name: (f.describe_type(), f.required, f.key) for f in products.fields}
    assert got["ProductID"] == ("integer", False, True)
    assert got["ProductName"] == ("string(40)", True, False)
    assert got["UnitPrice"] == ("decimal(19,4)", False, False)
    assert got["UnitsInStock"] == ("integer", False, False)
    assert got["Discontinued"] == ("boolean", True, False)
    details = nwind.describe("Order Details")
    assert [f.name for f in details.fields if f.key] == ["OrderID", "ProductID"]
    assert details.id_field is None
    assert details.field("Discount").type is FieldType.FLOAT
    assert nwind.describe("Orders").field("OrderDate").type is FieldType.DATETIME
    assert nwind.describe("Employees").field("Notes").type is FieldType.TEXT


def test_rows_are_typed(nwind: AccessConnector) -> None:
    order = read(nwind, "Orders", fields=["OrderID", "OrderDate", "Freight", "ShipCity"])[0]
    assert order == {
        "OrderID": 10330,
        "OrderDate": dt.datetime(1994, 11, 16, tzinfo=UTC),
        "Freight": Decimal("12.7500"),
        "ShipCity": "Barquisimeto",
    }
    chai = read(nwind, "Products")[0]
    assert (chai["ProductName"], chai["UnitPrice"], chai["Discontinued"]) == (
        "Chai",
        Decimal("18"),
        False,
    )
    assert read(nwind, "Order Details")[0]["Discount"] == 0.0


def test_text_encoding_nulls_line_breaks_and_pictures(nwind: AccessConnector) -> None:
    customers = {r["CustomerID"]: r for r in read(nwind, "Customers")}
    assert customers["ANATR"]["City"] == "México D.F."
    assert customers["ANATR"]["Region"] is None
    davolio = read(nwind, "Employees", fields=["Address", "Photo"])[0]
    assert davolio["Address"] == "507 - 20th Ave. E.\r\nApt. 2A"
    assert davolio["Photo"].startswith("151C2F00")  # OLE object as hex digits
    assert len(read(nwind, "Umsätze", fields=["OrderID"])) == 830


def test_count_and_batches(nwind: AccessConnector) -> None:
    assert nwind.count(ReadRequest("Orders")) == 830
    sizes = [
        b.num_rows for b in nwind.read(ReadRequest("Orders", fields=["OrderID"], batch_size=300))
    ]
    assert sizes == [300, 300, 230]


def test_stopping_early_ends_mdb_export(nwind: AccessConnector) -> None:
    batches = nwind.read(ReadRequest("Order Details", batch_size=10))
    assert next(iter(batches)).num_rows == 10
    batches.close()  # type: ignore[attr-defined]


def test_dates_and_the_ones_mdbtools_cannot_convert(dates: AccessConnector) -> None:
    bad: list[BadRecord] = []
    rows = read(dates, "DateTest", on_bad_record=bad.append)
    assert [(r["IDCol"], r["DateTimeCol"]) for r in rows] == [
        (1, dt.datetime(2021, 12, 2, tzinfo=UTC)),
        (5, dt.datetime(2021, 12, 2, tzinfo=UTC)),
        (6, dt.datetime(2021, 12, 2, tzinfo=UTC)),
    ]
    assert rows[2]["LongTextCol"] == "New line\r\nin field"
    assert [b.position for b in bad] == [2, 3, 4]
    assert bad[0].reason.startswith("field 'DateTimeCol': '1900-01-00 00:00:00': mdbtools cannot")
    assert '"LongTextCol": "Year 9999"' in bad[0].raw
    with pytest.raises(RecordError, match="row 2: field 'DateTimeCol'"):
        read(dates, "DateTest")


def test_rows_are_whole_when_their_bad_dates_are_not_asked_for(dates: AccessConnector) -> None:
    rows = read(dates, "DateTest", fields=["IDCol", "ShortTextCol"])
    assert [r["IDCol"] for r in rows] == [1, 2, 3, 4, 5, 6]


@pytest.mark.parametrize(("version", "name"), [(2, "ACE12"), (3, "ACE14"), (5, "ACE16")])
def test_accdb_files_are_read_the_same_way(tmp_path: Path, version: int, name: str) -> None:
    path = as_accdb(require("DateTestDatabase.mdb"), tmp_path / "dates.accdb", version)
    with access(path) as conn:
        assert conn.check().version == name
        assert conn.objects() == ["DateTest"]
        bad: list[BadRecord] = []
        rows = read(conn, "DateTest", on_bad_record=bad.append)
    with access(require("DateTestDatabase.mdb")) as mdb:
        assert rows == read(mdb, "DateTest", on_bad_record=lambda _: None)
    assert len(rows) == 3
    assert len(bad) == 3


def test_writing_is_refused_with_a_hint(nwind: AccessConnector) -> None:
    batch = pa.RecordBatch.from_pydict({"ShipperID": [9]})
    with pytest.raises(UnsupportedOperationError) as info:
        write_records(nwind, "Shippers", batch, WriteMode.INSERT)
    assert info.value.message == (
        "MS Access files can be read, not written; choose a CSV, Excel or SQL target"
    )
    assert not nwind.writable
    assert nwind.capabilities().write_modes == frozenset()


def test_unknown_table_suggests_close_names(nwind: AccessConnector) -> None:
    with pytest.raises(ConfigError, match="unknown object 'Customer'; did you mean 'Customers'"):
        nwind.describe("Customer")


def test_missing_file(tmp_path: Path) -> None:
    conn = AccessConnector("crm", AccessSettings(path="nope.mdb"), base_dir=tmp_path)
    with pytest.raises(ConnectionFailedError, match=r"nope\.mdb' does not exist"):
        conn.open()


def test_a_file_that_is_not_access(tmp_path: Path) -> None:
    require("nwind.mdb")
    (tmp_path / "fake.mdb").write_text("hello")
    with pytest.raises(ConfigError, match=r"'fake\.mdb' is not an Access file mdbtools can read"):
        access(tmp_path / "fake.mdb").open()


def test_schema_parsing_of_every_access_type() -> None:
    text = """CREATE TABLE [T]
 (
\t[a b]\t\t\tText (5) NOT NULL,
\t[n]\t\t\tNumeric (18, 2),
\t[g]\t\t\tReplication ID,
\t[x]\t\t\tByte,
\t[d]\t\t\tDouble
);"""
    fields = parse_schema(text, ["A B"])
    assert fields == (
        Field("a b", FieldType.STRING, length=5, required=True, key=True),
        Field("n", FieldType.DECIMAL, precision=18, scale=2),
        Field("g", FieldType.STRING),
        Field("x", FieldType.INTEGER),
        Field("d", FieldType.FLOAT),
    )
    assert primary_key('ALTER TABLE "t" ADD CONSTRAINT "t_pkey" PRIMARY KEY ("a", "b c");') == [
        "a",
        "b c",
    ]
