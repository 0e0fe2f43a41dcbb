"""The shared connector conformance suite (reads and writes), against the sandbox on a real
port."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from salesforce_helpers import connector_factory

from crmbridge.connectors.base import Connector
from crmbridge.sandbox.salesforce import SalesforceSandbox
from crmbridge.sandbox.salesforce.ids import make_id
from crmbridge.testing.conformance import ConnectorConformance, Sample, WriteTarget

UTC = dt.UTC
ACCOUNTS: list[dict[str, Any]] = [
    {
        "Id": make_id("001", 900_001),
        "Name": "Alpha & Co",
        "Industry": "Banking",
        "NumberOfEmployees": 10,
        "AnnualRevenue": Decimal("1500000"),
        "Description": None,
        "SystemModstamp": dt.datetime(2024, 3, 1, 12, 0, 0, tzinfo=UTC),
        "IsDeleted": False,
    },
    {
        "Id": make_id("001", 900_002),
        "Name": "Beta 'B' \"Ltd\"",
        "Industry": None,
        "NumberOfEmployees": None,
        "AnnualRevenue": None,
        "Description": "x < y\nsecond line",
        "SystemModstamp": dt.datetime(2024, 3, 1, 12, 0, 0, tzinfo=UTC),
        "IsDeleted": False,
    },
    {
        "Id": make_id("001", 900_003),
        "Name": "Zürich \\ Gamma",
        "Industry": "Media",
        "NumberOfEmployees": 7,
        "AnnualRevenue": Decimal("20"),
        "Description": "Zürich",
        "SystemModstamp": dt.datetime(2024, 3, 2, 9, 30, 5, tzinfo=UTC),
        "IsDeleted": False,
    },
]

CONTACTS = [
    {"LastName": f"Conformance{n}", "Ext_Id__c": f"C-{n}", "Title": f"T{n}"} for n in range(3)
]


def _insert(box: SalesforceSandbox) -> None:
    for row in ACCOUNTS:
        stamp = row["SystemModstamp"].strftime("%Y-%m-%dT%H:%M:%S.000Z")
        revenue = row["AnnualRevenue"]
        box.execute(
            'INSERT INTO sobject_account ("Id", "IsDeleted", "Name", "Industry", '
            '"NumberOfEmployees", "AnnualRevenue", "Description", "SystemModstamp") '
            "VALUES (?, 0, ?, ?, ?, ?, ?, ?)",
            (
                row["Id"],
                row["Name"],
                row["Industry"],
                row["NumberOfEmployees"],
                None if revenue is None else float(revenue),
                row["Description"],
                stamp,
            ),
        )


class TestSalesforceConformance(ConnectorConformance):
    @pytest.fixture
    def connector(self, tls_dir: Path) -> Iterator[Connector]:
        box = SalesforceSandbox(seed=False, tls_dir=tls_dir)
        _insert(box)
        try:
            with box.serve() as server, connector_factory(box, server) as make:
                yield make()
        finally:
            box.close()

    @pytest.fixture
    def sample(self, connector: Connector) -> Sample:
        return Sample(
            "Account", rows=[dict(r) for r in ACCOUNTS], key="Id", cursor="SystemModstamp"
        )

    @pytest.fixture
    def write_target(self, connector: Connector) -> WriteTarget:
        return WriteTarget(
            "Contact", rows=[dict(r) for r in CONTACTS], key="Ext_Id__c", changeable="Title"
        )
