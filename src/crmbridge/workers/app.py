"""The Celery application of crmbridge: its broker, its settings, its one task.

Every setting that makes a killed worker harmless is here:

* ``task_acks_late``: a task's message is acknowledged when the task has ended, not when a
  worker takes it, so a worker that dies mid-task has not acknowledged it and the broker
  hands it to another worker (RabbitMQ at once, when the dead worker's connection closes;
  Redis after its ``visibility_timeout``);
* ``task_reject_on_worker_lost``: a task whose pool process was killed is given back to the
  broker, not marked failed;
* ``worker_prefetch_multiplier = 1``: a worker reserves one task at a time, so the others are
  left for the other workers.

A task run twice, or run again after a kill, is harmless because of the run ledger: see
:mod:`crmbridge.workers.tasks`.
"""

from __future__ import annotations

import os
from typing import Any

from celery import Celery

#: environment variable holding the broker URL
BROKER_ENV = "CRMBRIDGE_BROKER_URL"
#: the broker used when none is given: RabbitMQ on this machine
DEFAULT_BROKER = "amqp://guest:guest@127.0.0.1:5672//"
#: the queue crmbridge's tasks go to unless told otherwise
DEFAULT_QUEUE = "crmbridge"
#: environment variable naming the queue (instead of the default)
QUEUE_ENV = "CRMBRIDGE_QUEUE_NAME"
#: Redis only: seconds before a task taken by a worker that vanished is handed out again; a
#: run longer than this would be started a second time (the lock makes it wait, not write)
REDIS_VISIBILITY_TIMEOUT = 6 * 3600

app = Celery("crmbridge")
app.conf.update(
    broker_url=os.environ.get(BROKER_ENV) or DEFAULT_BROKER,
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    worker_prefetch_multiplier=1,
    task_ignore_result=True,
    task_serializer="json",
    accept_content=["json"],
    task_default_queue=DEFAULT_QUEUE,
    broker_connection_retry_on_startup=True,
    broker_connection_timeout=5,
    broker_transport_options={"visibility_timeout": REDIS_VISIBILITY_TIMEOUT},
    worker_hijack_root_logger=False,
    worker_send_task_events=False,
)


def use_broker(url: str | None) -> Celery:
    """The app, talking to broker ``url`` (None: ``$CRMBRIDGE_BROKER_URL`` or RabbitMQ here)."""
    app.conf.broker_url = url or os.environ.get(BROKER_ENV) or DEFAULT_BROKER
    return app


def default_queue() -> str:
    """``$CRMBRIDGE_QUEUE_NAME``, else ``crmbridge``."""
    return os.environ.get(QUEUE_ENV, "").strip() or DEFAULT_QUEUE


@app.task(name="crmbridge.run")  # type: ignore[untyped-decorator]
def run(spec: dict[str, Any]) -> dict[str, Any]:
    """Run one profile, sync or partition (``spec``: :class:`crmbridge.workers.tasks.Spec`)."""
    from crmbridge.workers.tasks import Spec, execute

    return execute(Spec.from_json(spec))


__all__ = [
    "BROKER_ENV",
    "DEFAULT_BROKER",
    "DEFAULT_QUEUE",
    "QUEUE_ENV",
    "app",
    "default_queue",
    "run",
    "use_broker",
]
