"""The shared connector conformance suite (reading and writing), on each API family of the
sandbox on a real port."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from decimal import Decimal
from typing import ClassVar
from zoneinfo import ZoneInfo

import pytest
from sagecrm_helpers import ZONE, connector_factory

from crmbridge.connectors.base import Connector
from crmbridge.sandbox.sagecrm import SageSandbox
from crmbridge.testing.conformance import ConnectorConformance, Sample, WriteTarget

UTC = dt.UTC
OPPORTUNITIES = [
    {
        "opportunityid": 1,
        "description": "Renewal & more",
        "stage": "Lead",
        "certainty": 10,
        "forecast": Decimal("1500.500000"),
        "note": None,
        "updateddate": dt.datetime(2024, 7, 1, 12, 0, 0, tzinfo=UTC),  # 13:00 in London
    },
    {
        "opportunityid": 2,
        "description": 'O\'Brien "big" deal',
        "stage": "Proposal",
        "certainty": None,
        "forecast": None,
        "note": "x < y",
        "updateddate": dt.datetime(2024, 1, 15, 9, 30, 5, tzinfo=UTC),
    },
    {
        "opportunityid": 3,
        "description": "Zürich",
        "stage": None,
        "certainty": 90,
        "forecast": Decimal("20000.000000"),
        "note": "Müller",
        "updateddate": dt.datetime(2024, 7, 2, 8, 0, 0, tzinfo=UTC),
    },
]

#: companies to write: supplierid (comp_supplierid) is the match key
COMPANIES = [
    {"supplierid": f"SUP-{n}", "name": name, "website": f"www.s{n}.example"}
    for n, name in enumerate(["Alpha & Co", "O'Brien Supplies", "Zürich Teile AG"], 1)
]


def _insert(box: SageSandbox) -> None:
    for row in OPPORTUNITIES:
        moment = row["updateddate"]
        assert isinstance(moment, dt.datetime)
        stamp = moment.astimezone(ZoneInfo(ZONE)).strftime("%Y-%m-%d %H:%M:%S")
        box.execute(
            "INSERT INTO Opportunity (oppo_opportunityid, oppo_description, oppo_stage, "
            "oppo_certainty, oppo_forecast, oppo_note, oppo_createddate, oppo_updateddate, "
            "oppo_timestamp) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                row["opportunityid"],
                row["description"],
                row["stage"],
                row["certainty"],
                float(row["forecast"]) if row["forecast"] is not None else None,  # type: ignore[arg-type]
                row["note"],
                stamp,
                stamp,
                stamp,
            ),
        )
    box.execute(  # deleted: read only on request
        "INSERT INTO Opportunity (oppo_opportunityid, oppo_description, oppo_updateddate, "
        "oppo_deleted) VALUES (4, 'Gone', '2024-07-03 10:00:00', 1)"
    )


class _SageConformance(ConnectorConformance):
    api = "soap"
    options: ClassVar[dict[str, object]] = {}

    @pytest.fixture
    def connector(self) -> Iterator[Connector]:
        box = SageSandbox(seed=False, max_records=2, server_zone=ZONE)
        _insert(box)
        try:
            with box.serve() as server, connector_factory(server.url) as make:
                yield make(self.api, **self.options)
        finally:
            box.close()

    @pytest.fixture
    def sample(self, connector: Connector) -> Sample:
        return Sample(
            "opportunity",
            rows=[dict(r) for r in OPPORTUNITIES],
            key="opportunityid",
            cursor="updateddate",
        )

    @pytest.fixture
    def write_target(self, connector: Connector) -> WriteTarget:
        return WriteTarget(
            "company", rows=[dict(r) for r in COMPANIES], key="supplierid", changeable="website"
        )


class TestSageSoapConformance(_SageConformance):
    api = "soap"


class TestSageRestConformance(_SageConformance):
    api = "rest"


class TestSageRestOrderByConformance(_SageConformance):
    """REST on 2024 R2 and later: paged by keyset, incremental reads in cursor order."""

    api = "rest"
    options: ClassVar[dict[str, object]] = {"rest_order_by": True}
