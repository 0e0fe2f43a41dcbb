"""Several processes changing the same connections file at once lose nothing."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from crmbridge.connections import ConnectionStore

WORKERS = 4
EACH = 10

_SCRIPT = """
import os, sys, time
from crmbridge.connections import ConnectionStore

worker, start = sys.argv[1], sys.argv[2]
while not os.path.exists(start):
    time.sleep(0.002)
store = ConnectionStore()
for i in range(int(sys.argv[3])):
    name = f"w{worker}-{i}"
    store.add(name, "sql", {"url": f"sqlite:///{name}.sqlite", "password": f"pw-{name}"})
"""


def test_concurrent_adds_from_real_processes_all_survive(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    env = {**os.environ, "CRMBRIDGE_HOME": str(home), "CRMBRIDGE_PASSPHRASE": "shared"}
    start = tmp_path / "start"
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", _SCRIPT, str(w), str(start), str(EACH)],
            env=env,
            cwd=tmp_path,
            stderr=subprocess.PIPE,
            text=True,
        )
        for w in range(WORKERS)
    ]
    time.sleep(1.0)  # every process imported crmbridge and waits
    start.touch()
    for worker in workers:
        _, err = worker.communicate(timeout=120)
        assert worker.returncode == 0, err
    monkeypatch.setenv("CRMBRIDGE_PASSPHRASE", "shared")
    store = ConnectionStore(home)
    names = store.names()
    assert names == sorted(f"w{w}-{i}" for w in range(WORKERS) for i in range(EACH))
    assert all(store.get(n).secret_values() == [f"pw-{n}"] for n in names)
