"""An unchanged source is not read again: an upsert or update of a file whose content, profile
and connections are those of the profile's last successful run would find every record as
that run left it (``docs/state.md``). Decided here, before anything is prepared: only the
source is opened and asked for its fingerprint (a file's hash); the target is not contacted.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from typing import Any

from crmbridge.connections import ConnectionStore
from crmbridge.connectors.base import Connector
from crmbridge.errors import CrmBridgeError
from crmbridge.profiles.loader import LoadedProfile
from crmbridge.runner.prepare import base_dir, resolve
from crmbridge.state import RunStatus, StateStore

#: state value (scope: the profile's identity): the source version of the last success
SOURCE_VERSION = "source:version"


def unchanged_since(
    loaded: LoadedProfile, connections: ConnectionStore | None, state: StateStore, run_id: int
) -> tuple[Connector | None, str | None, dict[str, Any] | None]:
    """Before anything is prepared: the source's version (None when the source cannot tell
    one cheaply), and the last successful run's record when the version is the one that run
    read and no run of the profile stopped since (so nothing is left to continue). The source
    connector is opened when the last success recorded a version (only then is it worth
    asking): it is returned for :func:`prepare` to use."""
    previous = state.get_value(loaded.key, SOURCE_VERSION)
    if not isinstance(previous, dict) or previous.get("version") is None:
        return None, None, None
    try:
        source = resolve(loaded, "source", connections).connector(
            base_dir=base_dir(loaded, "source")
        )
        source.open()
    except CrmBridgeError:  # prepare() reports it, with every other problem of the profile
        return None, None, None
    try:
        version = source_version(loaded, connections, source)
        last = state.runs_before(loaded.key, run_id, limit=1)
    except BaseException:
        source.close()
        raise
    finished = bool(last) and last[0].status is RunStatus.SUCCEEDED
    if version is None or version != previous["version"] or not finished:
        return source, version, None
    source.close()
    return None, version, previous


def source_version(
    loaded: LoadedProfile, connections: ConnectionStore | None, source: Connector
) -> str | None:
    """What the next run compares to tell that nothing changed: the source's fingerprint
    (None when the source cannot give one cheaply), the profile's text and parameters, and
    the settings of both connections (their secrets masked)."""
    found = source.fingerprint(loaded.profile.source.object)
    if found is None:
        return None
    digest = hashlib.sha256(found.encode())
    with contextlib.suppress(OSError):
        digest.update(loaded.path.read_bytes())
    digest.update(json.dumps(loaded.params, sort_keys=True).encode())
    for side in ("source", "target"):
        with contextlib.suppress(CrmBridgeError):
            connection = resolve(loaded, side, connections)
            digest.update(f"{connection.type}:{connection.settings.model_dump_json()}".encode())
    return digest.hexdigest()
