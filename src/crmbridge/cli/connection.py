"""``crmbridge connection add|list|test|remove``."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated, Any

import typer

from crmbridge.cli.options import AsJson, pairs
from crmbridge.cli.render import console, print_json, print_rows
from crmbridge.errors import ConfigError, ErrorContext

if TYPE_CHECKING:
    from crmbridge.connectors.base import ConnectorSettings

#: the environment variables that carry secrets: CRMBRIDGE_SECRET_<SETTING>
SECRET_ENV_PREFIX = "CRMBRIDGE_SECRET_"

app = typer.Typer(help="Add, list, test and remove connections.", no_args_is_help=True)


@app.command()
def add(
    name: Annotated[str, typer.Argument(help="A name for the connection, used by profiles.")],
    type: Annotated[
        str, typer.Option("--type", "-t", help="Connector type (csv, xlsx, jsonl, sql, ...).")
    ],
    set_: Annotated[
        list[str] | None,
        typer.Option(
            "--set",
            "-s",
            help="A setting, NAME=VALUE (repeat). Not for secrets.",
            metavar="NAME=VALUE",
        ),
    ] = None,
    replace: Annotated[
        bool, typer.Option("--replace", help="Replace a connection of this name.")
    ] = False,
) -> None:
    """Save a connection. Secrets are prompted for (or read from CRMBRIDGE_SECRET_<NAME>
    environment variables) and stored encrypted; they are never taken on the command line."""
    from crmbridge.connections import ConnectionStore, secret_fields, settings_from_env
    from crmbridge.connectors import registry

    model = registry.get(type).settings_model
    settings: dict[str, Any] = dict(pairs(set_, "--set"))
    secrets = secret_fields(model)
    given = [s for s in secrets if s in settings]
    if given:
        raise ConfigError(
            f"secrets are not taken with --set ({', '.join(given)}): they would stay in your "
            f"shell history; you will be prompted, or set {SECRET_ENV_PREFIX}<NAME>",
            context=ErrorContext(connection=name),
        )
    settings.update(settings_from_env(model, SECRET_ENV_PREFIX))
    inside = _secrets_inside(model, settings)  # e.g. a password written in the url
    for secret in secrets:
        if secret in settings or secret in inside:
            continue
        if not sys.stdin.isatty():
            continue  # optional secrets may stay unset; validation reports required ones
        settings[secret] = typer.prompt(f"{secret} for {name}", hide_input=True, default="")
        if settings[secret] == "":
            del settings[secret]
    connection = ConnectionStore().add(name, type, settings, replace=replace)
    shown = connection.settings.model_dump(
        mode="json", exclude=set(secrets), by_alias=True, exclude_unset=True
    )
    details = ", ".join(f"{k}={v}" for k, v in shown.items())
    console.print(
        f"Saved connection {connection.name!r} ({connection.type})"
        + (f": {details}" if details else "."),
        soft_wrap=True,
    )
    for secret in inside:
        console.print(
            f"The {secret} written in another setting is stored encrypted as {secret!r}, not "
            f"in the setting; leave it out next time (your shell history keeps command lines).",
            soft_wrap=True,
        )


def _secrets_inside(model: type[ConnectorSettings], settings: dict[str, Any]) -> list[str]:
    """Secret fields that the settings model fills from other settings (a password in a
    URL): they must not be prompted for. Empty when the settings are not valid yet."""
    from pydantic import ValidationError

    from crmbridge.connections import secret_fields

    try:
        validated = model.model_validate(settings)
    except ValidationError:
        return []
    return [
        s for s in secret_fields(model) if s not in settings and s in validated.model_fields_set
    ]


@app.command("list")
def list_(as_json: AsJson = False) -> None:
    """List saved connections: type, settings in full, which secrets are stored (never their
    values)."""
    from crmbridge.connections import ConnectionStore, secret_fields

    connections = ConnectionStore().list()
    found: list[dict[str, Any]] = []
    for c in connections:
        secrets = secret_fields(type(c.settings))
        shown = c.settings.model_dump(
            mode="json", exclude=set(secrets), by_alias=True, exclude_unset=True
        )
        settings = {k: v for k, v in shown.items() if v not in (None, "", [], {})}
        stored = [s for s in secrets if getattr(c.settings, s, None)]
        found.append({"name": c.name, "type": c.type, "settings": settings, "secrets": stored})
    if as_json:
        print_json(found)
        return
    rows = [
        [
            c["name"],
            c["type"],
            ", ".join(f"{k}={v}" for k, v in c["settings"].items()),
            ", ".join(c["secrets"]),
        ]
        for c in found
    ]
    print_rows(["name", "type", "settings", "secrets stored"], rows)


def settings_help() -> str:
    """The settings each connection type takes, from the connectors' settings models."""
    from crmbridge.connections import secret_fields
    from crmbridge.connectors import registry

    lines = ["Settings by connection type (--set NAME=VALUE; * required):"]
    for type_name in registry.available():
        try:
            model = registry.get(type_name).settings_model
        except ConfigError as err:
            lines.append(f"{type_name}: {err.message}")
            continue
        secrets = secret_fields(model)
        names = [
            (info.alias or name) + ("*" if info.is_required() else "")
            for name, info in model.model_fields.items()
            if name not in secrets
        ]
        line = f"{type_name}: {', '.join(names)}"
        if secrets:
            line += f"; secrets, prompted for: {', '.join(secrets)}"
        lines.append(line)
    lines.append("What each setting means: docs/connectors/TYPE.md and docs/connections.md.")
    return "\n\n".join(lines)


Name = Annotated[str, typer.Argument(help="Connection name.")]


@app.command("test")
def check(name: Name) -> None:
    """Connect and show what answered (system, version, user ...)."""
    from crmbridge.connections import ConnectionStore

    with ConnectionStore().get(name).connector() as connector:
        info = connector.check()
    version = f" {info.version}" if info.version else ""
    console.print(f"{name}: connected to {info.system}{version}")
    for key, value in info.details.items():
        console.print(f"  {key}: {value}")


@app.command()
def remove(name: Name) -> None:
    """Delete a saved connection and its secrets."""
    from crmbridge.connections import ConnectionStore

    ConnectionStore().remove(name)
    console.print(f"Removed connection {name!r}.")
