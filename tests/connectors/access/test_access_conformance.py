"""The shared conformance suite for the Access connector (Northwind's Shippers table)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from access_helpers import access, require

from crmbridge.connectors.access import AccessConnector
from crmbridge.testing.conformance import ConnectorConformance, Sample

SHIPPERS = [
    {"ShipperID": 1, "CompanyName": "Speedy Express", "Phone": "(503) 555-9831"},
    {"ShipperID": 2, "CompanyName": "United Package", "Phone": "(503) 555-3199"},
    {"ShipperID": 3, "CompanyName": "Federal Shipping", "Phone": "(503) 555-9931"},
]


class TestAccessConformance(ConnectorConformance):
    @pytest.fixture
    def connector(self) -> Iterator[AccessConnector]:
        with access(require("nwind.mdb")) as connector:
            yield connector

    @pytest.fixture
    def sample(self, connector: AccessConnector) -> Sample:
        return Sample("Shippers", rows=[dict(r) for r in SHIPPERS], key="ShipperID")
