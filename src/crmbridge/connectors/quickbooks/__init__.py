"""QuickBooks Online connector (Accounting API v3 over httpx). See
docs/connectors/quickbooks.md. The parts:

* :mod:`.settings` connection settings; :mod:`.auth` OAuth 2.0 with the rotating refresh
  token; :mod:`.transport` HTTP with the company's limits, retries and requestids;
* :mod:`.catalog` the entities and their fields; :mod:`.values` JSON <-> Arrow;
* :mod:`.query` filter pushdown into the query language; :mod:`.reader` query pages and
  change data capture; :mod:`.operations` batch writes with SyncTokens;
* :mod:`.connector` the connector class.
"""

from crmbridge.connectors.quickbooks.connector import QuickBooksConnector
from crmbridge.connectors.quickbooks.settings import QuickBooksSettings

__all__ = ["QuickBooksConnector", "QuickBooksSettings"]
