"""Runs profiles: prepare (check everything), then stream batches through the pipeline."""

from crmbridge.runner.engine import Progress
from crmbridge.runner.run import Preview, RunSummary, preview_profile, run_profile

__all__ = ["Preview", "Progress", "RunSummary", "preview_profile", "run_profile"]
