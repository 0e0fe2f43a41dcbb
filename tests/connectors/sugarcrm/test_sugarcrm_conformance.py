"""The shared connector conformance suite, on each API family of the sandbox."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest
from sugarcrm_helpers import connector_factory

from crmbridge.connectors.base import Connector
from crmbridge.sandbox.sugarcrm import SugarSandbox
from crmbridge.sandbox.sugarcrm.vardefs import STUDIO_FIELDS
from crmbridge.testing.conformance import ConnectorConformance, Sample, WriteTarget

UTC = dt.UTC
ACCOUNTS = [
    {
        "id": "conf-0001",
        "name": "Alpha & Co",
        "account_type": "Customer",
        "industry": "Banking",
        "employees": "10",
        "description": None,
        "date_modified": dt.datetime(2024, 3, 1, 12, 0, 0, tzinfo=UTC),
    },
    {
        "id": "conf-0002",
        "name": 'Beta "B" <Ltd>',
        "account_type": "Partner",
        "industry": None,
        "employees": None,
        "description": "x < y",
        "date_modified": dt.datetime(2024, 3, 1, 12, 0, 0, tzinfo=UTC),
    },
    {
        "id": "conf-0003",
        "name": "O'Gamma",
        "account_type": None,
        "industry": "Media",
        "employees": "7",
        "description": "Zürich",
        "date_modified": dt.datetime(2024, 3, 2, 9, 30, 5, tzinfo=UTC),
    },
]
CONTACTS = [
    {"last_name": f"Conformance{n}", "external_id_c": f"C-{n}", "title": f"T{n}"} for n in range(3)
]


def _insert_accounts(box: SugarSandbox) -> None:
    for row in ACCOUNTS:
        stamp = row["date_modified"].strftime("%Y-%m-%d %H:%M:%S")  # type: ignore[union-attr]
        box.execute(
            "INSERT INTO accounts (id, name, account_type, industry, employees, description, "
            "date_entered, date_modified, deleted) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0)",
            (
                row["id"],
                row["name"],
                row["account_type"],
                row["industry"],
                row["employees"],
                row["description"],
                stamp,
                stamp,
            ),
        )


class _SugarConformance(ConnectorConformance):
    api = "v4_1"

    @pytest.fixture
    def connector(self) -> Iterator[Connector]:
        box = SugarSandbox(seed=False, studio_fields=STUDIO_FIELDS)
        _insert_accounts(box)
        try:
            with connector_factory(box.wsgi_app) as make:
                yield make(self.api)
        finally:
            box.close()

    @pytest.fixture
    def sample(self, connector: Connector) -> Sample:
        return Sample(
            "Accounts", rows=[dict(r) for r in ACCOUNTS], key="id", cursor="date_modified"
        )

    @pytest.fixture
    def write_target(self, connector: Connector) -> WriteTarget:
        return WriteTarget(
            "Contacts", rows=[dict(r) for r in CONTACTS], key="external_id_c", changeable="title"
        )


class TestSugarV41Conformance(_SugarConformance):
    api = "v4_1"


class TestSugarV10Conformance(_SugarConformance):
    api = "v10"
