"""``crmbridge schedule add|list|remove|run``."""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from typing import Annotated

import typer

from crmbridge.cli.options import AsJson
from crmbridge.cli.render import console, print_json, print_rows
from crmbridge.cli.runs import StateUrl
from crmbridge.errors import ConfigError

app = typer.Typer(
    help="Run profiles by themselves at the times of a cron expression.", no_args_is_help=True
)


@app.command()
def add(
    profile: Annotated[Path, typer.Argument(help="Profile or sync profile file (YAML).")],
    cron: Annotated[
        str | None,
        typer.Option(
            "--cron",
            help='Cron expression, minute hour day month weekday ("0 2 * * *": 02:00 every '
            "day); default: the profile's schedule:.",
            metavar="EXPR",
        ),
    ] = None,
    timezone: Annotated[
        str | None,
        typer.Option(
            "--timezone", help="Time zone of the cron expression (default UTC).", metavar="ZONE"
        ),
    ] = None,
    missed: Annotated[
        str | None,
        typer.Option(
            "--missed",
            help="Times missed while the scheduler was down: skip (default) or run_once.",
            metavar="POLICY",
        ),
    ] = None,
    name: Annotated[
        str | None,
        typer.Option(
            "--name", help="The schedule's name (default: the profile's).", metavar="NAME"
        ),
    ] = None,
    state_url: StateUrl = None,
) -> None:
    """Schedule a profile (replacing a schedule of the same name); `crmbridge schedule run`
    or `crmbridge serve` runs it."""
    from crmbridge.profiles.loader import profile_kind
    from crmbridge.profiles.ops_model import Missed, check_cron, check_timezone
    from crmbridge.schedules.service import target_of
    from crmbridge.state import StateStore

    try:
        cron = check_cron(cron) if cron is not None else None
        timezone = check_timezone(timezone) if timezone is not None else None
        policy = Missed(missed).value if missed is not None else None
    except ValueError as err:
        message = str(err)
        if missed is not None and "Missed" in message:
            message = f"--missed takes skip or run_once, not {missed!r}"
        raise ConfigError(message) from None
    path = profile.resolve()
    kind = profile_kind(path)
    # the profile loads and has a schedule
    target = target_of(path, kind, name=name, cron=cron, timezone=timezone, missed=policy)
    with StateStore(state_url) as state:
        record = state.schedules.add(
            target.name, path=str(path), kind=kind, cron=cron, timezone=timezone, missed=policy
        )
    s = target.schedule
    console.print(
        f"schedule {record.name}: {kind} {path} at {s.cron!r} ({s.timezone}, missed: "
        f"{s.missed.value})",
        soft_wrap=True,
    )


@app.command("list")
def list_(state_url: StateUrl = None, as_json: AsJson = False) -> None:
    """The schedules: their times, when each runs next and what happened last."""
    from crmbridge.schedules.service import SchedulerService, resolve
    from crmbridge.state import StateStore

    with StateStore(state_url) as state:
        service = SchedulerService(state_url=state_url)
        entries = state.schedules.list()
        rows = []
        for entry in entries:
            nxt = service.next_times(entry)
            try:
                s = resolve(entry).schedule
                when, zone, policy = s.cron, s.timezone, s.missed.value
            except Exception:  # the profile cannot be loaded now: show what is stored
                when, zone, policy = entry.cron or "?", entry.timezone or "?", entry.missed or "?"
            rows.append(
                {
                    "name": entry.name,
                    "kind": entry.kind,
                    "profile": entry.path,
                    "cron": when,
                    "timezone": zone,
                    "missed": policy,
                    "next": nxt.isoformat() if nxt else None,
                    "last": entry.last_fired_at.isoformat() if entry.last_fired_at else None,
                    "outcome": entry.last_outcome,
                }
            )
        service.stop()
    if as_json:
        print_json(rows)
        return
    if not rows:
        console.print("No schedules (add one with: crmbridge schedule add PROFILE --cron EXPR)")
        return
    columns = ["name", "kind", "cron", "timezone", "missed", "next", "last", "outcome", "profile"]
    print_rows(columns, [[r[c] for c in columns] for r in rows])


@app.command()
def remove(
    name: Annotated[str, typer.Argument(help="The schedule's name (see schedule list).")],
    state_url: StateUrl = None,
) -> None:
    """Remove a schedule (the profile and its history stay)."""
    from crmbridge.state import StateStore

    with StateStore(state_url) as state:
        state.schedules.remove(name)
    console.print(f"schedule {name} removed")


@app.command()
def run(
    state_url: StateUrl = None,
    poll: Annotated[
        float,
        typer.Option("--poll", min=1, help="Seconds between two checks.", metavar="SECONDS"),
    ] = 30.0,
    queue: Annotated[
        bool,
        typer.Option("--queue", help="Send the runs to the Celery workers (docs/workers.md)."),
    ] = False,
) -> None:
    """Run the scheduler alone, in the foreground, until Ctrl-C or SIGTERM (`crmbridge serve`
    runs it beside the web app)."""
    from crmbridge.ops.logs import configure_logging
    from crmbridge.schedules.service import SchedulerService

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())  # a service manager stopping it
    service = SchedulerService(state_url=state_url, poll_seconds=poll, queue=queue)
    count = len(service.schedules())
    console.print(f"scheduler: {count} schedule(s) in {service.state.url}; Ctrl-C stops it")
    configure_logging()
    service.start()
    try:
        stop.wait()
    finally:
        service.stop()
    console.print("scheduler stopped")
