"""The shared conformance suite for the JSON Lines connector."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from crmbridge.connectors.jsonl import JsonlConnector, JsonlSettings
from crmbridge.testing.conformance import ConnectorConformance, Sample, WriteTarget

PEOPLE = [
    {"id": 1, "name": "Ann", "score": 1.5, "active": True, "tags": '["a", "b"]'},
    {"id": 2, "name": "Bob", "score": None, "active": False, "tags": None},
    {"id": 3, "name": 'Zoë "Z"\n', "score": 2.25, "active": None, "tags": '{"x": 1}'},
    {"id": 4, "name": None, "score": -1.0, "active": True, "tags": "[]"},
    {"id": 5, "name": "Eve", "score": 0.0, "active": False, "tags": None},
]


def _line(row: dict[str, object]) -> str:
    raw = dict(row, tags=json.loads(row["tags"]) if row["tags"] else None)  # type: ignore[arg-type]
    return json.dumps(raw, ensure_ascii=False)


class TestJsonlConformance(ConnectorConformance):
    @pytest.fixture
    def connector(self, tmp_path: Path) -> Iterator[JsonlConnector]:
        lines = "".join(_line(r) + "\n" for r in PEOPLE)
        (tmp_path / "people.jsonl").write_text(lines, encoding="utf-8")
        (tmp_path / "out.jsonl").write_text(lines, encoding="utf-8")
        with JsonlConnector("files", JsonlSettings(path=str(tmp_path))) as connector:
            yield connector

    @pytest.fixture
    def sample(self, connector: JsonlConnector) -> Sample:
        return Sample("people.jsonl", rows=[dict(r) for r in PEOPLE], key="id")

    @pytest.fixture
    def write_target(self, connector: JsonlConnector) -> WriteTarget:
        return WriteTarget("out.jsonl", rows=[dict(r, id=r["id"] + 10) for r in PEOPLE])
