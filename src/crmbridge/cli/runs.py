"""``crmbridge preview``, ``run``, ``history`` and ``show``."""

from __future__ import annotations

import shutil
import sys
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from crmbridge.cli.options import AsJson, Params, pairs
from crmbridge.cli.render import (
    arrow_table,
    console,
    print_json,
    print_rows,
    print_run,
    print_summary,
    progress_bar,
)
from crmbridge.cli.worker import Broker, Queue, submit
from crmbridge.errors import ConfigError

if TYPE_CHECKING:
    from crmbridge.profiles.loader import LoadedProfile
    from crmbridge.runner import RunSummary

EXAMPLE_DIR = "crmbridge-example"
EXAMPLE_PROFILE = "contacts-to-sqlite.yaml"

StateUrl = Annotated[
    str | None,
    typer.Option(
        "--state-url",
        envvar="CRMBRIDGE_STATE_URL",
        help="Run history database URL (default: SQLite in the crmbridge home).",
        metavar="URL",
    ),
]
ProfileFile = Annotated[Path, typer.Argument(help="Profile file (YAML).")]


def _bundled_example() -> Path:
    """Copy the bundled example into ./crmbridge-example (once) and return its profile."""
    folder = Path.cwd() / EXAMPLE_DIR
    if not folder.exists():
        source = resources.files("crmbridge") / "examples"
        with resources.as_file(source) as path:
            shutil.copytree(path, folder, ignore=shutil.ignore_patterns("__*"))
        console.print(f"Copied the bundled example to {folder}/")
    return folder / EXAMPLE_PROFILE


def _load(path: Path | None, params: dict[str, str]) -> LoadedProfile:
    from crmbridge.profiles.loader import load_profile

    if path is None:
        path = _bundled_example()
        console.print(f"No profile given: running the bundled example {path}")
    return load_profile(path, params, defer_unknown_settings=True)


def preview(
    profile: ProfileFile,
    param: Params = None,
    limit: Annotated[
        int, typer.Option("--limit", "-n", min=1, help="How many records to show.", metavar="N")
    ] = 10,
) -> None:
    """Show the first records after filter and mapping, and what the run would do to each."""
    from crmbridge.connections import ConnectionStore
    from crmbridge.profiles.loader import load_profile
    from crmbridge.runner import preview_profile

    loaded = load_profile(profile, pairs(param, "--param"), defer_unknown_settings=True)
    result = preview_profile(loaded, connections=ConnectionStore(), limit=limit)
    if result.pushed_filter:
        console.print(f"filter evaluated by the source: {' AND '.join(result.pushed_filter)}")
    if result.local_filter:
        console.print(f"filter evaluated by crmbridge: {result.local_filter}")
    if result.records.num_rows == 0:
        if result.read == 0 and not result.pushed_filter:
            console.print("The source has no records.")
        else:
            console.print("No record passes the filter.")
        return
    console.print(arrow_table(result.records, title=f"{loaded.name}: first {limit} records"))


def run(
    profile: Annotated[
        Path | None,
        typer.Argument(help="Profile file (YAML). Without one, runs the bundled example."),
    ] = None,
    dry_run: Annotated[
        bool | None,
        typer.Option(
            "--dry-run/--no-dry-run", help="Decide every record's outcome, write nothing."
        ),
    ] = None,
    output_dir: Annotated[
        Path | None,
        typer.Option(
            "--output-dir", "-o", help="Where to put the success and error files.", metavar="DIR"
        ),
    ] = None,
    state_url: StateUrl = None,
    param: Params = None,
    progress: Annotated[
        bool | None,
        typer.Option(
            "--progress/--no-progress", help="Show a progress bar (default: on a terminal)."
        ),
    ] = None,
    wait: Annotated[
        bool,
        typer.Option("--wait", help="If the profile is running already, wait for it to end."),
    ] = False,
    restart: Annotated[
        bool,
        typer.Option(
            "--restart",
            help="Do not continue an interrupted run of the profile: start over (and read a "
            "source file even if it is unchanged since the last successful run).",
        ),
    ] = False,
    again: Annotated[
        bool,
        typer.Option(
            "--again",
            help="Insert once more the records an earlier run inserted (insert without "
            "match keys skips them otherwise).",
        ),
    ] = False,
    plan_out: Annotated[
        Path | None,
        typer.Option(
            "--plan-out",
            help="With --dry-run: write the plan to this Parquet file, to review it and carry "
            "it out later with `crmbridge apply`.",
        ),
    ] = None,
    queue: Annotated[
        bool,
        typer.Option(
            "--queue", help="Send the run to the Celery workers instead (docs/workers.md)."
        ),
    ] = False,
    partitions: Annotated[
        int,
        typer.Option(
            "--partitions",
            min=1,
            help="With --queue: cut the run in N key ranges, one task each.",
            metavar="N",
        ),
    ] = 1,
    partition_by: Annotated[
        str | None,
        typer.Option(
            "--partition-by",
            help="With --partitions: the source field of the ranges (default: source.key).",
            metavar="FIELD",
        ),
    ] = None,
    broker: Broker = None,
    queue_name: Queue = "crmbridge",
) -> None:
    """Run a profile: every record is created, updated, unchanged, deleted or rejected.

    A run that was interrupted (killed, a crash) is continued where it stood."""
    from crmbridge.connections import ConnectionStore
    from crmbridge.runner import run_profile
    from crmbridge.state import StateStore

    if queue and profile is not None:
        args = pairs(param, "--param")
        submit(
            profile,
            args,
            state_url=state_url,
            partitions=partitions,
            by=partition_by,
            broker=broker,
            queue_name=queue_name,
        )
        return
    if partitions > 1 or queue or partition_by is not None:
        raise ConfigError("--queue needs a profile; --partitions and --partition-by need --queue")
    loaded = _load(profile, pairs(param, "--param"))
    show = sys.stderr.isatty() if progress is None else progress
    with StateStore(state_url) as state, progress_bar(show) as on_progress:
        summary = run_profile(
            loaded,
            connections=ConnectionStore(),
            state=state,
            dry_run=True if plan_out is not None and dry_run is None else dry_run,
            output_dir=output_dir,
            on_progress=on_progress,
            wait=wait,
            restart=restart,
            again=again,
            plan_out=plan_out,
        )
    print_summary(summary)
    if summary.status.value != "dry_run":
        _ended(summary, loaded)
    if plan_out is not None and summary.error is None:
        console.print(
            f"plan written to {plan_out}; carry it out with: crmbridge apply {plan_out}",
            soft_wrap=True,
            highlight=False,
        )
    raise typer.Exit(summary.exit_code)


