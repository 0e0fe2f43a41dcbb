"""Salesforce connector (REST through simple-salesforce, sObject Collections, Bulk API 2.0).

See docs/connectors/salesforce.md. The parts:

* :mod:`.settings` connection settings; :mod:`.auth` OAuth2 login (username-password, JWT
  bearer); :mod:`.api` the session with refresh, retries and :mod:`.quota` watching;
* :mod:`.discovery` ``describe`` -> schema; :mod:`.values` wire values <-> Arrow;
* :mod:`.soql` filter pushdown; :mod:`.reader` REST and Bulk query reads;
* :mod:`.bulk` Bulk API 2.0 jobs; :mod:`.writes` Collections and Bulk ingest writes;
* :mod:`.matching` candidates for key values (``match``); :mod:`.applying` a plan's
  operations carried out, repeatably (``apply``);
* :mod:`.connector` the connector class.

simple-salesforce is an optional dependency (``pip install 'crmbridge[salesforce]'``).
"""

from crmbridge.connectors.salesforce.connector import SalesforceConnector
from crmbridge.connectors.salesforce.failures import OutcomeUnknownError, QuotaError
from crmbridge.connectors.salesforce.settings import SalesforceSettings
from crmbridge.connectors.salesforce.writes import Operation, RecordResult, Writes

__all__ = [
    "Operation",
    "OutcomeUnknownError",
    "QuotaError",
    "RecordResult",
    "SalesforceConnector",
    "SalesforceSettings",
    "Writes",
]
