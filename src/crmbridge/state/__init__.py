"""Run history and key/value state (:class:`StateStore`), and where crmbridge stores things."""

from crmbridge.state.ledger import BatchRecord, BatchStatus, Sent
from crmbridge.state.locks import Acquired, Holder
from crmbridge.state.migrations import LATEST as SCHEMA_VERSION
from crmbridge.state.paths import HOME_ENV, home_dir
from crmbridge.state.schedules import ScheduleRecord
from crmbridge.state.store import STATE_URL_ENV, RunRecord, RunStatus, StateStore, lock_name

__all__ = [
    "HOME_ENV",
    "SCHEMA_VERSION",
    "STATE_URL_ENV",
    "Acquired",
    "BatchRecord",
    "BatchStatus",
    "Holder",
    "RunRecord",
    "RunStatus",
    "ScheduleRecord",
    "Sent",
    "StateStore",
    "home_dir",
    "lock_name",
]
