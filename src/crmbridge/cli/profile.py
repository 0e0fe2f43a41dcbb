"""``crmbridge profile check|schema``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from crmbridge.cli.options import Params, pairs
from crmbridge.cli.render import console

app = typer.Typer(help="Check profiles and export their JSON Schema.", no_args_is_help=True)


@app.command()
def check(
    profile: Annotated[Path, typer.Argument(help="Profile file (YAML).")],
    param: Params = None,
) -> None:
    """Validate a profile against both systems (connections, objects, fields, expressions)
    without reading or writing any record."""
    from crmbridge.connections import ConnectionStore
    from crmbridge.profiles.loader import load_profile
    from crmbridge.runner.prepare import prepare

    loaded = load_profile(profile, pairs(param, "--param"), defer_unknown_settings=True)
    prepared = prepare(loaded, ConnectionStore())
    prepared.close()
    pushed = " AND ".join(prepared.pushed) or "nothing"
    console.print(f"{profile}: OK (filter pushed down to the source: {pushed})")


@app.command()
def schema(
    sync: Annotated[
        bool, typer.Option("--sync", help="The schema of sync profiles (crmbridge sync).")
    ] = False,
) -> None:
    """Print the JSON Schema of profile files, for editors (yaml-language-server)."""
    from crmbridge.profiles import model, sync_model

    found = sync_model.json_schema() if sync else model.json_schema()
    typer.echo(json.dumps(found, indent=2))
