"""``crmbridge sandbox sugarcrm`` / ``salesforce`` / ``quickbooks`` / ``sagecrm``: local stand-ins
to rehearse profiles on."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(
    help="Local stand-ins of CRM APIs, to rehearse profiles safely.", no_args_is_help=True
)


@app.command()
def sugarcrm(
    port: Annotated[
        int,
        typer.Option(
            "--port",
            "-p",
            help="Port to listen on (127.0.0.1); 0 picks a free one.",
            metavar="PORT",
            min=0,
            max=65535,
        ),
    ] = 8080,
    data: Annotated[
        Path | None,
        typer.Option(
            "--data",
            help="SQLite file holding the sandbox's records (created and seeded).",
            metavar="FILE",
        ),
    ] = None,
    studio_field: Annotated[
        list[str] | None,
        typer.Option(
            "--studio-field",
            metavar="MODULE.FIELD",
            help="A custom field an administrator added with Studio, e.g. "
            "Leads.external_id_c (repeatable; a stock server has none).",
        ),
    ] = None,
) -> None:
    """Serve a SugarCRM/SuiteCRM sandbox (legacy v4_1 REST and REST v11) until Ctrl-C."""
    from crmbridge.sandbox.sugarcrm import main

    args = ["--port", str(port)]
    if data is not None:
        args += ["--data", str(data)]
    for field in studio_field or []:
        args += ["--studio-field", field]
    main(args)


@app.command()
def salesforce(
    port: Annotated[
        int, typer.Option("--port", "-p", help="Port to listen on (127.0.0.1).")
    ] = 8443,
    data: Annotated[
        Path | None,
        typer.Option(
            "--data", help="SQLite file holding the sandbox's records (created and seeded)."
        ),
    ] = None,
) -> None:
    """Serve a Salesforce sandbox (OAuth2, REST, Collections, Bulk API 2.0) over HTTPS until
    Ctrl-C. It prints the CA file a connection needs (ca_file) and how to log in."""
    from crmbridge.sandbox.salesforce import main

    args = ["--port", str(port)]
    if data is not None:
        args += ["--data", str(data)]
    main(args)


@app.command()
def quickbooks(
    port: Annotated[
        int, typer.Option("--port", "-p", help="Port to listen on (127.0.0.1).")
    ] = 8090,
    data: Annotated[
        Path | None,
        typer.Option(
            "--data", help="SQLite file holding the sandbox's books (created and seeded)."
        ),
    ] = None,
) -> None:
    """Serve a QuickBooks Online sandbox (Accounting API v3 and OAuth 2.0) until Ctrl-C."""
    from crmbridge.sandbox.quickbooks import main

    args = ["--port", str(port)]
    if data is not None:
        args += ["--data", str(data)]
    main(args)


@app.command()
def sagecrm(
    port: Annotated[
        int, typer.Option("--port", "-p", help="Port to listen on (127.0.0.1).")
    ] = 8091,
    data: Annotated[
        Path | None,
        typer.Option(
            "--data", help="SQLite file holding the sandbox's records (created and seeded)."
        ),
    ] = None,
) -> None:
    """Serve a Sage CRM sandbox (SOAP web services with WSDL, sagecrm2 REST) until Ctrl-C."""
    from crmbridge.sandbox.sagecrm import main

    args = ["--port", str(port)]
    if data is not None:
        args += ["--data", str(data)]
    main(args)
