"""The ``crmbridge`` command. Each command is a few lines calling the library.

Exit codes: 0 success, 1 finished with rejected records, 2 usage or configuration error,
3 failed.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Annotated, Any

import typer
import typer.main

from crmbridge import __version__
from crmbridge.cli import (
    connection,
    copy,
    discover,
    profile,
    runs,
    sandbox,
    schedule,
    serve,
    sync,
    worker,
)
from crmbridge.cli.render import console_err
from crmbridge.errors import ConfigError, CrmBridgeError

EXIT_OK, EXIT_REJECTS, EXIT_USAGE, EXIT_FAILED = 0, 1, 2, 3
#: Ctrl-C, as shells report a process ended by SIGINT
EXIT_INTERRUPTED = 130
EXIT_CODES_HELP = (
    "Exit codes: 0 success; 1 finished with rejected records; 2 usage or configuration "
    "error (fix the command, profile or connection); 3 failed (a system did not answer or "
    "refused); 130 stopped by Ctrl-C."
)

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
    log_format: Annotated[
        str | None,
        typer.Option(
            "--log-format",
            help="Write crmbridge's log records to stderr as text or json (one object per "
            "line); default: $CRMBRIDGE_LOG_FORMAT, else log_format in settings.yaml, else "
            "only warnings.",
            metavar="FORMAT",
        ),
    ] = None,
) -> None:
    """crmbridge: profiles move records from a source object to a target object."""
    import os

    from crmbridge.ops.logs import LOG_FORMAT_ENV, chosen_format, configure_logging

    fmt = chosen_format(log_format)
    if fmt is not None:
        configure_logging(fmt)
        os.environ[LOG_FORMAT_ENV] = fmt  # for the commands that configure again, and the
        # runs a scheduler starts


app.add_typer(connection.app, name="connection")
app.add_typer(profile.app, name="profile")
app.add_typer(sandbox.app, name="sandbox")
app.add_typer(schedule.app, name="schedule")
discover.register(app)
runs.register(app)
copy.register(app)
sync.register(app)
worker.register(app)
serve.register(app)


def _tidy_help(command: Any, *, settings: bool) -> None:
    """Help for people: values shown as NAME, FILE ... instead of Python types (``<list[str]>``,
    ``<bool>``), the exit codes under every command, and with ``settings`` the settings of each
    connection type under ``connection add`` (it imports every connector, so only for --help)."""
    ctx = typer.Context(command)
    for param in command.get_params(ctx):
        if param.metavar is None:
            flag = getattr(param, "is_flag", False)
            param.metavar = "" if flag else (param.name or "value").upper()
        if param.param_type_name == "argument":  # typer shows an argument's type beside it
            param.display_type_rich = lambda ctx: None
    children = getattr(command, "commands", None)
    for name, child in (children or {}).items():
        if name == "connection":
            child.commands["add"].epilog = connection.settings_help() if settings else None
        _tidy_help(child, settings=settings)
    if not children or command.epilog is None:
        command.epilog = (f"{command.epilog}\n\n" if command.epilog else "") + EXIT_CODES_HELP


def main(argv: Sequence[str] | None = None) -> None:
    """Run the command line; crmbridge errors become one line and the documented exit code."""
    args = list(argv) if argv is not None else sys.argv[1:]
    command = typer.main.get_command(app)
    _tidy_help(command, settings="--help" in args)
    try:
        command.main(args=args, prog_name="crmbridge")
    except ConfigError as err:
        console_err.print(f"[red]error:[/red] {err}", highlight=False, soft_wrap=True)
        raise SystemExit(EXIT_USAGE) from None
    except CrmBridgeError as err:
        console_err.print(f"[red]failed:[/red] {err}", highlight=False, soft_wrap=True)
        raise SystemExit(EXIT_FAILED) from None
    except OSError as err:  # a folder or file given or configured that cannot be used
        where = f"{err.filename}: " if err.filename else ""
        console_err.print(
            f"[red]error:[/red] {where}{err.strerror or err}", highlight=False, soft_wrap=True
        )
        raise SystemExit(EXIT_USAGE) from None
    except KeyboardInterrupt:
        console_err.print("[red]interrupted[/red]", highlight=False)
        raise SystemExit(EXIT_INTERRUPTED) from None
