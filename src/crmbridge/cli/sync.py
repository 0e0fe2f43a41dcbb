"""``crmbridge sync``, ``crmbridge conflicts ...`` and ``crmbridge links ...``."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from crmbridge.cli.options import AsJson, Params, pairs
from crmbridge.cli.render import console, print_items, print_json, print_rows
from crmbridge.cli.runs import StateUrl
from crmbridge.errors import ConfigError

if TYPE_CHECKING:
    from crmbridge.sync import SyncSummary

SyncFile = Annotated[Path, typer.Argument(help="Sync profile file (YAML).")]
Limit = Annotated[
    int, typer.Option("--limit", "-n", min=1, help="How many lines to show.", metavar="N")
]


def sync(
    profile: SyncFile,
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run", help="Show what the sync will do on each side (and link); write nothing."
        ),
    ] = False,
    accept_links: Annotated[
        bool,
        typer.Option(
            "--accept-links",
            help="Make the links the dry run shows: needed for the first sync, and for "
            "fuzzy proposals.",
        ),
    ] = False,
    full: Annotated[
        bool,
        typer.Option(
            "--full",
            help="Read both sides whole, not only changes (finds deletes on a side that does "
            "not report them).",
        ),
    ] = False,
    wait: Annotated[
        bool, typer.Option("--wait", help="If the sync is running already, wait for it to end.")
    ] = False,
    output_dir: Annotated[
        Path | None,
        typer.Option("--output-dir", "-o", help="Where to put the run's files.", metavar="DIR"),
    ] = None,
    plan_out: Annotated[
        Path | None,
        typer.Option(
            "--plan-out",
            help="With --dry-run: write the plan to FILE; carry it out later with "
            "`crmbridge apply FILE`.",
            metavar="FILE",
        ),
    ] = None,
    limit: Limit = 50,
    state_url: StateUrl = None,
    param: Params = None,
    as_json: AsJson = False,
) -> None:
    """Keep two objects in step, both ways: links, changes since the last sync, conflicts.

    The first sync only shows its link plan; run it again with --accept-links to make it.
    An interrupted sync is carried on by the next one."""
    from crmbridge.connections import ConnectionStore
    from crmbridge.profiles.loader import load_sync
    from crmbridge.state import StateStore
    from crmbridge.sync import SyncOptions, run_sync

    loaded = load_sync(profile, pairs(param, "--param"))
    options = SyncOptions(
        dry_run=dry_run,
        accept_links=accept_links,
        full=full,
        wait=wait,
        output_dir=output_dir,
        plan_out=plan_out,
    )
    with StateStore(state_url) as state:
        summary = run_sync(loaded, connections=ConnectionStore(), state=state, options=options)
    if not dry_run:
        from crmbridge.ops.notify import RunEvent, run_ended

        event = RunEvent(
            profile=summary.name,
            kind="sync",
            run_id=summary.run_id,
            status=summary.status.value,
            counts=dict(summary.counts),
            error=summary.error,
        )
        run_ended(event, loaded.profile.notify)
    if as_json:
        print_json(_summary_json(summary))
    else:
        _print_summary(summary, limit)
        if plan_out is not None and summary.error is None:
            console.print(
                f"plan written to {plan_out}; carry it out with: crmbridge apply {plan_out}",
                highlight=False,
                soft_wrap=True,
            )
    raise typer.Exit(summary.exit_code)


def apply_sync(
    plan: Path, output_dir: Path | None, state_url: str | None, wait: bool, limit: int = 50
) -> None:
    """``crmbridge apply FILE`` for a sync's plan (see crmbridge.sync.apply)."""
    from crmbridge.connections import ConnectionStore
    from crmbridge.state import StateStore
    from crmbridge.sync.apply import apply_sync_plan

    with StateStore(state_url) as state:
        summary = apply_sync_plan(
            plan, connections=ConnectionStore(), state=state, output_dir=output_dir, wait=wait
        )
    _print_summary(summary, limit)
    raise typer.Exit(summary.exit_code)


