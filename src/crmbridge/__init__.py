"""crmbridge: move and synchronise customer data between CRMs, spreadsheets and databases.

The public API is what this module exports (``__all__``); everything else may move::

    import crmbridge

    loaded = crmbridge.load_profile("leads.yaml")
    with crmbridge.StateStore() as state:
        summary = crmbridge.run_profile(loaded, connections=crmbridge.ConnectionStore(),
                                        state=state)
    print(summary.status, summary.counts)

Names are imported on first use, so ``import crmbridge`` stays cheap for the command line.
"""

from __future__ import annotations

import importlib
import os
import sys
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# Arrow's jemalloc pool hands freed batches back to the system far sooner than its default
# (mimalloc): a 1M-row CSV → PostgreSQL run peaks about 80 MB lower, and no slower. Arrow reads
# the variable when it first allocates, so it is set before anything of crmbridge imports
# pyarrow; a value the user set stays.
if sys.platform == "linux":
    os.environ.setdefault("ARROW_DEFAULT_MEMORY_POOL", "jemalloc")

#: public name -> module that defines it
_EXPORTS = {
    # running profiles
    "load_profile": "crmbridge.profiles.loader",
    "LoadedProfile": "crmbridge.profiles.loader",
    "Profile": "crmbridge.profiles.model",
    "run_profile": "crmbridge.runner",
    "preview_profile": "crmbridge.runner",
    "RunSummary": "crmbridge.runner",
    "Preview": "crmbridge.runner",
    "Progress": "crmbridge.runner",
    # where things are kept
    "ConnectionStore": "crmbridge.connections",
    "StateStore": "crmbridge.state",
    "RunRecord": "crmbridge.state",
    "RunStatus": "crmbridge.state",
    # writing a connector
    "Connector": "crmbridge.connectors.base",
    "ConnectorSettings": "crmbridge.connectors.base",
    "Capabilities": "crmbridge.connectors.base",
    "ReadRequest": "crmbridge.connectors.base",
    "MatchRequest": "crmbridge.connectors.base",
    "ApplyRequest": "crmbridge.connectors.base",
    "ObjectSchema": "crmbridge.core.schema",
    "Field": "crmbridge.core.schema",
    "FieldType": "crmbridge.core.schema",
    "Outcome": "crmbridge.core.outcomes",
    "WriteMode": "crmbridge.core.outcomes",
    "WriteResult": "crmbridge.core.outcomes",
    # errors
    "CrmBridgeError": "crmbridge.errors",
    "FatalError": "crmbridge.errors",
    "ConfigError": "crmbridge.errors",
    "ProfileError": "crmbridge.errors",
    "ConnectionFailedError": "crmbridge.errors",
    "UnsupportedOperationError": "crmbridge.errors",
    "RemoteError": "crmbridge.errors",
    "RetryableError": "crmbridge.errors",
    "RecordError": "crmbridge.errors",
    "ErrorContext": "crmbridge.errors",
}

__all__ = [
    "ApplyRequest",
    "Capabilities",
    "ConfigError",
    "ConnectionFailedError",
    "ConnectionStore",
    "Connector",
    "ConnectorSettings",
    "CrmBridgeError",
    "ErrorContext",
    "FatalError",
    "Field",
    "FieldType",
    "LoadedProfile",
    "MatchRequest",
    "ObjectSchema",
    "Outcome",
    "Preview",
    "Profile",
    "ProfileError",
    "Progress",
    "ReadRequest",
    "RecordError",
    "RemoteError",
    "RetryableError",
    "RunRecord",
    "RunStatus",
    "RunSummary",
    "StateStore",
    "UnsupportedOperationError",
    "WriteMode",
    "WriteResult",
    "__version__",
    "load_profile",
    "preview_profile",
    "run_profile",
]

if TYPE_CHECKING:  # pragma: no cover - for type checkers and editors only
    from crmbridge.connections import ConnectionStore
    from crmbridge.connectors.base import (
        ApplyRequest,
        Capabilities,
        Connector,
        ConnectorSettings,
        MatchRequest,
        ReadRequest,
    )
    from crmbridge.core.outcomes import Outcome, WriteMode, WriteResult
    from crmbridge.core.schema import Field, FieldType, ObjectSchema
    from crmbridge.errors import (
        ConfigError,
        ConnectionFailedError,
        CrmBridgeError,
        ErrorContext,
        FatalError,
        ProfileError,
        RecordError,
        RemoteError,
        RetryableError,
        UnsupportedOperationError,
    )
    from crmbridge.profiles.loader import LoadedProfile, load_profile
    from crmbridge.profiles.model import Profile
    from crmbridge.runner import Preview, Progress, RunSummary, preview_profile, run_profile
    from crmbridge.state import RunRecord, RunStatus, StateStore


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'crmbridge' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
