"""Opening connections: clear, secret-free failures; passwords merged at connect time."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr
from sql_helpers import connector, execute

from crmbridge.connectors import registry
from crmbridge.connectors.sql import SqlConnector, SqlSettings
from crmbridge.core.schema import Field, FieldType, ObjectSchema
from crmbridge.errors import ConfigError, ConnectionFailedError

SECRET = "S3cret-Passw0rd"


def test_registered_as_sql() -> None:
    assert registry.get("sql") is SqlConnector


@pytest.mark.postgres
def test_closed_port_postgres() -> None:
    settings = SqlSettings(url="postgresql+psycopg://crm@127.0.0.1:1/test", password=SECRET)
    with pytest.raises(ConnectionFailedError) as info:
        SqlConnector("warehouse", settings).open()
    message = str(info.value)
    assert message.startswith("connection 'warehouse': cannot connect to PostgreSQL at 127.0.0.1:1")
    assert "as user crm: " in message
    assert "refused" in message
    assert SECRET not in message


@pytest.mark.mariadb
def test_closed_port_mariadb() -> None:
    settings = SqlSettings(url="mysql+pymysql://crm@127.0.0.1:1/test", password=SECRET)
    with pytest.raises(
        ConnectionFailedError, match=r"cannot connect to MySQL/MariaDB at 127\.0\.0\.1:1"
    ):
        SqlConnector("shop", settings).open()


@pytest.fixture
def mariadb_user(mysql_url: str) -> Iterator[tuple[str, str]]:
    """A MariaDB user with a password (dropped afterwards) and the URL of its database."""
    user = f"crmb_{uuid.uuid4().hex[:8]}"
    database = mysql_url.rsplit("/", 1)[1].split("?")[0]
    hosts = ["%%", "localhost"]  # '%%': pymysql formats the statement text
    execute(mysql_url, *(f"CREATE USER '{user}'@'{h}' IDENTIFIED BY '{SECRET}'" for h in hosts))
    execute(mysql_url, *(f"GRANT ALL ON `{database}`.* TO '{user}'@'{h}'" for h in hosts))
    yield user, f"mysql+pymysql://{user}@127.0.0.1:3306/{database}"
    execute(mysql_url, *(f"DROP USER '{user}'@'{h}'" for h in hosts))


@pytest.mark.mariadb
def test_wrong_password_is_named_without_the_secret(mariadb_user: tuple[str, str]) -> None:
    user, url = mariadb_user
    wrong = SECRET + "-wrong"
    with pytest.raises(ConnectionFailedError) as info:
        SqlConnector("shop", SqlSettings(url=url, password=wrong)).open()
    message = str(info.value)
    assert f"cannot connect to MySQL/MariaDB at 127.0.0.1:3306 as user {user}: " in message
    assert "Access denied" in message
    assert SECRET not in message


@pytest.mark.mariadb
def test_the_right_password_is_merged_into_the_url(mariadb_user: tuple[str, str]) -> None:
    _, url = mariadb_user
    conn = SqlConnector("shop", SqlSettings(url=url, password=SecretStr(SECRET)))
    conn.open()
    info = conn.check()
    conn.close()
    assert info.system == "MariaDB"
    assert str(info.version).startswith("10.")


def test_a_password_inside_the_url_becomes_the_secret_password_setting() -> None:
    settings = SqlSettings(url=f"postgresql+psycopg://crm:{SECRET}@db/x")
    assert settings.url == "postgresql+psycopg://crm@db/x"
    assert settings.password is not None
    assert settings.password.get_secret_value() == SECRET
    assert SECRET not in repr(settings)
    encoded = SqlSettings(url="postgresql+psycopg://crm:p%40ss%2Fw@db/x")
    assert encoded.password is not None
    assert encoded.password.get_secret_value() == "p@ss/w"  # decoded as the URL means it


def test_an_unknown_driver_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="no SQLAlchemy driver for 'nosuchdb'"):
        SqlConnector("x", SqlSettings(url="nosuchdb://host/db")).open()


def test_a_malformed_url_is_refused_with_the_settings() -> None:
    with pytest.raises(ValueError, match="not a SQLAlchemy URL"):
        SqlSettings(url="just some text")


def test_a_relative_sqlite_path_is_relative_to_the_base_dir(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    db = connector("sqlite:///data/crm.db", base_dir=tmp_path)
    assert db.check().details == {
        "database": str(tmp_path / "data" / "crm.db"),
        "exists": "not yet",
    }
    db.create_object(ObjectSchema("t", (Field("id", FieldType.INTEGER),)), ["id"])
    db.close()
    assert (tmp_path / "data" / "crm.db").is_file()


def test_opening_a_sqlite_file_that_does_not_exist_creates_nothing(tmp_path: Path) -> None:
    db = connector("sqlite:///nowhere/crm.db", base_dir=tmp_path)
    assert db.objects() == []
    with pytest.raises(ConfigError, match=r"the SQLite database .*nowhere/crm.db does not exist"):
        db.describe("contacts")
    assert not (tmp_path / "nowhere").exists()  # a check, preview or dry run writes nothing
    db.create_object(ObjectSchema("contacts", (Field("id", FieldType.INTEGER),)), ["id"])
    assert db.objects() == ["contacts"]
    db.close()
    assert (tmp_path / "nowhere" / "crm.db").is_file()


def test_settings_accept_schema() -> None:
    assert SqlSettings.model_validate({"url": "sqlite://", "schema": "crm"}).db_schema == "crm"


def test_every_setting_is_documented_and_every_documented_setting_exists() -> None:
    docs = Path(__file__).resolve().parents[3] / "docs" / "connectors" / "sql.md"
    section = docs.read_text(encoding="utf-8").split("## Settings", 1)[1].split("\n## ", 1)[0]
    first_cells = [line.split("|")[1] for line in section.splitlines() if line.startswith("| `")]
    documented = set(re.findall(r"`(\w+)`", " ".join(first_cells)))
    fields = {info.alias or name for name, info in SqlSettings.model_fields.items()}
    assert documented == fields
