"""The profiles the UI shows: the YAML files of one folder (and of its subfolders, one deep).

A profile is named by its path relative to the folder (``crmbridge-example/contacts.yaml``);
a name that leaves the folder is refused.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from crmbridge.errors import ConfigError

SKIPPED_FOLDERS = frozenset({".venv", "venv", "node_modules", "__pycache__", ".git"})
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


@dataclass(frozen=True)
class ProfileFile:
    name: str  # the path relative to the folder, with "/"
    kind: str  # "profile" (a transfer) or "sync"
    path: Path


class Workspace:
    def __init__(self, folder: Path) -> None:
        self.folder = folder.resolve()

    def files(self) -> list[ProfileFile]:
        found: list[ProfileFile] = []
        for pattern in ("*.yaml", "*.yml", "*/*.yaml", "*/*.yml"):
            for path in sorted(self.folder.glob(pattern)):
                parts = path.relative_to(self.folder).parts
                if any(p.startswith(".") or p in SKIPPED_FOLDERS for p in parts):
                    continue
                kind = kind_of(path)
                if kind is not None:
                    found.append(ProfileFile("/".join(parts), kind, path))
        return found

    def path(self, name: str) -> Path:
        """The file of the profile ``name``; it must be in the folder."""
        if not name.isprintable():
            raise ConfigError(f"{name!r} is not a profile name")
        path = (self.folder / name).resolve()
        if not path.is_relative_to(self.folder) or path.suffix not in (".yaml", ".yml"):
            raise ConfigError(f"{name!r} is not a profile in {self.folder}")
        return path

    def get(self, name: str, kind: str | None = None) -> ProfileFile:
        path = self.path(name)
        found = kind_of(path) if path.is_file() else None
        if found is None or (kind is not None and found != kind):
            raise NotFoundError(f"no {kind or 'profile'} {name!r} in {self.folder}")
        return ProfileFile(name, found, path)

    def new_name(self, title: str) -> str:
        """A file name for a new profile called ``title``."""
        stem = re.sub(r"[^A-Za-z0-9_.-]+", "-", title.strip()).strip("-.")
        if not stem or not _NAME.fullmatch(stem):
            raise ConfigError("give the profile a name (letters, digits, '-', '_')")
        return f"{stem}.yaml"


class NotFoundError(ConfigError):
    """A profile, run or conflict the request names does not exist (HTTP 404)."""


def kind_of(path: Path) -> str | None:
    """``profile`` for a transfer profile, ``sync`` for a sync profile, None otherwise."""
    try:
        data = read_yaml(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ConfigError):
        return None
    if not isinstance(data, dict):
        return None
    if "source" in data and "target" in data:
        return "profile"
    if "a" in data and "b" in data:
        return "sync"
    return None


def _yaml() -> YAML:
    yaml = YAML()
    yaml.preserve_quotes = True
    yaml.width = 100
    yaml.indent(mapping=2, sequence=4, offset=2)
    return yaml


def read_yaml(text: str) -> Any:
    """The YAML document in ``text`` as round-trip data (comments kept), or ConfigError."""
    try:
        return _yaml().load(text)
    except YAMLError as err:
        raise ConfigError(f"the YAML is not valid: {err}".splitlines()[0]) from None


def write_yaml(data: Any) -> str:
    out = io.StringIO()
    _yaml().dump(data, out)
    return out.getvalue()
