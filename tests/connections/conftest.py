"""A tiny connector with secret settings, and stores that never touch the user's keyring."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import ClassVar

import pyarrow as pa
import pytest
from pydantic import SecretStr, field_validator

from crmbridge.connections import ConnectionStore, KeyFileKeySource
from crmbridge.connectors.base import Capabilities, Connector, ConnectorSettings, ReadRequest
from crmbridge.core.schema import ObjectSchema, unknown_name_error

#: the password every test stores; it must never show up in a file or a message
SECRET = "hunter2-S3cret!"


class DemoSettings(ConnectorSettings):
    host: str
    port: int = 5432
    username: str
    password: SecretStr
    api_token: SecretStr | None = None


class DemoConnector(Connector):
    type_name = "demo"
    settings_model: ClassVar[type[ConnectorSettings]] = DemoSettings

    def capabilities(self) -> Capabilities:
        return Capabilities()

    def objects(self) -> list[str]:
        return []

    def describe(self, object: str) -> ObjectSchema:
        return ObjectSchema(object, ())

    def read(self, request: ReadRequest) -> Iterator[pa.RecordBatch]:
        return iter(())


class CarelessSettings(ConnectorSettings):
    """A settings model whose validator puts the secret in its message (a connector bug)."""

    password: SecretStr

    @field_validator("password")
    @classmethod
    def long_enough(cls, value: SecretStr) -> SecretStr:
        if len(value.get_secret_value()) < 40:
            raise ValueError(f"{value.get_secret_value()!r} is too short")
        return value


class CarelessConnector(DemoConnector):
    type_name = "careless"
    settings_model = CarelessSettings


class PlainSettings(ConnectorSettings):
    """Settings whose only secret is optional."""

    path: str
    delimiter: str = ","
    token: SecretStr | None = None


class PlainConnector(DemoConnector):
    type_name = "plain"
    settings_model = PlainSettings


TYPES: dict[str, type[Connector]] = {
    "demo": DemoConnector,
    "careless": CarelessConnector,
    "plain": PlainConnector,
}


def resolve(type_name: str) -> type[Connector]:
    if type_name not in TYPES:
        raise unknown_name_error("connection type", type_name, TYPES)
    return TYPES[type_name]


@pytest.fixture(autouse=True)
def _no_user_keyring(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Belt and braces: whatever a test forgets, the real keyring and home stay untouched."""
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.fail.Keyring")
    monkeypatch.setenv("CRMBRIDGE_HOME", str(tmp_path / "default-home"))
    monkeypatch.delenv("CRMBRIDGE_PASSPHRASE", raising=False)


@pytest.fixture
def secret() -> str:
    return SECRET


@pytest.fixture
def settings() -> dict[str, object]:
    """Valid settings of a 'demo' connection."""
    return {"host": "db.example.com", "port": 5433, "username": "sync", "password": SECRET}


@pytest.fixture(name="resolve")
def resolve_fixture() -> Callable[[str], type[Connector]]:
    """Finds the test connectors 'demo', 'careless' and 'plain' (instead of the registry)."""
    return resolve


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


@pytest.fixture
def store(home: Path) -> ConnectionStore:
    return ConnectionStore(
        home, key_source=KeyFileKeySource(home / "secret.key"), resolve_type=resolve
    )


class MemoryKeyring:
    """Duck-typed keyring backend (not a KeyringBackend subclass, so keyring never finds it)."""

    def __init__(self, priority: float = 1) -> None:
        self.priority = priority
        self.values: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.values.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.values[(service, username)] = password


@pytest.fixture
def memory_keyring() -> type[MemoryKeyring]:
    return MemoryKeyring
