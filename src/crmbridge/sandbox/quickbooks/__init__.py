"""A local QuickBooks Online sandbox: the Accounting API v3 and Intuit OAuth 2.0 over SQLite.

Typical test use::

    sandbox = QuickBooksSandbox()                 # private in-memory books, 30 customers
    with sandbox.serve() as server:               # background thread, free port
        ...  # server.url + "/v3/company/" + sandbox.realm_id + "/query?query=..."
    token = sandbox.issue_refresh_token()         # for a connection's refresh_token
    sandbox.faults.lose_answer_next(1)            # applied, then the answer is lost

See docs/sandbox.md for what it reproduces.
"""

from crmbridge.sandbox.quickbooks.cli import main
from crmbridge.sandbox.quickbooks.faults import Faults
from crmbridge.sandbox.quickbooks.seed import seed_counts
from crmbridge.sandbox.quickbooks.server import QuickBooksSandbox, RunningServer

__all__ = ["Faults", "QuickBooksSandbox", "RunningServer", "main", "seed_counts"]
