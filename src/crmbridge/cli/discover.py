"""``crmbridge objects`` and ``describe``: what a connection can see."""

from __future__ import annotations

from typing import Annotated

import typer

from crmbridge.cli.render import console, rows_table

Connection = Annotated[str, typer.Argument(help="Connection name.")]


def objects(connection: Connection) -> None:
    """List the objects (tables, files, sheets, modules) a connection can see."""
    from crmbridge.connections import ConnectionStore

    with ConnectionStore().get(connection).connector() as connector:
        names = connector.objects()
    for name in names:
        console.print(name)


def describe(
    connection: Connection,
    object: Annotated[str, typer.Argument(help="Object name (see `crmbridge objects`).")],
    refresh: Annotated[
        bool,
        typer.Option(
            "--refresh",
            help="Forget what crmbridge remembered about the system (e.g. a CRM's modules and "
            "fields) and ask it again, after fields were added or changed there.",
        ),
    ] = False,
) -> None:
    """Show an object's fields: type, length, required, key, allowed values."""
    from crmbridge.connections import ConnectionStore

    found = ConnectionStore().get(connection)
    if refresh:
        found.forget_cache()
    with found.connector() as connector:
        schema = connector.describe(object)
        caps = connector.capabilities()
    rows = [
        [
            f.name,
            f.describe_type(),
            "yes" if f.required else "",
            "yes" if f.key else "",
            "yes" if f.read_only else "",
            ", ".join(f.allowed_values or ()),
        ]
        for f in schema.fields
    ]
    title = f"{connection}: {schema.name}"
    columns = ["field", "type", "required", "key", "read-only", "allowed values"]
    console.print(rows_table(columns, rows, title=title))
    modes = ", ".join(sorted(m.value for m in caps.write_modes)) or "none (read-only)"
    console.print(f"write modes: {modes}; filters evaluated by the source: {caps.pushdown}")


def register(app: typer.Typer) -> None:
    app.command()(objects)
    app.command()(describe)
