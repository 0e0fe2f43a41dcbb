"""``crmbridge worker`` and ``crmbridge run PROFILE --queue``: runs on Celery workers."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from crmbridge.cli.render import console

Broker = Annotated[
    str | None,
    typer.Option(
        "--broker",
        envvar="CRMBRIDGE_BROKER_URL",
        help="Broker URL: amqp://USER:PASSWORD@HOST:5672// (RabbitMQ, the default on this "
        "machine) or redis://HOST:6379/0.",
        metavar="URL",
    ),
]
Queue = Annotated[
    str,
    typer.Option(
        "--queue-name",
        envvar="CRMBRIDGE_QUEUE_NAME",
        help="The broker queue of the tasks.",
        metavar="NAME",
    ),
]


def worker(
    broker: Broker = None,
    concurrency: Annotated[
        int | None,
        typer.Option(
            "--concurrency",
            "-c",
            min=1,
            help="Tasks run at once (default: the number of CPUs).",
            metavar="N",
        ),
    ] = None,
    pool: Annotated[
        str,
        typer.Option(
            "--pool",
            help="prefork (processes, the default), threads or solo (one task).",
            metavar="POOL",
        ),
    ] = "prefork",
    queue_name: Queue = "crmbridge",
) -> None:
    """Start a Celery worker that runs the profiles and partitions submitted with
    `crmbridge run PROFILE --queue` (until Ctrl-C)."""
    from crmbridge.errors import ConfigError
    from crmbridge.ops.logs import configure_logging
    from crmbridge.workers.app import use_broker

    if pool not in ("prefork", "threads", "solo"):
        raise ConfigError(f"--pool takes prefork, threads or solo, not {pool!r}")
    configure_logging()
    app = use_broker(broker)
    argv = [
        "worker",
        f"--pool={pool}",
        f"--queues={queue_name}",
        f"--hostname=crmbridge-{os.getpid()}@%h",
        "--loglevel=INFO",
        "--without-gossip",
        "--without-mingle",
    ]
    if concurrency is not None:
        argv.append(f"--concurrency={concurrency}")
    app.worker_main(argv)


def submit(
    profile: Path,
    params: dict[str, str],
    *,
    state_url: str | None,
    partitions: int,
    by: str | None,
    broker: str | None,
    queue_name: str,
) -> None:
    """Send a run to the workers and say how to follow it."""
    from crmbridge.state import StateStore
    from crmbridge.workers.submit import submit_run

    url = state_url or StateStore.default_url()
    job = submit_run(
        profile,
        state_url=url,
        params=params,
        partitions=partitions,
        by=by,
        broker=broker,
        queue=queue_name,
    )
    parts = len(job.tasks)
    console.print(
        f"job {job.id}: {job.name} submitted as {parts} task{'s' if parts > 1 else ''}; "
        "the workers' runs are in: crmbridge history",
        soft_wrap=True,
    )
    for spec in job.tasks:
        if spec.partition is not None:
            console.print(f"  part {spec.part}: {spec.partition.condition()}", soft_wrap=True)


def register(app: typer.Typer) -> None:
    app.command()(worker)