def _print_summary(summary: SyncSummary, limit: int) -> None:
    report = summary.report
    title = "plan" if summary.status.value == "dry_run" else "done"
    reads = "; ".join(f"{side}: {how}" for side, how in summary.reads.items())
    console.print(f"[bold]{summary.name}[/bold] ({title}; read {reads})", highlight=False)
    if report.links:
        rows = [[x["a_id"], x["b_id"], x["by"]] for x in report.links[:limit]]
        print_rows(["a", "b", "linked by"], rows, title=f"new links ({len(report.links)})")
    if report.holds:
        rows = [[h["side"], h["id"], h["reason"]] for h in report.holds[:limit]]
        print_rows(["side", "id", "why"], rows, title=f"held for review ({len(report.holds)})")
    for side, direction in (("b", "a → b"), ("a", "b → a")):
        lines = [x for x in report.lines if x.side == side]
        if not lines:
            continue
        rows = [
            [x.action, x.id or "(new)", x.source, x.changes, x.why, x.outcome or "", x.reason or ""]
            for x in lines[:limit]
        ]
        print_rows(
            ["action", "record", "from", "values", "why", "outcome", "reason"],
            rows,
            title=f"{direction} ({len(lines)})",
        )
    if report.conflicts:
        rows = [
            [c["a_id"], c["field"], c["a_value"], c["b_value"], c["policy"], c["decision"]]
            for c in report.conflicts[:limit]
        ]
        print_rows(
            ["a record", "field", "a", "b", "policy", "decision"],
            rows,
            title=f"conflicts ({len(report.conflicts)}; open ones: crmbridge conflicts list)",
        )
    counts = ", ".join(f"{k} {v}" for k, v in sorted(summary.counts.items()) if v)
    console.print(
        f"{summary.status.value}: {counts or 'nothing to do'}"
        + (f" (run {summary.run_id})" if summary.run_id else ""),
        highlight=False,
        soft_wrap=True,
    )
    if summary.error:
        console.print(f"[red]error:[/red] {summary.error}", highlight=False, soft_wrap=True)


def _summary_json(summary: SyncSummary) -> dict[str, Any]:
    report = summary.report
    return {
        "run_id": summary.run_id,
        "sync": summary.name,
        "status": summary.status.value,
        "counts": summary.counts,
        "reads": summary.reads,
        "error": summary.error,
        "links": report.links,
        "held": report.holds,
        "writes": [vars(line) for line in report.lines],
        "conflicts": report.conflicts,
    }


# -- conflicts ----------------------------------------------------------------------------
conflicts_app = typer.Typer(
    help="Fields both sides of a sync changed differently, and their decisions.",
    no_args_is_help=True,
)


def _sync_key(profile: Path | None) -> str | None:
    if profile is None:
        return None
    from crmbridge.profiles.loader import load_sync
    from crmbridge.sync import sync_key

    return sync_key(load_sync(profile))


@conflicts_app.command("list")
def conflicts_list(
    profile: Annotated[
        Path | None, typer.Argument(help="Only this sync profile's conflicts.")
    ] = None,
    every: Annotated[
        bool, typer.Option("--all", help="Also conflicts decided by a policy or resolved.")
    ] = False,
    limit: Limit = 100,
    state_url: StateUrl = None,
    as_json: AsJson = False,
) -> None:
    """List the open conflicts (held for a person), oldest first."""
    from crmbridge.state import StateStore

    key = _sync_key(profile)
    with StateStore(state_url) as state:
        found = state.sync.conflicts(key, status=None if every else "open", limit=limit)
    if as_json:
        print_json(found)
        return
    rows = [
        [c.id, _sync_name(c.sync_key), c.a_id, c.b_id, c.field, c.a_value, c.b_value, c.status]
        for c in found
    ]
    print_rows(["id", "sync", "a record", "b record", "field", "a", "b", "status"], rows)
    if not rows:
        console.print("no open conflicts" if not every else "no conflicts")


