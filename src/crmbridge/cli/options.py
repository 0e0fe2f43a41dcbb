"""Options several commands share."""

from __future__ import annotations

from typing import Annotated

import typer

from crmbridge.errors import ConfigError

Params = Annotated[
    list[str] | None,
    typer.Option(
        "--param",
        "-P",
        help="The value of the profile's parameter NAME, of its declared type (repeat for "
        "several); in expressions it is a SQL value, never code.",
        metavar="NAME=VALUE",
    ),
]

AsJson = Annotated[
    bool, typer.Option("--json", help="Print JSON (for scripts) instead of text for people.")
]


def pairs(values: list[str] | None, option: str) -> dict[str, str]:
    """``["a=1", "b=x"]`` as ``{"a": "1", "b": "x"}``; anything else is a usage error."""
    found: dict[str, str] = {}
    for pair in values or []:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():
            raise ConfigError(f"{option} takes NAME=VALUE, got {pair!r}")
        found[name.strip()] = value
    return found
