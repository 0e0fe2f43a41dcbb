"""A local Sage CRM sandbox: the SOAP web services (with their WSDL) and the sagecrm2 REST API
over SQLite tables with Sage CRM's own table and column names.

Typical test use::

    sandbox = SageSandbox()                  # private in-memory db, 40 seed companies
    with sandbox.serve() as server:          # a real port
        ...  # server.wsdl_url, server.soap_url, server.rest_url
    sandbox.faults.take_over_next()          # the next SOAP call finds its session ended
    sandbox.configure(max_records=5)         # an Administration setting

See docs/sandbox.md for what it reproduces.
"""

from crmbridge.sandbox.sagecrm.cli import main
from crmbridge.sandbox.sagecrm.faults import Faults
from crmbridge.sandbox.sagecrm.seed import seed_counts
from crmbridge.sandbox.sagecrm.server import RunningServer, SageSandbox
from crmbridge.sandbox.sagecrm.settings import Settings

__all__ = ["Faults", "RunningServer", "SageSandbox", "Settings", "main", "seed_counts"]
