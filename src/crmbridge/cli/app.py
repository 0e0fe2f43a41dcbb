"""The ``crmbridge`` command. Each command is a few lines calling the library.

Exit codes: 0 success, 1 finished with rejected records, 2 usage or configuration error,
3 failed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated

import typer

from crmbridge import __version__
from crmbridge.cli import connection, discover, profile, runs, sandbox
from crmbridge.cli.render import console_err
from crmbridge.errors import ConfigError, CrmBridgeError

EXIT_OK, EXIT_REJECTS, EXIT_USAGE, EXIT_FAILED = 0, 1, 2, 3

app = typer.Typer(
    help="Move and synchronise customer data between CRMs, spreadsheets and databases.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"crmbridge {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    """crmbridge: profiles move records from a source object to a target object."""


app.add_typer(connection.app, name="connection")
app.add_typer(profile.app, name="profile")
app.add_typer(sandbox.app, name="sandbox")
discover.register(app)
runs.register(app)


def main(argv: Sequence[str] | None = None) -> None:
    """Run the command line; crmbridge errors become one line and the documented exit code."""
    try:
        app(args=list(argv) if argv is not None else None, prog_name="crmbridge")
    except ConfigError as err:
        console_err.print(f"[red]error:[/red] {err}", highlight=False, soft_wrap=True)
        raise SystemExit(EXIT_USAGE) from None
    except CrmBridgeError as err:
        console_err.print(f"[red]failed:[/red] {err}", highlight=False, soft_wrap=True)
        raise SystemExit(EXIT_FAILED) from None
