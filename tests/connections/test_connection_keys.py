from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet

from crmbridge.connections import (
    ConnectionStore,
    KeyFileKeySource,
    KeyringKeySource,
    PassphraseKeySource,
    ResolveType,
    default_key_source,
    keyring_usable,
)
from crmbridge.connections._files import create_private_file_once
from crmbridge.errors import ConfigError


def test_a_key_file_readable_by_others_is_refused_with_the_fix(home: Path) -> None:
    source = KeyFileKeySource(home / "secret.key")
    key = source.load_key(create=True)
    (home / "secret.key").chmod(0o644)

    with pytest.raises(ConfigError) as err:
        source.load_key(create=False)
    assert str(err.value) == (
        f"the key file {home / 'secret.key'} can be read or changed by other users "
        f"(mode 0644); make it private with: chmod 600 {home / 'secret.key'}"
    )

    (home / "secret.key").chmod(0o600)
    assert source.load_key(create=False) == key


def test_a_key_file_without_a_valid_key_is_refused(home: Path) -> None:
    home.mkdir()
    (home / "secret.key").write_text("not a key\n")
    (home / "secret.key").chmod(0o600)
    with pytest.raises(ConfigError, match=r"secret\.key does not hold a valid key"):
        KeyFileKeySource(home / "secret.key").load_key(create=False)


def test_a_missing_key_is_created_only_when_asked(home: Path) -> None:
    source = KeyFileKeySource(home / "secret.key")
    assert source.load_key(create=False) is None
    key = source.load_key(create=True)
    assert key is not None
    Fernet(key)  # a valid key
    assert source.load_key(create=True) == key


def test_racing_creators_end_up_with_the_same_file(tmp_path: Path) -> None:
    barrier = threading.Barrier(8)
    results: list[bytes] = []

    def create(n: int) -> None:
        barrier.wait()
        results.append(create_private_file_once(tmp_path / "k", f"key {n}".encode()))

    threads = [threading.Thread(target=create, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert len(set(results)) == 1
    assert results[0] == (tmp_path / "k").read_bytes()
    assert [p.name for p in tmp_path.iterdir()] == ["k"]


def test_passphrase_source_hides_the_passphrase_and_checks_its_salt(home: Path) -> None:
    source = PassphraseKeySource("my passphrase", home / "passphrase.salt")
    assert "my passphrase" not in repr(source)
    assert "my passphrase" not in source.describe()
    assert source.load_key(create=False) is None

    home.mkdir()
    (home / "passphrase.salt").write_text('{"kdf": "scrypt"}')
    with pytest.raises(ConfigError, match=r"passphrase\.salt is damaged"):
        source.load_key(create=False)
    with pytest.raises(ConfigError, match="the passphrase is empty"):
        PassphraseKeySource("", home / "passphrase.salt")


def test_keyring_holds_the_key_per_home(
    home: Path, resolve: ResolveType, settings: dict[str, object], memory_keyring: Any
) -> None:
    backend = memory_keyring()
    source = KeyringKeySource(home, backend)
    ConnectionStore(home, key_source=source, resolve_type=resolve).add("crm", "demo", settings)

    ((service, entry),) = backend.values
    assert (service, entry) == ("crmbridge", f"secret-key:{home.resolve()}")
    Fernet(backend.values[service, entry])
    again = ConnectionStore(home, key_source=KeyringKeySource(home, backend), resolve_type=resolve)
    assert (
        again.get("crm").settings
        == ConnectionStore(home, key_source=source, resolve_type=resolve).get("crm").settings
    )
    assert not (home / "secret.key").exists()


def test_a_failing_keyring_is_a_config_error(home: Path) -> None:
    class Broken:
        priority = 5

        def get_password(self, service: str, username: str) -> str | None:
            raise RuntimeError("dbus says no")

    with pytest.raises(ConfigError, match=r"the OS keyring failed \(RuntimeError\); set CRMBRIDGE"):
        KeyringKeySource(home, Broken()).load_key(create=True)


def test_default_key_source_order(home: Path, memory_keyring: Any) -> None:
    usable, unusable = memory_keyring(priority=1), memory_keyring(priority=0)

    with_passphrase = default_key_source(
        home, environ={"CRMBRIDGE_PASSPHRASE": "pw"}, keyring_backend=usable
    )
    keyring = default_key_source(home, environ={}, keyring_backend=usable)
    no_keyring = default_key_source(home, environ={}, keyring_backend=unusable)
    KeyFileKeySource(home / "secret.key").load_key(create=True)
    existing_file = default_key_source(home, environ={}, keyring_backend=usable)

    assert isinstance(with_passphrase, PassphraseKeySource)
    assert with_passphrase.salt_path == home / "passphrase.salt"
    assert isinstance(keyring, KeyringKeySource)
    assert isinstance(no_keyring, KeyFileKeySource)
    assert isinstance(existing_file, KeyFileKeySource)
    assert existing_file.path == home / "secret.key"


def test_keyring_usable_refuses_fail_and_null_backends() -> None:
    from keyring.backends import fail, null

    assert not keyring_usable(fail.Keyring())  # type: ignore[no-untyped-call]
    assert not keyring_usable(null.Keyring())  # type: ignore[no-untyped-call]
    assert not keyring_usable(object())
