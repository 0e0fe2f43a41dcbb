"""Where the Access sample files are, and how to skip when they (or mdbtools) are missing."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from crmbridge.connectors.access import AccessConnector, AccessSettings

REPO = Path(__file__).resolve().parents[3]
DATA = REPO.parent / "shared" / "data" / "access"


def require(name: str) -> Path:
    """The sample file ``name``; skips the test (fails under CRMBRIDGE_REQUIRE_SERVICES) when
    it or mdbtools is missing."""
    path = DATA / name
    reason = None
    if shutil.which("mdb-export") is None:
        reason = "mdbtools is not installed (apt-get install mdbtools)"
    elif not path.is_file():
        reason = f"Access sample {path} is missing"
    if reason:
        if os.environ.get("CRMBRIDGE_REQUIRE_SERVICES", "") not in ("", "0", "false"):
            pytest.fail(f"{reason} (CRMBRIDGE_REQUIRE_SERVICES is set)")
        pytest.skip(reason)
    return path


def access(path: Path) -> AccessConnector:
    return AccessConnector("crm", AccessSettings(path=str(path)))


def as_accdb(source: Path, target: Path, version: int = 2) -> Path:
    """A copy of a Jet 4 .mdb relabelled as an ACE (.accdb) file: signature "Standard ACE DB"
    and version byte 2 (Access 2007), 3 (2010) or 5 (2016). Jet 4 and ACE share the page
    format, so mdbtools reads it through its ACE code path."""
    data = bytearray(source.read_bytes())
    assert data[4:19] == b"Standard Jet DB", "needs a Jet file"
    assert data[0x14] == 1, "needs a Jet 4 file"
    data[4:19] = b"Standard ACE DB"
    data[0x14] = version
    target.write_bytes(bytes(data))
    return target
