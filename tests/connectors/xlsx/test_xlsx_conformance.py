"""The shared conformance suite for the Excel connector."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from xlsx_helpers import PEOPLE, make_workbook, people_rows

from crmbridge.connectors.xlsx import XlsxConnector, XlsxSettings
from crmbridge.testing.conformance import ConnectorConformance, Sample, WriteTarget


class TestXlsxConformance(ConnectorConformance):
    @pytest.fixture
    def connector(self, tmp_path: Path) -> Iterator[XlsxConnector]:
        make_workbook(tmp_path / "crm.xlsx", {"Notes": [["x"], [1]], "People": people_rows()})
        make_workbook(tmp_path / "out.xlsx", {"People": people_rows()})
        with XlsxConnector("files", XlsxSettings(path=str(tmp_path))) as connector:
            yield connector

    @pytest.fixture
    def sample(self, connector: XlsxConnector) -> Sample:
        return Sample("crm.xlsx#People", rows=[dict(r) for r in PEOPLE], key="id")

    @pytest.fixture
    def write_target(self, connector: XlsxConnector) -> WriteTarget:
        rows = [dict(r, id=int(str(r["id"])) + 10) for r in PEOPLE]
        return WriteTarget("out.xlsx#People", rows=rows)
