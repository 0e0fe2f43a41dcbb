"""A local Salesforce sandbox: OAuth2, REST (describe, SOQL query / queryAll, sObjects,
upsert by external id, sObject Collections, limits) and Bulk API 2.0, over HTTPS and SQLite.

Typical test use::

    sandbox = SalesforceSandbox()               # private in-memory db, 40 seed accounts
    with sandbox.serve() as server:             # HTTPS on a free port
        ...  # server.url, sandbox.ca_file, sandbox.consumer_key / consumer_secret
    sandbox.faults.lose_next(1, only="composite/sobjects")
    sandbox.close()

See docs/sandbox.md for what it reproduces.
"""

from crmbridge.sandbox.salesforce.cli import main
from crmbridge.sandbox.salesforce.context import Settings
from crmbridge.sandbox.salesforce.faults import Faults
from crmbridge.sandbox.salesforce.seed import seed_counts
from crmbridge.sandbox.salesforce.server import DEFAULT_USER, RunningServer, SalesforceSandbox

__all__ = [
    "DEFAULT_USER",
    "Faults",
    "RunningServer",
    "SalesforceSandbox",
    "Settings",
    "main",
    "seed_counts",
]
