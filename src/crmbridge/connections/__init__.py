"""Saved connections (:class:`ConnectionStore`) with their secrets encrypted at rest."""

from crmbridge.connections.keys import (
    PASSPHRASE_ENV,
    KeyFileKeySource,
    KeyringKeySource,
    KeySource,
    PassphraseKeySource,
    default_key_source,
    keyring_usable,
)
from crmbridge.connections.settings import (
    SECRET_ENV_PREFIX,
    secret_fields,
    secret_values,
    settings_from_env,
    validate_settings,
)
from crmbridge.connections.store import (
    Connection,
    ConnectionStore,
    ResolveType,
    build_connection,
    inline_connection,
)
from crmbridge.errors import redact

__all__ = [
    "PASSPHRASE_ENV",
    "SECRET_ENV_PREFIX",
    "Connection",
    "ConnectionStore",
    "KeyFileKeySource",
    "KeySource",
    "KeyringKeySource",
    "PassphraseKeySource",
    "ResolveType",
    "build_connection",
    "default_key_source",
    "inline_connection",
    "keyring_usable",
    "redact",
    "secret_fields",
    "secret_values",
    "settings_from_env",
    "validate_settings",
]
