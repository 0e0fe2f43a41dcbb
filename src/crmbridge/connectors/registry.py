"""Finds connector classes through the ``crmbridge.connectors`` entry point group.

Built-in connectors are registered there by crmbridge's own package metadata, the same way a
third-party plug-in registers; nothing here names a built-in connector. Classes are imported
only when first asked for, so a connector whose optional dependency is missing costs nothing
until it is used, and then fails with a message saying which extra to install.
"""

from __future__ import annotations

from functools import cache
from importlib.metadata import EntryPoint, entry_points

from crmbridge.connectors.base import Connector
from crmbridge.core.schema import unknown_name_error
from crmbridge.errors import ConfigError

GROUP = "crmbridge.connectors"


@cache
def _entry_points() -> dict[str, EntryPoint]:
    return {ep.name: ep for ep in entry_points(group=GROUP)}


def available() -> list[str]:
    """Registered connector type names, sorted."""
    return sorted(_entry_points())


def get(type_name: str) -> type[Connector]:
    """The connector class registered as ``type_name``."""
    eps = _entry_points()
    if type_name not in eps:
        raise unknown_name_error("connection type", type_name, eps)
    ep = eps[type_name]
    try:
        cls = ep.load()
    except ImportError as err:
        raise ConfigError(
            f"the {type_name!r} connector needs a package that is not installed ({err.name}); "
            f"install it with: pip install 'crmbridge[all]'"
        ) from err
    except AttributeError as err:
        raise ConfigError(
            f"entry point {ep.value!r} for {type_name!r} names nothing that exists ({err})"
        ) from err
    if not (isinstance(cls, type) and issubclass(cls, Connector)):
        raise ConfigError(f"entry point {ep.value!r} for {type_name!r} is not a Connector class")
    return cls
