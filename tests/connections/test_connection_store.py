from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from pydantic import SecretStr

from crmbridge.connections import (
    ConnectionStore,
    KeyFileKeySource,
    PassphraseKeySource,
    ResolveType,
    inline_connection,
)
from crmbridge.errors import ConfigError


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_connection_round_trips_with_its_secret_encrypted(
    store: ConnectionStore, home: Path, settings: dict[str, object], secret: str
) -> None:
    added = store.add("crm", "demo", settings | {"api_token": "tok-9f8e7d6c"})
    got = store.get("crm")

    assert got == added
    assert (got.name, got.type) == ("crm", "demo")
    assert got.settings.model_dump(exclude={"password", "api_token"}) == {
        "host": "db.example.com",
        "port": 5433,
        "username": "sync",
    }
    assert got.settings.password.get_secret_value() == secret  # type: ignore[attr-defined]
    assert got.secret_values() == [secret, "tok-9f8e7d6c"]

    raw = (home / "connections.json").read_text()
    assert "db.example.com" in raw
    assert secret not in raw
    assert "tok-9f8e7d6c" not in raw
    entry = json.loads(raw)["connections"]["crm"]
    assert sorted(entry["secrets"]) == ["api_token", "password"]
    assert entry["secrets"]["password"].startswith("gAAAA")  # a Fernet token


def test_files_are_private_and_written_without_leftovers(
    store: ConnectionStore, home: Path, settings: dict[str, object]
) -> None:
    store.add("a", "demo", settings)
    store.add("b", "demo", settings)
    store.remove("a")

    assert sorted(os.listdir(home)) == ["connections.json", "connections.json.lock", "secret.key"]
    assert mode(home / "connections.json") == 0o600
    assert mode(home / "connections.json.lock") == 0o600
    assert mode(home / "secret.key") == 0o600
    assert mode(home) == 0o700


def test_no_key_is_needed_until_a_secret_is_stored(home: Path, resolve: ResolveType) -> None:
    class NoKey(KeyFileKeySource):
        def load_key(self, *, create: bool) -> bytes | None:
            raise AssertionError("no key needed")

    store = ConnectionStore(home, key_source=NoKey(home / "secret.key"), resolve_type=resolve)
    store.add("files", "plain", {"path": "in/", "delimiter": ";"})

    assert store.get("files").settings.model_dump() == {
        "path": "in/",
        "delimiter": ";",
        "token": None,
    }
    entry = json.loads(store.path.read_text())["connections"]["files"]
    assert entry == {"type": "plain", "settings": {"path": "in/", "delimiter": ";"}, "secrets": {}}


def test_secrets_never_show_in_repr_or_str(
    store: ConnectionStore, settings: dict[str, object], secret: str
) -> None:
    connection = store.add("crm", "demo", settings)
    for text in (
        repr(connection),
        str(connection),
        repr(connection.settings),
        str(connection.settings),
    ):
        assert secret not in text
        assert "**********" in text


def test_validation_reports_every_problem_without_the_secret(
    store: ConnectionStore, secret: str
) -> None:
    with pytest.raises(ConfigError) as err:
        store.add("crm", "demo", {"hots": "x", "port": "abc", "password": secret})

    message = str(err.value)
    assert message.startswith("connection 'crm': invalid settings for a 'demo' connection:")
    assert "hots: unknown setting; did you mean 'host'?" in message
    assert "port: Input should be a valid integer" in message
    assert "username: required, not given" in message
    assert "host: required, not given" in message
    assert secret not in message
    assert not store.path.exists()


def test_a_secret_echoed_by_a_validator_is_redacted(store: ConnectionStore) -> None:
    with pytest.raises(ConfigError) as err:
        store.add("crm", "careless", {"password": "Tr0ub4dor&3"})
    message = str(err.value)
    assert "Tr0ub4dor&3" not in message
    assert "password: Value error, '***' is too short" in message


