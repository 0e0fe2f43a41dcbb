"""The global settings: ``<crmbridge home>/settings.yaml`` (see docs/operations.md).

    notify: {on: [failure, rejects], email: [ops@example.com]}
    smtp: {host: mail.example.com, port: 587, starttls: true, username: crmbridge,
           sender: crmbridge@example.com}
    log_format: json

A missing file means the defaults; a wrong one is a ConfigError naming the file and setting.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from crmbridge.errors import ConfigError
from crmbridge.profiles.ops_model import Settings
from crmbridge.state import home_dir

SETTINGS_FILE = "settings.yaml"


def settings_path(home: Path | None = None) -> Path:
    return (home or home_dir()) / SETTINGS_FILE


def load_settings(home: Path | None = None) -> Settings:
    """The global settings (the defaults when the file does not exist)."""
    path = settings_path(home)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return Settings()
    except OSError as err:
        raise ConfigError(f"{path}: cannot read: {err.strerror}") from None
    try:
        data = YAML(typ="safe").load(text) or {}
        return Settings.model_validate(data)
    except YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML: {err}") from None
    except ValidationError as err:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'file'}: {e['msg']}" for e in err.errors()
        )
        raise ConfigError(f"{path}: {problems}") from None


__all__ = ["SETTINGS_FILE", "load_settings", "settings_path"]
