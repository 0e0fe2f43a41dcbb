"""The shared conformance suite for the CSV connector."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from crmbridge.connectors.csv import CsvConnector, CsvSettings
from crmbridge.testing.conformance import ConnectorConformance, Sample, WriteTarget

PEOPLE = [
    {"id": "1", "name": "Ann", "city": "Paris"},
    {"id": "2", "name": "Bob", "city": None},
    {"id": "3", "name": 'Zoë, "the" boss', "city": "Zürich"},
    {"id": "4", "name": "Dan\nDoe", "city": ""},
    {"id": "5", "name": "Eve", "city": "Berlin"},
    {"id": "6", "name": "Fay", "city": "Oslo"},
]


class TestCsvConformance(ConnectorConformance):
    @pytest.fixture
    def connector(self, tmp_path: Path) -> Iterator[CsvConnector]:
        (tmp_path / "people.csv").write_text(
            'id,name,city\n1,Ann,Paris\n2,Bob,\n3,"Zoë, ""the"" boss",Zürich\n'
            '4,"Dan\nDoe",""\n5,Eve,Berlin\n6,Fay,Oslo\n',
            encoding="utf-8",
        )
        (tmp_path / "out.csv").write_text("id,name,city\n", encoding="utf-8")
        with CsvConnector("files", CsvSettings(path=str(tmp_path))) as connector:
            yield connector

    @pytest.fixture
    def sample(self, connector: CsvConnector) -> Sample:
        return Sample("people.csv", rows=[dict(r) for r in PEOPLE], key="id")

    @pytest.fixture
    def write_target(self, connector: CsvConnector) -> WriteTarget:
        return WriteTarget("out.csv", rows=[dict(r, id=r["id"] + "0") for r in PEOPLE])