def _ended(summary: RunSummary, loaded: LoadedProfile) -> None:
    """Log how the run ended and send the profile's notifications."""
    from crmbridge.ops.notify import RunEvent, run_ended

    event = RunEvent(
        profile=summary.profile,
        kind="transfer",
        run_id=summary.run_id,
        status=summary.status.value,
        counts=dict(summary.counts),
        error=summary.error,
        error_file=str(summary.error_file) if summary.error_file else None,
    )
    for sent in run_ended(event, loaded.profile.notify):
        console.print(f"notified: {sent}", soft_wrap=True, highlight=False)


def apply(
    plan: Annotated[
        Path,
        typer.Argument(help="Plan file written by `run` or `sync` with --dry-run --plan-out."),
    ],
    output_dir: Annotated[
        Path | None,
        typer.Option("--output-dir", "-o", help="Where to put the success and error files."),
    ] = None,
    state_url: StateUrl = None,
    wait: Annotated[
        bool,
        typer.Option("--wait", help="If the profile is running already, wait for it to end."),
    ] = False,
) -> None:
    """Carry out a saved plan: exactly its operations. A record that changed since the plan
    was made is refused (listed in the error file), not written."""
    from crmbridge.connections import ConnectionStore
    from crmbridge.runner.apply import apply_plan
    from crmbridge.state import StateStore
    from crmbridge.sync.planfile import is_sync_plan

    if is_sync_plan(plan):
        from crmbridge.cli.sync import apply_sync

        apply_sync(plan, output_dir, state_url, wait)

    with StateStore(state_url) as state:
        summary = apply_plan(
            plan, connections=ConnectionStore(), state=state, output_dir=output_dir, wait=wait
        )
    print_summary(summary)
    raise typer.Exit(summary.exit_code)


def history(
    profile: Annotated[
        str | None,
        typer.Option("--profile", "-p", help="Only this profile's runs.", metavar="NAME"),
    ] = None,
    limit: Annotated[
        int, typer.Option("--limit", "-n", min=1, help="How many runs to show.", metavar="N")
    ] = 20,
    state_url: StateUrl = None,
    as_json: AsJson = False,
) -> None:
    """List recent runs, newest first."""
    from crmbridge.runner.ledger import close_dead_runs
    from crmbridge.state import StateStore

    with StateStore(state_url) as state:
        close_dead_runs(state)
        runs = state.list_runs(profile=profile, limit=limit)
    if as_json:
        print_json(runs)
        return
    rows = [
        [
            r.id,
            r.profile,
            r.started_at.strftime("%Y-%m-%d %H:%M:%S"),
            r.status.value,
            ", ".join(f"{k} {v}" for k, v in r.counts.items() if v),
        ]
        for r in runs
    ]
    print_rows(["run", "profile", "started (UTC)", "status", "counts"], rows)


def show(
    run_id: Annotated[
        int, typer.Argument(help="Run number (see `crmbridge history`).", metavar="RUN")
    ],
    state_url: StateUrl = None,
    as_json: AsJson = False,
) -> None:
    """Show one run: counts, status, error, and where its success and error files are."""
    from crmbridge.runner.ledger import close_dead_runs
    from crmbridge.state import StateStore

    with StateStore(state_url) as state:
        close_dead_runs(state)
        record = state.get_run(run_id)
    if as_json:
        print_json(record)
    else:
        print_run(record)


plan_app = typer.Typer(
    help="Saved plans (`crmbridge run --dry-run --plan-out FILE`).", no_args_is_help=True
)


@plan_app.command("show")
def plan_show(
    plan: Annotated[Path, typer.Argument(help="Plan file.")],
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, help="How many rows.")] = 20,
) -> None:
    """Show what a plan file will do: its counts and its first operations."""
    from crmbridge.runner.planfile import read_header, summary_rows

    header = read_header(plan)
    counts = ", ".join(f"{k} {v}" for k, v in sorted(header.counts.items()) if v)
    console.print(
        f"plan of {header.profile_name} ({header.profile_path}), made {header.created_at}: "
        f"{header.mode.value} into {header.target} — {counts or 'nothing to do'}"
    )
    console.print(arrow_table(summary_rows(plan, limit), title=f"first {limit} operations"))


def register(app: typer.Typer) -> None:
    for command in (preview, run, apply, history, show):
        app.command()(command)
    app.add_typer(plan_app, name="plan")
