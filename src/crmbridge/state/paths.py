"""Where crmbridge keeps what it stores: run history, connections, the key file, run output.

Everything lives in one folder, the *home*: ``$CRMBRIDGE_HOME`` when set, otherwise the
platform's per-user data folder (``~/.local/share/crmbridge`` on Linux,
``~/Library/Application Support/crmbridge`` on macOS, ``%LOCALAPPDATA%\\crmbridge`` on Windows).
"""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

#: environment variable naming the folder that holds everything crmbridge stores
HOME_ENV = "CRMBRIDGE_HOME"


def home_dir() -> Path:
    """The crmbridge home folder (not created here: whoever writes in it creates it, mode 0700)."""
    configured = os.environ.get(HOME_ENV, "").strip()
    if configured:
        return Path(configured).expanduser()
    return Path(platformdirs.user_data_dir("crmbridge", appauthor=False))
