"""Named connections, stored in ``<crmbridge home>/connections.json`` with secrets encrypted.

The file (mode 0600, replaced atomically on every change) looks like::

    {"version": 1,
     "connections": {
       "crm": {"type": "sugarcrm",
               "settings": {"url": "https://crm.example.com", "username": "sync"},
               "secrets": {"password": "gAAAAABm..."}}}}

Non-secret settings are plain JSON; each secret field is a Fernet token (AES-128-CBC +
HMAC-SHA256) made with the key of a :class:`~crmbridge.connections.keys.KeySource`.

Relative paths in settings are made absolute when a connection is saved
(``ConnectorSettings.with_paths_resolved``), so every command means the same files. Changes
(``add``, ``remove``) read and replace the file holding ``connections.json.lock``, so
concurrent changes from several processes all survive.

Each saved connection also has a cache folder, ``<home>/cache/<name>``, where its connector
may remember what it learned about the system between runs (``Connector.cache_dir``). It is
removed when the connection is replaced or removed, and by ``crmbridge describe --refresh``.
"""

from __future__ import annotations

import builtins
import json
import re
import shutil
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from dataclasses import replace as replace_dataclass
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet, InvalidToken
from filelock import FileLock, Timeout
from pydantic import SecretStr

from crmbridge.connections._files import write_private_file
from crmbridge.connections.keys import KeySource, default_key_source
from crmbridge.connections.settings import secret_fields, secret_values, validate_settings
from crmbridge.connectors import registry
from crmbridge.connectors.base import Connector, ConnectorSettings
from crmbridge.core.schema import unknown_name_error
from crmbridge.errors import ConfigError, ErrorContext, FatalError
from crmbridge.state.paths import home_dir

ResolveType = Callable[[str], type[Connector]]

CONNECTIONS_FILE = "connections.json"
#: held while a process changes the connections file; seconds a change waits for it
LOCK_FILE = "connections.json.lock"
LOCK_TIMEOUT = 30.0
CACHE_FOLDER = "cache"
FILE_FORMAT = 1
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


@dataclass(frozen=True)
class Connection:
    """A named, validated connection. Secret settings are ``SecretStr`` (shown as ``****``)."""

    name: str
    type: str
    settings: ConnectorSettings
    #: finds the connector class of ``type`` (the registry, or a test's own)
    resolve_type: ResolveType = field(default=registry.get, repr=False, compare=False, kw_only=True)
    #: keeps settings the system handed back (a rotated refresh token); None: not saved
    save: Callable[[ConnectorSettings], None] | None = field(
        default=None, repr=False, compare=False, kw_only=True
    )
    #: where its connectors may remember things between runs; None (inline connections):
    #: nowhere
    cache_dir: Path | None = field(default=None, compare=False, kw_only=True)

    def connector(self, *, base_dir: Path | None = None) -> Connector:
        """A new connector instance for this connection (not opened yet). Settings the
        connector hands back (``Connector.settings_changed``) are saved with the connection;
        it may remember what it learns in ``cache_dir``."""
        connector = self.resolve_type(self.type)(self.name, self.settings, base_dir=base_dir)
        connector.on_settings_changed = self.save
        connector.cache_dir = self.cache_dir
        return connector

    def forget_cache(self) -> None:
        """Remove what its connectors remembered (they ask the system again)."""
        if self.cache_dir is not None:
            shutil.rmtree(self.cache_dir, ignore_errors=True)

    def secret_values(self) -> list[str]:
        """The plain secret values, to :func:`~crmbridge.connections.redact` messages with."""
        return secret_values(self.settings, self.settings.__class__)


def _settings_model(name: str, type: str, resolve_type: ResolveType) -> type[ConnectorSettings]:
    try:
        return resolve_type(type).settings_model
    except ConfigError as err:
        raise err.with_context(connection=name) from None


def build_connection(
    name: str,
    type: str,
    settings: Mapping[str, Any],
    *,
    resolve_type: ResolveType,
    cache_dir: Path | None = None,
) -> Connection:
    """A Connection with ``settings`` validated by the connector's settings model."""
    model = _settings_model(name, type, resolve_type)
    validated = validate_settings(model, settings, connection=name, type_name=type)
    return Connection(name, type, validated, resolve_type=resolve_type, cache_dir=cache_dir)


