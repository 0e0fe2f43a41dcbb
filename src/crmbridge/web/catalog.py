"""What the UI asks connections: the saved ones (secrets masked), their objects and fields.

Objects and descriptions are kept for a minute, so the editor's grid can be redrawn on every
change without asking a CRM again each time (the connectors remember more, between runs, in
their cache folders).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel

from crmbridge.connections import Connection, ConnectionStore, inline_connection, secret_fields
from crmbridge.connectors import registry
from crmbridge.core.schema import ObjectSchema

T = TypeVar("T")
#: seconds objects and descriptions are kept
KEEP_SECONDS = 60.0


class SettingInfo(BaseModel):
    name: str
    required: bool
    secret: bool
    description: str | None = None
    #: shown first in the form (required, secret, or the type's first setting); the others
    #: under "More settings"
    main: bool = True


class ConnectionView(BaseModel):
    """A saved connection as the UI shows it: never a secret's value."""

    name: str
    type: str
    settings: dict[str, Any]
    #: the secret settings that hold a value (shown as ••••)
    secrets: list[str]


class Catalog:
    def __init__(self) -> None:
        self._kept: dict[tuple[Any, ...], tuple[float, Any]] = {}
        self._lock = threading.Lock()

    @staticmethod
    def store() -> ConnectionStore:
        return ConnectionStore()

    def connections(self) -> list[ConnectionView]:
        return [view(c) for c in self.store().list()]

    def connection(self, name: str) -> ConnectionView:
        return view(self.store().get(name))

    def add(
        self, name: str, type_name: str, settings: Mapping[str, Any], *, replace: bool
    ) -> ConnectionView:
        """Save a connection; empty values are left out (an empty secret on replace keeps the
        one stored)."""
        given = {k: v for k, v in settings.items() if v not in (None, "")}
        store = self.store()
        if replace and name in store.names():
            old = store.get(name)
            for secret in secret_fields(type(old.settings)):
                value = getattr(old.settings, secret, None)
                if secret not in given and value is not None:
                    given[secret] = value.get_secret_value()
        saved = view(store.add(name, type_name, given, replace=replace))
        self.forget(name)
        return saved

    def remove(self, name: str) -> None:
        self.store().remove(name)
        self.forget(name)

    def forget(self, name: str) -> None:
        with self._lock:
            self._kept = {k: v for k, v in self._kept.items() if k[1] != name}

    def objects(self, name: str) -> list[str]:
        def ask() -> list[str]:
            with self.store().get(name).connector() as connector:
                return list(connector.objects())

        return self._keep(("objects", name), ask)

    def describe(
        self,
        name: str,
        object_name: str,
        inline: Mapping[str, Any] | None = None,
        base_dir: Path | None = None,
    ) -> ObjectSchema:
        """The fields of an object of the saved connection ``name`` (or of a connection
        written in a profile, ``inline``: its settings, relative to ``base_dir``)."""

        def ask() -> ObjectSchema:
            with open_connection(name, inline).connector(base_dir=base_dir) as connector:
                return connector.describe(object_name)

        key = ("describe", name, object_name, repr(sorted((inline or {}).items())), base_dir)
        return self._keep(key, ask)

    def _keep(self, key: tuple[Any, ...], ask: Callable[[], T]) -> T:
        now = time.monotonic()
        with self._lock:
            kept = self._kept.get(key)
        if kept is not None and now - kept[0] < KEEP_SECONDS:
            value: T = kept[1]
            return value
        value = ask()
        with self._lock:
            self._kept[key] = (now, value)
        return value


def open_connection(name: str, inline: Mapping[str, Any] | None) -> Connection:
    if inline is None:
        return ConnectionStore().get(name)
    settings = {k: v for k, v in inline.items() if k != "type"}
    return inline_connection(name, str(inline.get("type", "")), settings)


def view(connection: Connection) -> ConnectionView:
    secrets = secret_fields(type(connection.settings))
    shown = connection.settings.model_dump(
        mode="json", exclude=set(secrets), by_alias=True, exclude_unset=True
    )
    return ConnectionView(
        name=connection.name,
        type=connection.type,
        settings={k: v for k, v in shown.items() if v not in (None, "", [], {})},
        secrets=[s for s in secrets if getattr(connection.settings, s, None)],
    )


def types() -> list[str]:
    return list(registry.available())


def settings_of(type_name: str) -> list[SettingInfo]:
    """The settings a connection of ``type_name`` takes, from its settings model."""
    model = registry.get(type_name).settings_model
    secrets = set(secret_fields(model))
    return [
        SettingInfo(
            name=info.alias or name,
            required=info.is_required(),
            secret=name in secrets,
            description=info.description,
            main=index == 0 or info.is_required() or name in secrets,
        )
        for index, (name, info) in enumerate(model.model_fields.items())
    ]
