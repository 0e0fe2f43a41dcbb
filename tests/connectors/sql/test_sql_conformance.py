"""The shared conformance suite, once per database engine."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sql_helpers import PEOPLE, connector, create, people

from crmbridge.connectors.sql import SqlConnector
from crmbridge.testing.conformance import ConnectorConformance, Sample, WriteTarget

NEW_PEOPLE = [dict(row, id=row["id"] + 100, name=row["name"] + "2") for row in PEOPLE]


class _SqlConformance(ConnectorConformance):
    url_fixture: str

    @pytest.fixture
    def connector(self, request: pytest.FixtureRequest) -> Iterator[SqlConnector]:
        url = request.getfixturevalue(self.url_fixture)
        create(url, people, lambda md: people(md, "contacts"), rows={"people": PEOPLE})
        conn = connector(url)
        yield conn
        conn.close()

    @pytest.fixture
    def sample(self, connector: SqlConnector) -> Sample:
        return Sample("people", rows=[dict(r) for r in PEOPLE], key="id", cursor="seen")

    @pytest.fixture
    def write_target(self, connector: SqlConnector) -> WriteTarget:
        return WriteTarget("contacts", rows=NEW_PEOPLE, key="id", changeable="name")


class TestSqliteConformance(_SqlConformance):
    url_fixture = "sqlite_url"


@pytest.mark.postgres
class TestPostgresConformance(_SqlConformance):
    url_fixture = "pg_url"


@pytest.mark.mariadb
class TestMariaDbConformance(_SqlConformance):
    url_fixture = "mysql_url"
