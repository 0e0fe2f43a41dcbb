"""``crmbridge serve``: the local web UI and its JSON API (docs/web.md)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from crmbridge.cli.render import console
from crmbridge.cli.runs import StateUrl
from crmbridge.errors import ConfigError


def serve(
    host: Annotated[
        str,
        typer.Option(
            "--host",
            help="Address to listen on. Other than loopback needs --cert and --key (HTTPS) "
            "or --insecure-public.",
            metavar="ADDRESS",
        ),
    ] = "127.0.0.1",
    port: Annotated[
        int, typer.Option("--port", "-p", help="Port to listen on.", min=1, max=65535)
    ] = 8765,
    folder: Annotated[
        Path,
        typer.Option(
            "--dir", help="Folder of the profiles the UI lists, opens and saves.", metavar="DIR"
        ),
    ] = Path("."),
    cert: Annotated[
        Path | None, typer.Option("--cert", help="TLS certificate (PEM) for HTTPS.", metavar="FILE")
    ] = None,
    key: Annotated[
        Path | None, typer.Option("--key", help="TLS private key (PEM) for HTTPS.", metavar="FILE")
    ] = None,
    insecure_public: Annotated[
        bool,
        typer.Option(
            "--insecure-public",
            help="Serve plain HTTP on a non-loopback --host (logins and secrets cross the "
            "network unencrypted).",
        ),
    ] = False,
    schedules: Annotated[
        bool,
        typer.Option(
            "--schedules/--no-schedules",
            help="Run the scheduled profiles while serving (see docs/schedules.md).",
        ),
    ] = True,
    state_url: StateUrl = None,
) -> None:
    """Serve the web UI: connections, profiles with a mapping editor, preview, runs with live
    progress, the run history with rejected records, syncs and the conflict inbox; and run
    the scheduled profiles (unless --no-schedules).

    Log in with the token printed at start, or the password in CRMBRIDGE_WEB_PASSWORD."""
    try:
        import uvicorn

        from crmbridge.web import WebConfig, create_app
        from crmbridge.web.config import PASSWORD_ENV
    except ImportError as err:
        extra = escape("'crmbridge[web]'")  # printed with rich markup
        raise ConfigError(
            f"the web UI needs the web extra ({err.name} is missing): pip install {extra}"
        ) from None

    config = WebConfig(
        folder=folder.resolve(),
        host=host,
        port=port,
        password=os.environ.get(PASSWORD_ENV) or None,
        state_url=state_url,
        cert_file=cert,
        key_file=key,
        insecure_public=insecure_public,
    )
    config.check()
    app = create_app(config)
    scheduler = None
    if schedules:
        from crmbridge.schedules.service import SchedulerService

        scheduler = SchedulerService(state_url=state_url)
        scheduler.start()
    console.print(
        f"crmbridge UI: {config.base_url}/  (profiles in {config.folder})", soft_wrap=True
    )
    console.print(f"login token: {config.token}", highlight=False, soft_wrap=True)
    console.print(
        f"or open {config.base_url}/login?token={config.token}", highlight=False, soft_wrap=True
    )
    try:
        uvicorn.run(
            app,
            host=host,
            port=port,
            ssl_certfile=str(cert) if cert else None,
            ssl_keyfile=str(key) if key else None,
            log_level="warning",
        )
    finally:
        if scheduler is not None:
            scheduler.stop()


def register(app: typer.Typer) -> None:
    app.command()(serve)