def inline_connection(
    name: str, type: str, settings: Mapping[str, Any], *, resolve_type: ResolveType = registry.get
) -> Connection:
    """A connection written inline in a profile. Secret settings are refused there, also a
    secret the settings model finds inside another setting (a password in a URL)."""
    model = _settings_model(name, type, resolve_type)
    given = [repr(f) for f in secret_fields(model) if f in settings]
    if not given:
        connection = build_connection(name, type, settings, resolve_type=resolve_type)
        given = [
            f"{f!r} (written in another setting)"
            for f in secret_fields(model)
            if getattr(connection.settings, f, None) is not None
        ]
        if not given:
            return connection
    raise ConfigError(
        f"{', '.join(given)}: secrets do not belong in profiles; "
        f"store them with `crmbridge connection add`",
        context=ErrorContext(connection=name),
    )


class ConnectionStore:
    """The saved connections of one crmbridge home (default: :func:`crmbridge.state.home_dir`).

    ``key_source`` encrypts the secrets (default: :func:`keys.default_key_source`, chosen on
    first use); ``resolve_type`` finds connector classes (default: the registry).
    """

    def __init__(
        self,
        home: Path | None = None,
        *,
        key_source: KeySource | None = None,
        resolve_type: ResolveType = registry.get,
    ) -> None:
        self.home = home if home is not None else home_dir()
        self.path = self.home / CONNECTIONS_FILE
        self._key_source = key_source
        self._resolve_type = resolve_type

    @property
    def key_source(self) -> KeySource:
        """Where the encryption key comes from."""
        if self._key_source is None:
            self._key_source = default_key_source(self.home)
        return self._key_source

    def add(
        self,
        name: str,
        type: str,
        settings: Mapping[str, Any],
        *,
        replace: bool = False,
        base_dir: Path | None = None,
    ) -> Connection:
        """Validate and save a connection; an existing name needs ``replace=True``.

        Relative paths in ``settings`` are resolved against ``base_dir`` (default: the
        current folder) and saved absolute; the returned connection shows what was saved."""
        if not _NAME.fullmatch(name):
            raise ConfigError(
                f"invalid connection name {name!r}: use letters, digits, '_', '.' and '-', "
                f"starting with a letter or digit"
            )
        connection = build_connection(
            name, type, settings, resolve_type=self._resolve_type, cache_dir=self.cache_dir(name)
        )
        resolved = connection.settings.with_paths_resolved(base_dir or Path.cwd())
        connection = replace_dataclass(connection, settings=resolved)
        with self._changing():
            entries = self._read()
            if name in entries and not replace:
                raise ConfigError(
                    "a connection with this name exists already; remove it first or replace it",
                    context=ErrorContext(connection=name),
                )
            entries[name] = self._encode(connection)
            self._write(entries)
        connection.forget_cache()  # a replaced connection may reach another system
        return connection

    def get(self, name: str) -> Connection:
        """The connection called ``name``; an unknown name suggests close ones. Settings its
        connector hands back are saved to it (encrypted, under the store's lock)."""
        entries = self._read()
        if name not in entries:
            raise unknown_name_error("connection", name, entries)
        found = self._decode(name, entries[name])
        return replace_dataclass(found, save=lambda settings: self._keep(found, settings))

    def _keep(self, connection: Connection, settings: ConnectorSettings) -> None:
        """Save ``settings`` as the new settings of ``connection`` (a rotated secret)."""
        updated = replace_dataclass(connection, settings=settings)
        with self._changing():
            entries = self._read()
            entries[connection.name] = self._encode(updated)
            self._write(entries)

    def names(self) -> builtins.list[str]:
        """Names of the saved connections, sorted (nothing is decrypted)."""
        return sorted(self._read())

    def remove(self, name: str) -> None:
        """Delete the connection called ``name``."""
        with self._changing():
            entries = self._read()
            if name not in entries:
                raise unknown_name_error("connection", name, entries)
            del entries[name]
            self._write(entries)
        shutil.rmtree(self.cache_dir(name), ignore_errors=True)

    def cache_dir(self, name: str) -> Path:
        """The cache folder of the connection called ``name``."""
        return self.home / CACHE_FOLDER / name

    def list(self) -> builtins.list[Connection]:
        """Every saved connection, sorted by name."""
        return [self._decode(name, entry) for name, entry in sorted(self._read().items())]

    # -- file format ---------------------------------------------------------------------
    @contextmanager
    def _changing(self) -> Iterator[None]:
        """Hold the store's lock file while a change reads and replaces connections.json."""
        self.home.mkdir(mode=0o700, parents=True, exist_ok=True)
        lock = FileLock(self.path.with_name(LOCK_FILE), timeout=LOCK_TIMEOUT, mode=0o600)
        try:
            lock.acquire()
        except Timeout:
            raise FatalError(
                f"another crmbridge has been changing {self.path} for {LOCK_TIMEOUT:.0f} s "
                f"(lock file {lock.lock_file}); try again"
            ) from None
        try:
            yield
        finally:
            lock.release()

    def _read(self) -> dict[str, Any]:
        if not self.path.exists():
            return {}
        try:
            document = json.loads(self.path.read_bytes())
            version = document["version"]
            entries = document["connections"]
        except (ValueError, KeyError, TypeError):
            raise self._damaged() from None
        if not isinstance(entries, dict) or not isinstance(version, int):
            raise self._damaged()
        if version > FILE_FORMAT:
            raise ConfigError(
                f"the connections file {self.path} was written by a newer crmbridge "
                f"(format {version}); upgrade crmbridge"
            )
        return entries

    def _write(self, entries: Mapping[str, Any]) -> None:
        document = {"version": FILE_FORMAT, "connections": dict(sorted(entries.items()))}
        write_private_file(self.path, json.dumps(document, indent=2).encode() + b"\n")

    def _damaged(self) -> ConfigError:
        return ConfigError(
            f"the connections file {self.path} is damaged; restore it from a backup or remove it"
        )

    def _encode(self, connection: Connection) -> dict[str, Any]:
        model = connection.settings.__class__
        secret_names = secret_fields(model)
        plain = connection.settings.model_dump(
            mode="json", exclude=set(secret_names), exclude_unset=True
        )
        secrets = {
            name: value.get_secret_value()
            for name in secret_names
            if isinstance(value := getattr(connection.settings, name), SecretStr)
        }
        encrypted: dict[str, str] = {}
        if secrets:
            fernet = self._fernet(connection.name, create=True)
            encrypted = {n: fernet.encrypt(v.encode()).decode() for n, v in secrets.items()}
        return {"type": connection.type, "settings": plain, "secrets": encrypted}

    def _decode(self, name: str, entry: Any) -> Connection:
        try:
            type_name = str(entry["type"])
            values = dict(entry.get("settings", {}))
            tokens = dict(entry.get("secrets", {}))
        except (KeyError, TypeError, ValueError, AttributeError):
            raise self._damaged().with_context(connection=name) from None
        if tokens:
            values.update(self._decrypt(name, tokens))
        return build_connection(
            name, type_name, values, resolve_type=self._resolve_type, cache_dir=self.cache_dir(name)
        )

    def _decrypt(self, name: str, tokens: Mapping[str, Any]) -> dict[str, str]:
        fernet = self._fernet(name, create=False)
        try:
            return {field: fernet.decrypt(str(token)).decode() for field, token in tokens.items()}
        except (InvalidToken, ValueError):  # ValueError: not even ASCII
            raise self._undecryptable(name) from None

    def _undecryptable(self, name: str) -> ConfigError:
        return ConfigError(
            f"cannot decrypt the secrets of connection {name!r}: the key changed? They were "
            f"not encrypted with {self.key_source.describe()}. Restore the key that was used "
            f"when the connection was added, or store the connection again with "
            f"`crmbridge connection add`"
        )

    def _fernet(self, name: str, *, create: bool) -> Fernet:
        key = self.key_source.load_key(create=create)
        if key is None:  # no key at all, yet secrets to decrypt
            raise self._undecryptable(name)
        return Fernet(key)
