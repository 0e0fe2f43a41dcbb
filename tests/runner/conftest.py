"""Helpers for running profiles in tests: a private crmbridge home and profile files."""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from crmbridge.connections import ConnectionStore, KeyFileKeySource
from crmbridge.profiles.loader import LoadedProfile, load_profile
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
