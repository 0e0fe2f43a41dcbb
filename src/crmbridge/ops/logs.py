"""Logs for people or for machines: ``--log-format json`` writes one JSON object per line.

    {"time": "2026-06-01T02:00:00.123+00:00", "level": "info", "logger": "crmbridge.run",
     "message": "run 12 of leads: succeeded", "run_id": 12, "profile": "leads", ...}

Every field given with ``extra=`` to a log call is a key of its own, so a log collector can
filter on ``run_id``, ``profile``, ``status`` or ``schedule`` without parsing text. The format
is the ``--log-format`` option, else ``$CRMBRIDGE_LOG_FORMAT``, else ``log_format`` in the
global settings, else text. Only crmbridge's own loggers (``crmbridge.*``) are configured.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from datetime import UTC, datetime
from typing import Any, TextIO

#: environment variable naming the log format (text or json)
LOG_FORMAT_ENV = "CRMBRIDGE_LOG_FORMAT"
FORMATS = ("text", "json")

#: the attributes every LogRecord has: anything else on a record came from ``extra=``
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """A record as one line of JSON: time (UTC), level, logger, message, and the extras."""

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                data[key] = value
        if record.exc_info:
            data["error"] = self.formatException(record.exc_info)
        return json.dumps(data, default=str, ensure_ascii=False)


class _Handler(logging.StreamHandler):  # type: ignore[type-arg]
    """Marks the handler crmbridge installed, so configuring again replaces it."""


def chosen_format(given: str | None = None) -> str | None:
    """The log format asked for: ``given``, else the environment, else the settings file
    (None: nothing asked; the command's default applies)."""
    if given:
        return given
    configured = os.environ.get(LOG_FORMAT_ENV, "").strip().lower()
    if configured:
        return configured
    from crmbridge.ops.settings import load_settings

    found = load_settings().log_format
    return found.value if found is not None else None


def configure_logging(
    fmt: str | None = None, *, level: int = logging.INFO, stream: TextIO | None = None
) -> str:
    """Send crmbridge's log records at ``level`` and above to ``stream`` (stderr) in format
    ``fmt`` (default: :func:`chosen_format`, else text); returns the format used."""
    from crmbridge.errors import ConfigError

    fmt = (chosen_format(fmt) or "text").lower()
    if fmt not in FORMATS:
        raise ConfigError(f"the log format is text or json, not {fmt!r}")
    logger = logging.getLogger("crmbridge")
    for old in [h for h in logger.handlers if isinstance(h, _Handler)]:
        logger.removeHandler(old)
    handler = _Handler(stream or sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logger.addHandler(handler)
    logger.setLevel(level)
    return fmt


def reset_logging() -> None:
    """Undo :func:`configure_logging` (tests)."""
    logger = logging.getLogger("crmbridge")
    for old in [h for h in logger.handlers if isinstance(h, _Handler)]:
        logger.removeHandler(old)
    logger.setLevel(logging.NOTSET)


__all__ = [
    "FORMATS",
    "LOG_FORMAT_ENV",
    "JsonFormatter",
    "chosen_format",
    "configure_logging",
    "reset_logging",
]
