"""Helpers for running profiles in tests: a private crmbridge home and profile files."""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from crmbridge.connections import ConnectionStore, KeyFileKeySource
from crmbridge.profiles.loader import LoadedProfile, load_profile
from crmbridge.sandbox.sugarcrm import SugarSandbox
from crmbridge.state import StateStore


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private CRMBRIDGE_HOME for the test."""
    folder = tmp_path / "home"
    monkeypatch.setenv("CRMBRIDGE_HOME", str(folder))
    monkeypatch.delenv("CRMBRIDGE_STATE_URL", raising=False)
    return folder


@pytest.fixture
def store(home: Path) -> ConnectionStore:
    return ConnectionStore(home, key_source=KeyFileKeySource(home / "secret.key"))


@pytest.fixture
def state(home: Path) -> Iterator[StateStore]:
    with StateStore(f"sqlite:///{home}/state.sqlite") as s:
        yield s


def write_profile(folder: Path, text: str, name: str = "profile.yaml") -> LoadedProfile:
    path = folder / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return load_profile(path)


def write_csv(path: Path, text: str) -> Path:
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


@pytest.fixture(params=["v4_1", "v10"])
def sugar(request: pytest.FixtureRequest, store: ConnectionStore) -> Iterator[SugarSandbox]:
    """A SugarCRM sandbox on a real port, saved as connection ``crm`` (both API families)."""
    sandbox = SugarSandbox(accounts=3)
    with sandbox.serve() as server:
        settings = {"url": server.url, "username": "admin", "password": "admin"}
        store.add("crm", "sugarcrm", {**settings, "api": request.param})
        yield sandbox
    sandbox.close()


def run(loaded: LoadedProfile, store: ConnectionStore, state: StateStore, **kw: object) -> Any:
    """``run_profile`` with the test's stores; the summary."""
    from crmbridge.runner import run_profile

    return run_profile(loaded, connections=store, state=state, **kw)  # type: ignore[arg-type]


def nonzero(counts: dict[str, int]) -> dict[str, int]:
    return {k: v for k, v in counts.items() if v}
