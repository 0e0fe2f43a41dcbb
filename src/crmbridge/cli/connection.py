"""``crmbridge connection add|list|test|remove``."""

from __future__ import annotations

import sys
from typing import Annotated, Any

import typer

from crmbridge.cli.options import pairs
from crmbridge.cli.render import console, rows_table
from crmbridge.errors import ConfigError, ErrorContext

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
        typer.Option("--set", "-s", help="A setting, NAME=VALUE (repeat). Not for secrets."),
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
    for secret in secrets:
        if secret in settings:
            continue
        if not sys.stdin.isatty():
            continue  # optional secrets may stay unset; validation reports required ones
        settings[secret] = typer.prompt(f"{secret} for {name}", hide_input=True, default="")
        if settings[secret] == "":
            del settings[secret]
    connection = ConnectionStore().add(name, type, settings, replace=replace)
    console.print(f"Saved connection {connection.name!r} ({connection.type}).")


@app.command("list")
def list_() -> None:
    """List saved connections (secrets are never shown)."""
    from crmbridge.connections import ConnectionStore, secret_fields

    connections = ConnectionStore().list()
    rows = []
    for c in connections:
        secrets = secret_fields(type(c.settings))
        shown = c.settings.model_dump(exclude=set(secrets))
        details = ", ".join(f"{k}={v}" for k, v in shown.items() if v not in (None, "", [], {}))
        stored = ", ".join(s for s in secrets if getattr(c.settings, s, None))
        rows.append([c.name, c.type, details, stored])
    console.print(rows_table(["name", "type", "settings", "secrets stored"], rows))


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
