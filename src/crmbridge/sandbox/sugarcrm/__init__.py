"""A local SugarCRM / SuiteCRM sandbox: legacy v4_1 REST and REST v10/v11 over SQLite.

Typical test use::

    sandbox = SugarSandbox()                     # private in-memory db, 40 seed accounts
    client = httpx.Client(transport=httpx.WSGITransport(app=sandbox.wsgi_app),
                          base_url="http://sugar.test")
    with sandbox.serve() as server:              # or over a real port
        ...  # server.url + "/service/v4_1/rest.php", server.url + "/rest/v11/..."
    sandbox.faults.throttle_next(2, retry_after=0.1)

See docs/sandbox.md for the quirks it reproduces.
"""

from crmbridge.sandbox.sugarcrm.cli import main
from crmbridge.sandbox.sugarcrm.faults import Faults
from crmbridge.sandbox.sugarcrm.seed import seed_counts
from crmbridge.sandbox.sugarcrm.server import RunningServer, SugarSandbox

__all__ = ["Faults", "RunningServer", "SugarSandbox", "main", "seed_counts"]
