"""``crmbridge copy CONNECTION --to URL``: every object of a connection into a SQL database."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from crmbridge.cli.render import console, print_summary
from crmbridge.cli.runs import StateUrl

if TYPE_CHECKING:
    from crmbridge.runner.copy import CopyPlan


def copy(
    connection: Annotated[str, typer.Argument(help="The saved connection to copy (a CRM).")],
    to: Annotated[
        str,
        typer.Option(
            "--to", help="SQL database URL to copy into, e.g. sqlite:///crm.sqlite.", metavar="URL"
        ),
    ],
    object_: Annotated[
        list[str] | None,
        typer.Option(
            "--object", help="Copy only this object (repeat for more). Default: every object."
        ),
    ] = None,
    prefix: Annotated[
        str, typer.Option("--prefix", help="Put this before every table name.", metavar="TEXT")
    ] = "",
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Decide every record's outcome, write nothing.")
    ] = False,
    output_dir: Annotated[
        Path | None,
        typer.Option(
            "--output-dir",
            "-o",
            help="Where to put each object's success and error files (a folder per table).",
            metavar="DIR",
        ),
    ] = None,
    state_url: StateUrl = None,
) -> None:
    """Copy every object of a connection (or --object ones) into tables of a SQL database,
    created from the objects' fields; later copies read only what changed."""
    from crmbridge.connections import ConnectionStore
    from crmbridge.runner.copy import copy_connection
    from crmbridge.runner.run import rejected
    from crmbridge.state import StateStore

    def starting(plan: CopyPlan) -> None:
        how = f"changes by {plan.cursor}" if plan.cursor else "every record"
        console.print(f"{plan.object} -> {plan.table} ({how})", highlight=False)

    with StateStore(state_url) as state:
        summaries, left_out = copy_connection(
            connection,
            to,
            connections=ConnectionStore(),
            state=state,
            objects=object_,
            prefix=prefix,
            dry_run=dry_run,
            output_dir=output_dir,
            on_object=starting,
        )
    for summary in summaries:
        print_summary(summary)
    for reason in left_out:
        console.print(f"left out {reason}", highlight=False, soft_wrap=True)
    codes = [s.exit_code for s in summaries if s.exit_code != 0]
    if any(c == 3 for c in codes):
        raise typer.Exit(3)
    raise typer.Exit(1 if any(rejected(s.counts) for s in summaries) else 0)


def register(app: typer.Typer) -> None:
    app.command()(copy)