def test_a_changed_key_is_a_clear_error_without_secret_or_ciphertext(
    store: ConnectionStore,
    home: Path,
    tmp_path: Path,
    resolve: ResolveType,
    settings: dict[str, object],
    secret: str,
) -> None:
    store.add("crm", "demo", settings)
    token = json.loads(store.path.read_text())["connections"]["crm"]["secrets"]["password"]
    other_key = KeyFileKeySource(tmp_path / "other" / "secret.key")
    other_key.load_key(create=True)
    moved = ConnectionStore(home, key_source=other_key, resolve_type=resolve)

    with pytest.raises(ConfigError) as err:
        moved.get("crm")

    message = str(err.value)
    assert message.startswith("cannot decrypt the secrets of connection 'crm': the key changed?")
    assert str(tmp_path / "other" / "secret.key") in message
    assert "crmbridge connection add" in message
    assert token not in message
    assert token[:20] not in message
    assert secret not in message


def test_a_damaged_secret_is_a_decrypt_error(
    store: ConnectionStore, settings: dict[str, object]
) -> None:
    store.add("crm", "demo", settings)
    document = json.loads(store.path.read_text())
    token = document["connections"]["crm"]["secrets"]["password"]
    for damaged in (token[:-8] + "AAAAAAAA", "not base64 é", 42):
        document["connections"]["crm"]["secrets"]["password"] = damaged
        store.path.write_text(json.dumps(document))

        with pytest.raises(ConfigError, match="cannot decrypt the secrets of connection 'crm'"):
            store.get("crm")


def test_a_lost_key_file_is_a_decrypt_error_and_no_new_key_is_made(
    store: ConnectionStore, home: Path, settings: dict[str, object]
) -> None:
    store.add("crm", "demo", settings)
    (home / "secret.key").unlink()

    with pytest.raises(ConfigError, match="cannot decrypt the secrets of connection 'crm'"):
        store.get("crm")
    assert not (home / "secret.key").exists()


def test_passphrase_key_decrypts_in_a_new_process_and_refuses_another_passphrase(
    home: Path, resolve: ResolveType, settings: dict[str, object], secret: str
) -> None:
    def with_passphrase(passphrase: str) -> ConnectionStore:
        source = PassphraseKeySource(passphrase, home / "passphrase.salt")
        return ConnectionStore(home, key_source=source, resolve_type=resolve)

    with_passphrase("correct horse battery staple").add("crm", "demo", settings)
    again = with_passphrase("correct horse battery staple").get("crm")

    assert again.settings.password.get_secret_value() == secret  # type: ignore[attr-defined]
    assert mode(home / "passphrase.salt") == 0o600
    assert json.loads((home / "passphrase.salt").read_text())["kdf"] == "scrypt"
    assert not (home / "secret.key").exists()
    with pytest.raises(ConfigError, match="cannot decrypt the secrets of connection 'crm'"):
        with_passphrase("wrong horse").get("crm")


def test_unknown_names_suggest_close_ones(
    store: ConnectionStore, settings: dict[str, object]
) -> None:
    store.add("salesforce", "demo", settings)
    with pytest.raises(
        ConfigError, match="unknown connection 'salesfroce'; did you mean 'salesforce'"
    ):
        store.get("salesfroce")
    with pytest.raises(ConfigError, match="unknown connection 'salesforc'; did you mean"):
        store.remove("salesforc")


def test_add_refuses_an_existing_name_unless_replacing(
    store: ConnectionStore, settings: dict[str, object]
) -> None:
    store.add("crm", "demo", settings)
    with pytest.raises(ConfigError, match="connection 'crm': a connection with this name exists"):
        store.add("crm", "demo", settings | {"port": 1})
    store.add("crm", "demo", settings | {"port": 1}, replace=True)
    assert store.get("crm").settings.port == 1  # type: ignore[attr-defined]


def test_list_names_and_remove(store: ConnectionStore, settings: dict[str, object]) -> None:
    for name in ["zeta", "alpha", "mid"]:
        store.add(name, "demo", settings)
    store.remove("mid")

    assert store.names() == ["alpha", "zeta"]
    assert [c.name for c in store.list()] == ["alpha", "zeta"]
    assert ConnectionStore(store.home / "empty").names() == []


