"""``crmbridge serve`` as a subprocess on a free loopback port, for browser and fuzz tests."""

from __future__ import annotations

import os
import re
import shutil
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

CHROMIUM = Path("/usr/bin/chromium")


@dataclass(frozen=True)
class Served:
    url: str
    token: str
    folder: Path
    state_url: str


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def require_chromium() -> None:
    """Skip (or, with CRMBRIDGE_REQUIRE_SERVICES, fail) without Debian's chromium."""
    if CHROMIUM.exists() and shutil.which("chromium"):
        return
    reason = "Debian's chromium is not installed (apt-get install -y chromium)"
    if os.environ.get("CRMBRIDGE_REQUIRE_SERVICES", "") not in ("", "0", "false"):
        pytest.fail(f"{reason} (CRMBRIDGE_REQUIRE_SERVICES is set)")
    pytest.skip(reason)


@contextmanager
def serve(
    folder: Path, home: Path, extra: list[str] | None = None, verify: ssl.SSLContext | bool = True
) -> Iterator[Served]:
    """Start ``crmbridge serve`` for ``folder`` with the crmbridge home ``home`` (and the
    ``extra`` options: with --cert, HTTPS checked against ``verify``); stop it after."""
    port = free_port()
    state_url = f"sqlite:///{folder}/state.sqlite"
    env = {
        **os.environ,
        "CRMBRIDGE_HOME": str(home),
        "CRMBRIDGE_PASSPHRASE": "test passphrase",
        "COLUMNS": "200",
    }
    env.pop("CRMBRIDGE_STATE_URL", None)
    env.pop("CRMBRIDGE_WEB_PASSWORD", None)
    command = [sys.executable, "-m", "crmbridge", "serve", "--port", str(port)]
    command += ["--dir", str(folder), "--state-url", state_url, *(extra or [])]
    log = folder / "serve.log"
    with log.open("wb") as out:
        process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"{'https' if '--cert' in (extra or []) else 'http'}://127.0.0.1:{port}"
    try:
        token = _wait_until_up(url, log, process, verify)
        yield Served(url, token, folder, state_url)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_until_up(
    url: str, log: Path, process: subprocess.Popen[bytes], verify: ssl.SSLContext | bool
) -> str:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"crmbridge serve ended: {log.read_text()}")
        try:
            if httpx.get(f"{url}/health", timeout=1, verify=verify).status_code == 200:
                found = re.search(r"login token: (\S+)", log.read_text())
                assert found, log.read_text()
                return found.group(1)
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"crmbridge serve did not answer: {log.read_text()}")
