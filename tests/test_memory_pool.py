"""Arrow's memory pool: jemalloc unless the user chose one (see crmbridge/__init__.py)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="the default is set on Linux")

_PRINT_POOL = "import crmbridge, pyarrow; print(pyarrow.default_memory_pool().backend_name)"


def _pool(**env: str) -> str:
    clean = {k: v for k, v in os.environ.items() if k != "ARROW_DEFAULT_MEMORY_POOL"}
    done = subprocess.run(
        [sys.executable, "-c", _PRINT_POOL],
        env={**clean, **env},
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()


def test_importing_crmbridge_makes_jemalloc_arrows_pool() -> None:
    assert _pool() == "jemalloc"


def test_a_pool_the_user_chose_stays() -> None:
    assert _pool(ARROW_DEFAULT_MEMORY_POOL="system") == "system"
