"""The test suite needs nothing on the database servers but a fresh installation has."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from tests.conftest import _admin, pg_admin_url


@pytest.mark.postgres
def test_postgresql_tests_use_a_database_of_their_own(pg_url: str, pg_database: str) -> None:
    url = sa.make_url(pg_url)
    assert url.database == pg_database != "test"
    assert pg_database.startswith("crmb_test_")
    engine = sa.create_engine(pg_admin_url())  # the server's default database
    with engine.connect() as conn:
        found = conn.execute(
            sa.text("SELECT count(*) FROM pg_database WHERE datname = :n"), {"n": pg_database}
        ).scalar()
    engine.dispose()
    assert found == 1


@pytest.mark.mariadb
def test_mariadb_tests_need_no_database_named_test(mysql_url: str) -> None:
    assert sa.make_url(mysql_url).database not in (None, "test")


@pytest.mark.postgres
def test_a_server_that_refuses_skips_with_the_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CRMBRIDGE_REQUIRE_SERVICES", raising=False)
    with pytest.raises(pytest.skip.Exception, match='database "crmb_absent" does not exist'):
        _admin("PostgreSQL", pg_admin_url("crmb_absent"), "SELECT 1")
    monkeypatch.setenv("CRMBRIDGE_REQUIRE_SERVICES", "1")
    with pytest.raises(pytest.fail.Exception, match="CRMBRIDGE_REQUIRE_SERVICES"):
        _admin("PostgreSQL", pg_admin_url("crmb_absent"), "SELECT 1")
