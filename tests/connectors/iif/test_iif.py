"""The IIF target: customers and documents with split lines, parsed back."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from crmbridge.connectors.base import ROW_COLUMN, ReadRequest
from crmbridge.connectors.iif import IifConnector, IifSettings
from crmbridge.core.outcomes import WriteMode
from crmbridge.errors import ConfigError, UnsupportedOperationError
from crmbridge.testing.conformance import ConnectorConformance, Sample, WriteTarget
from crmbridge.testing.writes import write_records


def _batch(connector: IifConnector, object: str, rows: list[dict[str, Any]]) -> pa.RecordBatch:
    names = list(rows[0])
    schema = connector.describe(object).select(names).arrow_schema()
    schema = schema.append(pa.field(ROW_COLUMN, pa.int64()))
    data = [{**r, ROW_COLUMN: n} for n, r in enumerate(rows, 1)]
    return pa.RecordBatch.from_pylist(data, schema=schema)


def _write(connector: IifConnector, object: str, rows: list[dict[str, Any]]) -> list[Any]:
    result = write_records(connector, object, _batch(connector, object, rows), WriteMode.INSERT)
    return list(zip(result.outcome.to_pylist(), result.reason.to_pylist(), strict=True))


def _read(connector: IifConnector, object: str) -> list[dict[str, Any]]:
    return [r for b in connector.read(ReadRequest(object)) for r in b.to_pylist()]


@pytest.fixture
def iif(tmp_path: Path) -> Iterator[IifConnector]:
    with IifConnector("desktop", IifSettings(path=str(tmp_path))) as connector:
        yield connector


DAY = dt.date(2024, 7, 16)


def _line(doc: str, item: str, qty: str, price: str, **extra: Any) -> dict[str, Any]:
    return {
        "DOCNUM": doc,
        "DATE": DAY,
        "NAME": "Cool Cars",
        "MEMO": "July work",
        "ITEM": item,
        "LINE_ACCNT": "Services",
        "QNTY": Decimal(qty),
        "PRICE": Decimal(price),
        "AMOUNT": None,
        "LINE_MEMO": None,
        "TAXABLE": None,
        **extra,
    }


def test_invoices_are_written_as_balanced_transactions_and_read_back(
    iif: IifConnector, tmp_path: Path
) -> None:
    lines = [
        _line("1001", "Hours", "2", "75"),
        _line("1001", "Rocks", "3", "22.5", AMOUNT=Decimal("67.50"), TAXABLE=True),
        _line("1002", "Design", "1", "75"),
    ]
    assert _write(iif, "invoices.iif", lines[:2]) == [("created", None)] * 2
    assert _write(iif, "invoices.iif", lines[2:]) == [("created", None)]
    iif.close()
    text = (tmp_path / "invoices.iif").read_bytes().decode("cp1252")
    assert text.splitlines()[:3] == [
        "!TRNS\tTRNSID\tTRNSTYPE\tDATE\tACCNT\tNAME\tAMOUNT\tDOCNUM\tMEMO\tDUEDATE\tTERMS\tPAYMETH",
        "!SPL\tSPLID\tTRNSTYPE\tDATE\tACCNT\tNAME\tAMOUNT\tDOCNUM\tMEMO\tQNTY\tPRICE\tINVITEM"
        "\tTAXABLE",
        "!ENDTRNS",
    ]
    assert "\r\n" in text
    body = text.splitlines()[3:]
    assert body[0] == (
        "TRNS\t\tINVOICE\t07/16/2024\tAccounts Receivable\tCool Cars\t217.50\t1001\tJuly work\t\t\t"
    )
    assert (
        body[1]
        == "SPL\t\tINVOICE\t07/16/2024\tServices\tCool Cars\t-150.00\t1001\t\t-2\t75\tHours\t"
    )
    assert body[2].endswith("\t-67.50\t1001\t\t-3\t22.5\tRocks\tY")
    assert body[3] == "ENDTRNS"
    back = _read(iif, "invoices.iif")
    assert [(r["DOCNUM"], r["ITEM"], r["QNTY"], r["AMOUNT"]) for r in back] == [
        ("1001", "Hours", Decimal("2"), Decimal("150.00")),
        ("1001", "Rocks", Decimal("3"), Decimal("67.50")),
        ("1002", "Design", Decimal("1"), Decimal("75.00")),
    ]
    assert back[0]["DATE"] == DAY
    assert back[0]["ACCNT"] == "Accounts Receivable"


def test_sales_receipts_are_cash_sales_into_undeposited_funds(
    iif: IifConnector, tmp_path: Path
) -> None:
    line = _line("S-1", "Hours", "1", "75")
    del line["MEMO"]
    assert _write(iif, "sales_receipts.iif", [{**line, "PAYMETH": "Cash"}]) == [("created", None)]
    iif.close()
    trns = (tmp_path / "sales_receipts.iif").read_text("cp1252").splitlines()[3]
    assert trns.split("\t")[2:6] == ["CASH SALE", "07/16/2024", "Undeposited Funds", "Cool Cars"]
    assert trns.endswith("\tCash")
    assert _read(iif, "sales_receipts.iif")[0]["PAYMETH"] == "Cash"


def test_customers(iif: IifConnector, tmp_path: Path) -> None:
    rows = [
        {
            "NAME": "Amy's Bird Sanctuary",
            "EMAIL": "amy@example.com",
            "TAXABLE": False,
            "LIMIT": Decimal("5000"),
        },
        {"NAME": 'Acme & Sons "Q"', "EMAIL": None, "TAXABLE": None, "LIMIT": None},
    ]
    assert _write(iif, "customers.iif", rows) == [("created", None)] * 2
    iif.close()
    lines = (tmp_path / "customers.iif").read_text("cp1252").splitlines()
    assert lines[0].startswith("!CUST\tNAME\tCOMPANYNAME")
    assert lines[1].startswith("CUST\tAmy's Bird Sanctuary\t")
    back = _read(iif, "customers.iif")
    assert [(r["NAME"], r["EMAIL"], r["TAXABLE"], r["LIMIT"]) for r in back] == [
        ("Amy's Bird Sanctuary", "amy@example.com", False, Decimal("5000.00")),
        ('Acme & Sons "Q"', None, None, None),
    ]


def test_what_iif_cannot_hold_is_rejected_and_the_rest_balances(
    iif: IifConnector, tmp_path: Path
) -> None:
    rows = [
        _line("7", "Hours", "1", "75"),
        _line("7", "Rocks", "1", "22.5", LINE_MEMO="two\nlines"),
        _line("7", "Pump", "1", "15", NAME="Somebody Else"),
        {**_line("7", "Pump", "1", "1"), "QNTY": None},
        _line("8", "Hours", "1", "75"),
        _line("7", "Hours", "1", "75"),
        {**_line("9", "Hours", "1", "75"), "NAME": "Ærø ☃"},
    ]
    outcomes = _write(iif, "invoices.iif", rows)
    assert [o for o, _ in outcomes] == [
        "created",
        "rejected",
        "rejected",
        "rejected",
        "created",
        "rejected",
        "rejected",
    ]
    assert "line break" in outcomes[1][1]
    assert "differs from the first line" in outcomes[2][1]
    assert "AMOUNT, or QNTY and PRICE" in outcomes[3][1]
    assert "written already" in outcomes[5][1]
    assert "cp1252" in outcomes[6][1]
    iif.close()
    assert [r["DOCNUM"] for r in _read(iif, "invoices.iif")] == ["7", "8"]


def test_an_unbalanced_transaction_is_a_bad_record(iif: IifConnector, tmp_path: Path) -> None:
    (tmp_path / "invoices.iif").write_text(
        "!TRNS\tTRNSID\tTRNSTYPE\tDATE\tACCNT\tNAME\tAMOUNT\tDOCNUM\r\n"
        "!SPL\tSPLID\tTRNSTYPE\tDATE\tACCNT\tNAME\tAMOUNT\tDOCNUM\r\n!ENDTRNS\r\n"
        "TRNS\t\tINVOICE\t07/16/2024\tAR\tX\t10.00\t1\r\nSPL\t\tINVOICE\t07/16/2024\tS\tX\t-9.00\t1"
        "\r\nENDTRNS\r\n",
        encoding="cp1252",
    )
    bad: list[Any] = []
    got = [
        r
        for b in iif.read(ReadRequest("invoices.iif", on_bad_record=bad.append))
        for r in b.to_pylist()
    ]
    assert got == []
    assert "add up to 9.00" in bad[0].reason


def test_only_insert_and_the_three_kinds(iif: IifConnector) -> None:
    with pytest.raises(ConfigError, match=r"did you mean 'invoices\.iif'"):
        iif.describe("invoice.iif")
    batch = _batch(iif, "customers.iif", [{"NAME": "x"}])
    with pytest.raises(UnsupportedOperationError):
        write_records(iif, "customers.iif", batch, WriteMode.UPSERT, keys=["NAME"])


CUSTOMERS = [
    {"NAME": "Ann's Shop", "EMAIL": "ann@example.com", "LIMIT": Decimal("100.00")},
    {"NAME": "Bob & Co", "EMAIL": None, "LIMIT": None},
    {"NAME": "Zürich AG", "EMAIL": "z@example.ch", "LIMIT": Decimal("2.50")},
]


class TestIifConformance(ConnectorConformance):
    @pytest.fixture
    def connector(self, tmp_path: Path) -> Iterator[IifConnector]:
        with IifConnector("desktop", IifSettings(path=str(tmp_path))) as first:
            _write(first, "customers.iif", [dict(r) for r in CUSTOMERS])
        with IifConnector("desktop", IifSettings(path=str(tmp_path))) as connector:
            yield connector

    @pytest.fixture
    def sample(self, connector: IifConnector) -> Sample:
        return Sample("customers.iif", rows=[dict(r) for r in CUSTOMERS], key="NAME")

    @pytest.fixture
    def write_target(self, connector: IifConnector) -> WriteTarget:
        rows = [dict(r, NAME=f"{r['NAME']} 2") for r in CUSTOMERS]
        return WriteTarget("customers.iif", rows=rows, key="NAME")