def test_connector_instance_is_built_with_the_settings(
    store: ConnectionStore, settings: dict[str, object], tmp_path: Path
) -> None:
    connection = store.add("crm", "demo", settings)
    connector = connection.connector(base_dir=tmp_path)

    assert type(connector).__name__ == "DemoConnector"
    assert (connector.name, connector.settings, connector.base_dir) == (
        "crm",
        connection.settings,
        tmp_path,
    )


def test_each_saved_connection_has_a_cache_folder_that_goes_with_it(
    store: ConnectionStore, settings: dict[str, object], resolve: ResolveType
) -> None:
    store.add("crm", "demo", settings)
    connector = store.get("crm").connector()
    assert connector.cache_dir == store.home / "cache" / "crm"
    remembered = connector.cache_dir / "what-it-learned.json"
    remembered.parent.mkdir(parents=True)
    remembered.write_text("{}")
    assert store.get("crm").connector().cache_dir == connector.cache_dir
    store.add("crm", "demo", settings | {"port": 1}, replace=True)  # may be another system
    assert not remembered.exists()
    remembered.parent.mkdir(parents=True)
    remembered.write_text("{}")
    store.get("crm").forget_cache()
    assert not remembered.parent.exists()
    store.remove("crm")
    assert not (store.home / "cache" / "crm").exists()
    inline = inline_connection("src", "plain", {"path": "a.csv"}, resolve_type=resolve)
    assert inline.connector().cache_dir is None


def test_unknown_types_and_bad_names_are_config_errors(
    store: ConnectionStore, settings: dict[str, object]
) -> None:
    with pytest.raises(
        ConfigError, match="connection 'crm': unknown connection type 'dmeo'; did you mean 'demo'"
    ):
        store.add("crm", "dmeo", settings)
    with pytest.raises(ConfigError, match="invalid connection name 'my crm'"):
        store.add("my crm", "demo", settings)


def test_a_damaged_or_newer_connections_file_is_refused(store: ConnectionStore) -> None:
    store.home.mkdir()
    store.path.write_text("{not json")
    with pytest.raises(ConfigError, match=r"connections\.json is damaged; restore it"):
        store.names()

    store.path.write_text(json.dumps({"version": 99, "connections": {}}))
    with pytest.raises(ConfigError, match="written by a newer crmbridge"):
        store.names()


def test_inline_connections_refuse_secrets(resolve: ResolveType, secret: str) -> None:
    with pytest.raises(ConfigError) as err:
        inline_connection(
            "src", "demo", {"host": "h", "username": "u", "password": secret}, resolve_type=resolve
        )
    message = str(err.value)
    assert message == (
        "connection 'src': 'password': secrets do not belong in profiles; "
        "store them with `crmbridge connection add`"
    )


def test_inline_connections_are_validated(resolve: ResolveType) -> None:
    connection = inline_connection("src", "plain", {"path": "a.csv"}, resolve_type=resolve)
    assert connection.settings.model_dump() == {"path": "a.csv", "delimiter": ",", "token": None}

    with pytest.raises(ConfigError) as err:
        inline_connection("src", "plain", {"path": 3, "delimter": ";"}, resolve_type=resolve)
    assert str(err.value) == (
        "connection 'src': invalid settings for a 'plain' connection:\n"
        "  path: Input should be a valid string\n"
        "  delimter: unknown setting; did you mean 'delimiter'?"
    )


def test_settings_a_connector_hands_back_are_saved_encrypted(
    store: ConnectionStore, home: Path, settings: dict[str, object]
) -> None:
    store.add("crm", "demo", settings)
    connector = store.get("crm").connector()
    rotated = connector.settings.model_copy(update={"api_token": SecretStr("rotated-token-42")})
    connector.settings_changed(rotated)
    assert store.get("crm").settings.api_token.get_secret_value() == "rotated-token-42"  # type: ignore[attr-defined]
    assert "rotated-token-42" not in (home / "connections.json").read_text()


def test_an_inline_connection_cannot_keep_handed_back_settings(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from crmbridge.connections import inline_connection

    connection = inline_connection("p.target", "csv", {"path": "."})
    connector = connection.connector()
    connector.settings_changed(connector.settings)
    assert "cannot be saved" in caplog.text
