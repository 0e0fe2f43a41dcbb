"""Two-way sync: keep an object of one system and an object of another in step.

``run_sync`` runs a sync profile (:mod:`crmbridge.profiles.sync_model`); docs/sync.md
describes what it does. The parts: ``sides`` (each side's records as comparable rows),
``linking`` (pairing records not linked yet), ``merge`` (the field-level three-way merge, in
SQL), ``plan`` (what each side gets), ``execute`` (carrying a batch out), ``run`` (the run).
"""

from crmbridge.sync.run import NeedsAcceptanceError, SyncOptions, SyncSummary, run_sync, sync_key

__all__ = ["NeedsAcceptanceError", "SyncOptions", "SyncSummary", "run_sync", "sync_key"]