@conflicts_app.command("show")
def conflicts_show(
    conflict: Annotated[int, typer.Argument(help="Conflict number (see `conflicts list`).")],
    state_url: StateUrl = None,
    as_json: AsJson = False,
) -> None:
    """Show one conflict: the base (last synced value), both sides' values, the decision."""
    from crmbridge.state import StateStore

    with StateStore(state_url) as state:
        found = state.sync.conflict(conflict)
    if as_json:
        print_json(found)
        return
    base = found.base if found.base is not None else ["(none: first sync)", "(none)"]
    items: Sequence[tuple[str, Any]] = [
        ("sync", _sync_name(found.sync_key)),
        ("records", f"a {found.a_id} / b {found.b_id}"),
        ("field", found.field),
        ("base (last synced)", f"a {base[0]!r}, b {base[1]!r}" if isinstance(base, list) else base),
        ("a now", found.a_value),
        ("b now", found.b_value),
        ("policy", found.policy),
        ("decision", found.decision),
        ("status", found.status),
        ("resolution", found.resolution),
        ("logged", found.created_at.strftime("%Y-%m-%d %H:%M:%S UTC")),
        ("run", found.run_id),
    ]
    print_items(list(items), title=f"conflict {found.id}")


@conflicts_app.command("resolve")
def conflicts_resolve(
    conflict: Annotated[int, typer.Argument(help="Conflict number (see `conflicts list`).")],
    take: Annotated[
        str | None,
        typer.Option("--take", help="a or b: that side's value goes to the other side."),
    ] = None,
    value: Annotated[
        str | None, typer.Option("--value", help="This value goes to both sides.")
    ] = None,
    state_url: StateUrl = None,
) -> None:
    """Decide an open conflict; the next sync writes the decision."""
    from crmbridge.state import StateStore

    if (take is None) == (value is None):
        raise ConfigError("give --take a, --take b or --value TEXT")
    if take is not None and take not in ("a", "b"):
        raise ConfigError(f"--take is a or b, not {take!r}")
    resolution = {"take": take} if take else {"take": "value", "value": value}
    with StateStore(state_url) as state:
        state.sync.resolve(conflict, resolution)
    console.print(f"conflict {conflict} resolved; the next sync writes it")


# -- links --------------------------------------------------------------------------------
links_app = typer.Typer(help="The linked records of a sync.", no_args_is_help=True)


@links_app.command("list")
def links_list(
    profile: SyncFile,
    limit: Limit = 50,
    state_url: StateUrl = None,
    as_json: AsJson = False,
) -> None:
    """List the pairs of linked records (a's id, b's id) and what was synced last."""
    from crmbridge.state import StateStore

    key = _sync_key(profile)
    assert key is not None
    with StateStore(state_url) as state:
        total = state.sync.count_links(key)
        shown = []
        for batch in state.sync.all_links(key, batch=limit):
            shown = batch[:limit]
            break
    if as_json:
        print_json({"total": total, "links": shown})
        return
    print_rows(
        ["a", "b", "last synced values"],
        [[k.a_id, k.b_id, k.base] for k in shown],
        title=f"{total} links",
    )


@links_app.command("remove")
def links_remove(
    profile: SyncFile,
    a_id: Annotated[str, typer.Option("--a", help="The id of the a record.", metavar="ID")],
    state_url: StateUrl = None,
) -> None:
    """Forget the link of one record: the next sync pairs it again (or creates it)."""
    from crmbridge.state import StateStore

    key = _sync_key(profile)
    assert key is not None
    with StateStore(state_url) as state:
        if not state.sync.links(key, a_ids=[a_id]):
            raise ConfigError(f"record {a_id!r} of a is not linked")
        state.sync.remove_links(key, [a_id])
    console.print(f"the link of a record {a_id} is gone")


def _sync_name(key: str) -> str:
    """A sync's name as its key shows it (``sync:suppliers@1f2e...`` -> ``suppliers``)."""
    name = key.removeprefix("sync:").removeprefix("id:")
    return name.split("@", 1)[0]


def register(app: typer.Typer) -> None:
    app.command()(sync)
    app.add_typer(conflicts_app, name="conflicts")
    app.add_typer(links_app, name="links")
