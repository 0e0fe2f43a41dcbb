"""The shared conformance suite (reading and writing) on the QuickBooks sandbox, served on a
real port."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from decimal import Decimal

import pytest
from quickbooks_helpers import settings_for

from crmbridge.connectors.base import Connector
from crmbridge.connectors.quickbooks import QuickBooksConnector
from crmbridge.connectors.quickbooks.operations import Operation
from crmbridge.sandbox.quickbooks import QuickBooksSandbox
from crmbridge.testing.conformance import ConnectorConformance, Sample, WriteTarget

#: items to write (the account "1" is made by the fixture)
NEW_ITEMS = (
    {"Name": "Consulting", "Description": "by the hour", "IncomeAccountRef_value": "1"},
    {"Name": "Training", "Description": "by the day", "IncomeAccountRef_value": "1"},
    {"Name": "Support", "Description": None, "IncomeAccountRef_value": "1"},
)
CUSTOMERS = (
    {"DisplayName": "Alpha & Co", "GivenName": "Al", "Notes": "x < y"},
    {"DisplayName": "O'Gamma", "GivenName": None, "Notes": "Zürich"},
    {"DisplayName": 'Beta "B"', "GivenName": "Bea", "Notes": None},
)


class TestQuickBooksConformance(ConnectorConformance):
    @pytest.fixture
    def box(self) -> Iterator[QuickBooksSandbox]:
        box = QuickBooksSandbox(seed=False)
        box.clock.set(dt.datetime(2024, 3, 1, 12, 0, 0, tzinfo=dt.UTC))
        box.api.write("Account", "", {"Name": "Services", "AccountType": "Income"})
        yield box
        box.close()

    @pytest.fixture
    def connector(self, box: QuickBooksSandbox) -> Iterator[Connector]:
        with (
            box.serve() as server,
            QuickBooksConnector("books", settings_for(box, server.url)) as qb,
        ):
            results = qb.operations("Customer").apply([Operation("create", v) for v in CUSTOMERS])
            assert all(r.ok for r in results)
            yield qb

    @pytest.fixture
    def sample(self, connector: Connector) -> Sample:
        stamp = dt.datetime(2024, 3, 1, 12, 0, 0, tzinfo=dt.UTC)
        rows = [
            ("1", "Alpha & Co", "Al", "x < y"),
            ("2", "O'Gamma", None, "Zürich"),
            ("3", 'Beta "B"', "Bea", None),
        ]
        return Sample(
            "Customer",
            rows=[
                {
                    "Id": i,
                    "DisplayName": name,
                    "GivenName": given,
                    "Notes": notes,
                    "Balance": Decimal("0.00"),
                    "Active": True,
                    "MetaData_LastUpdatedTime": stamp,
                }
                for i, name, given, notes in rows
            ],
            key="Id",
        )

    @pytest.fixture
    def write_target(self, connector: Connector) -> WriteTarget:
        return WriteTarget(
            "Item", rows=[dict(r) for r in NEW_ITEMS], key="Name", changeable="Description"
        )
