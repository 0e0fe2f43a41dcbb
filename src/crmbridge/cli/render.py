"""Printing: tables, run summaries and progress, with rich."""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import json
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

if TYPE_CHECKING:  # the CLI starts fast: nothing heavy is imported before a command runs
    import pyarrow as pa

    from crmbridge.runner import Progress as RunProgress
    from crmbridge.runner import RunSummary
    from crmbridge.state import RunRecord

#: piped output (not a terminal) gets wide lines, so tables stay one record per line for grep
PIPE_WIDTH = 200
console = Console(highlight=False, width=None if sys.stdout.isatty() else PIPE_WIDTH)
console_err = Console(
    stderr=True, highlight=False, width=None if sys.stderr.isatty() else PIPE_WIDTH
)

#: record values in a preview table are cut to this many characters (paths and settings never)
MAX_CELL = 60


def cell(value: Any, limit: int | None = MAX_CELL) -> str:
    """A value as table text; cut to ``limit`` characters (None: never cut)."""
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ")
    text = str(value)
    return text if limit is None or len(text) <= limit else text[: limit - 1] + "…"


def rows_table(
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    title: str = "",
    *,
    limit: int | None = MAX_CELL,
) -> Table:
    table = Table(title=title or None, show_lines=False)
    for name in columns:
        table.add_column(name, overflow="fold")
    for row in rows:
        table.add_row(*(cell(v, limit) for v in row))
    return table


def json_value(value: Any) -> Any:
    """``value`` as JSON data: datetimes ISO 8601, enums their value, dataclasses objects."""
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, enum.Enum):
        return value.value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: json_value(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): json_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_value(v) for v in value]
    return value


def print_json(data: Any) -> None:
    """``data`` as indented JSON on stdout, for scripts (``--json``)."""
    typer.echo(json.dumps(json_value(data), indent=2, ensure_ascii=False))


def _plain(value: Any) -> str:
    """A value on one line, in full: line breaks and tabs shown as \\n and \\t."""
    return cell(value, None).replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")


def print_rows(columns: Sequence[str], rows: Sequence[Sequence[Any]], title: str = "") -> None:
    """Rows for people: a table on a terminal; when piped, one tab-separated line per row
    under a header line, every value in full (for grep, cut and awk)."""
    if console.is_terminal:
        console.print(rows_table(columns, rows, title, limit=None))
        return
    for line in [columns, *rows]:
        typer.echo("\t".join(_plain(v) for v in line))


def print_items(items: Sequence[tuple[str, Any]], title: str = "") -> None:
    """Name/value pairs: a two-column table on a terminal; ``name: value`` lines when piped,
    every value in full."""
    if console.is_terminal:
        table = Table(show_header=False, title=title or None)
        table.add_column("", style="bold")
        table.add_column("", overflow="fold")
        for name, value in items:
            table.add_row(name, cell(value, None))
        console.print(table)
        return
    for name, value in items:
        typer.echo(f"{name}: {_plain(value)}")


def arrow_table(data: pa.Table, title: str = "") -> Table:
    rows = [list(r.values()) for r in data.to_pylist()]
    return rows_table(data.column_names, rows, title)


def print_summary(summary: RunSummary) -> None:
    seconds = max(summary.seconds, 1e-9)
    rate = summary.records / seconds
    counts = ", ".join(f"{n} {c}" for n, c in summary.counts.items() if c)
    console.print(
        f"[bold]{summary.profile}[/bold]: {summary.status.value} — {counts or 'no records'} "
        f"in {summary.seconds:.1f}s ({rate:,.0f} records/s)"
        + (f" — run {summary.run_id}" if summary.run_id else "")
    )
    if summary.error:
        console_err.print(f"[red]{summary.error}[/red]", highlight=False, soft_wrap=True)
    if summary.note:
        console.print(summary.note, highlight=False, soft_wrap=True)
    if summary.success_file:
        console.print(f"success file: {summary.success_file}")
    if summary.error_file:
        console.print(f"error file:   {summary.error_file}")


def print_run(record: RunRecord) -> None:
    items = [
        ("run", record.id),
        ("profile", record.profile),
        ("file", record.profile_path),
        ("source", record.source),
        ("target", f"{record.target} ({record.mode})"),
        ("status", record.status.value),
        ("started", record.started_at),
        ("ended", record.ended_at),
        ("counts", ", ".join(f"{k} {v}" for k, v in record.counts.items() if v) or "none"),
        ("error", record.error),
        ("success file", record.success_file),
        ("error file", record.error_file),
    ]
    print_items(items, title=f"run {record.id}")


@contextmanager
def progress_bar(enabled: bool) -> Iterator[Any]:
    """Yields a callback for run progress: a bar with records/s, and ETA when the total is
    known. Disabled (a no-op callback) when ``enabled`` is False (not a terminal)."""
    if not enabled:
        yield None
        return
    columns = [
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TaskProgressColumn(),
        TextColumn("{task.fields[rate]:>10} rec/s"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    ]
    with Progress(*columns, console=console_err, transient=True) as bar:
        task = bar.add_task("records", total=None, rate="")

        def update(progress: RunProgress) -> None:
            elapsed = bar.tasks[0].elapsed or 0.0
            rate = f"{progress.done / elapsed:,.0f}" if elapsed > 0 else ""
            bar.update(task, completed=progress.done, total=progress.total, rate=rate)

        yield update
